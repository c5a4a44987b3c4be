"""Knowledge base: the data model, the curated dataset, validation and the store."""

from mscatlas.kb.dose import Dose, DoseParseError, parse_dose, parse_duration
from mscatlas.kb.models import (
    SCHEMA_VERSION,
    ClinicalTrial,
    Dataset,
    EvidenceItem,
    Study,
)

__all__ = [
    "SCHEMA_VERSION",
    "ClinicalTrial",
    "Dataset",
    "Dose",
    "DoseParseError",
    "EvidenceItem",
    "Study",
    "parse_dose",
    "parse_duration",
]
