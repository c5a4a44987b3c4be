"""Clinical translation: the ClinicalTrials.gov registry (client, parser, classification,
landscape) and dose-finding designs (3+3, BOIN, CRM) with their operating characteristics."""

from mscatlas.trials._checks import DesignInputError
from mscatlas.trials.boin import boin_boundaries, boin_next_dose, boin_select_mtd, boin_simulate
from mscatlas.trials.classify import TrialClassification, classify_trial
from mscatlas.trials.crm import CrmModel, crm_next_dose, crm_posterior, crm_simulate
from mscatlas.trials.ctgov import CacheMiss, CtgovClient, CtgovError
from mscatlas.trials.landscape import Landscape, landscape
from mscatlas.trials.observed import DoseCounts, parse_dose_counts
from mscatlas.trials.oc import OperatingCharacteristics
from mscatlas.trials.parse import StudyParseError, parse_study, read_study_file
from mscatlas.trials.recommendation import Recommendation
from mscatlas.trials.three_plus_three import three_plus_three_exact, three_plus_three_simulate

__all__ = [
    "CacheMiss",
    "CrmModel",
    "CtgovClient",
    "CtgovError",
    "DesignInputError",
    "DoseCounts",
    "Landscape",
    "OperatingCharacteristics",
    "Recommendation",
    "StudyParseError",
    "TrialClassification",
    "boin_boundaries",
    "boin_next_dose",
    "boin_select_mtd",
    "boin_simulate",
    "classify_trial",
    "crm_next_dose",
    "crm_posterior",
    "crm_simulate",
    "landscape",
    "parse_dose_counts",
    "parse_study",
    "read_study_file",
    "three_plus_three_exact",
    "three_plus_three_simulate",
]
