"""MSC chemotaxis: a biased random walk up a chemokine gradient, and wall reflection.

In one step of length ``dt`` a walker moves by ``v(g) dt + sqrt(2 D dt) * xi`` where ``xi`` is a
pair of independent standard normal numbers, ``D`` the random-motility coefficient and ``v`` the
drift velocity

    v(g) = speed_max * g / (g_half + |g|),

``g`` being the local gradient. For ``|g| << g_half`` the drift is proportional to the gradient
(chemotactic sensitivity ``speed_max / g_half``); for ``|g| >> g_half`` it saturates at
``speed_max`` (receptors saturated). Over many steps in a uniform gradient the mean displacement
is ``v(g) t`` and its variance per axis ``2 D t``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["drift_velocity", "reflect", "walk_step"]

Array = NDArray[np.float64]


def drift_velocity(
    gx: Array | float, gy: Array | float, speed_max: float, g_half: float
) -> tuple[Array, Array]:
    """Drift ``(vx, vy)`` for gradient ``(gx, gy)``: proportional at small gradients, saturating."""
    gx = np.asarray(gx, dtype=float)
    gy = np.asarray(gy, dtype=float)
    if g_half <= 0:
        raise ValueError("g_half must be positive")
    scale = speed_max / (g_half + np.hypot(gx, gy))
    return scale * gx, scale * gy


def walk_step(
    x: Array,
    y: Array,
    gx: Array | float,
    gy: Array | float,
    *,
    dt: float,
    motility: float,
    speed_max: float,
    g_half: float,
    rng: np.random.Generator,
) -> tuple[Array, Array]:
    """New positions after one biased-random-walk step (no walls; see :func:`reflect`)."""
    vx, vy = drift_velocity(gx, gy, speed_max, g_half)
    sigma = np.sqrt(2.0 * motility * dt)
    noise = rng.standard_normal((2, x.shape[0]))
    return x + vx * dt + sigma * noise[0], y + vy * dt + sigma * noise[1]


def reflect(u: Array, upper: float) -> Array:
    """Fold coordinates back into ``[0, upper]`` (mirror walls at both ends)."""
    period = 2.0 * upper
    u = np.mod(u, period)
    u = np.where(u > upper, period - u, u)
    # keep strictly inside so that voxel lookup never leaves the grid
    return np.clip(u, 0.0, np.nextafter(upper, 0.0))
