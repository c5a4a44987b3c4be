"""Clinical translation: dose-finding designs (3+3, BOIN, CRM) and their operating characteristics."""

from mscatlas.trials._checks import DesignInputError
from mscatlas.trials.boin import boin_boundaries, boin_next_dose, boin_select_mtd, boin_simulate
from mscatlas.trials.crm import CrmModel, crm_next_dose, crm_posterior, crm_simulate
from mscatlas.trials.observed import DoseCounts, parse_dose_counts
from mscatlas.trials.oc import OperatingCharacteristics
from mscatlas.trials.recommendation import Recommendation
from mscatlas.trials.three_plus_three import three_plus_three_exact, three_plus_three_simulate

__all__ = [
    "CrmModel",
    "DesignInputError",
    "DoseCounts",
    "OperatingCharacteristics",
    "Recommendation",
    "boin_boundaries",
    "boin_next_dose",
    "boin_select_mtd",
    "boin_simulate",
    "crm_next_dose",
    "crm_posterior",
    "crm_simulate",
    "parse_dose_counts",
    "three_plus_three_exact",
    "three_plus_three_simulate",
]
