"""Fit shared factors of the in vitro model to the directions of the knowledge base.

What is fitted
    Factors multiplying the parameter file's values, shared by every item of an MSC source or of
    a cancer class (never one per study): per MSC source the inhibitory and stimulatory secretion,
    the contact strength and the vesicle cargo; per cancer class the sensitivity to the inhibitory
    and to the stimulatory signal (a factor dividing the channel's EC50). They are estimated on the
    log scale, ``theta = ln(factor)``; ``theta = 0`` is the assumed value of ``parameters.yaml``.

Objective
    Each accepted in vitro item whose direction is ``inhibits``, ``promotes`` or ``no_effect``
    contributes the log-probability of its observed direction under an ordered logistic model
    of the simulated read-out at the item's highest dose: ``z`` is the read-out divided by its
    calling threshold (% inhibition / ``inhibition_threshold`` for counts; percentage-point change
    / ``fraction_threshold`` for apoptosis and S phase), and
    ``P(inhibits) = expit((z - 1) / T)``, ``P(promotes) = expit((-z - 1) / T)``, the rest is
    ``no_effect``; ``T`` (:data:`TEMPERATURE`) is the label noise in threshold units. This is a
    smooth version of "the model calls the observed direction". Gaussian priors on ``theta``
    (:data:`PRIOR_SD_SOURCE`, :data:`PRIOR_SD_CLASS`) pull every factor to its assumed value, so
    a source with two items cannot run wild; a factor that no training item informs stays at 1.

How it is fast
    An item's read-out depends on ``theta`` only through three coordinates: the log-strength of
    the inhibitory signal it sees (source + class), of the stimulatory signal (source + class) and
    of contact (source; direct co-culture only). Each distinct protocol is therefore simulated
    once on a regular grid of those coordinates with the vectorised RK4 of
    :mod:`mscatlas.sim.ensemble` (one array run per protocol, spread over Dask by
    :func:`mscatlas.sim.tasks.run_tasks`), and the objective reads the grid through a cubic
    B-spline, with an exact gradient. The grid depends on the protocols only, never on the
    observed directions, so computing it once for all items leaks nothing into leave-one-study-out
    refits. Minimisation: L-BFGS-B within bounds from fixed starts (zeros, then starts drawn
    from a generator seeded with ``seed``); the best end point wins. The objective is not convex
    (on the shipped knowledge base 30 random starts found two local optima), hence the
    multi-start; every leave-one-study-out refit runs the same procedure from the same starts.

The job that writes the shipped file is :mod:`mscatlas.sim.calibrate`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.ndimage import spline_filter1d
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from mscatlas.kb.enums import CancerClass, CurationStatus, Setting
from mscatlas.kb.models import EvidenceItem
from mscatlas.sim.build import Product, cell_params, product
from mscatlas.sim.calibration import Calibration
from mscatlas.sim.ensemble import rk4
from mscatlas.sim.model import broadcast_params
from mscatlas.sim.parameters import ParameterTable, load_parameters
from mscatlas.sim.protocol import Protocol, readout_of, start_state
from mscatlas.sim.setup import SIMULATED_DELIVERIES, item_setup
from mscatlas.sim.tasks import run_tasks

__all__ = [
    "PRIOR_SD_CLASS",
    "PRIOR_SD_SOURCE",
    "TEMPERATURE",
    "FitResult",
    "Surfaces",
    "Target",
    "compute_surfaces",
    "coordinate_params",
    "direction_of",
    "direction_probabilities",
    "factor_design",
    "fit",
    "leave_one_study_out",
    "loglik_terms",
    "predict_z",
    "surface_rows",
    "targets_from_items",
]

TEMPERATURE = 0.5
PRIOR_SD_SOURCE = 1.0
PRIOR_SD_CLASS = 0.5
SOURCE_BOUND = 3.0  # |theta| of a source factor (a factor between 1/20 and 20)
CLASS_BOUND = 1.5
N_STARTS = 6  # zeros, then seeded N(0, 1) starts clipped to +-START_SPREAD
START_SPREAD = 1.5
READOUTS = ("viable", "apoptotic_fraction", "s_phase")
DIRECTIONS = ("inhibits", "promotes", "no_effect")

# Grid of the coordinates (log-strengths) on which every protocol is simulated.
SIGNAL_GRID = np.linspace(-SOURCE_BOUND - CLASS_BOUND, SOURCE_BOUND + CLASS_BOUND, 19)
CONTACT_GRID = np.linspace(-SOURCE_BOUND, SOURCE_BOUND, 13)
SURFACE_DT = 1.0  # h; RK4 at 1 h matches LSODA to ~1e-6 relative on these systems (tested)


# --------------------------------------------------------------------------------------------
# Targets: what each item contributes


SurfaceKey = tuple[Protocol, str, Product]


@dataclass(frozen=True)
class Target:
    item_id: str
    study: str
    msc_source: str
    cancer_class: str
    delivery: str
    readout: str
    observed: str
    key: SurfaceKey
    endpoint: str = ""  # the item's endpoint (the hierarchical fit's read-out offsets)


def _key(proto: Protocol, cancer_class: str, prod: Product) -> SurfaceKey:
    # The source's name does not enter the simulation, only its scales: identical protocols of
    # different sources share a grid.
    return (proto, cancer_class, replace(prod, msc_source="", ignored=()))


def targets_from_items(items: Iterable[EvidenceItem], table: ParameterTable | None = None) -> list[Target]:
    """One target per accepted in vitro item with a single direction and a simulated delivery."""
    t = table or load_parameters()
    out = []
    for item in items:
        if item.setting is not Setting.in_vitro or item.curation_status is not CurationStatus.accepted:
            continue
        if item.delivery.value not in SIMULATED_DELIVERIES or item.direction.value not in DIRECTIONS:
            continue
        setup = item_setup(item, t)
        prod = product(setup.msc_source, setup.engineering, (), t)
        out.append(
            Target(
                item_id=item.id,
                study=item.study,
                msc_source=setup.msc_source,
                cancer_class=setup.cancer_class,
                delivery=item.delivery.value,
                readout=readout_of(item.endpoint.value),
                observed=item.direction.value,
                endpoint=item.endpoint.value,
                key=_key(setup.protocols[-1], setup.cancer_class, prod),
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Response surfaces


def _surface_of(key: SurfaceKey, table: ParameterTable, dt: float) -> np.ndarray:
    """z of every read-out on the coordinate grid: shape ``(3, n_signal, n_signal, n_contact)``."""
    proto, cancer_class, prod = key
    direct = proto.delivery == "direct_coculture"
    p = cell_params(prod, CancerClass(cancer_class), contact=direct, table=table)
    cancer = proto.cancer_cells or table.cancer[CancerClass(cancer_class)]["seed_cells"].value
    y_t = start_state(prod, p, proto, table, cancer)
    y_c = start_state(prod, p, proto.control(), table, cancer)
    contact = CONTACT_GRID if direct else np.zeros(1)
    uu, vv, cc = np.meshgrid(SIGNAL_GRID, SIGNAL_GRID, contact, indexing="ij")
    u, v, c = uu.ravel(), vv.ravel(), cc.ravel()
    n = len(u)
    pe = broadcast_params(p, n + 1)  # the last member is the control arm
    ec50 = np.array(pe.sig_ec50)
    ec50[0, :n] *= np.exp(-u)
    ec50[1, :n] *= np.exp(-v)
    changes: dict[str, Any] = {"sig_ec50": ec50}
    if direct:
        arrest, death = table.contact["arrest_max"].value, table.contact["death_max"].value
        ca, cd = np.array(pe.contact_arrest), np.array(pe.contact_death)
        ca[:n] = np.minimum(1.0, arrest * prod.contact_scale * np.exp(c))
        cd[:n] = death * prod.contact_scale * np.exp(c)
        changes |= {"contact_arrest": ca, "contact_death": cd}
    pe = pe.with_(**changes)
    y0 = np.concatenate([np.repeat(y_t[:, None], n, axis=1), y_c[:, None]], axis=1)
    y = rk4(pe, y0, np.array([0.0, proto.hours]), dt=dt).states[-1]
    viable = y[0] + y[1] + y[2]
    apo = y[3] / (viable + y[3])
    s_phase = y[1] / viable
    inh_thr = table.value("protocol", "inhibition_threshold")
    frac_thr = table.value("protocol", "fraction_threshold")
    z = np.stack(
        [
            100.0 * (1.0 - viable[:n] / viable[n]) / inh_thr,
            100.0 * (apo[:n] - apo[n]) / frac_thr,
            100.0 * (s_phase[n] - s_phase[:n]) / frac_thr,
        ]
    ).reshape(3, len(SIGNAL_GRID), len(SIGNAL_GRID), len(contact))
    if not direct:
        z = np.repeat(z, len(CONTACT_GRID), axis=3)
    return z


def _surface_chunk(keys: list[SurfaceKey], table: ParameterTable, dt: float) -> list[np.ndarray]:
    return [_surface_of(k, table, dt) for k in keys]


@dataclass(frozen=True)
class Surfaces:
    """Read-out grids of distinct protocols, as cubic B-spline coefficients."""

    index: dict[SurfaceKey, int]
    values: np.ndarray  # (n_keys, 3, n_signal, n_signal, n_contact), z on the grid
    coeffs: np.ndarray  # same shape, B-spline coefficients along the three grid axes

    def evaluate(self, which: np.ndarray, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """z and dz/dcoords for flat surface indices ``which`` (key * 3 + read-out) at ``coords``."""
        flat = self.coeffs.reshape(-1, *self.coeffs.shape[2:])
        grids = (SIGNAL_GRID, SIGNAL_GRID, CONTACT_GRID)
        idx, w, dw = [], [], []
        for d, g in enumerate(grids):
            step = g[1] - g[0]
            x = np.clip((coords[:, d] - g[0]) / step, 0.0, len(g) - 1.0)
            i0 = np.minimum(np.floor(x).astype(int), len(g) - 2)
            f = x - i0
            ii = i0[:, None] + np.arange(-1, 3)[None, :]
            n = len(g)
            ii = np.where(ii < 0, -ii, ii)
            ii = np.where(ii > n - 1, 2 * (n - 1) - ii, ii)
            idx.append(ii)
            w.append(
                np.stack([(1 - f) ** 3, 3 * f**3 - 6 * f**2 + 4, -3 * f**3 + 3 * f**2 + 3 * f + 1, f**3], 1)
                / 6.0
            )
            dw.append(
                np.stack([-((1 - f) ** 2), 3 * f**2 - 4 * f, -3 * f**2 + 2 * f + 1, f**2], 1) / 2.0 / step
            )
        block = flat[
            which[:, None, None, None],
            idx[0][:, :, None, None],
            idx[1][:, None, :, None],
            idx[2][:, None, None, :],
        ]
        z = np.einsum("tabc,ta,tb,tc->t", block, w[0], w[1], w[2])
        grad = np.stack(
            [
                np.einsum("tabc,ta,tb,tc->t", block, dw[0], w[1], w[2]),
                np.einsum("tabc,ta,tb,tc->t", block, w[0], dw[1], w[2]),
                np.einsum("tabc,ta,tb,tc->t", block, w[0], w[1], dw[2]),
            ],
            axis=1,
        )
        return z, grad


def compute_surfaces(
    targets: Sequence[Target],
    table: ParameterTable | None = None,
    *,
    scheduler: str = "threads",
    workers: int | None = None,
    progress: bool = False,
    dt: float = SURFACE_DT,
    chunk: int = 4,
) -> Surfaces:
    """Simulate every distinct protocol of ``targets`` on the coordinate grid (on Dask)."""
    t = table or load_parameters()
    keys = list(dict.fromkeys(tg.key for tg in targets))
    chunks = [keys[i : i + chunk] for i in range(0, len(keys), chunk)]
    results = run_tasks(
        _surface_chunk,
        [(c, t, dt) for c in chunks],
        scheduler=scheduler,
        workers=workers,
        progress=progress,
        description="protocol grids",
    )
    values = np.stack([z for part in results for z in part]) if keys else np.zeros((0, 3, 1, 1, 1))
    coeffs = values.copy()
    for axis in (2, 3, 4):
        coeffs = spline_filter1d(coeffs, order=3, axis=axis, mode="mirror")
    return Surfaces({k: i for i, k in enumerate(keys)}, values, coeffs)


# --------------------------------------------------------------------------------------------
# The objective and the fit


@dataclass(frozen=True)
class _Problem:
    names: list[str]
    prior_sd: np.ndarray
    bounds: list[tuple[float, float]]
    A: np.ndarray  # (n_targets, 3, n_params): coordinates = A @ theta
    which: np.ndarray  # flat surface index per target
    observed: np.ndarray  # 0 inhibits, 1 promotes, 2 no_effect
    counts: dict[str, int]


def factor_design(targets: Sequence[Target]) -> tuple[list[str], dict[str, int], np.ndarray]:
    """The log-factors ``targets`` use (sorted), how many targets use each, and ``A`` with
    ``coordinates = A @ theta`` (shape ``(n_targets, 3, n_factors)``)."""
    used: Counter[str] = Counter()
    for tg in targets:
        for name in _param_names(tg):
            used[name] += 1
    names = sorted(used)
    col = {n: j for j, n in enumerate(names)}
    A = np.zeros((len(targets), 3, len(names)))
    for i, tg in enumerate(targets):
        for d, coord in enumerate(coordinate_params(tg)):
            for n in coord:
                A[i, d, col[n]] = 1.0
    return names, dict(used), A


def surface_rows(targets: Sequence[Target], surfaces: Surfaces) -> np.ndarray:
    """Each target's flat surface index (protocol * 3 + read-out), for :meth:`Surfaces.evaluate`."""
    return np.array([surfaces.index[tg.key] * 3 + READOUTS.index(tg.readout) for tg in targets], dtype=int)


