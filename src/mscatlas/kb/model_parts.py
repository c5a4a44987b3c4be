"""The pieces every kind of record shares: the strict base model, text and id types, flags
(with their closed list of codes), provenance, and the engineering and mechanism sub-records.
Split from :mod:`mscatlas.kb.models` so that the trial models (:mod:`mscatlas.kb.trial_models`)
and the study and evidence models both build on them without importing each other.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from mscatlas.kb.enums import (
    Change,
    MechanismKind,
)
from mscatlas.kb.numbers import NumbersOnly
from mscatlas.kb.vocab import load_vocabulary

__all__ = [
    "FLAG_CODES",
    "Engineering",
    "Flag",
    "Mechanism",
    "Provenance",
    "RecordId",
    "RefNumber",
    "StrictModel",
    "Text",
]

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
RecordId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)]
RefNumber = Annotated[int, Field(ge=1, le=80)]

FLAG_CODES = {
    "source_mismatch": "the review names a different MSC tissue source than the cited paper",
    "species_mismatch": "the review names a different MSC species than the cited paper",
    "model_mismatch": "the review names a different cancer model than the cited paper",
    "direction_mismatch": "the review states a different effect than the cited paper",
    "copied_cell": "a table cell appears to be copied from another row",
    "citation_mismatch": "the cited paper does not appear to report this finding",
    "secondary_citation": "the review attributes to this paper a finding the paper cites from others",
    "not_msc": "the cells tested are not culture-expanded MSCs",
    "abstract_only": "the review (or this curation) relied on the abstract only",
    "reference_garbled": "the reference entry in the review text is damaged",
    "missing_reference": "the reference is cited but absent from the review's reference list",
    "wording_error": "the review's wording of this finding contains an evident slip",
    "unverified": "the primary source could not be reached to check this item",
    "figure_reading": "a number was read off a figure by axis calibration, not from text or a table",
    "sources_disagree": "two sources state different values for this field; both are recorded in notes",
    "retracted": "the paper has been retracted or carries an expression of concern",
    "double_read_mismatch": "a blind second reading disagreed on a field; the resolution is in notes",
    "secondary_source": "a field was read in a review's table, not in the registry or the trial's paper",
}


class StrictModel(NumbersOnly):
    """The base of every record model: unknown fields are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False)


class Flag(StrictModel):
    """A known problem with a record, with the curator's explanation."""

    code: str
    note: Text

    @field_validator("code")
    @classmethod
    def _known_code(cls, v: str) -> str:
        if v not in FLAG_CODES:
            raise ValueError(f"unknown flag code '{v}'; known: {', '.join(sorted(FLAG_CODES))}")
        return v


class Provenance(StrictModel):
    """Where a curated fact came from.

    Items of the review's studies say where the review states them (``review_location``);
    items found by the systematic search have no review location and must name the primary
    source that was read.
    """

    review_location: Text | None = Field(
        default=None, description="e.g. 'Table 1, row 3' or 'Section 4, paragraph 4'; None outside the review"
    )
    table: Annotated[int, Field(ge=1, le=2)] | None = None
    row: Annotated[int, Field(ge=1)] | None = None
    section: str | None = None
    summary: Text = Field(description="one line in the curator's own words")
    primary_source_checked: bool = False
    primary_source: str | None = Field(
        default=None, description="what was read: e.g. 'PubMed abstract, PMID 19345434'"
    )
    primary_source_says: str | None = Field(
        default=None, description="what the primary source states where it matters"
    )

    @model_validator(mode="after")
    def _checked_needs_source(self) -> Provenance:
        if self.primary_source_checked and not self.primary_source:
            raise ValueError("primary_source_checked is true but primary_source is empty")
        if self.review_location is None and not self.primary_source_checked:
            raise ValueError("a record outside the review needs primary_source_checked and primary_source")
        if (self.table is None) != (self.row is None):
            raise ValueError("table and row go together")
        return self


class Mechanism(StrictModel):
    """A gene, pathway or process reported to change, with its direction."""

    target: Text
    kind: MechanismKind
    change: Change
    note: str | None = None

    @model_validator(mode="after")
    def _gene_is_hgnc(self) -> Mechanism:
        if self.kind is MechanismKind.gene:
            canonical = load_vocabulary().genes.resolve(self.target)
            if canonical != self.target:
                object.__setattr__(self, "target", canonical)
        return self


class Engineering(StrictModel):
    """A modification or preconditioning of the MSC product."""

    kind: Annotated[
        str,
        StringConstraints(
            pattern=r"^(cytokine_activation|heat_treatment|hypoxia|culture_3d|senescence|"
            r"gene_modified|virus_loaded|sirna_loaded|drug_loaded|other)$"
        ),
    ]
    detail: Text
    payload: Text | None = Field(
        default=None,
        description="what the product carries or expresses: a gene or protein (TRAIL, IFN-beta), a "
        "miRNA (miR-124), a drug (paclitaxel), a virus (oncolytic adenovirus ICOVIR5)",
    )
