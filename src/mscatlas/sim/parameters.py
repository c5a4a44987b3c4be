"""The parameter file of the in silico lab: its schema, its loader and its validation.

``data/parameters.yaml`` holds every default of the models, each with a value, a unit, a source
(a reference for the number, or ``assumed``), a note and, where the source gives one, the
published ``range`` of the value (used as the bounds of the sensitivity analysis). The file is
checked with pydantic on load: unknown or missing entries, non-finite values and empty sources
are errors.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from mscatlas.kb.enums import CancerClass, MscSource

__all__ = ["SIGNALS", "Parameter", "ParameterTable", "load_parameters"]

SIGNALS = ("inhibitory", "stimulatory", "trail", "ifn_beta", "oncolytic_virus")
"""Paracrine channels, in the order the model's state vector stores them."""

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

_CANCER_KEYS = {
    "doubling_time",
    "basal_death_rate",
    "g1_fraction",
    "s_fraction",
    "g2m_fraction",
    "apoptotic_clearance_rate",
    "carrying_capacity",
    "seed_cells",
    "well_volume",
    "msc_space_share",
}
_MSC_KEYS = {"doubling_time", "death_rate", "carrying_capacity"}
_SOURCE_KEYS = {
    "inhibitory_secretion_scale",
    "stimulatory_secretion_scale",
    "contact_scale",
    "ev_cargo_scale",
}
_SIGNAL_KEYS = {"secretion", "decay", "ec50", "hill", "arrest_max", "boost_max", "death_max"}
_CONTACT_KEYS = {"ec50_ratio", "hill", "arrest_max", "death_max"}
_EV_KEYS = {
    "uptake_rate",
    "decay_medium",
    "decay_internal",
    "inhibitory_cargo",
    "stimulatory_cargo",
    "particles_per_ug",
}
_PROTOCOL_KEYS = {
    "default_hours",
    "default_ratio",
    "default_cm_percent",
    "conditioning_cells",
    "conditioning_volume",
    "conditioning_hours",
    "extract_equivalent_hours",
    "default_ev_dose",
    "inhibition_threshold",
    "fraction_threshold",
}
_XENO_KEYS = {
    "initial_volume",
    "gompertz_rate",
    "logistic_rate",
    "capacity",
    "cells_per_mm3",
    "homing_fraction_iv",
    "retention_intratumoral",
    "retention_coinjection",
    "msc_half_life",
    "growth_rate_cv",
}
_ABM_KEYS = {
    "domain_size",
    "voxel_size",
    "tissue_thickness",
    "time_step",
    "cxcl12_secretion",
    "cxcl12_diffusivity",
    "cxcl12_decay",
    "paracrine_diffusivity",
    "max_cell_density",
    "crowding_radius",
    "initial_fill",
    "cancer_motility",
    "daughter_offset",
    "msc_motility",
    "msc_speed_max",
    "chemotaxis_gradient_half",
    "tumour_density_threshold",
    "default_cancer_cells",
    "default_mscs",
}
_PAYLOADS = ("trail", "ifn_beta", "oncolytic_virus")
_ENGINEERING_KEYS = {"inhibitory_secretion_scale", "stimulatory_secretion_scale", "secretion"}


