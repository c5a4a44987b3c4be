"""What an in vitro evidence item's protocol is, before any simulation.

:func:`item_setup` reads an item's delivery, ratios, CM percentages or dilutions, conditioning
cells, vesicle amounts and exposure times, and fills what the item does not state from the
``protocol`` defaults of the parameter file. Replay (:mod:`mscatlas.sim.replay`) and calibration
(:mod:`mscatlas.sim.fit`) both start here, so an item is read the same way by both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mscatlas.kb.enums import Setting
from mscatlas.kb.models import EvidenceItem
from mscatlas.sim.parameters import ParameterTable, load_parameters
from mscatlas.sim.protocol import Conditioning, Protocol
from mscatlas.sim.units import ev_ug_per_ml, ev_unit

__all__ = [
    "MODELLED_ENDPOINTS",
    "ORIGINS",
    "SIMULATED_DELIVERIES",
    "ItemSetup",
    "ProtocolInput",
    "item_setup",
]

MODELLED_ENDPOINTS = frozenset({"proliferation", "viability", "apoptosis", "cell_cycle"})
"""Endpoints with a read-out in the model; others are called from the viable count."""

SIMULATED_DELIVERIES = {
    "direct_coculture",
    "transwell",
    "conditioned_medium",
    "cell_extract",
    "extracellular_vesicles",
}
"""Deliveries with an in vitro model; items of other deliveries are skipped."""


@dataclass(frozen=True)
class ProtocolInput:
    """One input of a replayed protocol and where it came from.

    ``origin`` is ``recorded`` (read from the item as curated), ``derived`` (computed from what
    the item records, e.g. a ratio from cells per well or a CM percentage from a dilution) or
    ``assumed`` (the item does not say; a ``protocol`` default of ``parameters.yaml``).
    """

    name: str
    value: float | None
    origin: str
    basis: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "origin": self.origin, "basis": self.basis}


ORIGINS = ("recorded", "derived", "assumed")


def _doses(
    item: EvidenceItem, table: ParameterTable, notes: list[str]
) -> tuple[list[dict[str, Any]], ProtocolInput]:
    """The protocols' dose keyword arguments, one per tested dose, lowest first, and their origin."""
    dose = item.dose
    delivery = item.delivery.value
    wording = f"dose '{dose.text}'" if dose.text else "the item's dose"
    if delivery in ("direct_coculture", "transwell"):
        ratios = sorted({r.msc_per_cancer for r in dose.ratios if r.msc > 0})
        origin = ProtocolInput("msc_per_cancer", None, "recorded", f"{wording}: MSC:cancer ratio")
        if not ratios and dose.msc_cells_per_well:
            if dose.cancer_cells_per_well:
                cancer, basis = dose.cancer_cells_per_well[0], "MSCs per well over cancer cells per well"
            else:
                cancer = table.cancer[item.cancer_class]["seed_cells"].value
                basis = "MSCs per well over the class's assumed seeding (seed_cells)"
            ratios = sorted({m / cancer for m in dose.msc_cells_per_well})
            notes.append(f"ratio from {basis}")
            origin = ProtocolInput("msc_per_cancer", None, "derived", f"{wording}: {basis}")
        if not ratios:
            ratios = [table.value("protocol", "default_ratio")]
            origin = ProtocolInput("msc_per_cancer", None, "assumed", "protocol.default_ratio")
        return [{"msc_per_cancer": r} for r in ratios], replace(origin, value=ratios[-1])
    if delivery in ("conditioned_medium", "cell_extract"):
        recorded = {p for p in dose.cm_percent if p > 0}
        diluted = {d.percent for d in dose.cm_dilutions}
        percents = sorted(recorded | diluted)
        if not percents:
            percents = [table.value("protocol", "default_cm_percent")]
            origin = ProtocolInput("cm_percent", None, "assumed", "protocol.default_cm_percent")
        elif percents[-1] in recorded:
            origin = ProtocolInput("cm_percent", None, "recorded", f"{wording}: % CM")
        else:
            origin = ProtocolInput("cm_percent", None, "derived", f"{wording}: CM:medium dilution as % CM")
        return [{"cm_percent": p} for p in percents], replace(origin, value=percents[-1])
    volume = table.cancer[item.cancer_class]["well_volume"].value
    amounts: list[tuple[float, bool]] = []
    for a in dose.ev_amounts:
        try:
            unit = ev_unit(a.unit)
        except ValueError:
            notes.append(f"EV unit '{a.unit}' not convertible; ignored")
            continue
        amounts.append((ev_ug_per_ml(a.value, unit, table=table, well_volume_ml=volume), unit == "ug/mL"))
    if not amounts:
        value = table.value("protocol", "default_ev_dose")
        return [{"ev_ug_per_ml": value}], ProtocolInput(
            "ev_ug_per_ml", value, "assumed", "protocol.default_ev_dose"
        )
    levels = sorted({v for v, _ in amounts})
    top_as_given = any(given for v, given in amounts if v == levels[-1])
    origin = (
        ProtocolInput("ev_ug_per_ml", levels[-1], "recorded", f"{wording}: µg/mL")
        if top_as_given
        else ProtocolInput(
            "ev_ug_per_ml",
            levels[-1],
            "derived",
            f"{wording}: converted to µg/mL (ev.particles_per_ug, well volume)",
        )
    )
    return [{"ev_ug_per_ml": a} for a in levels], origin


