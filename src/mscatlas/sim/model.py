"""Right-hand side of the in vitro population model, shared by the exact and the ensemble solvers.

State (first axis of ``y``; any trailing axes are ensemble members):

====  =============  ==========================================================
 0    ``g1``         viable cancer cells in G0/G1
 1    ``s``          viable cancer cells in S
 2    ``g2m``        viable cancer cells in G2/M
 3    ``apoptotic``  apoptotic cancer cells not yet cleared
 4    ``msc``        MSCs in contact with the well (direct) or in the insert (transwell)
 5-9  signals        medium concentrations of the paracrine channels (:data:`SIGNALS`)
 10   ``ev_out``     extracellular vesicles in the medium (ug protein/mL)
 11   ``ev_in``      vesicle cargo taken up by cancer cells (ug/mL of well volume)
====  =============  ==========================================================

Cancer cells pass G0/G1 -> S -> G2/M -> two G0/G1 cells with first-order rates and die from
every phase into the apoptotic pool. Crowding (a logistic factor of the occupied surface) slows
every cycle transition and the basal death rate by the same factor; as a consequence an
untreated culture started in balanced growth has a viable total that follows the logistic curve
exactly, with the balanced growth rate as its intrinsic rate.

Each paracrine channel acts through a Hill function of its concentration (plus, for the two
native channels, the cargo of internalised vesicles): ``arrest_max`` slows G0/G1 exit,
``boost_max`` speeds it, ``death_max`` adds apoptosis. Juxtacrine (contact) effects act through a
Hill function of the MSC:cancer ratio and are multiplied by ``contact`` (1 in direct co-culture,
0 in a transwell, where the shared-surface term vanishes too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq

from mscatlas.sim.parameters import SIGNALS

__all__ = [
    "N_STATE",
    "STATE",
    "CellParams",
    "balanced_fractions",
    "broadcast_params",
    "cycle_rates",
    "hill",
    "initial_state",
    "rhs",
    "stack_params",
]

STATE = ("g1", "s", "g2m", "apoptotic", "msc", *SIGNALS, "ev_out", "ev_in")
N_STATE = len(STATE)
_SIG = slice(5, 5 + len(SIGNALS))
_EV_OUT = 5 + len(SIGNALS)
_EV_IN = _EV_OUT + 1

Array = NDArray[np.float64]
Num = float | Array


@dataclass(frozen=True)
class CellParams:
    """Rates and constants of one in vitro system (floats), or of an ensemble (arrays).

    Scalar fields are floats or arrays of shape ``(n,)``; the signal fields have the channel axis
    first: shape ``(5,)`` or ``(5, n)``.
    """

    k_g1: Num  # G0/G1 -> S, 1/h
    k_s: Num  # S -> G2/M, 1/h
    k_g2m: Num  # G2/M -> division, 1/h
    death: Num  # basal apoptosis, 1/h
    growth_rate: Num  # balanced net growth rate of the untreated culture, 1/h (derived)
    clearance: Num  # loss of apoptotic cells, 1/h
    capacity: Num  # cancer cells per well at confluence
    volume: Num  # medium per well, mL
    space_share: Num  # footprint of one MSC in cancer-cell footprints
    contact: Num  # 1 direct co-culture, 0 transwell / no cells
    msc_growth: Num  # MSC proliferation rate, 1/h
    msc_death: Num  # MSC loss rate, 1/h
    msc_capacity: Num  # MSCs per well at confluence
    sig_secretion: Array  # per 1e6 MSCs per hour
    sig_decay: Array  # 1/h
    sig_ec50: Array
    sig_hill: Array
    sig_arrest: Array
    sig_boost: Array
    sig_death: Array  # 1/h
    contact_ec50: Num  # MSC per cancer cell
    contact_hill: Num
    contact_arrest: Num
    contact_death: Num  # 1/h
    ev_uptake: Num  # 1/(h * 1e6 cancer cells)
    ev_decay_out: Num  # 1/h
    ev_decay_in: Num  # 1/h
    ev_cargo_inhibitory: Num  # ng per ug EV
    ev_cargo_stimulatory: Num  # ng per ug EV

    def with_(self, **changes: Any) -> CellParams:
        """A copy with some fields replaced."""
        return replace(self, **changes)


def broadcast_params(p: CellParams, n: int) -> CellParams:
    """The same system repeated ``n`` times as an ensemble (scalar fields become ``(n,)`` arrays)."""
    out: dict[str, Array] = {}
    for f in fields(CellParams):
        value = np.asarray(getattr(p, f.name), dtype=float)
        if f.name.startswith("sig_"):
            target: tuple[int, ...] = (len(SIGNALS), n)
            value = value[:, None] if value.ndim == 1 else value
        else:
            target = (n,)
        out[f.name] = np.array(np.broadcast_to(value, target))
    return CellParams(**out)


def stack_params(members: list[CellParams]) -> CellParams:
    """One ensemble :class:`CellParams` (arrays over the last axis) from scalar members."""
    out: dict[str, Array] = {}
    for f in fields(CellParams):
        values = [np.asarray(getattr(m, f.name), dtype=float) for m in members]
        out[f.name] = np.stack(values, axis=-1)
    return CellParams(**out)


def hill(x: Num, ec50: Num, n: Num) -> Num:
    """Fractional activation x^n / (x^n + ec50^n), 0 at x <= 0."""
    xn = np.power(np.maximum(x, 0.0), n)
    return xn / (xn + np.power(ec50, n))


def _growth_from_rates(u: float, f: tuple[float, float, float]) -> float:
    # Characteristic equation of the cycle, written in u = T*(lambda + d) where T is the mean
    # cycle time and each phase lasts f_i * T on average.
    a, b, c = (1.0 / x for x in f)
    return (u + a) * (u + b) * (u + c) - 2.0 * a * b * c


def cycle_rates(
    doubling_time: float, fractions: tuple[float, float, float], death: float
) -> tuple[float, float, float]:
    """Transition rates (G0/G1, S, G2/M exits) whose balanced net growth is ln 2 / doubling_time.

    Phase ``i`` has mean residence ``fractions[i] * T``; ``T`` is solved so that the dominant
    eigenvalue of the cycle (with basal death ``death`` in every phase) equals the net rate.
    """
    lam = math.log(2.0) / doubling_time
    u = brentq(_growth_from_rates, 0.0, 10.0, args=(fractions,), xtol=1e-14, rtol=1e-14)
    cycle_time = u / (lam + death)
    return tuple(1.0 / (x * cycle_time) for x in fractions)  # type: ignore[return-value]


def balanced_fractions(k1: Num, k2: Num, k3: Num, death: Num, growth_rate: Num) -> tuple[Num, Num, Num]:
    """Phase fractions of a culture in balanced exponential growth at net rate ``growth_rate``."""
    s_over_g = k1 / (growth_rate + k2 + death)
    m_over_s = k2 / (growth_rate + k3 + death)
    g = 1.0 / (1.0 + s_over_g + s_over_g * m_over_s)
    return g, g * s_over_g, g * s_over_g * m_over_s


def initial_state(
    p: CellParams,
    cancer: Num,
    msc: Num = 0.0,
    signals: Array | None = None,
    ev: Num = 0.0,
) -> Array:
    """Start of a protocol: cancer cells in balanced growth, MSCs, medium signals and EVs."""
    shape = np.broadcast(np.asarray(p.k_g1), np.asarray(cancer), np.asarray(msc), np.asarray(ev)).shape
    y = np.zeros((N_STATE, *shape))
    g, s, m = balanced_fractions(p.k_g1, p.k_s, p.k_g2m, p.death, p.growth_rate)
    y[0], y[1], y[2] = g * cancer, s * cancer, m * cancer
    y[4] = msc
    if signals is not None:
        sig = np.asarray(signals, dtype=float)
        if sig.ndim == 1:
            sig = sig.reshape((len(SIGNALS),) + (1,) * len(shape))
        y[_SIG] = np.broadcast_to(sig, y[_SIG].shape)
    y[_EV_OUT] = ev
    return y


def rhs(_t: float, y: Array, p: CellParams) -> Array:
    """Time derivative of the state ``y`` (shape ``(12,)`` or ``(12, n)``)."""
    g1, s, g2m, apo, msc = y[0], y[1], y[2], y[3], y[4]
    sig = y[_SIG]
    ev_out, ev_in = y[_EV_OUT], y[_EV_IN]
    viable = g1 + s + g2m

    occupied = viable + p.contact * p.space_share * msc
    crowd = np.maximum(1.0 - occupied / p.capacity, 0.0)

    conc = sig.copy()
    conc[0] = conc[0] + p.ev_cargo_inhibitory * ev_in
    conc[1] = conc[1] + p.ev_cargo_stimulatory * ev_in
    act = hill(conc, p.sig_ec50, p.sig_hill)
    ratio = msc / np.maximum(viable, 1e-300)
    touch = p.contact * hill(ratio, p.contact_ec50, p.contact_hill)

    g1_exit = (
        np.prod(1.0 - p.sig_arrest * act, axis=0)
        * (1.0 + np.sum(p.sig_boost * act, axis=0))
        * (1.0 - p.contact_arrest * touch)
    )
    extra_death = np.sum(p.sig_death * act, axis=0) + p.contact_death * touch

    r1 = crowd * p.k_g1 * g1_exit
    r2 = crowd * p.k_s
    r3 = crowd * p.k_g2m
    d = crowd * p.death + extra_death

    dy = np.empty_like(y)
    dy[0] = 2.0 * r3 * g2m - (r1 + d) * g1
    dy[1] = r1 * g1 - (r2 + d) * s
    dy[2] = r2 * s - (r3 + d) * g2m
    dy[3] = d * viable - p.clearance * apo
    dy[4] = msc * (p.msc_growth * (1.0 - msc / p.msc_capacity) - p.msc_death)
    dy[_SIG] = p.sig_secretion * (msc / 1e6) / p.volume - p.sig_decay * sig
    uptake = p.ev_uptake * (viable / 1e6) * ev_out
    dy[_EV_OUT] = -uptake - p.ev_decay_out * ev_out
    dy[_EV_IN] = uptake - p.ev_decay_in * ev_in
    return dy
