"""The clinical trial record: registry dates with their precision, arms, interventions, and the
trial itself (registry id, purpose, phases, dose as registered). Re-exported by
:mod:`mscatlas.kb.models`, the one import path of the data model.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    computed_field,
    field_validator,
    model_serializer,
    model_validator,
)

from mscatlas.kb.enums import (
    EngineeringKind,
    MscSource,
    Phase,
    TrialPurpose,
)
from mscatlas.kb.model_parts import Flag, Provenance, StrictModel, Text
from mscatlas.kb.trial_dose import RegistryId, TrialDose, registry_of

__all__ = [
    "TRIAL_DATE_PATTERN",
    "ClinicalTrial",
    "RegistryType",
    "TrialArm",
    "TrialDate",
    "TrialIntervention",
]

RegistryType = Literal["ACTUAL", "ESTIMATED"]

TRIAL_DATE_PATTERN = r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$"


class TrialDate(StrictModel):
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


class TrialArm(StrictModel):
    """An arm (group) of a registered trial, as the registry names it."""

    label: Text
    type: str | None = Field(default=None, description="registry enum, e.g. EXPERIMENTAL")
    description: str | None = None
    intervention_names: list[Text] = Field(default_factory=list)


class TrialIntervention(StrictModel):
    """An intervention of a registered trial."""

    type: str | None = Field(default=None, description="registry enum, e.g. BIOLOGICAL, DRUG")
    name: Text
    description: str | None = None
    other_names: list[Text] = Field(default_factory=list)


class ClinicalTrial(StrictModel):
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
    product: Annotated[
        str, StringConstraints(pattern=r"^(cells|extracellular_vesicles|conditioned_medium|cells_with_hsc)$")
    ] = Field(default="cells", description="conditioned_medium: a secretome or supernatant, not EVs alone")
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
