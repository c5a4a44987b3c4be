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
}

Registry = Literal["ClinicalTrials.gov", "EudraCT", "ChiCTR", "ISRCTN", "UMIN", "jRCT", "ANZCTR", "IRCT"]


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
    """Dose per administration: cells/kg or total cells, each a single value or a [low, high] range."""

    text: str = Field(min_length=1, description="the registry's wording")
    cells_per_kg: list[Positive] | None = Field(default=None, min_length=1, max_length=2)
    total_cells: list[Positive] | None = Field(default=None, min_length=1, max_length=2)
    n_doses: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="administrations per patient"
    )
    schedule: str | None = Field(default=None, description="e.g. 'days 1, 8 and 15', 'weekly x 3'")

    @model_validator(mode="after")
    def _has_amount(self) -> TrialDose:
        if self.cells_per_kg is None and self.total_cells is None:
            raise ValueError(f"dose '{self.text}' has no unit: give cells_per_kg or total_cells")
        for name in ("cells_per_kg", "total_cells"):
            values = getattr(self, name)
            if values and len(values) == 2 and values[0] > values[1]:
                raise ValueError(f"{name} range {values} is not low-high")
        return self

    def per_kg_range(self, weight_kg: float = 70.0) -> tuple[float, float]:
        """Cells/kg as (low, high); total doses are divided by ``weight_kg``."""
        if self.cells_per_kg:
            return self.cells_per_kg[0], self.cells_per_kg[-1]
        assert self.total_cells is not None
        return self.total_cells[0] / weight_kg, self.total_cells[-1] / weight_kg


_NUM = r"\d+(?:\.\d+)?"
_MULT = (
    r"(?:\s*[×xX*]\s*10\s*(?:\^|\*\*)?\s*\(?\s*(?P<exp>\d{1,2})\s*\)?"
    r"|\s*(?P<word>million|billion)|\s*(?P<e>[eE]\+?\d{1,2}))?"
)
_AMOUNT = re.compile(
    rf"(?P<low>{_NUM})(?:\s*(?:-|–|to)\s*(?P<high>{_NUM}))?{_MULT}"
    r"\s*(?P<cells>(?:[A-Za-z-]*MSCs?|cells?|viable\s+cells)?)\s*(?P<unit>/\s*kg|per\s+kg|/kg)?",
    re.IGNORECASE,
)
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

    Only amounts written with a power of ten or "million"/"billion" (MSC doses are 10^5-10^9
    cells) and followed by "cells" or "/kg" count, so "2 doses" or "day 28" are never read as
    a dose. Raises :class:`DoseParseError` when no amount or no unit is found.
    """
    if not text or not text.strip():
        raise DoseParseError("empty dose text")
    per_kg: list[float] = []
    total: list[float] = []
    for m in _AMOUNT.finditer(text):
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
    if not per_kg and not total:
        raise DoseParseError(
            f"no dose found in '{text.strip()}': write e.g. '1 x 10^6 cells/kg' or '1 x 10^8 cells'"
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
        n_doses=n_doses,
        schedule=schedule,
    )
