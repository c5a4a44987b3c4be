"""Out-of-sample scores of the in vitro model's direction calls, against the majority baseline.

Every set of parameters (assumed, flat calibration, hierarchical calibration) is scored on the
same in vitro items by the probabilities it gives each item's observed direction when the item's
study was left out of the fit: accuracy of the most probable direction, log loss (mean of
``-ln p(observed)``) and the multi-class Brier score (mean of ``sum_k (p_k - y_k)^2``). The
baseline is the direction frequencies of the training folds (the other studies), whose most
frequent direction is the majority call.

The interval of a difference comes from a paired bootstrap over studies: studies are drawn with
replacement, each bringing all its items, and both models are scored on the same draw, so the
interval respects the clustering of items in studies. (``stats.moderators.paired_bootstrap`` does
the same for the binary moderator model's validation object; the scores here are three-way.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mscatlas.stats.bootstrap import study_bootstrap
from mscatlas.stats.moderator_fit import SEED as BOOTSTRAP_SEED  # the project's one synthesis seed

__all__ = [
    "BOOTSTRAP_SEED",
    "N_BOOT",
    "baseline_probabilities",
    "compare",
    "scores",
    "study_folds",
    "verdict",
]

DIRECTIONS = ("inhibits", "promotes", "no_effect")
N_BOOT = 2000


def study_folds(studies: Sequence[str], n_folds: int | None, seed: int = BOOTSTRAP_SEED) -> dict[str, int]:
    """Study -> fold: one fold per study (``n_folds=None``), or studies dealt at random (seeded)
    into ``n_folds`` folds of near-equal numbers of studies. A study's items always share a fold."""
    names = sorted(set(studies))
    if n_folds is None or n_folds >= len(names):
        return {s: k for k, s in enumerate(names)}
    order = np.random.default_rng(seed).permutation(len(names))
    return {names[i]: rank % n_folds for rank, i in enumerate(order)}


def baseline_probabilities(observed: Sequence[str], studies: Sequence[str]) -> np.ndarray:
    """Each item's direction frequencies among the other studies' items: ``(n, 3)``."""
    total = Counter(observed)
    by_study: dict[str, Counter[str]] = {}
    for o, s in zip(observed, studies, strict=True):
        by_study.setdefault(s, Counter())[o] += 1
    out = np.zeros((len(observed), 3))
    for i, s in enumerate(studies):
        rest = total - by_study[s]
        n = sum(rest.values())
        out[i] = [rest[d] / n if n else 1 / 3 for d in DIRECTIONS]
    return out


def _item_losses(probs: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    onehot = np.eye(3)[y]
    p_obs = np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)
    return {
        "accuracy": (probs.argmax(axis=1) == y).astype(float),
        "log_loss": -np.log(p_obs),
        "brier": np.sum((probs - onehot) ** 2, axis=1),
    }


def scores(probs: np.ndarray, observed: Sequence[str]) -> dict[str, float]:
    """Accuracy, log loss and Brier score of ``probs`` (rows in :data:`DIRECTIONS` order)."""
    y = np.array([DIRECTIONS.index(o) for o in observed], dtype=int)
    return {k: float(v.mean()) for k, v in _item_losses(np.asarray(probs, dtype=float), y).items()}


def compare(
    probs: np.ndarray,
    other: np.ndarray,
    observed: Sequence[str],
    studies: Sequence[str],
    *,
    n_boot: int = N_BOOT,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """Scores of ``probs`` and ``other`` on the same items and their differences with 95% intervals.

    Differences are ``probs`` minus ``other``: negative log loss and Brier differences and
    positive accuracy differences favour ``probs``. ``p_better`` is the share of bootstrap draws
    in which ``probs`` does better.
    """
    y = np.array([DIRECTIONS.index(o) for o in observed], dtype=int)
    mine = _item_losses(np.asarray(probs, dtype=float), y)
    theirs = _item_losses(np.asarray(other, dtype=float), y)
    keys = ("accuracy", "log_loss", "brier")
    boot = study_bootstrap({k: mine[k] - theirs[k] for k in keys}, studies, n_boot=n_boot, seed=seed)
    out: dict[str, Any] = {
        "model": {k: float(v.mean()) for k, v in mine.items()},
        "other": {k: float(v.mean()) for k, v in theirs.items()},
        "bootstrap": {"n_boot": n_boot, "seed": seed, "n_studies": len(set(studies)), "n_items": len(y)},
        "difference": {},
    }
    for key in keys:
        d = boot[key]
        better = d.draws > 0 if key == "accuracy" else d.draws < 0
        out["difference"][key] = {
            "estimate": d.estimate,
            "ci_lb": d.ci_lb,
            "ci_ub": d.ci_ub,
            "p_better": float(np.mean(better)),
        }
    return out


def verdict(comparison: Mapping[str, Any]) -> str:
    """``beats``, ``loses to`` or ``ties with`` the other model, by log loss and its interval."""
    d = comparison["difference"]["log_loss"]
    if d["ci_ub"] < 0:
        return "beats"
    if d["ci_lb"] > 0:
        return "loses to"
    lean = "beats" if d["estimate"] < 0 else "loses to"
    return f"{lean} (interval includes no difference)"
