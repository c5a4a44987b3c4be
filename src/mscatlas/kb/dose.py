"""Structured doses and a parser for the way papers word them.

The review writes ratios in both orders ("1:6 (SC:CC)", "K562 and MSCs at 10:1"), uses
conditioned-medium percentages and dilutions, cell numbers per injection or per well, and
vesicle amounts. :func:`parse_dose` turns such wording into a :class:`Dose` whose ratios are
always MSC first. It refuses wording it cannot read unambiguously instead of guessing: a
non-symmetric ratio with no stated order is an error.

No library parses this domain's wording, so the parser is written here; it is a small set of
regular expressions over one fragment of text.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from mscatlas.kb.numbers import NumbersOnly

__all__ = [
    "ACCEPTED_FORMS",
    "CMDilution",
    "CellRatio",
    "Dose",
    "DoseParseError",
    "Duration",
    "EVAmount",
    "parse_dose",
    "parse_duration",
    "parse_ratio",
]

# What parse_dose reads, named in its errors (a user who typed "10 to 1" learns the forms).
ACCEPTED_FORMS = (
    "a ratio with its order ('1:10 MSC:cancer', '1:6 (SC:CC)', 'K562 and MSCs at 10:1'), "
    "a conditioned-medium share or dilution ('50% CM', 'CM:medium 1:1'), cells per injection or "
    "per well ('1x10^6 cells per injection'), or a vesicle amount ('50 µg/mL EVs', "
    "'1.5e9 particles')"
)

NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


class _Strict(NumbersOnly):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DoseParseError(ValueError):
    """The wording of a dose cannot be turned into a structured dose."""


class CellRatio(_Strict):
    """MSC : cancer-cell seeding ratio, MSC part first. ``0:1`` is a cancer-only control arm."""

    msc: NonNegative
    cancer: Positive

    @property
    def msc_per_cancer(self) -> float:
        return self.msc / self.cancer

    @property
    def log10_msc_per_cancer(self) -> float | None:
        """log10 of MSCs per cancer cell; None for the control arm (0 MSCs)."""
        return math.log10(self.msc_per_cancer) if self.msc > 0 else None

    def __str__(self) -> str:
        return f"{_fmt(self.msc)}:{_fmt(self.cancer)} (MSC:cancer)"


class CMDilution(_Strict):
    """Conditioned medium mixed with fresh medium, ``cm`` parts CM to ``medium`` parts medium.

    The review's "CM (1:1 and 1:20)" gives parts; the percentage of CM in the final medium is
    ``100 * cm / (cm + medium)``.
    """

    cm: Positive
    medium: NonNegative

    @property
    def percent(self) -> float:
        return 100.0 * self.cm / (self.cm + self.medium)


class EVAmount(_Strict):
    value: Positive
    unit: str = Field(min_length=1, description="e.g. ug/mL, ug, particles/mL")


class Duration(_Strict):
    """Exposure time(s) in hours; several values for time courses."""

    hours: list[Positive] = Field(default_factory=list)
    text: str | None = None


class Dose(_Strict):
    """A dose with every quantity in its own typed field; ``text`` keeps the source wording."""

    text: str | None = None
    ratios: list[CellRatio] = Field(default_factory=list)
    cm_percent: list[Annotated[float, Field(ge=0, le=100)]] = Field(default_factory=list)
    cm_dilutions: list[CMDilution] = Field(default_factory=list)
    conditioning_cells: Positive | None = Field(default=None, description="MSCs used to condition the medium")
    cells_per_injection: list[Positive] = Field(default_factory=list)
    cells_per_kg: list[Positive] = Field(default_factory=list)
    msc_cells_per_well: list[Positive] = Field(default_factory=list)
    cancer_cells_per_well: list[Positive] = Field(default_factory=list)
    ev_amounts: list[EVAmount] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: object) -> object:
        # YAML may give the dose as the source wording alone; parse it then.
        if isinstance(data, str):
            return parse_dose(data).model_dump(exclude_defaults=True)
        return data

    @property
    def is_empty(self) -> bool:
        return not any(
            (
                self.ratios,
                self.cm_percent,
                self.cm_dilutions,
                self.conditioning_cells,
                self.cells_per_injection,
                self.cells_per_kg,
                self.msc_cells_per_well,
                self.cancer_cells_per_well,
                self.ev_amounts,
            )
        )

    def describe(self) -> str:
        """The dose in words, for tables and record pages."""
        parts: list[str] = []
        if self.ratios:
            parts.append("MSC:cancer " + ", ".join(f"{_fmt(r.msc)}:{_fmt(r.cancer)}" for r in self.ratios))
        if self.cm_percent:
            parts.append("CM " + ", ".join(f"{_fmt(p)}%" for p in self.cm_percent))
        if self.cm_dilutions:
            parts.append(
                "CM:medium "
                + ", ".join(f"{_fmt(d.cm)}:{_fmt(d.medium)} ({d.percent:.3g}%)" for d in self.cm_dilutions)
            )
        if self.conditioning_cells:
            parts.append(f"CM from {_sci(self.conditioning_cells)} MSCs")
        if self.cells_per_injection:
            parts.append(", ".join(_sci(c) for c in self.cells_per_injection) + " cells/injection")
        if self.cells_per_kg:
            parts.append(", ".join(_sci(c) for c in self.cells_per_kg) + " cells/kg")
        if self.msc_cells_per_well:
            parts.append(", ".join(_sci(c) for c in self.msc_cells_per_well) + " MSCs/well")
        if self.cancer_cells_per_well:
            parts.append(", ".join(_sci(c) for c in self.cancer_cells_per_well) + " cancer cells/well")
        if self.ev_amounts:
            parts.append("EV " + ", ".join(f"{_fmt(a.value)} {a.unit}" for a in self.ev_amounts))
        return "; ".join(parts) if parts else "not stated"


def _fmt(x: float) -> str:
    return f"{x:g}"


def _sci(x: float) -> str:
    if x >= 1e4:
        mantissa, exponent = f"{x:.2e}".split("e")
        return f"{float(mantissa):g}×10^{int(exponent)}"
    return _fmt(x)


# ---------------------------------------------------------------- parser

_NUM = r"\d+(?:[.,]\d+)?"
_RATIO = re.compile(rf"(?<![\d.,])(-?\s*{_NUM})\s*:\s*(-?\s*{_NUM})(?![\d])")
_SCI = re.compile(r"(\d+(?:\.\d+)?)\s*[×xX*]\s*10\s*\^?\s*(\d+)")
_PLAIN_COUNT = re.compile(r"(?<![\d.^])(\d{1,3}(?:[.,]\d{3})+|\d+)(?![\d.,]*\s*[×xX*%:])")
# Markers that state the order of a ratio explicitly.
_MSC_WORD = r"(?:h?[A-Z]{0,4}-?MSCs?|SCs?|stem\s+cells?|MSC)"
_CANCER_WORD = r"(?:CCs?|cancer(?:\s+cells?)?|tumou?r(?:\s+cells?)?|[A-Z][A-Za-z0-9-]*\d[A-Za-z0-9-]*)"
_MSC_FIRST = re.compile(rf"\b{_MSC_WORD}\s*[:\-–/]\s*{_CANCER_WORD}", re.IGNORECASE)
_CANCER_FIRST = re.compile(rf"\b{_CANCER_WORD}\s*[:\-–/]\s*{_MSC_WORD}\b", re.IGNORECASE)
_MSC_MENTION = re.compile(r"\b(?:h?[A-Za-z]{0,4}-?MSCs?|stem\s+cells?)\b", re.IGNORECASE)
_CANCER_MENTION = re.compile(
    r"\b(?:cancer|tumou?r|carcinoma|leuka?emi\w*|lymphoma|AML|K562|[A-Z][A-Za-z]*-?\d+[A-Za-z0-9]*)\b"
)
_CM_CONTEXT = re.compile(r"\b(?:CM|conditioned\s+medi(?:um|a)|secretome|dilution|diluted)\b", re.IGNORECASE)
_PERCENT_LIST = re.compile(rf"((?:{_NUM}\s*%?\s*(?:,|or|and|/)\s*)*{_NUM})\s*%")
# An amount may be written in scientific form ("1.5 x 10^9 particles/mL", "1.5e9 particles").
_EV = re.compile(
    rf"(?<![\d.^])({_SCI.pattern}|\d+(?:\.\d+)?[eE]\+?\d+|{_NUM})\s*"
    r"(?P<unit>µg/mL|ug/mL|μg/mL|µg|ug|μg|mg/mL|ng/mL|particles/mL|particles)\b",
    re.IGNORECASE,
)


def _number(token: str) -> float:
    token = token.replace(" ", "")
    # "5.000" and "5,000" (three digits after the separator) are thousands, as in the review's
    # "5.000 K562 cells /well"; "0.5" stays a decimal.
    if re.fullmatch(r"-?\d{1,3}(?:[.,]\d{3})+", token):
        return float(re.sub(r"[.,]", "", token))
    return float(token.replace(",", "."))


def _ratio_order(text: str, first_ratio_at: int) -> Literal["msc_first", "cancer_first"] | None:
    if _MSC_FIRST.search(text):
        return "msc_first"
    if _CANCER_FIRST.search(text):
        return "cancer_first"
    # Narrative wording ("K562 and MSCs at 10:1"): the order in which the two cell kinds are
    # named before the numbers.
    head = text[:first_ratio_at]
    msc = _MSC_MENTION.search(head)
    cancer = _CANCER_MENTION.search(head)
    if msc and cancer:
        return "msc_first" if msc.start() < cancer.start() else "cancer_first"
    return None


def parse_dose(text: str) -> Dose:
    """Parse one dose fragment into a :class:`Dose` (ratios normalised to MSC first).

    Raises :class:`DoseParseError` for negative parts, ``0:0``, a ratio with no cancer cells,
    a non-symmetric ratio whose order the wording does not state, or text with no dose in it.
    """
    if not text or not text.strip():
        raise DoseParseError(f"empty dose text; write {ACCEPTED_FORMS}")
    fields: dict[str, object] = {"text": text.strip()}
    is_cm = bool(_CM_CONTEXT.search(text))

    pairs = [(m.start(), m.group(1), m.group(2)) for m in _RATIO.finditer(text)]
    parsed_pairs: list[tuple[float, float]] = []
    for _, left, right in pairs:
        a, b = _number(left), _number(right)
        if a < 0 or b < 0:
            raise DoseParseError(f"negative part in ratio '{left.strip()}:{right.strip()}'")
        if a == 0 and b == 0:
            raise DoseParseError("ratio 0:0 has no cells")
        parsed_pairs.append((a, b))

    if parsed_pairs and is_cm and not (_MSC_FIRST.search(text) or _CANCER_FIRST.search(text)):
        fields["cm_dilutions"] = [{"cm": a, "medium": b} for a, b in parsed_pairs]
    elif parsed_pairs:
        order = _ratio_order(text, pairs[0][0])
        if order is None and any(a != b for a, b in parsed_pairs):
            raise DoseParseError(
                f"cannot tell which side of the ratio is MSC in '{text.strip()}': "
                "write the order, e.g. '(SC:CC)' or 'MSC:cancer'"
            )
        ratios = []
        for a, b in parsed_pairs:
            msc, cancer = (b, a) if order == "cancer_first" else (a, b)
            if cancer == 0:
                raise DoseParseError(
                    f"ratio {_fmt(msc)}:0 (MSC:cancer) has no cancer cells; it is not a dose on cancer"
                )
            ratios.append({"msc": msc, "cancer": cancer})
        fields["ratios"] = ratios

    for m in _PERCENT_LIST.finditer(text):
        values = [_number(v) for v in re.findall(_NUM, m.group(1))]
        if any(v > 100 for v in values):
            raise DoseParseError(f"percentage above 100 in '{m.group(0)}'")
        fields.setdefault("cm_percent", []).extend(values)  # type: ignore[union-attr]

    _parse_cell_counts(text, fields)

    for m in _EV.finditer(text):
        fields.setdefault("ev_amounts", []).append(  # type: ignore[union-attr]
            {"value": _ev_value(m.group(1)), "unit": m.group("unit").replace("μ", "µ").replace("ug", "µg")}
        )

    dose = Dose.model_validate(fields)
    if dose.is_empty:
        raise DoseParseError(f"no dose found in '{text.strip()}'; write {ACCEPTED_FORMS}")
    return dose


_BARE_RATIO = re.compile(rf"\s*({_NUM})\s*:\s*({_NUM})\s*")


def parse_ratio(text: str) -> float:
    """MSC per cancer cell from a typed ratio: ``"1:10"`` (a bare ratio is MSC:cancer), wording
    that :func:`parse_dose` reads (``"K562 and MSCs at 10:1"``), or a positive number of MSCs per
    cancer cell (``"0.1"``). The one ratio reader of the command line and the web forms.

    Raises :class:`DoseParseError` naming the accepted forms.
    """
    forms = "write a ratio such as 1:10 (MSC:cancer) or a number of MSCs per cancer cell such as 0.1"
    stripped = text.strip()
    if re.fullmatch(_NUM, stripped):
        value = _number(stripped)
    else:
        bare = _BARE_RATIO.fullmatch(text)
        try:
            dose = parse_dose(f"{stripped} (MSC:cancer)" if bare else text)
        except DoseParseError as exc:
            why = str(exc).split("; write ")[0]
            raise DoseParseError(f"cannot read '{stripped}' as an MSC:cancer ratio ({why}); {forms}") from exc
        if len(dose.ratios) != 1:
            raise DoseParseError(
                f"expected one MSC:cancer ratio in '{stripped}', found {len(dose.ratios)}; {forms}"
            )
        value = dose.ratios[0].msc_per_cancer
    if not math.isfinite(value) or value <= 0:
        raise DoseParseError(f"the ratio '{stripped}' must give a positive number of MSCs per cancer cell")
    return value


def _parse_cell_counts(text: str, fields: dict[str, object]) -> None:
    """Cell numbers: per injection, per kg, per well (MSC or cancer), or used for conditioning."""
    for m in re.finditer(
        rf"({_SCI.pattern}|{_NUM})\s*(?P<who>[A-Za-z0-9-]+\s+)?cells?\s*(?:per|/)\s*(?P<unit>injection|kg|well)",
        text,
        re.IGNORECASE,
    ):
        value = _count_value(m.group(1))
        unit = m.group("unit").lower()
        who = (m.group("who") or "").strip()
        if unit == "injection":
            fields.setdefault("cells_per_injection", []).append(value)  # type: ignore[union-attr]
        elif unit == "kg":
            fields.setdefault("cells_per_kg", []).append(value)  # type: ignore[union-attr]
        elif who and not _MSC_MENTION.fullmatch(who):
            fields.setdefault("cancer_cells_per_well", []).append(value)  # type: ignore[union-attr]
        else:
            fields.setdefault("msc_cells_per_well", []).append(value)  # type: ignore[union-attr]
    m = re.search(
        rf"(?:obtained|collected|conditioned)\s+(?:from|by)\s+({_SCI.pattern}|{_NUM})\s*(?:h?[A-Za-z-]*MSCs?|cells)",
        text,
        re.IGNORECASE,
    )
    if m:
        fields["conditioning_cells"] = _count_value(m.group(1))


def _ev_value(token: str) -> float:
    token = token.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?[eE]\+?\d+", token):
        return float(token)
    return _count_value(token)


def _count_value(token: str) -> float:
    sci = _SCI.fullmatch(token.strip())
    if sci:
        return float(sci.group(1)) * 10 ** int(sci.group(2))
    return _number(token)


_DURATION = re.compile(
    rf"((?:{_NUM}\s*(?:,|-|–|to|or|and)\s*)*{_NUM})\s*(hours?|hrs?|h|days?|d|weeks?)\b", re.IGNORECASE
)


def parse_duration(text: str) -> Duration:
    """Exposure times in hours from wording such as "24-96 hours", "for 7 days", "24, 48, 72 h".

    A range "24-96 hours" keeps its two ends; a list keeps every value.
    """
    hours: list[float] = []
    for m in _DURATION.finditer(text):
        unit = m.group(2).lower()
        factor = 24.0 if unit.startswith("d") else 168.0 if unit.startswith("w") else 1.0
        hours.extend(_number(v) * factor for v in re.findall(_NUM, m.group(1)))
    if not hours:
        raise DoseParseError(f"no duration found in '{text.strip()}'")
    if any(h <= 0 for h in hours):
        raise DoseParseError(f"non-positive duration in '{text.strip()}'")
    return Duration(hours=hours, text=text.strip())
