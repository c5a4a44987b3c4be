"""Argument checks shared by the dose-finding designs; each error names the offending value."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["DesignInputError", "check_probabilities", "check_skeleton", "check_target"]


class DesignInputError(ValueError):
    """A design parameter or trial record that cannot be used (the message says which)."""


def check_target(target: float) -> float:
    """Return the target toxicity rate if it lies strictly between 0 and 1."""
    value = float(target)
    if not 0.0 < value < 1.0:
        raise DesignInputError(f"target must lie strictly between 0 and 1, got {target!r}")
    return value


def check_probabilities(values: Sequence[float], name: str = "true toxicity") -> NDArray[np.float64]:
    """Return toxicity probabilities as an array; every one must lie strictly inside (0, 1).

    A true toxicity curve need not be monotone for simulation, so order is not checked here.
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise DesignInputError(f"{name} needs at least one dose, got {list(values)!r}")
    for i, p in enumerate(arr, start=1):
        if not (0.0 < p < 1.0) or not np.isfinite(p):
            raise DesignInputError(f"{name} of dose {i} must lie strictly between 0 and 1, got {float(p)!r}")
    return arr


def check_skeleton(values: Sequence[float]) -> NDArray[np.float64]:
    """Return a CRM skeleton: probabilities in (0, 1), strictly increasing with dose."""
    arr = check_probabilities(values, name="skeleton")
    for i in range(1, arr.size):
        if arr[i] <= arr[i - 1]:
            raise DesignInputError(
                f"skeleton must increase strictly with dose: dose {i + 1} has {float(arr[i])!r}, "
                f"not above dose {i}'s {float(arr[i - 1])!r}"
            )
    return arr