def _problem(targets: Sequence[Target], surfaces: Surfaces, prior_scale: float = 1.0) -> _Problem:
    names, used, A = factor_design(targets)
    prior_sd = np.array([(PRIOR_SD_CLASS if n.startswith("class.") else PRIOR_SD_SOURCE) for n in names])
    bounds = [
        ((-CLASS_BOUND, CLASS_BOUND) if n.startswith("class.") else (-SOURCE_BOUND, SOURCE_BOUND))
        for n in names
    ]
    observed = np.array([DIRECTIONS.index(tg.observed) for tg in targets], dtype=int)
    return _Problem(names, prior_sd * prior_scale, bounds, A, surface_rows(targets, surfaces), observed, used)


def coordinate_params(tg: Target) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The parameters adding up to each of the item's three coordinates."""
    s, c = f"source.{tg.msc_source}", f"class.{tg.cancer_class}"
    if tg.delivery == "extracellular_vesicles":
        return (f"{s}.ev_cargo", f"{c}.inhibitory"), (f"{s}.ev_cargo", f"{c}.stimulatory"), ()
    contact = (f"{s}.contact",) if tg.delivery == "direct_coculture" else ()
    return (f"{s}.inhibitory", f"{c}.inhibitory"), (f"{s}.stimulatory", f"{c}.stimulatory"), contact


