"""Vesicle (EV) doses in the one unit the model takes, µg of EV protein per mL of medium.

One converter for every place an EV dose is typed or read: ``mscatlas sim ev --unit``, the web
simulation form and API (:mod:`mscatlas.sim.spec`), and the replay of curated items. Before it,
the command line and the web each converted doses by hand, and only the command line accepted
``µg/mL``.

Accepted units (case, ``µ``/``μ``/``u`` and spaces ignored): ``ug/mL``, ``ng/mL``, ``mg/mL``,
``ug`` (per well: divided by the well volume of the cancer class, ``cancer.<class>.well_volume``)
and ``particles/mL`` (divided by ``ev.particles_per_ug``).
"""

from __future__ import annotations

import re

from mscatlas.sim.parameters import ParameterTable, load_parameters

__all__ = ["EV_UNITS", "EV_UNIT_SPELLINGS", "ev_ug_per_ml", "ev_unit"]

EV_UNITS = ("ug/mL", "ng/mL", "mg/mL", "ug", "particles/mL")
"""The canonical EV units."""

_PER_ML = {"ug/mL": 1.0, "ng/mL": 1e-3, "mg/mL": 1e3}

EV_UNIT_SPELLINGS = (*EV_UNITS, "µg/mL", "μg/mL", "µg", "μg")
"""Every spelling a form or an API client may send (the Greek mu and the micro sign too)."""


def _key(unit: str) -> str:
    return re.sub(r"\s+", "", unit).replace("μ", "u").replace("µ", "u").lower()


_CANONICAL = {_key(u): u for u in EV_UNITS}


def ev_unit(unit: str) -> str:
    """The canonical name of an EV unit (``"µg/mL"`` -> ``"ug/mL"``); ValueError names the accepted ones."""
    canonical = _CANONICAL.get(_key(unit))
    if canonical is None:
        raise ValueError(f"unknown EV unit '{unit}'; accepted: {', '.join(EV_UNITS)} (µg for ug is fine)")
    return canonical


def ev_ug_per_ml(
    amount: float,
    unit: str,
    *,
    cancer_class: str = "solid",
    table: ParameterTable | None = None,
    well_volume_ml: float | None = None,
) -> float:
    """``amount`` of EVs in ``unit``, as µg of EV protein per mL.

    A per-well amount (``ug``) is divided by ``well_volume_ml``, by default the well volume of
    ``cancer_class`` in ``table`` (the shipped parameters when None).
    """
    canonical = ev_unit(unit)
    if canonical in _PER_ML:
        return amount * _PER_ML[canonical]
    table = table if table is not None else load_parameters()
    if canonical == "ug":
        volume = (
            well_volume_ml
            if well_volume_ml is not None
            else table.value("cancer", cancer_class, "well_volume")
        )
        return amount / volume
    return amount / table.value("ev", "particles_per_ug")
