"""The moderator model refitted on the field, with the moderators schema 2 records.

Beyond the base model's MSC source, delivery, cancer class, setting and dose (see
:mod:`mscatlas.stats.moderators`), the field model adds, per evidence item:

- ``host_immune``: the in vivo host's immune status (in vitro items take the reference level,
  so the contrast is nested in ``setting=in_vivo``; ``unstated`` where the record has no host);
- ``msc_relation``: MSC donor vs host (xenogeneic is the reference; in vitro items as above);
- ``payload``: the class of what an engineered product carries (none, gene or protein, RNA,
  drug, virus, preconditioning); it replaces the base model's ``engineered`` indicator, which
  is the sum of its levels;
- ``endpoint_family``: growth (proliferation, viability, cell cycle, tumour growth), death
  (apoptosis), spread (migration, invasion, metastasis) or other;
- ``passage``: early (P1-P5) or late (P6 and above) where the study states it, else unstated;
- ``abstract_only``: the item was read from the abstract only (flag ``abstract_only``);
- ``rob_low``: the study's share of SYRCLE answers "yes" (low risk), standardised, with an
  indicator for studies without an assessment;
- ``reporting``: the share of ISCT elements reported (markers, trilineage, passage, donor).

:func:`compare_field_models` scores both models and the majority baseline by leave-one-study-out
log loss and Brier score with a paired bootstrap over studies, and :func:`separability` says
which moderators the data cannot separate: levels with too few items or studies, levels whose
items all go one way, and design columns that other columns nearly determine (variance
inflation). Results are cached per content digest, so the report and the tests fit each
model once per process.

:func:`marginal_effects` gives the rows of one effect plot per moderator: the model's predicted
P(inhibits) for an average study with every item set to one level of the moderator and its
other covariates as observed (an average predictive comparison), with a 95% interval over the
posterior draws. The model is binary (inhibits vs promotes or no effect), so 1 - P(inhibits) is
P(promotes or no effect), not P(promotes) alone. Moderators nested in ``setting=in_vivo``
(:data:`NOT_IN_VIVO`) are averaged over the in vivo items only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from mscatlas.kb.models import EvidenceItem, Study
from mscatlas.stats.harmonize import HarmonizedItem, harmonize
from mscatlas.stats.moderators import (
    MODERATORS,
    SEED,
    Design,
    ModeratorFit,
    ModeratorSpec,
    Validation,
    design,
    fit_design,
    leave_one_study_out,
    paired_bootstrap,
)

__all__ = [
    "FIELD_SPEC",
    "FieldComparison",
    "compare_field_models",
    "endpoint_family",
    "field_covariates",
    "marginal_effects",
    "passage_class",
    "payload_class",
    "separability",
]

FIELD_SPEC = ModeratorSpec(
    categorical={
        **MODERATORS,
        "host_immune": "immunodeficient",
        "msc_relation": "xenogeneic",
        "payload": "none",
        "endpoint_family": "growth",
        "passage": "unstated",
    },
    binary=("abstract_only",),
    numeric=("rob_low", "reporting"),
)
NOT_IN_VIVO = {"host_immune": "immunodeficient", "msc_relation": "xenogeneic"}  # the reference levels
SPARSE_ITEMS = 10  # a level with fewer items, or fewer studies, cannot be told from its reference
SPARSE_STUDIES = 3
HIGH_VIF = 10.0

_ENDPOINT_FAMILY = {
    "proliferation": "growth",
    "viability": "growth",
    "cell_cycle": "growth",
    "tumor_growth": "growth",
    "apoptosis": "death",
    "migration": "spread",
    "invasion": "spread",
    "metastasis": "spread",
}
_PRECONDITIONING = {"cytokine_activation", "heat_treatment", "hypoxia", "culture_3d", "senescence"}
_RNA = re.compile(r"\b(mi[rR]|let-7|si[rR][nN][aA]|lnc|circ)", re.IGNORECASE)


def endpoint_family(endpoint: str) -> str:
    return _ENDPOINT_FAMILY.get(endpoint, "other")


def payload_class(item: EvidenceItem) -> str:
    """The class of the product's engineering: the first that applies, in a fixed order."""
    if not item.engineering:
        return "none"
    kinds = {e.kind for e in item.engineering}
    payloads = " ".join(e.payload or "" for e in item.engineering)
    if kinds & {"drug_loaded"}:
        return "drug"
    if "virus_loaded" in kinds or "virus" in payloads.lower():
        return "virus"
    if "sirna_loaded" in kinds or _RNA.search(payloads):
        return "rna"
    if kinds <= _PRECONDITIONING:
        return "preconditioning"
    return "gene_protein"


