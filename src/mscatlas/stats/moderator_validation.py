"""How well the moderator model (:mod:`mscatlas.stats.moderators`) predicts studies it has not
seen: leave-one-study-out refits beside the majority-class baseline, a paired bootstrap over
studies, and the plain verdict."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mscatlas.stats import cache
from mscatlas.stats.bootstrap import study_bootstrap
from mscatlas.stats.harmonize import HarmonizedItem
from mscatlas.stats.moderator_design import (
    BASE_SPEC,
    Design,
    ModeratorSpec,
    design,
    encode_groups,
    group_rows,
)
from mscatlas.stats.moderator_fit import SEED, design_digest, grid_posterior, predictive_probabilities

__all__ = ["Validation", "leave_one_study_out", "paired_bootstrap", "verdict"]


@dataclass(frozen=True)
class Validation:
    """Leave-one-study-out predictive performance beside the majority-class baseline."""

    n_items: int
    n_studies: int
    log_loss: float
    brier: float
    accuracy: float
    baseline_log_loss: float
    baseline_brier: float
    baseline_accuracy: float
    predictions: list[tuple[str, int, float]]  # (item id, outcome, held-out P(inhibits))
    # Aligned with ``predictions``: each item's study and the baseline's held-out P(inhibits).
    held_out: list[tuple[str, float]] = field(default_factory=list)

    def calibration(self, bins: int = 5) -> list[dict[str, float]]:
        """Mean predicted vs observed share of inhibiting items in equal-width probability bins."""
        p = np.array([q for _, _, q in self.predictions])
        y = np.array([o for _, o, _ in self.predictions])
        edges = np.linspace(0, 1, bins + 1)
        out = []
        for low, high in itertools.pairwise(edges):
            inside = (p >= low) & ((p < high) if high < 1 else (p <= high))
            if inside.any():
                out.append(
                    {"bin_low": float(low), "bin_high": float(high), "n": int(inside.sum()),
                     "predicted": float(p[inside].mean()), "observed": float(y[inside].mean())}
                )  # fmt: skip
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_items": self.n_items,
            "n_studies": self.n_studies,
            "model": {"log_loss": self.log_loss, "brier": self.brier, "accuracy": self.accuracy},
            "majority_baseline": {
                "log_loss": self.baseline_log_loss,
                "brier": self.baseline_brier,
                "accuracy": self.baseline_accuracy,
            },
            "calibration": self.calibration(),
        }


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def leave_one_study_out(
    items: Sequence[HarmonizedItem],
    *,
    seed: int = SEED,
    draws: int = 2000,
    spec: ModeratorSpec = BASE_SPEC,
    extra: dict[str, dict[str, Any]] | None = None,
    grouped: bool = True,
) -> Validation:
    """Refit without each study in turn and predict its items as a new study's.

    Each refit re-derives levels and standardisations from the other studies' groups (as a
    design of the remaining items would) and predicts the held-out study's groups: items with
    the same moderator values get the same prediction. ``grouped=False`` runs it item by item
    (the same numbers, slower). A result of the same content in this process comes from
    :mod:`mscatlas.stats.cache`.
    """
    full = design(items, spec, extra, grouped=grouped)
    key = cache.digest("loso", design_digest(full), list(full.groups.keys), seed, draws)  # type: ignore[union-attr]
    return cache.validation(key, lambda: _loso(full, seed=seed, draws=draws))


def _loso(full: Design, *, seed: int, draws: int) -> Validation:
    g = full.groups
    assert g is not None
    spec = full.spec
    # only to start each refit near its optimum
    reference = grid_posterior(g.X, g.successes, g.trials, g.study, len(full.studies), seed=seed, draws=1)
    peak = int(np.argmax(reference.weights))
    peak_theta = reference.modes[peak].theta  # type: ignore[union-attr]
    p_full = len(full.columns)
    item_study = g.study[g.item_group]
    predictions: list[tuple[str, int, float]] = []
    held_out: list[tuple[str, float]] = []
    for s, name in enumerate(full.studies):
        train = g.study != s
        enc = encode_groups(g, train, spec)
        study = g.study[train]
        warm = None
        if enc.columns == full.columns:  # same coefficients: start from the full fit's mode
            warm = np.concatenate([peak_theta[:p_full], np.delete(peak_theta[p_full:], s)])
        post = grid_posterior(
            group_rows(g, train, enc, spec),
            g.successes[train],
            g.trials[train],
            study - (study > s),
            len(full.studies) - 1,
            seed=seed + s,
            draws=draws,
            start=peak,
            warm=warm,
        )
        held = ~train
        probs = predictive_probabilities(post.beta, post.sigma, post.rng, group_rows(g, held, enc, spec))
        local = np.cumsum(held) - 1  # group index -> row of probs
        share = float(g.successes[train].sum() / g.trials[train].sum())
        for i in np.flatnonzero(item_study == s):
            predictions.append((full.items[i].id, int(full.y[i]), float(probs[local[g.item_group[i]]])))
            held_out.append((name, share))
    y = np.array([o for _, o, _ in predictions], dtype=float)
    p = np.array([q for _, _, q in predictions])
    b = np.array([q for _, q in held_out])
    return Validation(
        n_items=len(y),
        n_studies=len(full.studies),
        log_loss=_log_loss(y, p),
        brier=float(np.mean((p - y) ** 2)),
        accuracy=float(np.mean((p >= 0.5) == (y == 1))),
        baseline_log_loss=_log_loss(y, b),
        baseline_brier=float(np.mean((b - y) ** 2)),
        baseline_accuracy=float(np.mean((b >= 0.5) == (y == 1))),
        predictions=predictions,
        held_out=held_out,
    )


def _item_losses(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return -(y * np.log(q) + (1 - y) * np.log(1 - q)), (p - y) ** 2


def paired_bootstrap(
    validation: Validation,
    other: Validation | None = None,
    *,
    n_boot: int = 2000,
    seed: int = SEED,
) -> dict[str, Any]:
    """Difference in held-out log loss and Brier score, with a bootstrap over studies.

    ``other`` is the model to compare with on the same items (default: the majority baseline of
    ``validation``). Studies are resampled with replacement, each bringing all its items, so the
    interval respects the clustering of items in studies; both models are scored on the same
    resample (paired). Negative differences favour ``validation``'s model. ``p_better`` is the
    share of resamples in which it has the lower loss.
    """
    y = np.array([o for _, o, _ in validation.predictions], dtype=float)
    p = np.array([q for _, _, q in validation.predictions])
    if other is None:
        if len(validation.held_out) != len(y):
            raise ValueError("validation carries no per-item baseline (held_out) to compare with")
        q = np.array([b for _, b in validation.held_out])
    else:
        theirs = {i: prob for i, _, prob in other.predictions}
        missing = [i for i, _, _ in validation.predictions if i not in theirs]
        if missing:
            raise ValueError(f"the two validations score different items, e.g. {missing[0]}")
        q = np.array([theirs[i] for i, _, _ in validation.predictions])
    ll_a, br_a = _item_losses(y, p)
    ll_b, br_b = _item_losses(y, q)
    studies = [s for s, _ in validation.held_out]
    boot = study_bootstrap({"log_loss": ll_a - ll_b, "brier": br_a - br_b}, studies, n_boot=n_boot, seed=seed)
    out: dict[str, Any] = {"n_boot": n_boot, "n_studies": len(set(studies)), "seed": seed}
    for label, d in boot.items():
        out[label] = {
            "difference": d.estimate,
            "ci_lb": d.ci_lb,
            "ci_ub": d.ci_ub,
            "p_better": float(np.mean(d.draws < 0)),
        }
    return out


def verdict(effects: list[dict[str, Any]], validation: dict[str, Any]) -> str:
    """The plain verdict: which moderators matter and whether the model beats the baseline.

    ``effects`` is :meth:`ModeratorFit.effects` (intercept first) and ``validation`` is
    :meth:`Validation.to_dict`.
    """
    supported = [e["name"] for e in effects[1:] if e["supported"]]
    model, base = validation["model"], validation["majority_baseline"]
    better = model["log_loss"] < base["log_loss"] and model["brier"] < base["brier"]
    parts = [
        "moderators whose 95% interval excludes no effect: "
        + (", ".join(supported) if supported else "none"),
        "leave-one-study-out: the model "
        + ("beats" if better else "does not beat")
        + " the majority-class baseline",
    ]
    if not supported and not better:
        parts.append("the current data cannot explain why results disagree beyond study-to-study differences")
    return "; ".join(parts)
