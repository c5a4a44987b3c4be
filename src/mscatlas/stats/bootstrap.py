"""Paired bootstrap over studies of per-item score differences.

Held-out scores of two models on the same items are compared by resampling studies with
replacement, each bringing all its items, so the interval respects the clustering of items in
studies. A resample is a multinomial weighting of the studies, so every draw is a weighted sum
of per-study totals (no per-draw Python loop). The moderator model (``stats``) and the in silico
lab (``sim``) both use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["BootstrapDifference", "study_bootstrap"]


@dataclass(frozen=True)
class BootstrapDifference:
    """The mean per-item difference, its 95% percentile interval and every resampled mean."""

    estimate: float
    ci_lb: float
    ci_ub: float
    draws: np.ndarray


def study_bootstrap(
    differences: Mapping[str, np.ndarray],
    studies: Sequence[str],
    *,
    n_boot: int,
    seed: int,
) -> dict[str, BootstrapDifference]:
    """For each named per-item difference, the item mean and its bootstrap over ``studies``.

    ``studies[i]`` is item ``i``'s study. All differences share the same resamples (paired).
    """
    names = sorted(set(studies))
    position = {s: k for k, s in enumerate(names)}
    which = np.array([position[s] for s in studies])
    counts = np.bincount(which, minlength=len(names)).astype(float)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(names), np.full(len(names), 1.0 / len(names)), size=n_boot)
    out: dict[str, BootstrapDifference] = {}
    for key, values in differences.items():
        sums = np.bincount(which, weights=values, minlength=len(names))
        boot = (weights @ sums) / (weights @ counts)
        low, high = np.percentile(boot, [2.5, 97.5])
        out[key] = BootstrapDifference(float(sums.sum() / counts.sum()), float(low), float(high), boot)
    return out
