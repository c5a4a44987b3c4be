"""Operating characteristics of a dose-finding design under one true toxicity scenario."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["OperatingCharacteristics", "summarise_simulations", "true_mtd"]


def true_mtd(true_tox: NDArray[np.float64], target: float) -> int:
    """Index (from 0) of the dose whose true toxicity is closest to target; ties go to the lower dose."""
    dist = np.abs(np.asarray(true_tox, dtype=float) - target)
    return int(np.flatnonzero(dist <= dist.min() + 1e-12)[0])


@dataclass(frozen=True)
class OperatingCharacteristics:
    """How a design behaves under one scenario.

    Per-dose lists run from the lowest dose. ``selection_pct`` plus ``stop_pct`` sum to 100.
    ``pct_patients_at_mtd`` is 100 × E[patients at the true MTD] / E[patients] (a ratio of
    means, so exact and simulated values estimate the same quantity). ``n_sims`` and ``seed``
    are None for exact results.
    """

    design: str
    method: str
    target: float
    true_tox: list[float]
    true_mtd: int
    selection_pct: list[float]
    stop_pct: float
    mean_patients: list[float]
    mean_toxicities: list[float]
    pct_patients_at_mtd: float
    expected_n: float
    expected_toxicities: float
    n_sims: int | None = None
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; ``true_mtd`` is reported as a dose level counted from 1."""
        data = asdict(self)
        data["true_mtd"] = self.true_mtd + 1
        return data


def summarise_simulations(
    *,
    design: str,
    target: float,
    true_tox: NDArray[np.float64],
    selected: NDArray[np.int64],
    patients: NDArray[np.int64],
    toxicities: NDArray[np.int64],
    seed: int | None,
) -> OperatingCharacteristics:
    """Turn per-trial results into operating characteristics.

    ``selected`` holds one dose index per trial, -1 where no dose was selected; ``patients``
    and ``toxicities`` are (trials × doses) counts.
    """
    n_sims, n_doses = patients.shape
    counts = np.bincount(selected[selected >= 0], minlength=n_doses)
    mean_n = patients.mean(axis=0)
    mtd = true_mtd(true_tox, target)
    return OperatingCharacteristics(
        design=design,
        method="simulation",
        target=target,
        true_tox=[float(p) for p in true_tox],
        true_mtd=mtd,
        selection_pct=[float(c) for c in 100.0 * counts / n_sims],
        stop_pct=float(100.0 * np.count_nonzero(selected < 0) / n_sims),
        mean_patients=[float(v) for v in mean_n],
        mean_toxicities=[float(v) for v in toxicities.mean(axis=0)],
        pct_patients_at_mtd=float(100.0 * mean_n[mtd] / mean_n.sum()) if mean_n.sum() > 0 else 0.0,
        expected_n=float(mean_n.sum()),
        expected_toxicities=float(toxicities.sum(axis=1).mean()),
        n_sims=int(n_sims),
        seed=seed,
    )
