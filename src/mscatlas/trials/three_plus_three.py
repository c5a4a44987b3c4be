"""The classic 3+3 design: exact operating characteristics by enumeration, and a simulator.

Rules, applied from the lowest dose upwards:

* treat 3 patients; 0/3 with a toxicity: escalate;
* 1/3: treat 3 more at the same dose; at most 1/6 in total: escalate;
* otherwise (2 or more of 3, or 2 or more of 6): stop and declare the next lower dose the MTD.

Edge cases, fixed here so results are unambiguous:

* dose 1 too toxic (the stop rule fires at the lowest dose): no dose is selected;
* the escalate rule fires at the top dose: there is nothing higher to try, so the trial ends
  and the top dose is declared the MTD (with the 3 or 6 patients it has);
* a declared dose is not re-expanded to 6 patients (no de-escalation cohort).

Each dose therefore receives 3 or 6 patients at most once, and a trial treats at most
6 × (number of doses) patients. The design has no target; ``target`` only names the true MTD
for the "% patients at the MTD" summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import comb

import numpy as np

from mscatlas.trials._checks import check_probabilities, check_target
from mscatlas.trials.oc import OperatingCharacteristics, summarise_simulations, true_mtd

__all__ = ["COHORT", "DoseOutcome", "dose_outcomes", "three_plus_three_exact", "three_plus_three_simulate"]

COHORT = 3


@dataclass(frozen=True)
class DoseOutcome:
    """One way the patients at a single dose can turn out."""

    probability: float
    patients: int
    toxicities: int
    escalate: bool


def _binom_pmf(k: int, n: int, p: float) -> float:
    return comb(n, k) * p**k * (1.0 - p) ** (n - k)


def dose_outcomes(p: float) -> list[DoseOutcome]:
    """Every outcome at one dose with true toxicity ``p``, enumerated cohort by cohort.

    The first cohort's toxicity count y1 ranges over 0..3 (binomial); only y1 = 1 leads to a
    second cohort, whose count y2 also ranges over 0..3. Probabilities sum to 1.
    """
    outcomes = []
    for y1 in range(COHORT + 1):
        p1 = _binom_pmf(y1, COHORT, p)
        if y1 == 1:
            for y2 in range(COHORT + 1):
                p2 = _binom_pmf(y2, COHORT, p)
                outcomes.append(DoseOutcome(p1 * p2, 2 * COHORT, y1 + y2, escalate=y1 + y2 <= 1))
        else:
            outcomes.append(DoseOutcome(p1, COHORT, y1, escalate=y1 == 0))
    return outcomes


def three_plus_three_exact(true_tox: Sequence[float], target: float = 0.3) -> OperatingCharacteristics:
    """Exact operating characteristics of the 3+3 design.

    A trial reaches dose d only by escalating through every lower dose, so the probability of
    reaching d is the product of the escalation probabilities below it. Expected patients and
    toxicities at d are that reach probability times the expectations over ``dose_outcomes``.
    """
    tox = check_probabilities(true_tox)
    target = check_target(target)
    k = tox.size
    selection = np.zeros(k)
    stop = 0.0
    mean_n = np.zeros(k)
    mean_y = np.zeros(k)
    reach = 1.0
    for d in range(k):
        outcomes = dose_outcomes(float(tox[d]))
        p_escalate = sum(o.probability for o in outcomes if o.escalate)
        mean_n[d] = reach * sum(o.probability * o.patients for o in outcomes)
        mean_y[d] = reach * sum(o.probability * o.toxicities for o in outcomes)
        p_halt = reach * (1.0 - p_escalate)
        if d == 0:
            stop += p_halt
        else:
            selection[d - 1] += p_halt
        reach *= p_escalate
    selection[k - 1] += reach
    mtd = true_mtd(tox, target)
    return OperatingCharacteristics(
        design="3+3",
        method="exact",
        target=target,
        true_tox=[float(p) for p in tox],
        true_mtd=mtd,
        selection_pct=[float(v) for v in 100.0 * selection],
        stop_pct=float(100.0 * stop),
        mean_patients=[float(v) for v in mean_n],
        mean_toxicities=[float(v) for v in mean_y],
        pct_patients_at_mtd=float(100.0 * mean_n[mtd] / mean_n.sum()),
        expected_n=float(mean_n.sum()),
        expected_toxicities=float(mean_y.sum()),
    )


def three_plus_three_simulate(
    true_tox: Sequence[float], target: float = 0.3, n_sims: int = 10_000, seed: int | None = None
) -> OperatingCharacteristics:
    """Simulated operating characteristics of the 3+3 design (vectorised over trials).

    The loop runs over doses, not trials: at each dose every still-running trial draws its
    cohorts at once. Same seed, same result.
    """
    tox = check_probabilities(true_tox)
    target = check_target(target)
    if n_sims < 1:
        raise ValueError(f"n_sims must be at least 1, got {n_sims}")
    rng = np.random.default_rng(seed)
    k = tox.size
    running = -2  # marker: trial still escalating
    selected = np.full(n_sims, running, dtype=np.int64)
    patients = np.zeros((n_sims, k), dtype=np.int64)
    toxicities = np.zeros((n_sims, k), dtype=np.int64)
    for d in range(k):
        active = selected == running
        y1 = rng.binomial(COHORT, tox[d], size=n_sims)
        y2 = rng.binomial(COHORT, tox[d], size=n_sims)
        expand = active & (y1 == 1)
        patients[:, d] = COHORT * active + COHORT * expand
        toxicities[:, d] = y1 * active + y2 * expand
        escalate = active & ((y1 == 0) | (expand & (y2 == 0)))
        selected[active & ~escalate] = d - 1  # -1 at the lowest dose: nothing selected
    selected[selected == running] = k - 1
    return summarise_simulations(
        design="3+3",
        target=target,
        true_tox=tox,
        selected=selected,
        patients=patients,
        toxicities=toxicities,
        seed=seed,
    )
