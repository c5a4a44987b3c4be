"""The knowledge base's data model: studies, evidence items and clinical trials.

Every model is strict: unknown fields are errors, enums are closed, and vocabulary fields
(cancer type, cell lines, gene symbols) must name a term of the shipped vocabularies, so a
typo is caught at validation time with the nearest known terms suggested.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    computed_field,
    field_validator,
    model_serializer,
    model_validator,
)

from mscatlas.kb.dose import Dose, Duration
from mscatlas.kb.enums import (
    CancerClass,
    Change,
    CurationStatus,
    Delivery,
    Direction,
    Endpoint,
    EngineeringKind,
    EvidenceLevel,
    MechanismKind,
    MscSource,
    MscSpecies,
    Phase,
    Setting,
    TrialPurpose,
)
from mscatlas.kb.numbers import NumbersOnly
from mscatlas.kb.trial_dose import RegistryId, TrialDose, registry_of
from mscatlas.kb.vocab import load_vocabulary

__all__ = [
    "SCHEMA_VERSION",
    "ClinicalTrial",
    "Dataset",
    "Engineering",
    "EvidenceItem",
    "Flag",
    "Host",
    "Mechanism",
    "Provenance",
    "QuantitativeOutcome",
    "ReportingChecklist",
    "RiskOfBias",
    "Study",
    "TrialArm",
    "TrialDate",
    "TrialIntervention",
]

SCHEMA_VERSION = 2
# Schema 2 (field-scale curation): studies outside the review (no ``ref``, id ``pmid<PMID>``),
# SYRCLE risk of bias and reporting completeness on studies, the in vivo host on evidence items,
# engineering payloads, and outcomes read off figures (flagged, with the method).

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


class _Strict(NumbersOnly):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False)


class Flag(_Strict):
    """A known problem with a record, with the curator's explanation."""

    code: str
    note: Text

    @field_validator("code")
    @classmethod
    def _known_code(cls, v: str) -> str:
        if v not in FLAG_CODES:
            raise ValueError(f"unknown flag code '{v}'; known: {', '.join(sorted(FLAG_CODES))}")
        return v


class Provenance(_Strict):
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


class Mechanism(_Strict):
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


class Engineering(_Strict):
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


RobAnswer = Literal["yes", "no", "unclear"]
SYRCLE_ITEMS: dict[str, str] = {
    "sequence_generation": "allocation sequence adequately generated and applied",
    "baseline_characteristics": "groups similar at baseline or adjusted for confounders",
    "allocation_concealment": "allocation adequately concealed",
    "random_housing": "animals randomly housed during the experiment",
    "blinding_caregivers": "caregivers and investigators blinded to the intervention",
    "random_outcome_assessment": "animals selected at random for outcome assessment",
    "blinding_outcome_assessors": "outcome assessor blinded",
    "incomplete_outcome_data": "incomplete outcome data adequately addressed",
    "selective_reporting": "reports free of selective outcome reporting",
    "other_bias": "free of other problems that could cause a high risk of bias",
}


class RiskOfBias(_Strict):
    """SYRCLE's risk-of-bias tool for animal studies (Hooijmans et al. 2014, BMC Med Res Methodol
    14:43): ten signalling questions, each answered ``yes`` (low risk), ``no`` (high risk) or
    ``unclear`` (not reported). Filled for every study with in vivo evidence."""

    sequence_generation: RobAnswer
    baseline_characteristics: RobAnswer
    allocation_concealment: RobAnswer
    random_housing: RobAnswer
    blinding_caregivers: RobAnswer
    random_outcome_assessment: RobAnswer
    blinding_outcome_assessors: RobAnswer
    incomplete_outcome_data: RobAnswer
    selective_reporting: RobAnswer
    other_bias: RobAnswer
    assessed_from: Literal["full_text", "abstract"]
    notes: str | None = None

    def answers(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in SYRCLE_ITEMS}


