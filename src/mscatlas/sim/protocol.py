"""In vitro protocols (co-culture, transwell, conditioned medium, cell extract, vesicles) and
their simulation against a control arm with scipy's ``solve_ivp``.

Solver: ``solve_ivp(method="LSODA", rtol=1e-8, atol=1e-9)`` -- LSODA switches between Adams and
BDF steps, so fast signal or uptake kinetics never force tiny steps. Every protocol is run twice
on the same time grid: the treated arm and its control arm (same seeding, no MSC product); the
outputs are what a lab would read out at each time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy.integrate import solve_ivp

from mscatlas.kb.enums import CancerClass
from mscatlas.sim.build import Product, cell_params, product
from mscatlas.sim.model import STATE, Array, CellParams, initial_state, rhs
from mscatlas.sim.parameters import SIGNALS, ParameterTable, load_parameters

if TYPE_CHECKING:
    from mscatlas.sim.calibration import Calibration

__all__ = [
    "READOUT_OF_ENDPOINT",
    "SOLVER",
    "Conditioning",
    "Outcome",
    "Protocol",
    "call_direction",
    "readout_of",
    "run",
    "simulate",
    "start_state",
]

SOLVER = {"method": "LSODA", "rtol": 1e-8, "atol": 1e-9}

DeliveryName = Literal[
    "direct_coculture", "transwell", "conditioned_medium", "cell_extract", "extracellular_vesicles"
]


@dataclass(frozen=True)
class Conditioning:
    """How a conditioned medium (or an extract) was made: MSCs, medium volume, hours."""

    cells: float
    volume_ml: float
    hours: float


@dataclass(frozen=True)
class Protocol:
    """One in vitro experiment. Ratios are MSC per cancer cell (1:10 -> 0.1)."""

    delivery: DeliveryName
    hours: float
    msc_per_cancer: float = 0.0
    cm_percent: float = 0.0
    conditioning: Conditioning | None = None
    ev_ug_per_ml: float = 0.0
    cancer_cells: float | None = None  # per well; None: the cancer class's default seeding

    def __post_init__(self) -> None:
        if self.hours <= 0:
            raise ValueError("hours must be positive")
        if self.msc_per_cancer < 0 or self.ev_ug_per_ml < 0:
            raise ValueError("doses must be non-negative")
        if not 0 <= self.cm_percent <= 100:
            raise ValueError("cm_percent must lie in [0, 100]")

    def control(self) -> Protocol:
        """The control arm: the same culture without any MSC product."""
        return replace(self, msc_per_cancer=0.0, cm_percent=0.0, ev_ug_per_ml=0.0)


def _medium_signals(prod: Product, p: CellParams, proto: Protocol, table: ParameterTable) -> Array:
    """Signal concentrations that a conditioned medium or extract brings into the well at t=0."""
    if proto.delivery not in ("conditioned_medium", "cell_extract") or proto.cm_percent == 0:
        return np.zeros(len(SIGNALS))
    cond = proto.conditioning or Conditioning(
        table.value("protocol", "conditioning_cells"),
        table.value("protocol", "conditioning_volume"),
        table.value("protocol", "conditioning_hours"),
    )
    rate = np.asarray(prod.secretion) * (cond.cells / 1e6) / cond.volume_ml  # ng/mL/h with no loss
    if proto.delivery == "cell_extract":
        made = rate * table.value("protocol", "extract_equivalent_hours")
    else:
        decay = np.asarray(p.sig_decay)
        made = rate * (1.0 - np.exp(-decay * cond.hours)) / decay
    return made * proto.cm_percent / 100.0


def start_state(prod: Product, p: CellParams, proto: Protocol, table: ParameterTable, cancer: float) -> Array:
    """The state at time 0 of ``proto``: ``cancer`` cells, its MSCs, medium signals and vesicles."""
    msc = proto.msc_per_cancer * cancer if proto.delivery in ("direct_coculture", "transwell") else 0.0
    ev = proto.ev_ug_per_ml if proto.delivery == "extracellular_vesicles" else 0.0
    return initial_state(p, cancer, msc, _medium_signals(prod, p, proto, table), ev)


def simulate(p: CellParams, y0: Array, times: Array) -> Array:
    """States at ``times`` (shape ``(12, len(times))``) from ``y0`` at time 0, by :data:`SOLVER`."""
    sol = solve_ivp(rhs, (0.0, float(times[-1])), y0, t_eval=times, args=(p,), **SOLVER)
    if not sol.success:  # pragma: no cover - LSODA on this smooth system does not fail in practice
        raise RuntimeError(f"solver failed: {sol.message}")
    return np.asarray(sol.y)


def _viable(y: Array) -> Array:
    return y[0] + y[1] + y[2]


@dataclass(frozen=True)
class Outcome:
    """Treated and control arms of one protocol on one time grid (hours)."""

    protocol: Protocol
    product: Product
    cancer_class: str
    times: Array
    treated: Array
    control: Array
    notes: tuple[str, ...] = field(default=())

    def viable(self, arm: str = "treated") -> Array:
        return _viable(self.treated if arm == "treated" else self.control)

    def inhibition_percent(self) -> Array:
        """100 * (1 - treated / control) of viable cancer cells; positive means fewer cells."""
        return 100.0 * (1.0 - self.viable("treated") / self.viable("control"))

    def phase_fractions(self, arm: str = "treated") -> dict[str, Array]:
        y = self.treated if arm == "treated" else self.control
        total = _viable(y)
        return {"g0_g1": y[0] / total, "s": y[1] / total, "g2_m": y[2] / total}

    def apoptotic_fraction(self, arm: str = "treated") -> Array:
        """Apoptotic cells among all cancer cells present (viable + apoptotic)."""
        y = self.treated if arm == "treated" else self.control
        return y[3] / (_viable(y) + y[3])

    def series(self) -> dict[str, Any]:
        """Time grid and every read-out, as lists (for JSON)."""
        out: dict[str, Any] = {"time_h": self.times.tolist()}
        for arm in ("treated", "control"):
            y = self.treated if arm == "treated" else self.control
            out[arm] = {
                "viable_cells": _viable(y).tolist(),
                "apoptotic_fraction": self.apoptotic_fraction(arm).tolist(),
                **{k: v.tolist() for k, v in self.phase_fractions(arm).items()},
                "msc": y[STATE.index("msc")].tolist(),
            }
        out["inhibition_percent"] = self.inhibition_percent().tolist()
        return out

    def final(self) -> dict[str, float]:
        """Read-outs at the last time point."""
        ft, fc = self.phase_fractions("treated"), self.phase_fractions("control")
        return {
            "hours": float(self.times[-1]),
            "viable_treated": float(self.viable("treated")[-1]),
            "viable_control": float(self.viable("control")[-1]),
            "inhibition_percent": float(self.inhibition_percent()[-1]),
            "apoptotic_fraction_treated": float(self.apoptotic_fraction("treated")[-1]),
            "apoptotic_fraction_control": float(self.apoptotic_fraction("control")[-1]),
            **{f"{k}_treated": float(v[-1]) for k, v in ft.items()},
            **{f"{k}_control": float(v[-1]) for k, v in fc.items()},
        }


def run(
    proto: Protocol,
    msc_source: str,
    cancer_class: CancerClass | str,
    *,
    engineering: Iterable[tuple[str, str]] = (),
    payloads: Iterable[str] = (),
    table: ParameterTable | None = None,
    points_per_hour: float = 1.0,
    calibration: Calibration | None = None,
) -> Outcome:
    """Simulate ``proto`` for an MSC source on a cancer class, with its control arm.

    ``calibration`` multiplies the source's secretion, contact and vesicle scales and the class's
    sensitivities by fitted factors (:mod:`mscatlas.sim.calibrate`); ``None`` runs the parameter
    file's values unchanged.
    """
    t = table or load_parameters()
    prod = product(msc_source, engineering, payloads, t)
    cls_ = CancerClass(cancer_class)
    if calibration is not None:
        prod = calibration.adjust_product(prod)
    p = cell_params(prod, cls_, contact=proto.delivery == "direct_coculture", table=t)
    if calibration is not None:
        p = calibration.adjust_params(p, cls_.value)
    cancer = proto.cancer_cells or t.cancer[cls_]["seed_cells"].value
    n = max(2, math.ceil(proto.hours * points_per_hour) + 1)
    times = np.linspace(0.0, proto.hours, n)
    treated = simulate(p, start_state(prod, p, proto, t, cancer), times)
    control = simulate(p, start_state(prod, p, proto.control(), t, cancer), times)
    notes = tuple(f"no model term for engineering '{x}'" for x in prod.ignored)
    return Outcome(proto, prod, cls_.value, times, treated, control, notes)


READOUT_OF_ENDPOINT = {"apoptosis": "apoptotic_fraction", "cell_cycle": "s_phase"}
"""Endpoints read from a fraction; every other endpoint is read from the viable count."""


def readout_of(endpoint: str) -> str:
    """The model read-out an endpoint is called from: ``viable``, ``apoptotic_fraction`` or ``s_phase``."""
    return READOUT_OF_ENDPOINT.get(endpoint, "viable")


def call_direction(
    outcome: Outcome, endpoint: str = "proliferation", table: ParameterTable | None = None
) -> str:
    """The direction a lab would report from the simulated read-out of ``endpoint``.

    Proliferation-like endpoints read the viable count (an inhibition of at least the threshold
    is ``inhibits``, the same increase ``promotes``); ``apoptosis`` reads the apoptotic fraction
    (more is ``inhibits``); ``cell_cycle`` reads the S-phase fraction (fewer cycling cells is an
    arrest, ``inhibits``). Endpoints the model has no read-out for (migration, invasion, ...) fall
    back to the viable count.
    """
    t = table or load_parameters()
    readout = readout_of(endpoint)
    if readout == "viable":
        value, threshold = outcome.inhibition_percent()[-1], t.value("protocol", "inhibition_threshold")
    elif readout == "apoptotic_fraction":
        value = 100.0 * (
            outcome.apoptotic_fraction("treated")[-1] - outcome.apoptotic_fraction("control")[-1]
        )
        threshold = t.value("protocol", "fraction_threshold")
    else:
        s_t, s_c = outcome.phase_fractions("treated")["s"][-1], outcome.phase_fractions("control")["s"][-1]
        value, threshold = 100.0 * (s_c - s_t), t.value("protocol", "fraction_threshold")
    if value >= threshold:
        return "inhibits"
    if value <= -threshold:
        return "promotes"
    return "no_effect"
