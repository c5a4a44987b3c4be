"""Why results disagree: a Bayesian multilevel logistic model of P(inhibits), with study as a
random intercept (the model, its priors and why it is fitted by grid Laplace are described in
:mod:`~mscatlas.stats.moderator_fit`).

The model lives in three modules, one job each: :mod:`~mscatlas.stats.moderator_design` (items to
design rows), :mod:`~mscatlas.stats.moderator_fit` (the posterior) and
:mod:`~mscatlas.stats.moderator_validation` (held-out performance). This module keeps the one
import path the rest of the package and its users know.
"""

from __future__ import annotations

from mscatlas.stats.moderator_design import BASE_SPEC, MODERATORS, Design, Groups, ModeratorSpec, design
from mscatlas.stats.moderator_fit import (
    COEF_SD,
    INTERCEPT_SD,
    SEED,
    SIGMA_GRID,
    ModeratorFit,
    fit_design,
    fit_moderator_model,
    laplace_mode,
)
from mscatlas.stats.moderator_validation import Validation, leave_one_study_out, paired_bootstrap, verdict

__all__ = [
    "BASE_SPEC",
    "COEF_SD",
    "INTERCEPT_SD",
    "MODERATORS",
    "SEED",
    "SIGMA_GRID",
    "Design",
    "Groups",
    "ModeratorFit",
    "ModeratorSpec",
    "Validation",
    "design",
    "fit_design",
    "fit_moderator_model",
    "laplace_mode",
    "leave_one_study_out",
    "paired_bootstrap",
    "verdict",
]
