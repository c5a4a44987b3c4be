"""Cell-cell mechanics as in PhysiCell: repulsion and adhesion potentials, cell lists, Adams-Bashforth.

PhysiCell (Ghaffarizadeh et al. 2018, PLoS Comput Biol 14:e1005991; ``Cell::add_potentials`` and
``Cell::update_position`` in ``core/PhysiCell_cell.cpp``) moves each cell with an overdamped
velocity, the sum over its neighbours ``j`` of

    v_i += [ rep_ij (1 - d/R_ij)_+^2 - adh_ij (1 - d/S_ij)_+^2 ] (p_i - p_j) / d

where ``d = |p_i - p_j|``, ``R_ij = r_i + r_j`` (touching distance), ``S_ij = a_i r_i + a_j r_j``
(maximum interaction distance; ``a`` is the relative maximum adhesion distance), ``rep_ij =
sqrt(rep_i rep_j)`` and ``adh_ij = sqrt(adh_i aff_i[kind_j] adh_j aff_j[kind_i])``. The pair
term is antisymmetric, so the pairwise velocities sum to zero. Positions advance by the
second-order Adams-Bashforth rule ``p += dt (1.5 v - 0.5 v_prev)`` (PhysiCell's own integrator)
with PhysiCell's mechanics step, 0.1 min. Two identical cells come to rest where repulsion and
adhesion balance, at ``d* = (sqrt(rep) - sqrt(adh)) / (sqrt(rep)/R - sqrt(adh)/S)``
(:meth:`Mechanics.equilibrium_distance`).

Why hand-written: no kept library has PhysiCell's potentials, and the model's agents are rows of
NumPy arrays (see :mod:`.agents`), so the neighbour search and the force sums are NumPy too.
Neighbours are found with cell lists: points are binned on a uniform grid of bins at least one
cut-off wide, so every pair closer than the cut-off lies in the same or an adjacent bin; each
bin is paired with itself and four of its eight neighbours (each pair once). The list is built
with a skin (a Verlet list) and reused over substeps until some cell has moved half the skin.
Only cells with a neighbour in the list move in a substep: the others feel no force.

Units: µm and hours (PhysiCell's strengths are µm/min: 10 µm/min repulsion is 600 µm/h).
``max_speed`` (default: none, as PhysiCell) caps the speed of one cell; with a cap the pair sums
are no longer exactly antisymmetric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PHYSICELL_RADIUS",
    "Mechanics",
    "brute_force_pairs",
    "cell_list_pairs",
    "contact_counts",
    "pair_velocities",
    "relax",
]

Array = NDArray[np.float64]
Index = NDArray[np.intp]

PHYSICELL_RADIUS = (3.0 * 2494.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
"""Radius (µm) of PhysiCell's default cell, a sphere of 2,494 µm³."""


@dataclass(frozen=True)
class Mechanics:
    """Parameters of the potentials, one entry per agent kind (index CANCER = 0, MSC = 1).

    Defaults are PhysiCell's cell-definition defaults: radius 8.41 µm, repulsion 10 µm/min,
    adhesion 0.4 µm/min, relative maximum adhesion distance 1.25, all affinities 1, mechanics
    step 0.1 min.
    """

    radius: tuple[float, ...] = (PHYSICELL_RADIUS, PHYSICELL_RADIUS)  # µm
    repulsion: tuple[float, ...] = (600.0, 600.0)  # µm/h
    adhesion: tuple[float, ...] = (24.0, 24.0)  # µm/h
    adhesion_distance: tuple[float, ...] = (1.25, 1.25)  # relative to the radius
    affinity: tuple[tuple[float, ...], ...] = ((1.0, 1.0), (1.0, 1.0))  # affinity[kind_i][kind_j]
    max_speed: float = math.inf  # µm/h
    dt: float = 0.1 / 60.0  # h
    skin: float = 2.0  # µm, Verlet-list margin

    def __post_init__(self) -> None:
        k = len(self.radius)
        for name in ("repulsion", "adhesion", "adhesion_distance"):
            if len(getattr(self, name)) != k:
                raise ValueError(f"Mechanics.{name} has {len(getattr(self, name))} entries, radius has {k}")
        if len(self.affinity) != k or any(len(row) != k for row in self.affinity):
            raise ValueError(f"Mechanics.affinity must be {k} x {k}")
        if min(self.radius) <= 0 or self.dt <= 0 or self.skin < 0 or self.max_speed <= 0:
            raise ValueError("Mechanics: radius, dt and max_speed must be > 0 and skin >= 0")
        if min(self.repulsion) < 0 or min(self.adhesion) < 0:
            raise ValueError("Mechanics: repulsion and adhesion strengths must be >= 0")

    @property
    def cutoff(self) -> float:
        """The largest interaction distance between any two kinds (µm)."""
        reach = np.asarray(self.adhesion_distance) * np.asarray(self.radius)
        return float(2.0 * max(reach.max(), max(self.radius)))

    def tables(self) -> tuple[Array, Array, Array, Array]:
        """Kind x kind tables ``R``, ``S``, ``rep`` and ``adh`` of the pair terms."""
        r = np.asarray(self.radius, float)
        a = np.asarray(self.adhesion_distance, float) * r
        rep = np.asarray(self.repulsion, float)
        adh = np.asarray(self.adhesion, float)[:, None] * np.asarray(self.affinity, float)
        return (
            r[:, None] + r[None, :],
            a[:, None] + a[None, :],
            np.sqrt(rep[:, None] * rep[None, :]),
            np.sqrt(adh * adh.T),
        )

    def equilibrium_distance(self, kind_i: int = 0, kind_j: int = 0) -> float:
        """Distance at which repulsion and adhesion balance for a pair of these kinds (µm)."""
        R, S, rep, adh = (t[kind_i, kind_j] for t in self.tables())
        if adh == 0:
            return float(R)
        return float((math.sqrt(rep) - math.sqrt(adh)) / (math.sqrt(rep) / R - math.sqrt(adh) / S))