class EvReporting(_Strict):
    """MISEV2018 minimal information for an EV study: what the paper reports."""

    isolation_method: str | None = Field(
        default=None, description="e.g. 'ultracentrifugation', 'ExoQuick precipitation'; None if unstated"
    )
    particle_quantification: bool | None = None
    positive_markers: bool | None = Field(
        default=None, description="EV proteins shown present (CD63, TSG101)"
    )
    negative_markers: bool | None = Field(default=None, description="non-EV proteins shown absent (calnexin)")
    electron_microscopy: bool | None = None
    nanoparticle_tracking: bool | None = None


class ReportingChecklist(_Strict):
    """How completely the study characterises its MSC product (ISCT 2006 minimal criteria,
    passage and donor; MISEV2018 for EVs). ``True``: reported; ``False``: not reported;
    ``None``: the curator could not tell from what was read."""

    surface_markers: bool | None = Field(default=None, description="ISCT positive/negative markers shown")
    trilineage: bool | None = Field(
        default=None, description="osteo-, adipo-, chondrogenic differentiation shown"
    )
    passage: str | None = Field(
        default=None, description="passage used, as stated (e.g. 'P3-P5'); None if unstated"
    )
    donor: str | None = Field(
        default=None, description="donor details as stated (age, sex, number of donors)"
    )
    ev: EvReporting | None = None
    assessed_from: Literal["full_text", "abstract"]


class Study(_Strict):
    """A paper: one of the review's references (``ref``, id ``ref<N>``) or a paper the systematic
    search included (no ``ref``, id ``pmid<PMID>``)."""

    id: RecordId
    ref: RefNumber | None = None
    authors: list[Text] = Field(
        default_factory=list,
        description="as listed; may be empty only for a searched study whose author list was not seen",
    )
    et_al: bool = False
    title: Text
    journal: Text
    year: Annotated[int, Field(ge=1900, le=2100)]
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    doi: Annotated[str, StringConstraints(pattern=r"^10\.\d{4,9}/\S+$")] | None = None
    pmid: Annotated[str, StringConstraints(pattern=r"^\d{1,9}$")] | None = None
    pmcid: Annotated[str, StringConstraints(pattern=r"^PMC\d{1,9}$")] | None = None
    review_citation: str | None = Field(default=None, description="the entry as printed in the review")
    candidate: str | None = Field(default=None, description="the intake candidate this study came from")
    search: str | None = Field(default=None, description="the recorded search (query id) that found it")
    risk_of_bias: RiskOfBias | None = None
    reporting: ReportingChecklist | None = None
    flags: list[Flag] = Field(default_factory=list)
    notes: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def in_review(self) -> bool:
        """Whether the study is one of the review's references (its selection)."""
        return self.ref is not None

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: object) -> object:
        if isinstance(data, dict) and "in_review" in data:
            data = dict(data)
            claimed = data.pop("in_review")
            if bool(claimed) != (data.get("ref") is not None):
                raise ValueError("in_review contradicts ref")
        return data

    @model_validator(mode="after")
    def _id_matches_ref(self) -> Study:
        if not self.authors and (self.ref is not None or not any(f.code == "unverified" for f in self.flags)):
            raise ValueError("authors is empty: list them, or flag 'unverified' when the list was not seen")
        if self.ref is not None:
            if self.id != f"ref{self.ref}":
                raise ValueError(f"study id must be 'ref{self.ref}' for reference {self.ref}")
        elif self.pmid is not None:
            if self.id != f"pmid{self.pmid}":
                raise ValueError(f"study id must be 'pmid{self.pmid}' for PMID {self.pmid}")
        elif self.id.startswith(("ref", "pmid")) or self.doi is None:
            raise ValueError(
                "a study outside the review needs a pmid (id 'pmid<PMID>') or a doi and its own id"
            )
        return self


