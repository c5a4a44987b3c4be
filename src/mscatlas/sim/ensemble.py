"""Many parameter sets at once: a fixed-step RK4 integrator over NumPy arrays.

Every field of :class:`~mscatlas.sim.model.CellParams` may carry an ensemble axis (last axis), and
the state has shape ``(12, n)``; one RK4 step advances all ``n`` members with a handful of array
operations, using the same right-hand side as the exact solver. Steps are fitted between the
requested output times (each interval is cut into equal steps no longer than ``dt``), so outputs
land exactly on the grid. With the default ``dt = 0.1 h`` the result agrees with ``solve_ivp``
(LSODA, rtol 1e-8) to better than 1e-6 relative on the default systems (checked in the tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from mscatlas.sim.model import Array, CellParams, broadcast_params, rhs

__all__ = ["EnsembleResult", "lognormal_ensemble", "rk4"]

# Fields a default ensemble perturbs: the uncertain action terms, not the cycle structure.
PERTURBED = (
    "sig_secretion",
    "sig_ec50",
    "sig_arrest",
    "sig_boost",
    "sig_death",
    "contact_ec50",
    "contact_arrest",
    "contact_death",
    "ev_uptake",
)


@dataclass(frozen=True)
class EnsembleResult:
    times: Array  # (t,)
    states: Array  # (t, 12, n)

    @property
    def viable(self) -> Array:
        """Viable cancer cells, shape ``(t, n)``."""
        return self.states[:, 0] + self.states[:, 1] + self.states[:, 2]


def rk4(p: CellParams, y0: Array, times: Array, dt: float = 0.1) -> EnsembleResult:
    """Integrate from ``y0`` (at ``times[0]``) and return the states at ``times``."""
    times = np.asarray(times, dtype=float)
    y = np.array(y0, dtype=float)
    out = np.empty((len(times), *y.shape))
    out[0] = y
    for i in range(1, len(times)):
        span = times[i] - times[i - 1]
        steps = max(1, math.ceil(span / dt - 1e-9))
        h = span / steps
        t = times[i - 1]
        for _ in range(steps):
            k1 = rhs(t, y, p)
            k2 = rhs(t + h / 2, y + (h / 2) * k1, p)
            k3 = rhs(t + h / 2, y + (h / 2) * k2, p)
            k4 = rhs(t + h, y + h * k3, p)
            y += (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
            t += h
        out[i] = y
    return EnsembleResult(times, out)


def lognormal_ensemble(
    p: CellParams, n: int, *, seed: int, cv: float = 0.3, perturb: tuple[str, ...] = PERTURBED
) -> CellParams:
    """``n`` copies of ``p`` with the ``perturb`` fields multiplied by log-normal factors.

    Factors have median 1 and coefficient of variation ``cv``; fractions (arrest) are clipped at
    1 so the cycle never runs backwards. Same seed, same ensemble.
    """
    rng = np.random.default_rng(seed)
    sigma = math.sqrt(math.log1p(cv * cv))
    base = broadcast_params(p, n)
    changes: dict[str, Array] = {}
    for f in fields(CellParams):
        if f.name not in perturb:
            continue
        value = np.asarray(getattr(base, f.name))
        factor = rng.lognormal(mean=0.0, sigma=sigma, size=value.shape)
        new = value * factor
        if f.name in ("sig_arrest", "contact_arrest"):
            new = np.minimum(new, 1.0)
        changes[f.name] = new
    return base.with_(**changes)