def _param_names(tg: Target) -> set[str]:
    return {n for coord in coordinate_params(tg) for n in coord}


def loglik_terms(z: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log P(observed | z) and its derivative in z, for the ordered logistic of the module doc."""
    a = (z - 1.0) / TEMPERATURE
    b = (-z - 1.0) / TEMPERATURE
    pa, pb = expit(a), expit(b)
    ll = np.empty_like(z)
    dll = np.empty_like(z)
    inh, pro, none = observed == 0, observed == 1, observed == 2
    ll[inh] = log_expit(a[inh])
    dll[inh] = (1.0 - pa[inh]) / TEMPERATURE
    ll[pro] = log_expit(b[pro])
    dll[pro] = -(1.0 - pb[pro]) / TEMPERATURE
    p_none = np.maximum(expit(-a[none]) - pb[none], 1e-300)
    ll[none] = np.log(p_none)
    dll[none] = -(pa[none] * (1 - pa[none]) - pb[none] * (1 - pb[none])) / TEMPERATURE / p_none
    return ll, dll


def _objective(theta: np.ndarray, prob: _Problem, surfaces: Surfaces) -> tuple[float, np.ndarray]:
    coords = prob.A @ theta  # (n_targets, 3)
    z, dz = surfaces.evaluate(prob.which, coords)
    ll, dll = loglik_terms(z, prob.observed)
    penalty = 0.5 * np.sum((theta / prob.prior_sd) ** 2)
    value = -float(np.sum(ll)) + float(penalty)
    grad = -np.einsum("t,td,tdp->p", dll, dz, prob.A) + theta / prob.prior_sd**2
    return value, grad


@dataclass(frozen=True)
class FitResult:
    calibration: Calibration
    theta: dict[str, float]
    objective: float
    n_targets: int
    starts: int
    converged: bool


def fit(
    targets: Sequence[Target],
    surfaces: Surfaces,
    *,
    seed: int = 0,
    n_starts: int = N_STARTS,
    prior_scale: float = 1.0,
    provenance: dict[str, Any] | None = None,
) -> FitResult:
    """Maximum a posteriori log-factors for ``targets`` (deterministic for a given seed)."""
    if not targets:
        return FitResult(Calibration({}, {}, dict(provenance or {})), {}, 0.0, 0, 0, True)
    prob = _problem(targets, surfaces, prior_scale)
    rng = np.random.default_rng(seed)
    k = len(prob.names)
    low = np.array([b[0] for b in prob.bounds])
    high = np.array([b[1] for b in prob.bounds])
    start_low, start_high = np.maximum(low, -START_SPREAD), np.minimum(high, START_SPREAD)
    starts = [np.zeros(k)] + [
        np.clip(rng.normal(0.0, 1.0, k), start_low, start_high) for _ in range(n_starts - 1)
    ]
    best = None
    for x0 in starts:
        res = minimize(
            _objective,
            x0,
            args=(prob, surfaces),
            jac=True,
            method="L-BFGS-B",
            bounds=prob.bounds,
            options={"maxiter": 1000, "gtol": 1e-8, "ftol": 1e-12},
        )
        if best is None or res.fun < best.fun - 1e-12:
            best = res
    assert best is not None
    theta = {n: float(v) for n, v in zip(prob.names, best.x, strict=True)}
    source: dict[str, dict[str, float]] = {}
    klass: dict[str, dict[str, float]] = {}
    for name, value in theta.items():
        kind, group, key = name.split(".")
        (source if kind == "source" else klass).setdefault(group, {})[key] = value
    prov = dict(provenance or {})
    prov["n_items"] = {n: prob.counts[n] for n in prob.names}
    return FitResult(
        Calibration(source, klass, prov),
        theta,
        float(best.fun),
        len(targets),
        len(starts),
        bool(best.success),
    )


def predict_z(targets: Sequence[Target], surfaces: Surfaces, calibration: Calibration) -> np.ndarray:
    """The surrogate's read-out z of each target under ``calibration`` (from the grids)."""
    coords = np.zeros((len(targets), 3))
    for i, tg in enumerate(targets):
        for d, names in enumerate(coordinate_params(tg)):
            for n in names:
                kind, group, key = n.split(".")
                table = calibration.source if kind == "source" else calibration.cancer_class
                coords[i, d] += table.get(group, {}).get(key, 0.0)
    return surfaces.evaluate(surface_rows(targets, surfaces), coords)[0]


def direction_probabilities(z: np.ndarray) -> np.ndarray:
    """P(inhibits), P(promotes), P(no_effect) of the ordered logistic model for each z: ``(n, 3)``."""
    z = np.asarray(z, dtype=float)
    p_inh = expit((z - 1.0) / TEMPERATURE)
    p_pro = expit((-z - 1.0) / TEMPERATURE)
    return np.stack([p_inh, p_pro, np.clip(1.0 - p_inh - p_pro, 0.0, 1.0)], axis=-1)


def direction_of(z: float | np.ndarray) -> Any:
    """The direction a lab would call from z (at least one threshold either way)."""
    z = np.asarray(z)
    out = np.where(z >= 1.0, "inhibits", np.where(z <= -1.0, "promotes", "no_effect"))
    return out.item() if out.ndim == 0 else out


def _fold(
    study: str, targets: Sequence[Target], surfaces: Surfaces, seed: int, n_starts: int
) -> tuple[str, Calibration]:
    train = [tg for tg in targets if tg.study != study]
    return study, fit(train, surfaces, seed=seed, n_starts=n_starts).calibration


def leave_one_study_out(
    targets: Sequence[Target],
    surfaces: Surfaces,
    *,
    seed: int = 0,
    n_starts: int = N_STARTS,
    scheduler: str = "threads",
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, Calibration]:
    """One refit per study, each without that study's items: study -> calibration."""
    studies = sorted({tg.study for tg in targets})
    results = run_tasks(
        _fold,
        [(s, targets, surfaces, seed, n_starts) for s in studies],
        scheduler=scheduler,
        workers=workers,
        progress=progress,
        description="leave-one-study-out refits",
    )
    return dict(results)