@dataclass(frozen=True)
class ItemSetup:
    """What an item's protocol is, before any simulation: one :class:`Protocol` per tested dose."""

    protocols: tuple[Protocol, ...]  # lowest dose first; the prediction is read at the last one
    dose_kwargs: tuple[dict[str, Any], ...]
    hours: float
    msc_source: str
    cancer_class: str
    engineering: tuple[tuple[str, str], ...]
    defaults_used: tuple[str, ...]  # parameter-file defaults standing in for what the item omits
    notes: tuple[str, ...]
    inputs: tuple[ProtocolInput, ...] = ()  # dose, hours, conditioning, seeding: each with its origin

    def origins(self) -> dict[str, dict[str, Any]]:
        """Each input by name: value, origin (recorded, derived, assumed) and basis, for JSON."""
        return {i.name: i.to_dict() for i in self.inputs}


_DEFAULT_NAME = {
    "msc_per_cancer": "default_ratio",
    "cm_percent": "default_cm_percent",
    "ev_ug_per_ml": "default_ev_dose",
    "hours": "default_hours",
    "conditioning_cells": "conditioning_cells",
}


def item_setup(item: EvidenceItem, table: ParameterTable | None = None) -> ItemSetup:
    """The protocols of ``item`` (its doses, hours, conditioning), with the defaults filled in."""
    t = table or load_parameters()
    if item.setting is not Setting.in_vitro:
        raise ValueError(f"{item.id} is an in vivo item; run_protocol replays in vitro protocols")
    if item.delivery.value not in SIMULATED_DELIVERIES:
        raise ValueError(f"{item.id}: delivery '{item.delivery.value}' has no in vitro model")
    notes: list[str] = []
    if item.duration and item.duration.hours:
        hours = max(item.duration.hours)
        hours_in = ProtocolInput("hours", hours, "recorded", "the item's duration")
    else:
        hours = t.value("protocol", "default_hours")
        hours_in = ProtocolInput("hours", hours, "assumed", "protocol.default_hours")
    if len(item.msc_source) > 1:
        notes.append(f"pooled sources {[s.value for s in item.msc_source]}: first one simulated")
    if item.endpoint.value not in MODELLED_ENDPOINTS:
        notes.append(f"endpoint '{item.endpoint.value}' has no model read-out: called from the viable count")
    dose_kwargs, dose_in = _doses(item, t, notes)
    inputs = [dose_in, hours_in]
    conditioning = None
    if item.delivery.value in ("conditioned_medium", "cell_extract"):
        if item.dose.conditioning_cells is not None:
            conditioning = Conditioning(
                item.dose.conditioning_cells,
                t.value("protocol", "conditioning_volume"),
                t.value("protocol", "conditioning_hours"),
            )
            inputs.append(
                ProtocolInput(
                    "conditioning_cells",
                    conditioning.cells,
                    "recorded",
                    "the item's conditioning cells (volume and hours: protocol defaults)",
                )
            )
        else:
            inputs.append(
                ProtocolInput(
                    "conditioning_cells",
                    t.value("protocol", "conditioning_cells"),
                    "assumed",
                    "protocol.conditioning_cells",
                )
            )
    if item.dose.cancer_cells_per_well:
        cancer_cells = item.dose.cancer_cells_per_well[0]
        inputs.append(
            ProtocolInput("cancer_cells", cancer_cells, "recorded", "the item's cancer cells per well")
        )
    else:
        cancer_cells = None
        seed = t.cancer[item.cancer_class]["seed_cells"].value
        inputs.append(
            ProtocolInput("cancer_cells", seed, "assumed", f"cancer.{item.cancer_class.value}.seed_cells")
        )
    defaults = [_DEFAULT_NAME[i.name] for i in inputs if i.origin == "assumed" and i.name in _DEFAULT_NAME]
    protocols = tuple(
        Protocol(
            item.delivery.value,  # type: ignore[arg-type]
            hours,
            conditioning=conditioning,
            cancer_cells=cancer_cells,
            **kwargs,
        )
        for kwargs in dose_kwargs
    )
    return ItemSetup(
        protocols=protocols,
        dose_kwargs=tuple(dose_kwargs),
        hours=hours,
        msc_source=item.msc_source[0].value,
        cancer_class=item.cancer_class.value,
        engineering=tuple((e.kind, e.detail) for e in item.engineering),
        defaults_used=tuple(dict.fromkeys(defaults)),
        notes=tuple(notes),
        inputs=tuple(inputs),
    )
