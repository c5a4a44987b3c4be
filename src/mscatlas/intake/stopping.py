"""The statistical stopping rule of Callaghan & Müller-Hansen (2020, Systematic Reviews 9:273).

Screening in priority order, suppose after ``n_seen`` of ``N`` records that ``r_seen`` were
relevant. Treat the last ``k`` screened records as a sample drawn from the ``N - n_seen + k``
records that were left when it began ("ranked quasi-sampling": a prioritised sample holds at
least as many relevant records as a random one would, so the test is conservative). The null
hypothesis is that recall is below the target ``tau``, i.e. that the urn held at least

    K_tar = floor(r_seen / tau - (r_seen - r_k)) + 1

relevant records, where ``r_k`` is the number of relevant records in the sample. Its p-value
is the hypergeometric probability of seeing ``r_k`` or fewer relevant records in a sample of
``k`` from an urn of ``N - n_seen + k`` holding ``K_tar``. The rule takes the smallest p-value
over every ``k`` (every window ending at the last record screened); screening may stop when it
is below ``1 - confidence``. This is the ``calculate_h0`` of the authors' buscarpy package.

The rule only *reports*: nothing in mscatlas stops screening on its own.
``estimated_recall`` is the highest recall that the rule can claim at the given confidence
(the largest ``tau`` on a 0.001 grid whose p-value is below ``1 - confidence``), a lower
confidence bound on the recall reached; 0 when none can be claimed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["StoppingEstimate", "h0_pvalue", "stopping_estimate"]


def h0_pvalue(labels: Sequence[int], n_total: int, target_recall: float = 0.95) -> float:
    """The p-value of 'recall < target_recall' after screening ``labels`` (in screening order)."""
    if not 0 < target_recall < 1:
        raise ValueError("target_recall must be between 0 and 1 (exclusive)")
    seen = np.asarray(labels, dtype=int)
    n_seen = seen.size
    if n_seen == 0:
        return 1.0
    if n_seen > n_total:
        raise ValueError(f"{n_seen} records screened out of {n_total}")
    r_seen = int(seen.sum())
    r_k = np.cumsum(seen[::-1])  # relevant among the last k, k = 1..n_seen
    k = np.arange(1, n_seen + 1)
    urn = n_total - n_seen + k
    k_tar = np.floor(r_seen / target_recall - (r_seen - r_k)) + 1
    from scipy.stats import hypergeom  # imported on use: it is slow to load

    if (k_tar > urn).any():
        # In some window, recall below target would need more relevant records than the urn
        # held: the null hypothesis is impossible there, its p-value 0.
        return 0.0
    p = hypergeom.cdf(r_k, urn, k_tar, k)
    return float(min(1.0, p.min()))


@dataclass(frozen=True)
class StoppingEstimate:
    target_recall: float
    confidence: float
    p_value: float
    estimated_recall: float
    can_stop: bool
    screened: int
    relevant_found: int
    total: int

    def to_dict(self) -> dict[str, float | int | bool]:
        return {
            "target_recall": self.target_recall,
            "confidence": self.confidence,
            "p_value": self.p_value,
            "estimated_recall": self.estimated_recall,
            "can_stop": self.can_stop,
            "screened": self.screened,
            "relevant_found": self.relevant_found,
            "total": self.total,
        }


def stopping_estimate(
    labels: Sequence[int], n_total: int, *, target_recall: float = 0.95, confidence: float = 0.95
) -> StoppingEstimate:
    """The rule's verdict after screening ``labels`` (1 relevant, 0 not) in order, of ``n_total``."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1 (exclusive)")
    alpha = 1 - confidence
    p = h0_pvalue(labels, n_total, target_recall)
    estimated = 0.0
    if sum(labels) > 0:
        grid = np.round(np.arange(0.999, 0.0, -0.001), 3)
        lo, hi = 0, len(grid) - 1  # p grows with tau: find the first grid point (from the top) below alpha
        if h0_pvalue(labels, n_total, float(grid[hi])) < alpha:
            while lo < hi:
                mid = (lo + hi) // 2
                if h0_pvalue(labels, n_total, float(grid[mid])) < alpha:
                    hi = mid
                else:
                    lo = mid + 1
            estimated = float(grid[lo])
    return StoppingEstimate(
        target_recall=target_recall,
        confidence=confidence,
        p_value=p,
        estimated_recall=estimated,
        can_stop=p < alpha,
        screened=len(labels),
        relevant_found=int(sum(labels)),
        total=n_total,
    )
