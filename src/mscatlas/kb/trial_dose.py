"""Trial doses as registries word them, and trial registry identifiers.

Registries state MSC doses per administration as cells per kilogram of body weight
("1 x 10^6 cells/kg", "1-2 × 10^6 MSC/kg", "2 million cells per kg") or as a total number of
cells ("1 x 10^8 cells", "100 million MSCs"), with the number of administrations and their
schedule in free text. :func:`parse_trial_dose` reads that wording in the style of
:func:`mscatlas.kb.dose.parse_dose`: it refuses what it cannot read unambiguously (no number,
no unit) instead of guessing. No library reads this wording, hence the small parser here.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from mscatlas.kb.dose import DoseParseError
from mscatlas.kb.numbers import NumbersOnly

__all__ = [
    "AMOUNT_UNITS",
    "REGISTRY_PATTERNS",
    "RegistryId",
    "TrialDose",
    "parse_trial_dose",
    "registry_of",
]

# Registry -> the form of its trial ids (as the registries print them).
REGISTRY_PATTERNS: dict[str, str] = {
    "ClinicalTrials.gov": r"NCT\d{8}",
    "EudraCT": r"\d{4}-\d{6}-\d{2}",
    "ChiCTR": r"ChiCTR(?:-[A-Z]{2,4}-)?\d{8,10}",
    "ISRCTN": r"ISRCTN\d{8}",
    "UMIN": r"UMIN\d{9}",
    "jRCT": r"jRCT[a-z]?\d{9,10}",
    "ANZCTR": r"ACTRN\d{14}",
    "IRCT": r"IRCT\d+N\d+",
    "CRIS": r"KCT\d{7}",  # Clinical Research Information Service, Korea (cris.nih.go.kr)
}

Registry = Literal[
    "ClinicalTrials.gov", "EudraCT", "ChiCTR", "ISRCTN", "UMIN", "jRCT", "ANZCTR", "IRCT", "CRIS"
]


def registry_of(trial_id: str) -> str:
    """The registry whose id format ``trial_id`` has; ValueError naming the value if none."""
    for registry, pattern in REGISTRY_PATTERNS.items():
        if re.fullmatch(pattern, trial_id):
            return registry
    raise ValueError(
        f"registry id '{trial_id}' is in no known format (known: "
        + ", ".join(f"{r} {p}" for r, p in REGISTRY_PATTERNS.items())
        + ")"
    )


class _Strict(NumbersOnly):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistryId(_Strict):
    """A trial's id in one registry (a cross-registration of the same trial)."""

    registry: Registry
    id: str

    @model_validator(mode="after")
    def _format_matches_registry(self) -> RegistryId:
        if not re.fullmatch(REGISTRY_PATTERNS[self.registry], self.id):
            raise ValueError(
                f"id '{self.id}' is not a {self.registry} id (expected {REGISTRY_PATTERNS[self.registry]})"
            )
        return self


Positive = Annotated[float, Field(gt=0)]


class TrialDose(_Strict):
    """Dose per administration, each amount a single value or a [low, high] range.

    Cell products are dosed in cells/kg or total cells. Vesicle (EV/exosome) products are dosed
    by protein mass or particle count, so those have fields of their own; they are never put on
    the cell axis.
    """

    text: str = Field(min_length=1, description="the registry's wording")
    cells_per_kg: list[Positive] | None = Field(default=None, min_length=1, max_length=2)
    total_cells: list[Positive] | None = Field(default=None, min_length=1, max_length=2)
    protein_ug_per_kg: list[Positive] | None = Field(
        default=None, min_length=1, max_length=2, description="vesicle protein, µg per kg"
    )
    total_protein_ug: list[Positive] | None = Field(
        default=None, min_length=1, max_length=2, description="vesicle protein, µg per administration"
    )
    particles_per_kg: list[Positive] | None = Field(
        default=None, min_length=1, max_length=2, description="vesicle particles per kg"
    )
    total_particles: list[Positive] | None = Field(
        default=None, min_length=1, max_length=2, description="vesicle particles per administration"
    )
    n_doses: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="administrations per patient"
    )
    schedule: str | None = Field(default=None, description="e.g. 'days 1, 8 and 15', 'weekly x 3'")

    @model_validator(mode="after")
    def _has_amount(self) -> TrialDose:
        if not any(getattr(self, name) for name in AMOUNT_UNITS):
            raise ValueError(f"dose '{self.text}' has no unit: give " + ", ".join(AMOUNT_UNITS))
        for name in AMOUNT_UNITS:
            values = getattr(self, name)
            if values and len(values) == 2 and values[0] > values[1]:
                raise ValueError(f"{name} range {values} is not low-high")
        return self

    @property
    def is_cells(self) -> bool:
        """True when the dose is a number of cells (cells/kg or total), not a vesicle amount."""
        return bool(self.cells_per_kg or self.total_cells)

    def amounts(self) -> list[tuple[str, list[float]]]:
        """(unit label, values) for every amount given, in the order of :data:`AMOUNT_UNITS`."""
        return [(AMOUNT_UNITS[name], getattr(self, name)) for name in AMOUNT_UNITS if getattr(self, name)]

    def describe(self) -> str:
        """The dose as people read it: "1e+06–2e+06 cells/kg, 2 doses", "100 µg protein"."""
        parts = ["–".join(f"{x:.3g}" for x in values) + f" {unit}" for unit, values in self.amounts()]
        if self.n_doses:
            parts.append(f"{self.n_doses} doses")
        return ", ".join(parts)

    def per_kg_range(self, weight_kg: float = 70.0) -> tuple[float, float] | None:
        """Cells/kg as (low, high); total doses are divided by ``weight_kg``; None for vesicle doses."""
        if self.cells_per_kg:
            return self.cells_per_kg[0], self.cells_per_kg[-1]
        if self.total_cells:
            return self.total_cells[0] / weight_kg, self.total_cells[-1] / weight_kg
        return None


