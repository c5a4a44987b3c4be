"""Isotonic (non-decreasing) regression: pool-adjacent-violators for one curve, and a batched
max-min form for many short curves at once (the same fit, written for numpy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["pava", "pava_prefix_batch"]


def pava(values: Sequence[float], weights: Sequence[float] | None = None) -> NDArray[np.float64]:
    """Weighted least-squares non-decreasing fit by pooling adjacent violators.

    Scans left to right keeping blocks (weighted mean, total weight, length); whenever a new
    block's mean falls below the previous block's, the two merge, and merging repeats backwards
    until the block means are non-decreasing.
    """
    x = np.asarray(values, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    if x.shape != w.shape or x.ndim != 1:
        raise ValueError("values and weights must be 1-D and of equal length")
    if np.any(w <= 0):
        raise ValueError("weights must be positive")
    means: list[float] = []
    totals: list[float] = []
    sizes: list[int] = []
    for xi, wi in zip(x, w, strict=True):
        means.append(float(xi))
        totals.append(float(wi))
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            m2, w2, s2 = means.pop(), totals.pop(), sizes.pop()
            m1, w1, s1 = means.pop(), totals.pop(), sizes.pop()
            means.append((m1 * w1 + m2 * w2) / (w1 + w2))
            totals.append(w1 + w2)
            sizes.append(s1 + s2)
    return np.repeat(np.asarray(means), sizes)


def pava_prefix_batch(
    values: NDArray[np.float64], weights: NDArray[np.float64], lengths: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Isotonic fits of many curves at once; row s uses only its first ``lengths[s]`` entries.

    Uses the max-min characterisation of the isotonic fit,
    fit[i] = max over j ≤ i of min over k ≥ i (k < length) of the weighted mean of entries j..k,
    which equals the pool-adjacent-violators result. Entries at or past a row's length are NaN.
    Cost is O(rows × doses²), fine for the handful of doses of a phase I trial.
    """
    x = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    rows, k = x.shape
    zeros = np.zeros((rows, 1))
    cw = np.concatenate([zeros, np.cumsum(w, axis=1)], axis=1)
    cwx = np.concatenate([zeros, np.cumsum(w * x, axis=1)], axis=1)
    j = np.arange(k)[:, None]
    kk = np.arange(k)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        block = (cwx[:, None, 1:] - cwx[:, :-1, None]) / (cw[:, None, 1:] - cw[:, :-1, None])  # [s, j, k]
    usable_end = kk[None, :, :] < np.asarray(lengths)[:, None, None]
    block = np.where((j <= kk)[None, :, :] & usable_end, block, np.inf)
    # tail_min[s, j, i] = min over k >= i of block[s, j, k]
    tail_min = np.minimum.accumulate(block[:, :, ::-1], axis=2)[:, :, ::-1]
    tail_min = np.where((j <= kk)[None, :, :], tail_min, -np.inf)  # only j <= i counts
    fit = tail_min.max(axis=1)
    fit[np.arange(k)[None, :] >= np.asarray(lengths)[:, None]] = np.nan
    return fit
