"""The knowledge base's data model: studies, evidence items and clinical trials (the trial models
are in :mod:`mscatlas.kb.trial_models` and the shared pieces in :mod:`mscatlas.kb.model_parts`;
every public name is importable from here).

Every model is strict: unknown fields are errors, enums are closed, and vocabulary fields
(cancer type, cell lines, gene symbols) must name a term of the shipped vocabularies, so a
typo is caught at validation time with the nearest known terms suggested.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    computed_field,
    field_validator,
    model_validator,
)

from mscatlas.kb.dose import Dose, Duration
from mscatlas.kb.enums import (
    CancerClass,
    CurationStatus,
    Delivery,
    Direction,
    Endpoint,
    EvidenceLevel,
    MechanismKind,
    MscSource,
    MscSpecies,
    Setting,
)
from mscatlas.kb.model_parts import (
    FLAG_CODES,
    Engineering,
    Flag,
    Mechanism,
    Provenance,
    RecordId,
    RefNumber,
    StrictModel,
    Text,
)
from mscatlas.kb.trial_models import (
    TRIAL_DATE_PATTERN,
    ClinicalTrial,
    TrialArm,
    TrialDate,
    TrialIntervention,
)
from mscatlas.kb.vocab import load_vocabulary

__all__ = [
    "FLAG_CODES",
    "SCHEMA_VERSION",
    "TRIAL_DATE_PATTERN",
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


class RiskOfBias(StrictModel):
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


class EvReporting(StrictModel):
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


class ReportingChecklist(StrictModel):
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


class Study(StrictModel):
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


class QuantitativeOutcome(StrictModel):
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


class Host(StrictModel):
    """The animal an in vivo finding was made in, and how the MSC donor relates to it."""

    species: Literal["mouse", "rat", "other"]
    strain: str | None = Field(default=None, description="e.g. 'BALB/c nude', 'NOD/SCID', 'C57BL/6'")
    immune_status: Literal["immunodeficient", "immunocompetent", "humanized"] | None = None
    msc_relation: Literal["xenogeneic", "allogeneic", "syngeneic", "autologous"] | None = Field(
        default=None,
        description="MSC donor vs host: another species (xenogeneic), same species other strain "
        "(allogeneic), same inbred strain (syngeneic), the same animal (autologous)",
    )


class EvidenceItem(StrictModel):
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


class Dataset(StrictModel):
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