class Parameter(BaseModel):
    """One number of the model with its unit and where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    unit: _Text
    source: _Text = Field(description="a reference for the number, or 'assumed'")
    note: _Text
    range: tuple[float, float] | None = Field(
        default=None, description="the published spread of the value (low, high), where the source gives one"
    )

    @field_validator("range")
    @classmethod
    def _ordered(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and 0 <= v[0] <= v[1]):
            raise ValueError(f"range must be finite, non-negative and ordered (low, high), got {v}")
        return v

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"value must be finite and non-negative, got {v}")
        return v

    @property
    def assumed(self) -> bool:
        return self.source.strip().lower() == "assumed"


Group = dict[str, Parameter]


def _check_keys(where: str, group: Group, expected: set[str], *, subset: bool = False) -> None:
    keys = set(group)
    unknown = keys - expected
    missing = set() if subset else expected - keys
    if unknown or missing:
        raise ValueError(f"{where}: unknown {sorted(unknown)}, missing {sorted(missing)}")


class ParameterTable(BaseModel):
    """The whole parameter file (``data/parameters.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int
    cancer: dict[CancerClass, Group]
    msc: Group
    msc_sources: dict[MscSource, Group]
    signals: dict[str, Group]
    contact: Group
    ev: Group
    engineering: dict[str, Group]
    protocol: Group
    xenograft: Group
    abm: Group

    @model_validator(mode="after")
    def _complete(self) -> ParameterTable:
        for cls_ in CancerClass:
            if cls_ not in self.cancer:
                raise ValueError(f"cancer: no parameter set for class '{cls_.value}'")
            _check_keys(f"cancer.{cls_.value}", self.cancer[cls_], _CANCER_KEYS)
            phases = sum(self.cancer[cls_][k].value for k in ("g1_fraction", "s_fraction", "g2m_fraction"))
            if abs(phases - 1.0) > 1e-9:
                raise ValueError(f"cancer.{cls_.value}: phase fractions sum to {phases}, not 1")
        _check_keys("msc", self.msc, _MSC_KEYS)
        for src in MscSource:
            if src not in self.msc_sources:
                raise ValueError(f"msc_sources: no parameter set for source '{src.value}'")
            _check_keys(f"msc_sources.{src.value}", self.msc_sources[src], _SOURCE_KEYS)
        if tuple(self.signals) != SIGNALS:
            raise ValueError(f"signals must be exactly {SIGNALS} in that order")
        for name, group in self.signals.items():
            _check_keys(f"signals.{name}", group, _SIGNAL_KEYS)
            if group["ec50"].value <= 0 or group["hill"].value <= 0:
                raise ValueError(f"signals.{name}: ec50 and hill must be positive")
            if group["arrest_max"].value > 1:
                raise ValueError(f"signals.{name}: arrest_max above 1 would reverse the cycle")
        _check_keys("contact", self.contact, _CONTACT_KEYS)
        if self.contact["arrest_max"].value > 1:
            raise ValueError("contact: arrest_max above 1 would reverse the cycle")
        _check_keys("ev", self.ev, _EV_KEYS)
        for name, group in self.engineering.items():
            _check_keys(f"engineering.{name}", group, _ENGINEERING_KEYS, subset=True)
        for payload in _PAYLOADS:
            if "secretion" not in self.engineering.get(payload, {}):
                raise ValueError(f"engineering.{payload}: needs a secretion rate")
        _check_keys("protocol", self.protocol, _PROTOCOL_KEYS)
        _check_keys("xenograft", self.xenograft, _XENO_KEYS)
        _check_keys("abm", self.abm, _ABM_KEYS)
        return self

    def value(self, *path: str) -> float:
        """A value by its path, e.g. ``table.value("protocol", "default_hours")``."""
        node: object = self
        for key in path:
            node = getattr(node, key) if isinstance(node, BaseModel) else node[key]  # type: ignore[index]
        assert isinstance(node, Parameter)
        return node.value

    def rows(self) -> list[dict[str, object]]:
        """Every parameter as a flat row (path, value, unit, source, note), for tables and docs."""
        out: list[dict[str, object]] = []

        def walk(prefix: str, node: object) -> None:
            if isinstance(node, Parameter):
                out.append({"path": prefix, **node.model_dump()})
            elif isinstance(node, dict):
                for k, v in node.items():
                    walk(f"{prefix}.{getattr(k, 'value', k)}" if prefix else str(getattr(k, "value", k)), v)

        for field in type(self).model_fields:
            if field != "schema_version":
                walk(field, getattr(self, field))
        return out


@lru_cache(maxsize=4)
def _load_cached(path: str | None) -> ParameterTable:
    if path is None:
        text = resources.files("mscatlas.sim").joinpath("data/parameters.yaml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return ParameterTable.model_validate(yaml.safe_load(text))


def load_parameters(path: str | Path | None = None) -> ParameterTable:
    """The shipped parameter table, or the one in ``path`` (validated either way)."""
    return _load_cached(None if path is None else str(path))