class QuantitativeOutcome(_Strict):
    """A number the paper reports for this finding, with where it was read.

    ``kind`` says which fields hold it: ``group_summary`` (treated and control mean, SD, n),
    ``counts`` (events and totals per arm) or ``reported_effect`` (an effect with its measure,
    and a CI or p-value when given).
    """

    kind: Literal["group_summary", "counts", "reported_effect"]
    measure: Text = Field(description="what was measured, e.g. 'tumour volume', 'viable cells (MTT)'")
    unit: str | None = None
    time_point: str | None = Field(default=None, description="e.g. 'day 28', '72 h'")
    arm: str | None = Field(default=None, description="which dose or group, when the item has several")
    treated_mean: float | None = None
    treated_sd: Annotated[float, Field(ge=0)] | None = None
    treated_n: Annotated[int, Field(ge=1)] | None = None
    control_mean: float | None = None
    control_sd: Annotated[float, Field(ge=0)] | None = None
    control_n: Annotated[int, Field(ge=1)] | None = None
    treated_events: Annotated[int, Field(ge=0)] | None = None
    treated_total: Annotated[int, Field(ge=1)] | None = None
    control_events: Annotated[int, Field(ge=0)] | None = None
    control_total: Annotated[int, Field(ge=1)] | None = None
    effect_measure: str | None = Field(
        default=None, description="e.g. 'percent inhibition', 'fold change', 'ratio of means'"
    )
    effect: float | None = None
    ci_lb: float | None = None
    ci_ub: float | None = None
    p_value: Annotated[float, Field(ge=0, le=1)] | None = None
    source: Text = Field(description="where the number was read, e.g. 'abstract', 'Fig. 3B legend'")
    from_figure: bool = Field(default=False, description="read off a plot rather than text or a table")
    figure_method: str | None = Field(
        default=None, description="how a figure was read, e.g. 'axis-calibrated reading (WebPlotDigitizer)'"
    )
    notes: str | None = None

    @model_validator(mode="after")
    def _complete_for_kind(self) -> QuantitativeOutcome:
        if self.from_figure and not self.figure_method:
            raise ValueError("an outcome read off a figure needs figure_method")
        needed = {
            "group_summary": (
                "treated_mean",
                "treated_sd",
                "treated_n",
                "control_mean",
                "control_sd",
                "control_n",
            ),
            "counts": ("treated_events", "treated_total", "control_events", "control_total"),
            "reported_effect": ("effect_measure", "effect"),
        }[self.kind]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} outcome needs {', '.join(missing)}")
        if self.kind == "counts" and (
            self.treated_events > self.treated_total or self.control_events > self.control_total  # type: ignore[operator]
        ):
            raise ValueError("events cannot exceed the total")
        if self.ci_lb is not None and self.ci_ub is not None and self.ci_lb > self.ci_ub:
            raise ValueError("ci_lb is above ci_ub")
        return self


class Host(_Strict):
    """The animal an in vivo finding was made in, and how the MSC donor relates to it."""

    species: Literal["mouse", "rat", "other"]
    strain: str | None = Field(default=None, description="e.g. 'BALB/c nude', 'NOD/SCID', 'C57BL/6'")
    immune_status: Literal["immunodeficient", "immunocompetent", "humanized"] | None = None
    msc_relation: Literal["xenogeneic", "allogeneic", "syngeneic", "autologous"] | None = Field(
        default=None,
        description="MSC donor vs host: another species (xenogeneic), same species other strain "
        "(allogeneic), same inbred strain (syngeneic), the same animal (autologous)",
    )


