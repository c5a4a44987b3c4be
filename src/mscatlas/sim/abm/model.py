"""The spatial agent-based model: a tumour in a 2D slab of tissue, CXCL12, homing MSCs.

Agents (see :mod:`.agents`) live in a square domain ``[0, L]^2`` with reflecting walls. Three
kinds of field share one grid (see :mod:`.diffusion`, zero-flux walls): CXCL12 secreted by the
cancer cells, and the MSC paracrine channels of the ODE model (``signals`` in the parameter
file: inhibitory, stimulatory and any payload), secreted by the MSCs. Only channels with a
non-zero secretion rate are solved.

Cancer cells cycle G0/G1 -> S -> G2/M -> two G0/G1 daughters with the first-order rates of the
ODE model (:func:`mscatlas.sim.model.cycle_rates`: the untreated population grows at
``ln 2 / doubling_time``) and die at the basal rate. As in the ODE model, crowding multiplies
every cycle rate and the basal death rate by ``max(1 - density / max_density, 0)``, here with the
local density averaged over a square window; the paracrine channels act through the same Hill
terms (``arrest_max`` and ``boost_max`` on G0/G1 exit, ``death_max`` as added death) evaluated at
the concentration in the cell's voxel; contact terms use the MSC:cancer ratio inside the voxel.

In a step of length ``dt`` each cancer cell draws one uniform number and undergoes at most one
event (phase advance, division or death) with the probabilities of competing exponential
clocks over ``dt``. MSCs take a biased random walk up the CXCL12 gradient (:mod:`.chemotaxis`)
and are lost at the rate set by ``xenograft.msc_half_life``; they do not divide.

With ``mechanics`` set (a :class:`~.mechanics.Mechanics`; off by default) cells also push and
pull each other with PhysiCell's potentials after they move in each step (:mod:`.mechanics`),
and the contact terms use contact itself: the number of MSCs within interaction distance of each
cancer cell takes the place of the voxel's MSC:cancer ratio in the same Hill term.

An MSC is "homed" when the local cancer-cell density at its voxel is at least
``tumour_density_threshold * max_density``; the homing fraction is homed / living MSCs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import uniform_filter

from mscatlas.kb.enums import CancerClass, MscSource
from mscatlas.sim.abm.agents import CANCER, MSC, Agents
from mscatlas.sim.abm.chemotaxis import reflect, walk_step
from mscatlas.sim.abm.diffusion import FieldSolver, Grid, Method
from mscatlas.sim.abm.mechanics import Mechanics, contact_counts, relax
from mscatlas.sim.build import cell_params, product
from mscatlas.sim.model import balanced_fractions, hill
from mscatlas.sim.parameters import ParameterTable, load_parameters

__all__ = ["AbmConfig", "AbmModel", "AbmResult", "Snapshot", "run_abm"]

Array = NDArray[np.float64]
Seed = int | np.random.Generator | None


@dataclass(frozen=True)
class AbmConfig:
    """Every number of one spatial simulation (µm, hours, ng/mL; cells/mm² for densities)."""

    domain_size: float
    voxel_size: float
    thickness: float
    dt: float
    cycle_rates: tuple[float, float, float]  # G0/G1, S, G2/M exits, 1/h
    death: float  # basal death, 1/h
    max_density: float  # cells/mm²
    crowding_radius: float
    initial_fill: float
    cancer_motility: float  # µm²/h
    daughter_offset: float  # µm
    msc_motility: float  # µm²/h
    msc_speed_max: float  # µm/h
    gradient_half: float  # (ng/mL)/µm
    msc_death: float  # 1/h
    cxcl12_secretion: float  # ng per cell per h
    cxcl12_diffusivity: float  # µm²/h
    cxcl12_decay: float  # 1/h
    paracrine_diffusivity: float  # µm²/h
    sig_secretion: tuple[float, ...]  # ng per MSC per h, one per channel of SIGNALS
    sig_decay: tuple[float, ...]
    sig_ec50: tuple[float, ...]
    sig_hill: tuple[float, ...]
    sig_arrest: tuple[float, ...]
    sig_boost: tuple[float, ...]
    sig_death: tuple[float, ...]
    contact_ec50: float  # MSC per cancer cell in a voxel
    contact_hill: float
    contact_arrest: float
    contact_death: float
    tumour_threshold: float
    n_cancer: int
    n_msc: int
    crowding: bool = True
    field_method: Method = "douglas"
    field_substeps: int = 1  # field steps per agent step (see mscatlas.sim.abm.accuracy)
    mechanics: Mechanics | None = None  # PhysiCell-style potentials; None: cells overlap freely

    @classmethod
    def from_parameters(
        cls,
        msc_source: MscSource | str = MscSource.bone_marrow,
        cancer_class: CancerClass | str = CancerClass.solid,
        *,
        engineering: Iterable[tuple[str, str]] = (),
        payloads: Iterable[str] = (),
        table: ParameterTable | None = None,
        **overrides: Any,
    ) -> AbmConfig:
        """Defaults from the parameter file for an MSC product on a cancer class."""
        t = table or load_parameters()
        prod = product(msc_source, engineering, payloads, table=t)
        p = cell_params(prod, cancer_class, table=t)
        a = t.abm

        def v(key: str) -> float:
            return a[key].value

        def tup(arr: Any) -> tuple[float, ...]:
            return tuple(float(x) for x in np.asarray(arr))

        cfg = cls(
            domain_size=v("domain_size"),
            voxel_size=v("voxel_size"),
            thickness=v("tissue_thickness"),
            dt=v("time_step"),
            cycle_rates=(float(p.k_g1), float(p.k_s), float(p.k_g2m)),
            death=float(p.death),
            max_density=v("max_cell_density"),
            crowding_radius=v("crowding_radius"),
            initial_fill=v("initial_fill"),
            cancer_motility=v("cancer_motility"),
            daughter_offset=v("daughter_offset"),
            msc_motility=v("msc_motility"),
            msc_speed_max=v("msc_speed_max"),
            gradient_half=v("chemotaxis_gradient_half"),
            msc_death=math.log(2.0) / (24.0 * t.value("xenograft", "msc_half_life")),
            cxcl12_secretion=v("cxcl12_secretion") * 1e-6,
            cxcl12_diffusivity=v("cxcl12_diffusivity"),
            cxcl12_decay=v("cxcl12_decay"),
            paracrine_diffusivity=v("paracrine_diffusivity"),
            sig_secretion=tup(np.asarray(p.sig_secretion) * 1e-6),
            sig_decay=tup(p.sig_decay),
            sig_ec50=tup(p.sig_ec50),
            sig_hill=tup(p.sig_hill),
            sig_arrest=tup(p.sig_arrest),
            sig_boost=tup(p.sig_boost),
            sig_death=tup(p.sig_death),
            contact_ec50=float(p.contact_ec50),
            contact_hill=float(p.contact_hill),
            contact_arrest=float(p.contact_arrest),
            contact_death=float(p.contact_death),
            tumour_threshold=v("tumour_density_threshold"),
            n_cancer=round(v("default_cancer_cells")),
            n_msc=round(v("default_mscs")),
        )
        return replace(cfg, **overrides)

    def with_(self, **changes: Any) -> AbmConfig:
        """A copy with some fields replaced."""
        return replace(self, **changes)

    @property
    def growth_rate(self) -> float:
        """Net growth rate (1/h) of an uncrowded, untreated population in balanced growth."""
        k1, k2, k3 = self.cycle_rates
        d = self.death
        # dominant root of (lam + d + k1)(lam + d + k2)(lam + d + k3) = 2 k1 k2 k3
        coeffs = np.poly([-(d + k1), -(d + k2), -(d + k3)])
        coeffs[-1] -= 2.0 * k1 * k2 * k3
        return float(max(np.roots(coeffs).real))


@dataclass(frozen=True)
class Snapshot:
    """Positions, kinds and the CXCL12 field at one time, for pictures."""

    time_h: float
    x: Array
    y: Array
    kind: NDArray[np.int8]
    cxcl12: Array
    tumour: NDArray[np.bool_]


@dataclass
class AbmResult:
    """Time series of one run, its snapshots, its configuration and its seed."""

    config: AbmConfig
    seed: int | None
    time_h: Array
    cancer: NDArray[np.int64]
    msc: NDArray[np.int64]
    homing_fraction: Array  # nan when no MSC is alive
    cxcl12_tumour: Array  # mean CXCL12 over tumour voxels, ng/mL
    snapshots: list[Snapshot] = field(default_factory=list)
    steps: int = 0

    def final_counts(self) -> dict[str, int]:
        return {"cancer": int(self.cancer[-1]), "msc": int(self.msc[-1])}

    def to_dict(self) -> dict[str, Any]:
        """Plain types for JSON (nan becomes ``None``)."""

        def clean(arr: Array) -> list[float | None]:
            return [None if not math.isfinite(v) else float(v) for v in arr]

        return {
            "seed": self.seed,
            "time_h": [float(t) for t in self.time_h],
            "cancer_cells": [int(v) for v in self.cancer],
            "mscs": [int(v) for v in self.msc],
            "homing_fraction": clean(self.homing_fraction),
            "cxcl12_tumour_ng_per_ml": clean(self.cxcl12_tumour),
            "final": self.final_counts(),
            "steps": self.steps,
            "grid": {
                "nx": round(self.config.domain_size / self.config.voxel_size),
                "voxel_um": self.config.voxel_size,
            },
        }


class AbmModel:
    """One simulation: agents, fields, a random generator and a clock.

    ``seed`` is an integer or a :class:`numpy.random.Generator`; the same seed gives the same run.
    ``capacity`` sets the preallocated rows (they grow when needed). ``prime_fields`` starts
    CXCL12 near its quasi-steady state around the seeded tumour (48 h of secretion with 1 h steps)
    instead of at zero.
    """

    def __init__(
        self,
        config: AbmConfig,
        *,
        seed: Seed = None,
        capacity: int | None = None,
        prime_fields: bool = True,
    ) -> None:
        self.config = c = config
        self.seed = seed if isinstance(seed, int) else None
        self.rng = np.random.default_rng(seed)
        self.grid = Grid.square(c.domain_size, c.voxel_size)
        self.steps_done = 0
        self.agents = Agents.empty(capacity if capacity is not None else 2 * (c.n_cancer + c.n_msc) + 16)
        self._voxel_ml = self.grid.h**2 * c.thickness * 1e-12
        self._window = max(1, 2 * round(c.crowding_radius / self.grid.h) + 1)
        self._k = np.asarray(c.cycle_rates, dtype=float)
        self._channels = [i for i, s in enumerate(c.sig_secretion) if s > 0]
        ch = self._channels
        self._sig = {
            name: np.asarray(getattr(c, name), dtype=float)[ch][:, None]
            for name in ("sig_secretion", "sig_ec50", "sig_hill", "sig_arrest", "sig_boost", "sig_death")
        }
        self.cxcl12 = np.zeros(self.grid.shape)
        self.paracrine = np.zeros((len(ch), *self.grid.shape))
        if c.field_substeps < 1:
            raise ValueError(f"AbmConfig.field_substeps must be >= 1, got {c.field_substeps}")
        fdt = c.dt / c.field_substeps
        self._cxcl_solver = FieldSolver(self.grid, c.cxcl12_diffusivity, c.cxcl12_decay, fdt, c.field_method)
        self._sig_solvers = [
            FieldSolver(self.grid, c.paracrine_diffusivity, c.sig_decay[i], fdt, c.field_method) for i in ch
        ]
        self._seed_agents()
        if prime_fields and c.cxcl12_decay > 0:
            primer = FieldSolver(self.grid, c.cxcl12_diffusivity, c.cxcl12_decay, 1.0, c.field_method)
            source = self._counts(CANCER) * (c.cxcl12_secretion / self._voxel_ml)
            self.cxcl12 = primer.run(self.cxcl12, 48, source)

    # ----------------------------------------------------------------- set-up
    @property
    def tumour_radius(self) -> float:
        """Radius (µm) of the disc the initial tumour is seeded in."""
        c = self.config
        density = max(c.initial_fill * c.max_density, 1e-12) * 1e-6  # cells/µm²
        return math.sqrt(c.n_cancer / (math.pi * density))

    def _seed_agents(self) -> None:
        c, rng = self.config, self.rng
        width, height = self.grid.extent
        cx, cy, radius = width / 2, height / 2, self.tumour_radius
        r = radius * np.sqrt(rng.random(c.n_cancer))
        theta = 2.0 * np.pi * rng.random(c.n_cancer)
        k1, k2, k3 = c.cycle_rates
        fractions = np.array(balanced_fractions(k1, k2, k3, c.death, c.growth_rate), dtype=float)
        phase = rng.choice(3, size=c.n_cancer, p=fractions / fractions.sum()).astype(np.int8)
        self.agents.append(
            reflect(cx + r * np.cos(theta), width), reflect(cy + r * np.sin(theta), height), CANCER, phase
        )
        # MSCs: uniform over the tissue outside the tumour disc (anywhere if there is no outside)
        xs: list[Array] = []
        ys: list[Array] = []
        need, tries = c.n_msc, 0
        while need > 0:
            px, py = rng.random(2 * need + 8) * width, rng.random(2 * need + 8) * height
            ok = np.hypot(px - cx, py - cy) > radius if tries < 20 else np.ones(px.shape, bool)
            xs.append(px[ok][:need])
            ys.append(py[ok][:need])
            need -= xs[-1].size
            tries += 1
        if xs:
            self.agents.append(np.concatenate(xs), np.concatenate(ys), MSC)

    # ---------------------------------------------------------------- helpers
    def _counts(self, kind: int, rows: NDArray[np.intp] | None = None) -> Array:
        a = self.agents
        rows = a.rows_of(kind) if rows is None else rows
        vox = self.grid.voxel_of(a.x[rows], a.y[rows])
        return np.bincount(vox, minlength=self.grid.size).reshape(self.grid.shape).astype(float)

    def density(self, counts: Array | None = None) -> Array:
        """Local cancer-cell density (cells/mm²) per voxel, averaged over the crowding window."""
        counts = self._counts(CANCER) if counts is None else counts
        return uniform_filter(counts, size=self._window, mode="reflect") / (self.grid.h**2 * 1e-6)

    def tumour_mask(self, density: Array | None = None) -> NDArray[np.bool_]:
        """Voxels dense enough in cancer cells to count as tumour."""
        density = self.density() if density is None else density
        return density >= self.config.tumour_threshold * self.config.max_density

    # ------------------------------------------------------------------- step
    def step(self) -> None:
        """Advance fields and agents by one time step."""
        c, a, rng, grid = self.config, self.agents, self.rng, self.grid
        dt = c.dt
        cancer = a.rows_of(CANCER)
        msc = a.rows_of(MSC)
        vox_c = grid.voxel_of(a.x[cancer], a.y[cancer])
        vox_m = grid.voxel_of(a.x[msc], a.y[msc])
        counts_c = np.bincount(vox_c, minlength=grid.size).astype(float)
        counts_m = np.bincount(vox_m, minlength=grid.size).astype(float)

        # fields: secretion, diffusion, decay
        shape = grid.shape
        sub = c.field_substeps
        self.cxcl12 = self._cxcl_solver.run(
            self.cxcl12, sub, counts_c.reshape(shape) * (c.cxcl12_secretion / self._voxel_ml)
        )
        for idx, solver in enumerate(self._sig_solvers):
            rate = self._sig["sig_secretion"][idx, 0] / self._voxel_ml
            self.paracrine[idx] = solver.run(self.paracrine[idx], sub, counts_m.reshape(shape) * rate)

        # cancer cells: rates in their voxel
        phase = a.phase[cancer]
        k_phase = self._k[phase]
        if c.crowding:
            dens = self.density(counts_c.reshape(shape)).ravel()[vox_c]
            crowd = np.maximum(1.0 - dens / c.max_density, 0.0)
        else:
            crowd = np.ones(cancer.size)
        g1_factor = np.ones(cancer.size)
        extra_death = np.zeros(cancer.size)
        if self._channels:
            conc = self.paracrine.reshape(len(self._channels), -1)[:, vox_c]
            act = hill(conc, self._sig["sig_ec50"], self._sig["sig_hill"])
            g1_factor = np.prod(1.0 - self._sig["sig_arrest"] * act, axis=0) * (
                1.0 + np.sum(self._sig["sig_boost"] * act, axis=0)
            )
            extra_death = np.sum(self._sig["sig_death"] * act, axis=0)
        if msc.size and (c.contact_arrest > 0 or c.contact_death > 0):
            if c.mechanics is None:
                ratio = counts_m[vox_c] / counts_c[vox_c]
            else:  # MSCs touching each cancer cell
                ratio = self._touching(cancer).astype(float)
            touch = hill(ratio, c.contact_ec50, c.contact_hill)
            g1_factor = g1_factor * (1.0 - c.contact_arrest * touch)
            extra_death = extra_death + c.contact_death * touch
        advance = crowd * k_phase * np.where(phase == 0, g1_factor, 1.0)
        die = crowd * c.death + extra_death
        total = advance + die
        p_event = -np.expm1(-total * dt)
        p_die = np.divide(p_event * die, total, out=np.zeros_like(total), where=total > 0)
        u = rng.random(cancer.size)
        dead = u < p_die
        moved_on = ~dead & (u < p_event)
        a.alive[cancer[dead]] = False
        rows = cancer[moved_on]
        new_phase = a.phase[rows] + 1
        dividing = rows[new_phase == 3]
        new_phase[new_phase == 3] = 0
        a.phase[rows] = new_phase

        # cancer motility (all cells present at the start of the step), then daughters
        width, height = grid.extent
        sigma = math.sqrt(2.0 * c.cancer_motility * dt)
        noise = rng.standard_normal((2, cancer.size))
        a.x[cancer] = reflect(a.x[cancer] + sigma * noise[0], width)
        a.y[cancer] = reflect(a.y[cancer] + sigma * noise[1], height)
        if dividing.size:
            angle = 2.0 * np.pi * rng.random(dividing.size)
            half = 0.5 * c.daughter_offset
            dx, dy = half * np.cos(angle), half * np.sin(angle)
            mx, my = a.x[dividing], a.y[dividing]
            clone = a.clone[dividing]
            a.x[dividing] = reflect(mx - dx, width)
            a.y[dividing] = reflect(my - dy, height)
            a.append(reflect(mx + dx, width), reflect(my + dy, height), CANCER, 0, clone)

        # MSCs: chemotaxis up the CXCL12 gradient, then loss
        if msc.size:
            gx, gy = grid.gradient_at(self.cxcl12, vox_m)
            x, y = walk_step(
                a.x[msc],
                a.y[msc],
                gx,
                gy,
                dt=dt,
                motility=c.msc_motility,
                speed_max=c.msc_speed_max,
                g_half=c.gradient_half,
                rng=rng,
            )
            a.x[msc] = reflect(x, width)
            a.y[msc] = reflect(y, height)
            lost = rng.random(msc.size) < -math.expm1(-c.msc_death * dt)
            a.alive[msc[lost]] = False

        if c.mechanics is not None:
            self._relax(dt)
        if a.n - int(np.count_nonzero(a.alive[: a.n])) > a.n // 4:
            a.compact()
        self.steps_done += 1

    def _touching(self, cancer: NDArray[np.intp]) -> NDArray[np.int64]:
        """How many MSCs are within interaction distance of each of the cancer rows."""
        a, mech = self.agents, self.config.mechanics
        assert mech is not None
        rows = np.flatnonzero(a.alive[: a.n])
        counts = contact_counts(a.x[rows], a.y[rows], a.kind[rows], mech, of=CANCER, touching=MSC)
        per_row = np.zeros(a.n, np.int64)
        per_row[rows] = counts
        return per_row[cancer]

    def _relax(self, duration: float) -> None:
        """Cell-cell mechanics over ``duration`` hours for every living agent."""
        a, mech = self.agents, self.config.mechanics
        assert mech is not None
        rows = np.flatnonzero(a.alive[: a.n])
        x, y, vx, vy, _ = relax(
            a.x[rows],
            a.y[rows],
            a.kind[rows],
            a.vx[rows],
            a.vy[rows],
            duration,
            mech,
            extent=self.grid.extent,
        )
        a.x[rows], a.y[rows], a.vx[rows], a.vy[rows] = x, y, vx, vy

    @property
    def time(self) -> float:
        """Simulated hours since the start."""
        return round(self.steps_done * self.config.dt, 9)

    # -------------------------------------------------------------- observing
    def observe(self) -> tuple[int, int, float, float]:
        """Cancer count, MSC count, homing fraction (nan without MSCs), mean CXCL12 in the tumour."""
        a = self.agents
        cancer = a.rows_of(CANCER)
        msc = a.rows_of(MSC)
        mask = self.tumour_mask(self.density(self._counts(CANCER, cancer)))
        if msc.size:
            homed = mask.ravel()[self.grid.voxel_of(a.x[msc], a.y[msc])]
            fraction = float(np.mean(homed))
        else:
            fraction = math.nan
        cx = float(self.cxcl12[mask].mean()) if mask.any() else math.nan
        return int(cancer.size), int(msc.size), fraction, cx

    def snapshot(self) -> Snapshot:
        a = self.agents
        alive = a.alive[: a.n]
        return Snapshot(
            time_h=self.time,
            x=a.x[: a.n][alive].copy(),
            y=a.y[: a.n][alive].copy(),
            kind=a.kind[: a.n][alive].copy(),
            cxcl12=self.cxcl12.copy(),
            tumour=self.tumour_mask(),
        )

    def run(self, hours: float, *, record_every: float = 1.0, snapshot_at: Sequence[float] = ()) -> AbmResult:
        """Advance ``hours`` (rounded to whole steps), recording every ``record_every`` hours.

        Snapshots are taken at the recorded times nearest to each of ``snapshot_at`` (hours).
        """
        c = self.config
        steps = round(hours / c.dt)
        every = max(1, round(record_every / c.dt))
        record = sorted({*range(0, steps + 1, every), steps})
        snap_steps = {min(record, key=lambda s, t=t: abs(s * c.dt - t)) for t in snapshot_at}
        times, rows, snaps = [], [], []
        done = 0
        for target in record:
            while done < target:
                self.step()
                done += 1
            times.append(self.time)
            rows.append(self.observe())
            if target in snap_steps:
                snaps.append(self.snapshot())
        cols = list(zip(*rows, strict=True))
        return AbmResult(
            config=c,
            seed=self.seed,
            time_h=np.asarray(times),
            cancer=np.asarray(cols[0], dtype=np.int64),
            msc=np.asarray(cols[1], dtype=np.int64),
            homing_fraction=np.asarray(cols[2], dtype=float),
            cxcl12_tumour=np.asarray(cols[3], dtype=float),
            snapshots=snaps,
            steps=steps,
        )


def run_abm(
    days: float = 2.0,
    *,
    seed: Seed = 0,
    config: AbmConfig | None = None,
    snapshot_at: Sequence[float] = (),
    record_every: float = 1.0,
    **overrides: Any,
) -> AbmResult:
    """Build a model from the parameter file (plus ``overrides``) and run it for ``days``."""
    cfg = config or AbmConfig.from_parameters()
    if overrides:
        cfg = cfg.with_(**overrides)
    model = AbmModel(cfg, seed=seed)
    return model.run(24.0 * days, record_every=record_every, snapshot_at=snapshot_at)