# ---------------------------------------------------------------------------- neighbours
_HALF_STENCIL = ((0, 0), (1, 0), (-1, 1), (0, 1), (1, 1))


def cell_list_pairs(x: Array, y: Array, cutoff: float) -> tuple[Index, Index]:
    """All pairs ``i < j`` closer than ``cutoff``, found with cell lists (bins ``cutoff`` wide)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = x.size
    if n < 2 or cutoff <= 0:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    bx = ((x - x.min()) // cutoff).astype(np.intp)
    by = ((y - y.min()) // cutoff).astype(np.intp)
    nbx, nby = int(bx.max()) + 1, int(by.max()) + 1
    order = np.argsort(by * nbx + bx)
    sbx, sby = bx[order], by[order]
    counts = np.bincount(sby * nbx + sbx, minlength=nbx * nby)
    start = np.cumsum(counts) - counts
    sx, sy = x[order], y[order]
    rank = np.arange(n)
    ii: list[Index] = []
    jj: list[Index] = []
    cut2 = cutoff * cutoff
    for ox, oy in _HALF_STENCIL:
        nx_, ny_ = sbx + ox, sby + oy
        ok = (nx_ >= 0) & (nx_ < nbx) & (ny_ < nby)
        src = rank[ok]
        nb = ny_[ok] * nbx + nx_[ok]
        first = start[nb]
        last = first + counts[nb]
        if ox == 0 and oy == 0:
            first = src + 1  # same bin: only the later ones, each pair once
        cnt = np.maximum(last - first, 0)
        total = int(cnt.sum())
        if total == 0:
            continue
        i = np.repeat(src, cnt)
        j = np.repeat(first - (np.cumsum(cnt) - cnt), cnt) + np.arange(total)
        close = (sx[i] - sx[j]) ** 2 + (sy[i] - sy[j]) ** 2 < cut2
        ii.append(i[close])
        jj.append(j[close])
    if not ii:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    i, j = order[np.concatenate(ii)], order[np.concatenate(jj)]
    return np.minimum(i, j), np.maximum(i, j)


def brute_force_pairs(x: Array, y: Array, cutoff: float) -> tuple[Index, Index]:
    """The same pairs by testing all ``n (n - 1) / 2`` of them (for checks, small ``n``)."""
    i, j = np.triu_indices(np.asarray(x).size, k=1)
    close = (x[i] - x[j]) ** 2 + (y[i] - y[j]) ** 2 < cutoff * cutoff
    return i[close], j[close]


# -------------------------------------------------------------------------------- forces
def _pair_tables(mech: Mechanics, kind_i: NDArray, kind_j: NDArray) -> tuple[Array, Array, Array, Array]:
    R, S, rep, adh = mech.tables()
    return R[kind_i, kind_j], S[kind_i, kind_j], rep[kind_i, kind_j], adh[kind_i, kind_j]


def _coefficient(d: Array, inv_R: Array, inv_S: Array, rep: Array, adh: Array) -> Array:
    """PhysiCell's scalar ``temp_r / d`` for each pair (positive pushes apart), in place on ``d``."""
    fr = np.maximum(1.0 - d * inv_R, 0.0)
    fa = np.maximum(1.0 - d * inv_S, 0.0)
    fr *= fr
    fr *= rep
    fa *= fa
    fa *= adh
    fr -= fa
    np.maximum(d, 1e-5, out=d)
    fr /= d
    return fr


def pair_velocities(
    x: Array, y: Array, kind: NDArray, i: Index, j: Index, mech: Mechanics
) -> tuple[Array, Array]:
    """Velocity (µm/h) of every point from the pair terms of the pairs ``(i, j)``."""
    n = np.asarray(x).size
    R, S, rep, adh = _pair_tables(mech, kind[i], kind[j])
    return _sum_pairs(np.asarray(x, float), np.asarray(y, float), i, j, (1.0 / R, 1.0 / S, rep, adh), n)