class EvidenceItem(_Strict):
    """One finding: one MSC product, one cancer model, one setting, one delivery, one endpoint."""

    id: RecordId
    study: RecordId
    refs: list[RefNumber] = Field(
        default_factory=list, description="the review's reference numbers for it; empty outside the review"
    )
    msc_species: MscSpecies
    msc_source: list[MscSource] = Field(min_length=1)
    source_detail: str | None = None
    engineering: list[Engineering] = Field(default_factory=list)
    cancer_type: Text
    cancer_class: CancerClass
    cell_lines: list[Text] = Field(default_factory=list)
    model_detail: str | None = Field(
        default=None, description="primary cells, animal host, tumour site: what the lines don't say"
    )
    delivery: Delivery
    setting: Setting
    route: str | None = Field(default=None, description="in vivo: intravenous, subcutaneous, ...")
    host: Host | None = Field(default=None, description="in vivo only: the animal host")
    dose: Dose = Field(default_factory=Dose)
    duration: Duration | None = None
    endpoint: Endpoint
    direction: Direction
    dose_dependent: bool | None = None
    mechanisms: list[Mechanism] = Field(default_factory=list)
    outcomes: list[QuantitativeOutcome] = Field(default_factory=list)
    evidence_level: EvidenceLevel
    curation_status: CurationStatus = CurationStatus.accepted
    provenance: Provenance
    flags: list[Flag] = Field(default_factory=list)
    notes: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def engineered(self) -> bool:
        return bool(self.engineering)

    def reference_key(self) -> tuple[int, int, str, str]:
        """Sort key: the review's items by reference number first, then the field's by study id."""
        if self.refs:
            return (0, self.refs[0], "", self.id)
        return (1, 0, self.study, self.id)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ontology(self) -> dict[str, dict[str, str]]:
        """Ontology identifiers of the record's terms, looked up in the shipped vocabularies."""
        vocab = load_vocabulary()
        cancer = vocab.cancer_types.get(self.cancer_type)
        tissues = {}
        for source in self.msc_source:
            uberon = None if source is MscSource.unspecified else vocab.tissues.get(source.value)["uberon"]
            if uberon:  # iPSC-derived and tumour-associated MSCs have no tissue term
                tissues[source.value] = uberon
        return {
            "msc_source": tissues,
            "cancer_type": {k: str(cancer[k]) for k in ("oncotree", "ncit") if cancer.get(k)},
            "cell_lines": {name: vocab.cell_lines.get(name)["cellosaurus"] for name in self.cell_lines},
            "genes": {
                m.target: vocab.genes.get(m.target)["hgnc"]
                for m in self.mechanisms
                if m.kind is MechanismKind.gene
            },
        }

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: object) -> object:
        # Exports carry derived fields: ``ontology`` is recomputed from the vocabularies, and
        # ``engineered`` is accepted back only if it agrees with ``engineering``.
        if isinstance(data, dict) and ({"engineered", "ontology"} & set(data)):
            data = dict(data)
            data.pop("ontology", None)
            if "engineered" in data:
                claimed = data.pop("engineered")
                if bool(claimed) != bool(data.get("engineering")):
                    raise ValueError("engineered contradicts engineering")
        return data

    @field_validator("cancer_type")
    @classmethod
    def _known_cancer_type(cls, v: str) -> str:
        return load_vocabulary().cancer_types.resolve(v)

    @field_validator("cell_lines")
    @classmethod
    def _known_cell_lines(cls, v: list[str]) -> list[str]:
        lines = load_vocabulary().cell_lines
        return [lines.resolve(x) for x in v]

    @model_validator(mode="after")
    def _consistent(self) -> EvidenceItem:
        vocab = load_vocabulary()
        expected_class = vocab.cancer_types.get(self.cancer_type)["class"]
        if expected_class != self.cancer_class.value:
            raise ValueError(
                f"cancer_class '{self.cancer_class.value}' contradicts cancer_type "
                f"'{self.cancer_type}' (a {expected_class} cancer)"
            )
        in_vivo_delivery = {Delivery.cell_injection, Delivery.co_injection}
        if self.delivery in in_vivo_delivery and self.setting is not Setting.in_vivo:
            raise ValueError(f"delivery '{self.delivery.value}' is an in vivo delivery")
        if self.delivery in {Delivery.direct_coculture, Delivery.transwell} and (
            self.setting is not Setting.in_vitro
        ):
            raise ValueError(f"delivery '{self.delivery.value}' is an in vitro delivery")
        level = (
            EvidenceLevel.preclinical_in_vitro
            if self.setting is Setting.in_vitro
            else EvidenceLevel.preclinical_in_vivo
        )
        if self.evidence_level is not EvidenceLevel.clinical and self.evidence_level is not level:
            raise ValueError(
                f"evidence_level '{self.evidence_level.value}' contradicts setting '{self.setting.value}'"
            )
        if re.fullmatch(r"ref\d+", self.study) and int(self.study[3:]) not in self.refs:
            raise ValueError(f"refs {self.refs} must include the study's reference {self.study[3:]}")
        if not re.fullmatch(r"ref\d+", self.study) and self.refs:
            raise ValueError("refs are the review's reference numbers; a study outside the review has none")
        if self.host is not None and self.setting is not Setting.in_vivo:
            raise ValueError("host is for in vivo items only")
        return self


