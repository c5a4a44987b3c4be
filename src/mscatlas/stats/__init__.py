"""Statistics for mscatlas: synthesis of the knowledge base and a meta-analysis engine.

The meta-analysis engine (effect sizes, τ² estimators, meta-regression, Egger's test,
trim-and-fill, leave-one-out, forest and funnel plots) is written here rather than imported:
no maintained Python library covers it. PyMARE has no RR/OR/ROM effect sizes, no Egger test,
no trim-and-fill and no plots; statsmodels' ``combine_effects`` offers only DL and PM without
meta-regression. Every number is checked against R's metafor in
``tests/test_metafor_alignment.py``.
"""

from mscatlas.stats.bias import EggerTest, TrimFill, regtest, trimfill
from mscatlas.stats.effect_sizes import EffectSizes, InputError, escalc
from mscatlas.stats.influence import LeaveOneOut, leave1out
from mscatlas.stats.meta_model import MetaResult, Prediction, rma
from mscatlas.stats.tau2 import METHODS

__all__ = [
    "METHODS",
    "EffectSizes",
    "EggerTest",
    "InputError",
    "LeaveOneOut",
    "MetaResult",
    "Prediction",
    "TrimFill",
    "escalc",
    "leave1out",
    "regtest",
    "rma",
    "trimfill",
]