def _sum_pairs(
    x: Array, y: Array, i: Index, j: Index, tables: tuple[Array, Array, Array, Array], n: int
) -> tuple[Array, Array]:
    """Pair terms summed to points: ``+f`` to ``i``, ``-f`` to ``j`` (so the total is zero)."""
    dx = x[i]
    dx -= x[j]
    dy = y[i]
    dy -= y[j]
    coef = _coefficient(np.hypot(dx, dy), *tables)
    dx *= coef
    dy *= coef
    vx = np.bincount(i, dx, minlength=n)
    vx -= np.bincount(j, dx, minlength=n)
    vy = np.bincount(i, dy, minlength=n)
    vy -= np.bincount(j, dy, minlength=n)
    return vx, vy


def _cap(vx: Array, vy: Array, max_speed: float) -> tuple[Array, Array]:
    if not math.isfinite(max_speed):
        return vx, vy
    scale = np.minimum(1.0, max_speed / np.maximum(np.hypot(vx, vy), 1e-300))
    return vx * scale, vy * scale


def contact_counts(
    x: Array, y: Array, kind: NDArray, mech: Mechanics, *, of: int, touching: int
) -> NDArray[np.int64]:
    """For every point of kind ``of``: how many points of kind ``touching`` are within reach.

    "Within reach" is PhysiCell's neighbour rule: closer than the maximum interaction distance
    ``S_ij``. Points of other kinds get 0.
    """
    n = np.asarray(x).size
    i, j = cell_list_pairs(x, y, mech.cutoff)
    _, S, _, _ = _pair_tables(mech, kind[i], kind[j])
    near = np.hypot(x[i] - x[j], y[i] - y[j]) < S
    i, j = i[near], j[near]
    ki, kj = kind[i], kind[j]
    hits = np.concatenate([i[(ki == of) & (kj == touching)], j[(kj == of) & (ki == touching)]])
    return np.bincount(hits, minlength=n)


def relax(
    x: Array,
    y: Array,
    kind: NDArray,
    vx_prev: Array,
    vy_prev: Array,
    duration: float,
    mech: Mechanics,
    *,
    extent: tuple[float, float] | None = None,
) -> tuple[Array, Array, Array, Array, int]:
    """Move points by the potentials for ``duration`` hours in Adams-Bashforth steps of ``mech.dt``.

    ``vx_prev``/``vy_prev`` are each point's mechanical velocity of the previous step (zeros for
    a new point, as in PhysiCell). ``extent`` (width, height) clips positions to the domain after
    each step. Returns new ``x``, ``y``, the last velocities and the number of list rebuilds.
    """
    x = np.array(x, float)
    y = np.array(y, float)
    vx_prev = np.array(vx_prev, float)
    vy_prev = np.array(vy_prev, float)
    steps = max(1, round(duration / mech.dt))
    dt = duration / steps
    reach = mech.cutoff + mech.skin
    upper = np.nextafter(np.asarray(extent, float), 0.0) if extent is not None else None
    rebuilds = 0
    # the points with a neighbour in the list, as compact arrays of positions and velocities
    active = np.empty(0, np.intp)
    px = py = pvx = pvy = x0 = y0 = np.empty(0)
    for step in range(steps):
        if step == 0 or _moved(px, py, x0, y0, 0.5 * mech.skin):
            x[active], y[active], vx_prev[active], vy_prev[active] = px, py, pvx, pvy
            i, j = cell_list_pairs(x, y, reach)
            active, inv = np.unique(np.concatenate([i, j]), return_inverse=True)
            li, lj = inv[: i.size], inv[i.size :]
            R, S, rep, adh = _pair_tables(mech, kind[i], kind[j])
            tables = (1.0 / R, 1.0 / S, rep, adh)
            rebuilds += 1
            # points without a neighbour feel no force: their velocity is now zero
            still = np.ones(x.size, bool)
            still[active] = False
            vx_prev[still] = 0.0
            vy_prev[still] = 0.0
            px, py, pvx, pvy = x[active], y[active], vx_prev[active], vy_prev[active]
            x0, y0 = px.copy(), py.copy()
        if active.size == 0:
            break
        vx, vy = _cap(*_sum_pairs(px, py, li, lj, tables, active.size), mech.max_speed)
        for p, pv, v, top in ((px, pvx, vx, 0), (py, pvy, vy, 1)):
            pv *= -0.5  # Adams-Bashforth: p += dt (1.5 v - 0.5 v_prev)
            pv += 1.5 * v
            pv *= dt
            p += pv
            if upper is not None:
                np.clip(p, 0.0, upper[top], out=p)
        pvx, pvy = vx, vy
    x[active], y[active], vx_prev[active], vy_prev[active] = px, py, pvx, pvy
    return x, y, vx_prev, vy_prev, rebuilds


def _moved(x: Array, y: Array, x0: Array, y0: Array, limit: float) -> bool:
    if not x.size:
        return False
    dx = x - x0
    dy = y - y0
    dx *= dx
    dy *= dy
    dx += dy
    return float(dx.max()) > limit * limit
