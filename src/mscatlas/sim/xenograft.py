"""Xenograft model: tumour volume growth (Gompertz or logistic), MSC injections and TGI.

Tumour volume ``V`` (mm^3) grows as

- Gompertz: ``dV/dt = g * a * V * ln(K / V)``, or
- logistic: ``dV/dt = g * r * V * (1 - V / K)``,

minus an added death term ``delta * V``. ``g`` and ``delta`` come from the same action terms as
the in vitro model, evaluated at the MSCs present in the tumour: each paracrine channel at its
quasi-steady tissue concentration ``secretion * (M / 1e6) / (V / 1000 mL) / decay`` through its
Hill function, and the contact term through the MSC:tumour-cell ratio ``M / (V * cells_per_mm3)``.
MSCs reach the tumour at each injection (intravenous: a homing fraction; intratumoral: a retained
fraction; co-injection: all, at day 0) and are lost with a first-order half-life.

A group is ``n_animals`` animals whose growth rates are drawn log-normally with a fixed seed; the
treated and the control arm use the same draws (paired), so TGI is exactly 0 when no MSCs reach
the tumour. TGI % = 100 * (1 - (mean dV treated) / (mean dV control)) over the study, the
change-based definition.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import least_squares

from mscatlas.kb.enums import CancerClass
from mscatlas.sim.build import Product, cell_params, product
from mscatlas.sim.model import Array, CellParams, hill
from mscatlas.sim.parameters import ParameterTable, load_parameters

__all__ = [
    "GrowthFit",
    "Injection",
    "XenograftResult",
    "fit_growth",
    "gompertz",
    "logistic",
    "simulate_xenograft",
]

GrowthModel = Literal["gompertz", "logistic"]
Route = Literal["intravenous", "intratumoral", "co_injection"]
_XENO_SOLVER = {"method": "LSODA", "rtol": 1e-8, "atol": 1e-8}


def gompertz(t: Array, v0: float, rate: float, capacity: float) -> Array:
    """Closed-form Gompertz volume: K * exp(ln(V0/K) * exp(-rate * t))."""
    return capacity * np.exp(np.log(v0 / capacity) * np.exp(-rate * np.asarray(t)))


def logistic(t: Array, v0: float, rate: float, capacity: float) -> Array:
    """Closed-form logistic volume: K V0 / (V0 + (K - V0) exp(-rate t))."""
    return capacity * v0 / (v0 + (capacity - v0) * np.exp(-rate * np.asarray(t)))


_CURVES = {"gompertz": gompertz, "logistic": logistic}


@dataclass(frozen=True)
class GrowthFit:
    model: str
    v0: float
    rate: float
    capacity: float
    rmse_log: float  # root-mean-square residual of log volume

    def predict(self, t: Array) -> Array:
        return _CURVES[self.model](t, self.v0, self.rate, self.capacity)


def fit_growth(days: Sequence[float], volumes: Sequence[float], model: GrowthModel = "gompertz") -> GrowthFit:
    """Fit V0, rate and capacity to a growth curve by least squares on log volume.

    Uses ``scipy.optimize.least_squares`` (trust-region reflective, positive bounds) on the
    log-parameters, started from the first volume, twice the last volume and a rate from the
    early slope.
    """
    t = np.asarray(days, dtype=float)
    v = np.asarray(volumes, dtype=float)
    if t.shape != v.shape or len(t) < 3 or np.any(v <= 0):
        raise ValueError("need at least three positive volumes, one per day")
    curve = _CURVES[model]
    slope = max(np.log(v[-1] / v[0]) / max(t[-1] - t[0], 1e-9), 1e-3)
    x0 = np.log([v[0], slope, 2.0 * v.max()])

    def residual(x: Array) -> Array:
        v0, rate, cap = np.exp(x)
        return np.log(curve(t, v0, rate, cap)) - np.log(v)

    sol = least_squares(residual, x0, method="trf", xtol=1e-12, ftol=1e-12, gtol=1e-12)
    v0, rate, cap = np.exp(sol.x)
    return GrowthFit(model, float(v0), float(rate), float(cap), float(np.sqrt(np.mean(sol.fun**2))))


@dataclass(frozen=True)
class Injection:
    day: float
    cells: float
    route: Route


def _delivered(inj: Injection, table: ParameterTable) -> float:
    key = {
        "intravenous": "homing_fraction_iv",
        "intratumoral": "retention_intratumoral",
        "co_injection": "retention_coinjection",
    }[inj.route]
    return inj.cells * table.value("xenograft", key)


def _actions(p: CellParams, msc: float, volume: float, cells_per_mm3: float) -> tuple[float, float]:
    """Growth multiplier and added death rate (per day) for ``msc`` MSCs in a tumour of ``volume``."""
    if msc <= 0:
        return 1.0, 0.0
    conc = np.asarray(p.sig_secretion) * (msc / 1e6) / (volume / 1000.0) / np.asarray(p.sig_decay)
    act = hill(conc, p.sig_ec50, p.sig_hill)
    touch = float(hill(msc / (volume * cells_per_mm3), p.contact_ec50, p.contact_hill))
    growth = float(
        np.prod(1.0 - p.sig_arrest * act)
        * (1.0 + np.sum(p.sig_boost * act))
        * (1.0 - p.contact_arrest * touch)
    )
    death = float(np.sum(p.sig_death * act) + p.contact_death * touch) * 24.0
    return growth, death


@dataclass(frozen=True)
class XenograftResult:
    model: str
    days: Array
    treated: Array  # (animals, days)
    control: Array  # (animals, days)
    msc_in_tumour: Array  # (animals, days)
    injections: tuple[Injection, ...]
    product: Product

    def group_mean(self, arm: str = "treated") -> Array:
        return (self.treated if arm == "treated" else self.control).mean(axis=0)

    def group_sd(self, arm: str = "treated") -> Array:
        data = self.treated if arm == "treated" else self.control
        return data.std(axis=0, ddof=1) if data.shape[0] > 1 else np.zeros(data.shape[1])

    def tgi_percent(self) -> float:
        """100 * (1 - mean change treated / mean change control) at the last day."""
        d_t = self.group_mean("treated")[-1] - self.group_mean("treated")[0]
        d_c = self.group_mean("control")[-1] - self.group_mean("control")[0]
        return float(100.0 * (1.0 - d_t / d_c))

    def series(self) -> dict[str, Any]:
        return {
            "day": self.days.tolist(),
            "treated_mean_mm3": self.group_mean("treated").tolist(),
            "treated_sd_mm3": self.group_sd("treated").tolist(),
            "control_mean_mm3": self.group_mean("control").tolist(),
            "control_sd_mm3": self.group_sd("control").tolist(),
            "msc_in_tumour_mean": self.msc_in_tumour.mean(axis=0).tolist(),
            "tgi_percent": self.tgi_percent(),
        }


def _one_animal(
    model: GrowthModel,
    rate: float,
    capacity: float,
    v0: float,
    days: Array,
    doses: list[tuple[float, float]],
    p: CellParams,
    cells_per_mm3: float,
    loss: float,
) -> tuple[Array, Array]:
    def f(_t: float, y: Array) -> Array:
        v, m = max(y[0], 1e-12), max(y[1], 0.0)
        growth, death = _actions(p, m, v, cells_per_mm3)
        base = rate * v * math.log(capacity / v) if model == "gompertz" else rate * v * (1.0 - v / capacity)
        return np.array([growth * base - death * v, -loss * m])

    # MSCs arrive as jumps: integrate piecewise between arrival days.
    arrivals: dict[float, float] = {}
    for day, cells in doses:
        arrivals[day] = arrivals.get(day, 0.0) + cells
    y = np.array([v0, arrivals.pop(0.0, 0.0)])
    cuts = sorted(d for d in arrivals if 0.0 < d < days[-1])
    edges = [0.0, *cuts, float(days[-1])]
    vol = np.empty(len(days))
    msc = np.empty(len(days))
    for start, stop in itertools.pairwise(edges):
        sol = solve_ivp(f, (start, stop), y, dense_output=True, **_XENO_SOLVER)
        inside = (days >= start) & (days <= stop)
        vol[inside], msc[inside] = sol.sol(days[inside])
        y = sol.y[:, -1] + np.array([0.0, arrivals.get(stop, 0.0)])
    return vol, msc


def simulate_xenograft(
    *,
    model: GrowthModel = "gompertz",
    msc_source: str = "bone_marrow",
    cancer_class: CancerClass | str = "solid",
    injections: Iterable[Injection] = (),
    days: float = 28.0,
    n_animals: int = 8,
    seed: int = 0,
    engineering: Iterable[tuple[str, str]] = (),
    payloads: Iterable[str] = (),
    table: ParameterTable | None = None,
    growth: tuple[float, float, float] | None = None,
) -> XenograftResult:
    """Group tumour-volume curves (treated and paired control) and their TGI.

    ``growth`` overrides ``(v0, rate, capacity)`` of the growth curve, e.g. from :func:`fit_growth`.
    """
    t = table or load_parameters()
    prod = product(msc_source, engineering, payloads, t)
    p = cell_params(prod, cancer_class, contact=True, table=t)
    injections = tuple(injections)
    if growth is None:
        rate_key = "gompertz_rate" if model == "gompertz" else "logistic_rate"
        growth = (
            t.value("xenograft", "initial_volume"),
            t.value("xenograft", rate_key),
            t.value("xenograft", "capacity"),
        )
    v0, rate, capacity = growth
    grid = np.arange(0.0, days + 1e-9, 1.0)
    if grid[-1] != days:
        grid = np.append(grid, days)
    cv = t.value("xenograft", "growth_rate_cv")
    rng = np.random.default_rng(seed)
    sigma = math.sqrt(math.log1p(cv * cv))
    rates = (
        rate * rng.lognormal(-0.5 * sigma * sigma, sigma, size=n_animals)
        if n_animals > 1
        else np.array([rate])
    )
    loss = math.log(2.0) / t.value("xenograft", "msc_half_life")
    cells_per_mm3 = t.value("xenograft", "cells_per_mm3")
    doses = [(inj.day if inj.route != "co_injection" else 0.0, _delivered(inj, t)) for inj in injections]
    treated, control, msc = (np.empty((len(rates), len(grid))) for _ in range(3))
    for i, r in enumerate(rates):
        treated[i], msc[i] = _one_animal(model, r, capacity, v0, grid, doses, p, cells_per_mm3, loss)
        control[i], _ = _one_animal(model, r, capacity, v0, grid, [], p, cells_per_mm3, loss)
    return XenograftResult(model, grid, treated, control, msc, injections, prod)
