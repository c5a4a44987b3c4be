"""Preclinical MSC doses in human terms: cells per kg and human equivalent doses (HED).

An in vivo dose is usually reported as cells per animal. It becomes cells/kg with the
animal's body weight (given, or the species' reference weight), then a human equivalent
dose in two ways:

- by body weight: the same cells/kg in a person (how cell therapy trials usually dose);
- by body-surface area, as the FDA guidance converts small-molecule doses:
  HED (per kg) = animal dose (per kg) × Km(animal) / Km(human), with Km = body weight / body
  surface area (kg/m²) and Km(human) = 37 for the 60 kg reference adult.

Whether cell doses scale with body surface area at all is not established (cells are not
cleared like a drug); the two conversions bracket the range and are reported side by side.
The totals for a 70 kg adult are compared with the minimal effective intravenous doses that
MSC trials report overall: 70–190 million cells per patient per dose in 14 of 16 IV trials
with positive outcomes (Kabat M, Bobkov I, Kumar S, Grumet M. Trends in mesenchymal stem cell
clinical trials 2004–2018: is efficacy optimal in a narrow dose range? Stem Cells Transl Med
2020;9(1):17–27, doi:10.1002/sctm.19-0202, PMID 31804767; the abstract also gives a narrower
100–150 million from the four trials with dose-response data).

Reference body weights and Km factors: FDA/CDER, Guidance for Industry: Estimating the
Maximum Safe Starting Dose in Initial Clinical Trials for Therapeutics in Adult Healthy
Volunteers (July 2005), Table 1 "Conversion of animal doses to human equivalent doses based
on body surface area"; values as reproduced in Nair AB, Jacob S. J Basic Clin Pharm
2016;7(2):27–31 (doi:10.4103/0976-0105.177703, Table 1), checked against the copy at
https://novoprolabs.com/support/articles/how-to-convert-human-dose-between-animal-dose-201905311569.html,
and for mouse, rat, monkey and adult human against the Freireich et al. (1966) table posted by
NCI at Frederick (mouse 0.02 kg Km 3, rat 0.15 kg, monkey 3 kg Km 12, adult 60 kg Km 37).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "HUMAN",
    "KABAT_2020_IV_RANGE",
    "SPECIES",
    "DoseTranslation",
    "DoseTranslationError",
    "Species",
    "parse_cell_dose",
    "translate_dose",
]


@dataclass(frozen=True)
class Species:
    name: str
    reference_weight_kg: float
    km: float


# FDA 2005 guidance, Table 1 (reference body weight in kg, Km in kg/m²).
SPECIES: dict[str, Species] = {
    s.name: s
    for s in (
        Species("mouse", 0.02, 3),
        Species("hamster", 0.08, 5),
        Species("rat", 0.15, 6),
        Species("ferret", 0.30, 7),
        Species("guinea pig", 0.40, 8),
        Species("rabbit", 1.8, 12),
        Species("dog", 10.0, 20),
        Species("monkey", 3.0, 12),  # rhesus
        Species("marmoset", 0.35, 6),
        Species("squirrel monkey", 0.60, 7),
        Species("baboon", 12.0, 20),
        Species("micro-pig", 20.0, 27),
        Species("mini-pig", 40.0, 35),
    )
}
HUMAN = Species("human", 60.0, 37)
_ALIASES = {
    "mice": "mouse",
    "rats": "rat",
    "rhesus": "monkey",
    "rhesus monkey": "monkey",
    "guinea-pig": "guinea pig",
    "guinea_pig": "guinea pig",
    "squirrel_monkey": "squirrel monkey",
    "micropig": "micro-pig",
    "minipig": "mini-pig",
}
ADULT_KG = 70.0
KABAT_2020_IV_RANGE = (70e6, 190e6)  # minimal effective IV dose, cells per patient per dose


class DoseTranslationError(ValueError):
    """Bad input; the message names the field and the value."""

    def __init__(self, field: str, value: object, why: str) -> None:
        super().__init__(f"{field} = {value!r}: {why}")
        self.field = field
        self.value = value


def species_of(name: str) -> Species:
    key = " ".join(name.strip().lower().split())
    key = _ALIASES.get(key, key)
    if key not in SPECIES:
        raise DoseTranslationError(
            "species", name, f"no Km factor in the FDA table (known: {', '.join(sorted(SPECIES))})"
        )
    return SPECIES[key]


_DOSE = re.compile(
    r"^\s*(?P<num>\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*(?:(?:x|×|\*)\s*10\s*\^?\s*(?P<exp>[+-]?\d+))?\s*"
    r"(?P<unit>[a-z/ ]*)\s*$",
    re.IGNORECASE,
)
_PER_ANIMAL = {"cells", "cell", "mscs", "msc", "cells/animal", "cells per animal", "cells/mouse", "cells/rat"}
_PER_KG = {"cells/kg", "cells per kg", "mscs/kg", "msc/kg"}


def parse_cell_dose(text: str) -> tuple[float, str]:
    """'5e5 cells', '1 x 10^6 MSCs', '2e6 cells/kg' -> (number, 'animal' | 'kg'); a dose with
    no unit, or a unit other than cells per animal or per kg, is refused."""
    m = _DOSE.match(text)
    if m is None:
        raise DoseTranslationError("dose", text, "not a number of cells (e.g. '5e5 cells' or '2e6 cells/kg')")
    value = float(m["num"]) * (10.0 ** int(m["exp"]) if m["exp"] else 1.0)
    unit = " ".join(m["unit"].lower().split())
    if not unit:
        raise DoseTranslationError("dose", text, "no unit: write cells (per animal) or cells/kg")
    if unit in _PER_ANIMAL:
        return value, "animal"
    if unit in _PER_KG:
        return value, "kg"
    raise DoseTranslationError("dose", text, f"unit {unit!r} is not cells per animal or cells/kg")


@dataclass(frozen=True)
class DoseTranslation:
    species: str
    weight_kg: float
    weight_source: str  # "given" or "FDA reference"
    cells_per_animal: float
    cells_per_kg: float
    km_animal: float
    km_human: float
    hed_cells_per_kg_bsa: float
    hed_cells_per_kg_bw: float

    @property
    def hed_total_70kg(self) -> float:
        """Body-surface-area HED for a 70 kg adult, in cells."""
        return self.hed_cells_per_kg_bsa * ADULT_KG

    @property
    def hed_total_70kg_bw(self) -> float:
        return self.hed_cells_per_kg_bw * ADULT_KG

    def to_dict(self) -> dict[str, object]:
        lo, hi = KABAT_2020_IV_RANGE
        return {
            "species": self.species,
            "weight_kg": self.weight_kg,
            "weight_source": self.weight_source,
            "cells_per_animal": self.cells_per_animal,
            "cells_per_kg": self.cells_per_kg,
            "km_animal": self.km_animal,
            "km_human": self.km_human,
            "hed_cells_per_kg_bsa": self.hed_cells_per_kg_bsa,
            "hed_total_70kg": self.hed_total_70kg,
            "hed_cells_per_kg_bw": self.hed_cells_per_kg_bw,
            "hed_total_70kg_bw": self.hed_total_70kg_bw,
            "kabat_2020_iv_range": [lo, hi],
            "vs_kabat_2020_bsa": _compare(self.hed_total_70kg),
            "vs_kabat_2020_bw": _compare(self.hed_total_70kg_bw),
        }


def _compare(total: float) -> str:
    lo, hi = KABAT_2020_IV_RANGE
    return "below" if total < lo else "above" if total > hi else "within"


def _positive(field: str, value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise DoseTranslationError(field, value, "must be a positive number")
    return float(value)


def translate_dose(
    species: str,
    *,
    cells: float | None = None,
    cells_per_kg: float | None = None,
    weight_kg: float | None = None,
) -> DoseTranslation:
    """Translate a dose given as ``cells`` per animal or as ``cells_per_kg`` (one of them)."""
    sp = species_of(species)
    if (cells is None) == (cells_per_kg is None):
        raise DoseTranslationError("cells", cells, "give the dose either per animal or per kg, once")
    weight = sp.reference_weight_kg if weight_kg is None else _positive("weight_kg", weight_kg)
    if cells is not None:
        per_animal = _positive("cells", cells)
        per_kg = per_animal / weight
    else:
        per_kg = _positive("cells_per_kg", cells_per_kg)  # type: ignore[arg-type]
        per_animal = per_kg * weight
    return DoseTranslation(
        species=sp.name,
        weight_kg=weight,
        weight_source="FDA reference" if weight_kg is None else "given",
        cells_per_animal=per_animal,
        cells_per_kg=per_kg,
        km_animal=sp.km,
        km_human=HUMAN.km,
        hed_cells_per_kg_bsa=per_kg * sp.km / HUMAN.km,
        hed_cells_per_kg_bw=per_kg,
    )