# Dose field -> the unit people read.
AMOUNT_UNITS: dict[str, str] = {
    "cells_per_kg": "cells/kg",
    "total_cells": "cells",
    "protein_ug_per_kg": "µg protein/kg",
    "total_protein_ug": "µg protein",
    "particles_per_kg": "particles/kg",
    "total_particles": "particles",
}


_NUM = r"\d+(?:\.\d+)?"
_MULT = (
    r"(?:\s*[×xX*]\s*10\s*(?:\^|\*\*)?\s*\(?\s*(?P<exp>\d{1,2})\s*\)?"
    r"|\s*(?P<word>million|billion)|\s*(?P<e>[eE]\+?\d{1,2}))?"
)
_AMOUNT = re.compile(
    rf"(?P<low>{_NUM})(?:\s*(?:-|–|to)\s*(?P<high>{_NUM}))?{_MULT}"
    r"\s*(?P<cells>(?:[A-Za-z-]*MSCs?|cells?|viable\s+cells)?)\s*(?P<unit>/\s*kg|per\s+(?:kilogram|kg)|/kg)?",
    re.IGNORECASE,
)
# Vesicle amounts: protein mass (µg, mg) or particle counts, per kg or per administration.
_VESICLE = re.compile(
    rf"(?P<low>{_NUM})(?:\s*(?:-|–|to)\s*(?P<high>{_NUM}))?{_MULT}"
    r"\s*(?P<what>[µμu]g|mg|particles)\b(?:\s*(?:of\s+)?(?:EVs?|exosomes?|protein))?"
    r"\s*(?P<unit>/\s*kg|per\s+kg)?",
    re.IGNORECASE,
)
# A mass is read as vesicle protein only where the text names vesicles or protein, so a drug
# given beside the cells ("ganciclovir 5 mg/kg") is never taken for the product's dose.
_VESICLE_WORDS = re.compile(r"\b(?:exosomes?|EVs?|vesicles?|protein)\b", re.IGNORECASE)
_N_DOSES = re.compile(
    r"\b(?P<n>\d+|one|two|three|four|five|six|eight|ten)\s+(?:doses|infusions|injections|administrations)\b",
    re.IGNORECASE,
)
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "eight": 8, "ten": 10}


def _scale(m: re.Match[str]) -> float:
    if m.group("exp"):
        return 10.0 ** int(m.group("exp"))
    if m.group("word"):
        return 1e6 if m.group("word").lower() == "million" else 1e9
    if m.group("e"):
        return 10.0 ** int(m.group("e").lstrip("eE+"))
    return 1.0


def parse_trial_dose(text: str, *, n_doses: int | None = None, schedule: str | None = None) -> TrialDose:
    """Parse a registry's dose wording into a :class:`TrialDose`.

    Vesicle amounts (µg or mg of protein, per kg or not; particle counts) are read first. Then
    only amounts written with a power of ten or "million"/"billion" (MSC doses are 10^5-10^9
    cells) and followed by "cells" or "/kg" count, so "2 doses" or "day 28" are never read as
    a dose. Raises :class:`DoseParseError` when no amount or no unit is found.
    """
    if not text or not text.strip():
        raise DoseParseError("empty dose text")
    per_kg: list[float] = []
    total: list[float] = []
    vesicle: dict[str, list[float]] = {}
    for m in _VESICLE.finditer(text):
        scale = _scale(m)
        values = [float(m.group(end)) * scale for end in ("low", "high") if m.group(end)]
        what = m.group("what").lower()
        if what == "particles":
            name = "particles_per_kg" if m.group("unit") else "total_particles"
        elif not _VESICLE_WORDS.search(text):
            continue
        else:
            values = [v * (1000.0 if what == "mg" else 1.0) for v in values]
            name = "protein_ug_per_kg" if m.group("unit") else "total_protein_ug"
        vesicle.setdefault(name, []).extend(values)
    cell_text = _VESICLE.sub(" ", text) if vesicle else text
    for m in _AMOUNT.finditer(cell_text):
        scale = _scale(m)
        if scale < 1e3:
            continue
        low = float(m.group("low")) * scale
        high = float(m.group("high")) * scale if m.group("high") else None
        values = [low] if high is None else [low, high]
        if m.group("unit"):
            per_kg.extend(values)
        elif m.group("cells"):
            total.extend(values)
        else:
            raise DoseParseError(
                f"dose '{text.strip()}': amount '{m.group(0).strip()}' has no unit (cells/kg or cells)"
            )
    if not per_kg and not total and not vesicle:
        raise DoseParseError(
            f"no dose found in '{text.strip()}': write e.g. '1 x 10^6 cells/kg', '1 x 10^8 cells', "
            "'100 µg protein' or '1 x 10^10 particles'"
        )
    if n_doses is None:
        m = _N_DOSES.search(text)
        if m:
            n_doses = int(m.group("n")) if m.group("n").isdigit() else _WORDS[m.group("n").lower()]

    def span(values: list[float]) -> list[float] | None:
        return None if not values else [min(values), max(values)] if len(set(values)) > 1 else [values[0]]

    return TrialDose(
        text=text.strip(),
        cells_per_kg=span(per_kg),
        total_cells=span(total),
        **{name: span(values) for name, values in vesicle.items()},
        n_doses=n_doses,
        schedule=schedule,
    )