def passage_class(text: str | None) -> str:
    """``early`` (highest stated passage P1-P5), ``late`` (P6 and above) or ``unstated``."""
    if not text:
        return "unstated"
    words = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6}
    numbers = [int(n) for n in re.findall(r"(?:\bP|passage\s*)(\d+)", text, flags=re.IGNORECASE)]
    numbers += [v for w, v in words.items() if re.search(rf"\b{w}\b", text, flags=re.IGNORECASE)]
    if not numbers:
        return "unstated"
    return "early" if max(numbers) <= 5 else "late"


def _rob_low(study: Study | None) -> float | None:
    if study is None or study.risk_of_bias is None:
        return None
    answers = list(study.risk_of_bias.answers().values())
    return sum(a == "yes" for a in answers) / len(answers)


def _reporting(study: Study | None) -> float | None:
    if study is None or study.reporting is None:
        return None
    r = study.reporting
    return float(
        np.mean([r.surface_markers is True, r.trilineage is True, r.passage is not None, r.donor is not None])
    )


def field_covariates(evidence: Sequence[EvidenceItem], studies: Sequence[Study]) -> dict[str, dict[str, Any]]:
    """Item id -> the field moderators' values (see the module docstring)."""
    by_id = {s.id: s for s in studies}
    out: dict[str, dict[str, Any]] = {}
    for item in evidence:
        study = by_id.get(item.study)
        values: dict[str, Any] = dict(NOT_IN_VIVO)
        if item.setting.value == "in_vivo":
            host = item.host
            values["host_immune"] = (host.immune_status if host else None) or "unstated"
            values["msc_relation"] = (host.msc_relation if host else None) or "unstated"
        values["payload"] = payload_class(item)
        values["endpoint_family"] = endpoint_family(item.endpoint.value)
        values["passage"] = passage_class(study.reporting.passage if study and study.reporting else None)
        values["abstract_only"] = any(f.code == "abstract_only" for f in item.flags)
        values["rob_low"] = _rob_low(study)
        values["reporting"] = _reporting(study)
        out[item.id] = values
    return out


def _moderator_of(column: str) -> str | None:
    if column == "intercept":
        return None
    if "=" in column:
        return column.split("=", 1)[0]
    return re.sub(r"_(z|missing)$", "", column)


def _vif(X: np.ndarray) -> np.ndarray:
    """Variance inflation of each column but the intercept: 1 / (1 - R^2 on all the others)."""
    out = np.full(X.shape[1], np.nan)
    for j in range(1, X.shape[1]):
        col = X[:, j]
        if np.std(col) == 0:
            out[j] = np.inf
            continue
        others = np.delete(X, j, axis=1)
        coef, *_ = np.linalg.lstsq(others, col, rcond=None)
        resid = col - others @ coef
        r2 = 1 - resid @ resid / np.sum((col - col.mean()) ** 2)
        out[j] = np.inf if r2 >= 1 - 1e-12 else 1 / (1 - r2)
    return out


