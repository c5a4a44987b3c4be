"""How large a diffusion step is accurate enough: the solver against an analytic point source.

The reference problem is the one the model poses around every secreting cell: a point source of
constant rate ``Q`` (amount per hour, per µm of slab thickness) switched on at ``t = 0`` in an
infinite plane with diffusivity ``D`` and first-order decay ``k``. Its field is the Hantush
leaky-aquifer well function (Hantush & Jacob 1955)

    c(r, t) = Q / (4 pi D) W(r^2 / (4 D t), r / lambda),
    W(u, b) = integral_u^inf exp(-y - b^2 / (4 y)) / y dy,        lambda = sqrt(D / k),

which tends to the steady state ``Q / (2 pi D) K0(r / lambda)`` as ``t -> inf`` (``K0``: modified
Bessel function of the second kind). The solver runs the same problem on a quarter plane: the
source sits in the corner voxel and the two zero-flux walls through the corner mirror it into
the four voxels around the origin, a point source of ``4 s h^2`` for a voxel rate ``s``. The far
walls stand ``3 lambda`` (or three diffusion lengths) beyond the farthest radius checked, where
their images are below 1e-3 of the field.

The error of a run is the largest absolute difference from ``c(r, t)`` over voxels along the
axis and the diagonal (the splitting schemes are least accurate on the diagonal) with
``3 h <= r <= r_max``, at each checked time, divided by the largest analytic value there: a
relative error in the maximum norm. :func:`choose_time_step` halves the step from ``dt_max``
until that error is at most the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.integrate import quad
from scipy.special import k0

from mscatlas.sim.abm.diffusion import FieldSolver, Grid, Method

__all__ = ["TimeStepChoice", "choose_time_step", "point_source_error", "point_source_field"]

Array = NDArray[np.float64]

DEFAULT_TIMES = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Hours after a source switches on at which the error is checked."""


def point_source_field(r: Array | float, t: float, *, rate: float, diffusivity: float, decay: float) -> Array:
    """Analytic field at distance ``r`` and time ``t`` (``inf``: steady state) of a point source."""
    r = np.atleast_1d(np.asarray(r, dtype=float))
    if diffusivity <= 0 or np.any(r <= 0):
        raise ValueError("point_source_field needs diffusivity > 0 and r > 0")
    if math.isinf(t):
        if decay <= 0:
            raise ValueError("without decay a point source has no steady state")
        return rate / (2.0 * math.pi * diffusivity) * k0(r * math.sqrt(decay / diffusivity))
    b2 = r * r * decay / diffusivity  # (r / lambda)^2
    u = r * r / (4.0 * diffusivity * t)
    out = np.empty_like(r)
    for n, (ui, bi) in enumerate(zip(u, b2, strict=True)):
        out[n] = quad(lambda y, b=bi: math.exp(-y - b / (4.0 * y)) / y, ui, math.inf, limit=200)[0]
    return rate / (4.0 * math.pi * diffusivity) * out


def _probe(grid: Grid, r_min: float, r_max: float) -> tuple[NDArray[np.intp], Array]:
    """Flat indices and radii of the axis and diagonal voxels with ``r_min <= r <= r_max``."""
    i = np.arange(grid.nx)
    centre = (i + 0.5) * grid.h
    flat = np.concatenate([i, i * grid.nx + i])  # row j = 0 (the x axis) and the diagonal
    r = np.concatenate([np.hypot(centre, 0.5 * grid.h), math.sqrt(2.0) * centre])
    keep = (r >= r_min) & (r <= r_max)
    return flat[keep], r[keep]


def point_source_error(
    method: Method,
    dt: float,
    *,
    h: float,
    diffusivity: float,
    decay: float,
    times: Sequence[float] = DEFAULT_TIMES,
    r_max: float | None = None,
) -> dict[float, float]:
    """Relative max-norm error of ``method`` with step ``dt`` at each time (``inf``: steady state).

    ``r_max`` defaults to ``2 lambda`` (or two diffusion lengths at the last finite time without
    decay). Finite times must be whole multiples of ``dt``.
    """
    finite = sorted(t for t in times if math.isfinite(t))
    spread = math.sqrt(4.0 * diffusivity * max(finite, default=1.0))
    lam = math.sqrt(diffusivity / decay) if decay > 0 else math.inf
    reach = min(lam, spread)
    r_max = 2.0 * reach if r_max is None else r_max
    n = math.ceil((r_max + 3.0 * reach) / h)
    grid = Grid(n, n, h)
    flat, r = _probe(grid, 3.0 * h, r_max)
    source = np.zeros(grid.shape)
    source[0, 0] = 1.0
    rate = 4.0 * h * h  # the four mirrored corner voxels at unit rate
    solver = FieldSolver(grid, diffusivity, decay, dt, method)
    c = np.zeros(grid.shape)
    done = 0
    errors: dict[float, float] = {}
    for t in finite:
        steps = round(t / dt)
        if abs(steps * dt - t) > 1e-9 * max(t, 1.0):
            raise ValueError(f"time {t} h is not a whole number of steps of {dt} h")
        c = solver.run(c, steps - done, source)
        done = steps
        exact = point_source_field(r, t, rate=rate, diffusivity=diffusivity, decay=decay)
        errors[t] = float(np.max(np.abs(c.ravel()[flat] - exact)) / np.max(exact))
    if any(math.isinf(t) for t in times):
        steady = _steady(solver, source, c)
        exact = point_source_field(r, math.inf, rate=rate, diffusivity=diffusivity, decay=decay)
        errors[math.inf] = float(np.max(np.abs(steady.ravel()[flat] - exact)) / np.max(exact))
    return errors


def _steady(solver: FieldSolver, source: Array, c: Array) -> Array:
    """The scheme's fixed point, by stepping until the field stops changing (1e-12 relative)."""
    for _ in range(200_000):
        nxt = solver.step(c, source)
        if np.max(np.abs(nxt - c)) <= 1e-12 * np.max(np.abs(nxt)):
            return nxt
        c = nxt
    raise RuntimeError("the field did not reach its fixed point")


@dataclass(frozen=True)
class TimeStepChoice:
    """The step picked for a tolerance, its error and every step tried with its error."""

    dt: float
    error: float
    tolerance: float
    tried: tuple[tuple[float, float], ...]


def choose_time_step(
    method: Method,
    *,
    h: float,
    diffusivity: float,
    decay: float,
    tolerance: float,
    dt_max: float,
    times: Sequence[float] = DEFAULT_TIMES,
    max_halvings: int = 10,
) -> TimeStepChoice:
    """The largest ``dt_max / 2^m`` whose point-source error is at most ``tolerance`` at all ``times``.

    Raises ``ValueError`` when even ``dt_max / 2^max_halvings`` misses the tolerance (the space
    error alone may exceed it: refine ``h`` then).
    """
    tried: list[tuple[float, float]] = []
    dt = dt_max
    for _ in range(max_halvings + 1):
        errors = point_source_error(method, dt, h=h, diffusivity=diffusivity, decay=decay, times=times)
        worst = max(errors.values())
        tried.append((dt, worst))
        if worst <= tolerance:
            return TimeStepChoice(dt, worst, tolerance, tuple(tried))
        dt /= 2.0
    raise ValueError(
        f"{method}: no step down to {dt * 2.0:g} h meets tolerance {tolerance:g} "
        f"(errors {', '.join(f'{e:.3g}' for _, e in tried)})"
    )