RegistryType = Literal["ACTUAL", "ESTIMATED"]
TRIAL_DATE_PATTERN = r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$"


class TrialDate(_Strict):
    """A registry date as the registry states it: year, month or day precision, and whether it
    is ACTUAL or ESTIMATED when that is known.

    Schema 1 stored dates as plain strings ("2016-08"); such a string is read as a date of
    unknown type, and a date of unknown type is written back as that plain string, so curated
    records keep their shape and content hash.
    """

    date: Annotated[str, StringConstraints(pattern=TRIAL_DATE_PATTERN)]
    type: RegistryType | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_plain_string(cls, data: object) -> object:
        return {"date": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _real_day(self) -> TrialDate:
        if self.precision == "day":
            dt.date.fromisoformat(self.date)  # 2019-02-30 raises ValueError
        return self

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> str | dict[str, Any]:
        return self.date if self.type is None else handler(self)

    @property
    def precision(self) -> Literal["year", "month", "day"]:
        return ("year", "month", "day")[self.date.count("-")]

    @property
    def year(self) -> int:
        return int(self.date[:4])


class TrialArm(_Strict):
    """An arm (group) of a registered trial, as the registry names it."""

    label: Text
    type: str | None = Field(default=None, description="registry enum, e.g. EXPERIMENTAL")
    description: str | None = None
    intervention_names: list[Text] = Field(default_factory=list)


class TrialIntervention(_Strict):
    """An intervention of a registered trial."""

    type: str | None = Field(default=None, description="registry enum, e.g. BIOLOGICAL, DRUG")
    name: Text
    description: str | None = None
    other_names: list[Text] = Field(default_factory=list)


class ClinicalTrial(_Strict):
    """A registered trial of an MSC product in cancer or its treatment's side effects.

    ``nct_id`` is the trial's key: its ClinicalTrials.gov number where it has one, otherwise its
    id in the registry that holds it (EudraCT, ChiCTR, ISRCTN, ...; see ``registry``). Other
    registrations of the same trial are listed in ``cross_registrations``.
    """

    nct_id: Annotated[str, StringConstraints(min_length=1, max_length=40)] = Field(
        description="NCT number, or the registry id (EudraCT, ChiCTR, ISRCTN...) of a trial with none"
    )
    title: Text = Field(description="treatment as the review's Table 2 names it")
    treatment: Text
    product: Annotated[str, StringConstraints(pattern=r"^(cells|extracellular_vesicles|cells_with_hsc)$")] = (
        "cells"
    )
    msc_source: list[MscSource] = Field(min_length=1)
    engineered: bool
    engineering: list[EngineeringKind] = Field(default_factory=list)
    cancer_type: Text = Field(description="condition as the review's Table 2 gives it")
    conditions: list[Text] = Field(default_factory=list)
    purpose: TrialPurpose
    phases: list[Phase] = Field(min_length=1)
    status: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z_]*$")] | None = Field(
        default=None, description="overall status, ClinicalTrials.gov API v2 enum (e.g. COMPLETED)"
    )
    enrollment: Annotated[int, Field(ge=0)] | None = None
    enrollment_type: RegistryType | None = None
    start_date: TrialDate | None = None
    primary_completion_date: TrialDate | None = None
    completion_date: TrialDate | None = None
    sponsor: str | None = Field(default=None, description="lead sponsor")
    arms: list[TrialArm] | None = None
    interventions: list[TrialIntervention] | None = None
    pmids: list[Annotated[str, StringConstraints(pattern=r"^\d{1,9}$")]] | None = Field(
        default=None, description="PubMed ids the registry links to the trial"
    )
    has_results: bool | None = Field(default=None, description="results posted on the registry")
    cross_registrations: list[RegistryId] = Field(
        default_factory=list, description="the same trial in other registries"
    )
    donor: Literal["autologous", "allogeneic"] | None = None
    payload: str | None = Field(
        default=None, description="what an engineered product carries (IFN-beta, TRAIL)"
    )
    route: str | None = Field(default=None, description="e.g. intravenous, intra-arterial, intratumoral")
    dose: TrialDose | None = Field(default=None, description="dose per administration, structured")
    result_pmids: list[Annotated[str, StringConstraints(pattern=r"^\d{1,9}$")]] = Field(
        default_factory=list, description="publications that report the trial's results"
    )
    field_sources: dict[str, Text] = Field(
        default_factory=dict,
        description="field name -> where its value was read (registry record section, paper, table)",
    )
    provenance: Provenance
    flags: list[Flag] = Field(default_factory=list)
    notes: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def registry(self) -> str:
        """The registry whose id is the trial's key."""
        return registry_of(self.nct_id)

    @model_validator(mode="before")
    @classmethod
    def _drop_registry(cls, data: object) -> object:
        if isinstance(data, dict) and "registry" in data:
            data = dict(data)
            claimed = data.pop("registry")
            key = data.get("nct_id")
            if isinstance(key, str):
                try:
                    actual = registry_of(key)
                except ValueError:
                    actual = None
                if actual is not None and claimed != actual:
                    raise ValueError(f"registry '{claimed}' contradicts nct_id '{key}' (a {actual} id)")
        return data

    @field_validator("nct_id")
    @classmethod
    def _known_registry_format(cls, v: str) -> str:
        registry_of(v)  # ValueError naming the value if no registry has this format
        return v

    @model_validator(mode="after")
    def _engineering_consistent(self) -> ClinicalTrial:
        unknown = set(self.field_sources) - set(type(self).model_fields)
        if unknown:
            raise ValueError(f"field_sources names unknown fields: {sorted(unknown)}")
        if self.nct_id.startswith("NCT") and any(
            r.registry == "ClinicalTrials.gov" for r in self.cross_registrations
        ):
            raise ValueError("a trial keyed by its NCT number cannot list another NCT number")
        if self.engineered != bool(self.engineering):
            raise ValueError("engineered must be true exactly when engineering lists a modification")
        order = list(Phase)
        if self.phases != sorted(set(self.phases), key=order.index):
            raise ValueError("phases must be distinct and in ascending order")
        return self


class Dataset(_Strict):
    """The whole knowledge base, as exported and loaded."""

    schema_version: int = SCHEMA_VERSION
    studies: list[Study] = Field(default_factory=list)
    evidence: list[EvidenceItem] = Field(default_factory=list)
    trials: list[ClinicalTrial] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_and_linked(self) -> Dataset:
        for name, ids in (
            ("study", [s.id for s in self.studies]),
            ("evidence", [e.id for e in self.evidence]),
            ("trial", [t.nct_id for t in self.trials]),
        ):
            seen: set[str] = set()
            for i in ids:
                if i in seen:
                    raise ValueError(f"duplicate {name} id '{i}'")
                seen.add(i)
        return self