def separability(d: Design) -> list[dict[str, Any]]:
    """Per design column: items, studies, share inhibiting, and why it may not be separable.

    ``sparse``: fewer than :data:`SPARSE_ITEMS` items or :data:`SPARSE_STUDIES` studies carry it;
    ``one_sided``: all its items go one way (the likelihood alone would push the coefficient to
    infinity; only the prior holds it); ``collinear``: its variance inflation factor exceeds
    :data:`HIGH_VIF` (other columns nearly determine it), with the column it overlaps most.
    """
    vif = _vif(d.X)
    out = []
    for j, column in enumerate(d.columns[1:], start=1):
        col = d.X[:, j]
        on = col != 0
        studies = len(set(d.study[on]))
        reasons = []
        if column.endswith("_z"):
            n_items = int(on.sum())
            share = None
        else:
            n_items = int(on.sum())
            share = float(d.y[on].mean()) if n_items else None
            if n_items < SPARSE_ITEMS or studies < SPARSE_STUDIES:
                reasons.append("sparse")
            if share in (0.0, 1.0):
                reasons.append("one_sided")
        partner = None
        if vif[j] > HIGH_VIF:
            others = [k for k in range(1, d.X.shape[1]) if k != j and np.std(d.X[:, k]) > 0]
            corr = [abs(np.corrcoef(col, d.X[:, k])[0, 1]) for k in others] if np.std(col) > 0 else []
            if corr:
                best = int(np.argmax(corr))
                partner = {"column": d.columns[others[best]], "correlation": float(corr[best])}
            reasons.append("collinear")
        out.append(
            {
                "column": column,
                "moderator": _moderator_of(column),
                "n_items": n_items,
                "n_studies": studies,
                "share_inhibits": share,
                "vif": None if not np.isfinite(vif[j]) else float(vif[j]),
                "overlaps": partner,
                "reasons": reasons,
            }
        )
    return out


EFFECT_DRAWS = 1000  # posterior draws per marginal prediction (the first ones; seeded with the fit)
NUMERIC_LEVELS = (-1.0, 0.0, 1.0)  # a standardised moderator is shown at mean - sd, mean, mean + sd


def _levels(d: Design, name: str) -> list[tuple[str, dict[str, float]]]:
    """(label, {column: value}) for each level of a moderator; columns not named are zeroed."""
    if name in d.spec.categorical:
        return [
            (level, {f"{name}={level}": 1.0} if f"{name}={level}" in d.columns else {})
            for level in d.levels[name]
        ]
    if name in d.spec.binary:
        return [("no", {}), ("yes", {name: 1.0})]
    return [(f"{z:+g} sd", {f"{name}_z": z}) for z in NUMERIC_LEVELS]


def _columns_of(d: Design, name: str) -> list[int]:
    return [j for j, c in enumerate(d.columns) if _moderator_of(c) == name]


def marginal_effects(fit: ModeratorFit, *, draws: int = EFFECT_DRAWS) -> dict[str, list[dict[str, Any]]]:
    """Moderator -> per level: P(inhibits) for an average study, its 95% interval and item count.

    Each level's prediction sets that level on every item (other covariates as observed) and
    averages the predicted probabilities over the items, per posterior draw; the interval is
    the 2.5 and 97.5 percentiles of those averages. Numeric moderators (and the dose) are shown
    at the mean and one sd either side, for items taken to have a value.

    Items with the same row of covariates (once the moderator's own columns are set) predict the
    same: the average runs over the distinct rows weighted by their counts, which is the same
    mean (issue 14 point 4: at 10^5 items, draws x items x columns was most of the report).
    """
    d = fit.design
    beta = fit.beta_draws[:draws]
    in_vivo = d.X[:, d.columns.index("setting=in_vivo")] == 1 if "setting=in_vivo" in d.columns else None
    names = [*d.spec.categorical, *d.spec.binary, *d.spec.numeric, "dose"]
    out: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        columns = _columns_of(d, name)
        if not columns:
            continue
        rows = in_vivo if name in NOT_IN_VIVO and in_vivo is not None else np.ones(len(d.y), bool)
        if not rows.any():
            continue
        base = d.X[rows].copy()
        base[:, columns] = 0.0
        base, counts = np.unique(base, axis=0, return_counts=True)
        weights = counts / counts.sum()
        levels = []
        for label, setting in _levels(d, name):
            X = base.copy()
            for column, value in setting.items():
                X[:, d.columns.index(column)] = value
            p = expit(beta @ X.T) @ weights
            low, high = np.percentile(p, [2.5, 97.5])
            n_items = None
            if name in d.spec.categorical or name in d.spec.binary:
                carried = [d.columns.index(c) for c in setting]
                on = d.X[rows][:, columns] if not carried else d.X[rows][:, carried]
                n_items = int((on.sum(axis=1) == 0).sum() if not carried else (on[:, 0] == 1).sum())
            levels.append(
                {
                    "level": label,
                    "p_inhibits": float(p.mean()),
                    "ci_lb": float(low),
                    "ci_ub": float(high),
                    "n_items": n_items,
                }
            )
        out[name] = levels
    return out


