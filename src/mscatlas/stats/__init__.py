"""Statistics for mscatlas: synthesis of the knowledge base and a meta-analysis engine.

Synthesis: ``harmonize`` (one inhibition axis, one dose scale per delivery), ``harvest`` and
``conflicts`` (vote counting with study-level exact intervals), and the multilevel moderator
model (``fit_moderator_model``, ``leave_one_study_out``), run as one pipeline by
``run_synthesis`` (harmonise → fit → leave-one-study-out → verdict).

The meta-analysis engine (effect sizes, τ² estimators, meta-regression, Egger's test,
trim-and-fill, leave-one-out, forest and funnel plots, and the multilevel model ``rma_mv``
with profile-likelihood CIs and CR2 cluster-robust inference) is written here rather than imported:
no maintained Python library covers it. PyMARE has no RR/OR/ROM effect sizes, no Egger test,
no trim-and-fill and no plots; statsmodels' ``combine_effects`` offers only DL and PM without
meta-regression. Every number is checked against R's metafor in
``tests/test_metafor_alignment.py``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mscatlas.stats.bias import EggerTest, TrimFill, regtest, trimfill
    from mscatlas.stats.conflict import Conflict, Stratum, conflicts, harvest
    from mscatlas.stats.effect_sizes import EffectSizes, InputError, escalc
    from mscatlas.stats.harmonize import HarmonizedItem, harmonize
    from mscatlas.stats.influence import LeaveOneOut, leave1out
    from mscatlas.stats.meta_model import MetaResult, Prediction, rma
    from mscatlas.stats.moderators import fit_moderator_model, leave_one_study_out
    from mscatlas.stats.multilevel import MultilevelResult, rma_mv
    from mscatlas.stats.robust import RobustResult
    from mscatlas.stats.synthesis import SynthesisResult, run_synthesis
    from mscatlas.stats.tau2 import METHODS

__all__ = [
    "METHODS",
    "Conflict",
    "EffectSizes",
    "EggerTest",
    "HarmonizedItem",
    "InputError",
    "LeaveOneOut",
    "MetaResult",
    "MultilevelResult",
    "Prediction",
    "RobustResult",
    "Stratum",
    "SynthesisResult",
    "TrimFill",
    "conflicts",
    "escalc",
    "fit_moderator_model",
    "harmonize",
    "harvest",
    "leave1out",
    "leave_one_study_out",
    "regtest",
    "rma",
    "rma_mv",
    "run_synthesis",
    "trimfill",
]

# Each public name lives in one submodule, imported when the name is first used (PEP 562):
# `import mscatlas.stats.meta_model` (the meta-analysis CLI) then does not import the synthesis
# pipeline, the multilevel model or scipy.stats (issue 14 point 4, start-up).
_WHERE: dict[str, str] = {
    "EggerTest": "mscatlas.stats.bias",
    "TrimFill": "mscatlas.stats.bias",
    "regtest": "mscatlas.stats.bias",
    "trimfill": "mscatlas.stats.bias",
    "Conflict": "mscatlas.stats.conflict",
    "Stratum": "mscatlas.stats.conflict",
    "conflicts": "mscatlas.stats.conflict",
    "harvest": "mscatlas.stats.conflict",
    "EffectSizes": "mscatlas.stats.effect_sizes",
    "InputError": "mscatlas.stats.effect_sizes",
    "escalc": "mscatlas.stats.effect_sizes",
    "HarmonizedItem": "mscatlas.stats.harmonize",
    "harmonize": "mscatlas.stats.harmonize",
    "LeaveOneOut": "mscatlas.stats.influence",
    "leave1out": "mscatlas.stats.influence",
    "MetaResult": "mscatlas.stats.meta_model",
    "Prediction": "mscatlas.stats.meta_model",
    "rma": "mscatlas.stats.meta_model",
    "fit_moderator_model": "mscatlas.stats.moderators",
    "leave_one_study_out": "mscatlas.stats.moderators",
    "MultilevelResult": "mscatlas.stats.multilevel",
    "rma_mv": "mscatlas.stats.multilevel",
    "RobustResult": "mscatlas.stats.robust",
    "SynthesisResult": "mscatlas.stats.synthesis",
    "run_synthesis": "mscatlas.stats.synthesis",
    "METHODS": "mscatlas.stats.tau2",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