@dataclass(frozen=True)
class FieldComparison:
    """The base and the field moderator models, each beside the majority baseline, out of sample."""

    base: Validation
    field: Validation
    fit: ModeratorFit
    seed: int

    def bootstrap(self) -> dict[str, Any]:
        """Paired bootstrap over studies: field vs baseline, base vs baseline, field vs base."""
        return {
            "field_vs_baseline": paired_bootstrap(self.field, seed=self.seed),
            "base_vs_baseline": paired_bootstrap(self.base, seed=self.seed),
            "field_vs_base": paired_bootstrap(self.field, self.base, seed=self.seed),
        }

    @property
    def beats_baseline(self) -> bool:
        """The field model's bootstrap interval of the log-loss difference lies below zero."""
        return bool(self.bootstrap()["field_vs_baseline"]["log_loss"]["ci_ub"] < 0)

    def effects_by_moderator(self) -> dict[str, list[dict[str, Any]]]:
        """The fitted effects grouped by moderator (the rows of one effect plot each)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for effect in self.fit.effects()[1:]:
            moderator = _moderator_of(effect["name"])
            if moderator is not None and not effect["name"].endswith("_missing"):
                out.setdefault(moderator, []).append(effect)
        return out

    def separability(self) -> list[dict[str, Any]]:
        return separability(self.fit.design)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "moderators": {
                "categorical": FIELD_SPEC.categorical,
                "binary": list(FIELD_SPEC.binary),
                "numeric": list(FIELD_SPEC.numeric),
            },
            "base": self.base.to_dict(),
            "field": self.field.to_dict(),
            "bootstrap": self.bootstrap(),
            "beats_baseline": self.beats_baseline,
            "effects": self.fit.effects(),
            "separability": self.separability(),
        }


_CACHE: dict[str, FieldComparison] = {}


def _digest(evidence: Sequence[EvidenceItem], studies: Sequence[Study], seed: int) -> str:
    rows = [e.model_dump_json(exclude={"provenance", "notes"}) for e in evidence]
    rows += [s.model_dump_json() for s in studies]
    return hashlib.sha256(json.dumps([seed, sorted(rows)]).encode()).hexdigest()


def compare_field_models(
    evidence: Sequence[EvidenceItem],
    studies: Sequence[Study],
    *,
    seed: int = SEED,
    base: Validation | None = None,
) -> FieldComparison:
    """Fit the field model and validate it and the base model leave-one-study-out.

    ``base`` may pass the base model's validation when the caller has it already (the synthesis
    pipeline computes it with the same seed), so it is not computed twice.
    """
    key = _digest(evidence, studies, seed)
    if key in _CACHE:
        return _CACHE[key]
    items: list[HarmonizedItem] = harmonize(evidence)
    extra = field_covariates(evidence, studies)
    field_validation = leave_one_study_out(items, seed=seed, spec=FIELD_SPEC, extra=extra)
    if base is None:
        base = leave_one_study_out(items, seed=seed)
    fit = fit_design(design(items, FIELD_SPEC, extra), seed=seed)
    result = FieldComparison(base, field_validation, fit, seed)
    _CACHE[key] = result
    return result
