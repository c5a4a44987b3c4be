"""BOIN, the Bayesian optimal interval design of Liu & Yuan (2015, JRSS-C 64:507-523).

The dose for the next cohort depends only on the observed toxicity rate at the current dose:
escalate when it is at most λe, de-escalate when it is at least λd, stay otherwise. λe and λd
minimise the chance of a wrong decision between three point hypotheses (the rate is φ1, φ or
φ2) with equal prior weight; by default φ1 = 0.6φ and φ2 = 1.4φ.

Safety: a dose with n ≥ 3 patients is eliminated, with every higher dose, once
Pr(p > φ | data) > 0.95 under a Beta(1, 1) prior. When the lowest dose is eliminated the trial
stops with no dose selected. Escalation never enters an eliminated dose.

MTD selection at the end: among the tried, non-eliminated doses (always the lowest few, since
BOIN moves one level at a time), the observed rates are smoothed by isotonic regression and
the dose whose estimate is closest to φ is chosen. As in the authors' software the rates carry
pseudo-counts of 0.05 toxicity and 0.05 non-toxicity, and each dose is weighted by the inverse
of the variance of its Beta(y + 0.05, n − y + 0.05) posterior. Tie rule: among equally close
doses, if any lies below φ take the highest of those below (more patients near φ from below);
otherwise take the lowest. This matches the authors' choice of the higher dose when a pooled
estimate is under φ and the lower when it is over, and picks the lower of two doses
symmetric about φ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil, floor, log

import numpy as np
from numpy.typing import NDArray
from scipy.stats import beta as beta_dist

from mscatlas.trials._checks import DesignInputError, check_probabilities, check_target
from mscatlas.trials.isotonic import pava_prefix_batch
from mscatlas.trials.observed import DoseCounts
from mscatlas.trials.oc import OperatingCharacteristics, summarise_simulations
from mscatlas.trials.recommendation import Recommendation

__all__ = [
    "BoinBoundaries",
    "boin_boundaries",
    "boin_intervals",
    "boin_next_dose",
    "boin_select_mtd",
    "boin_simulate",
]

_EPS = 1e-10  # guards floor/ceil against n·λ landing a hair off an integer
ELIMINATION_MIN_N = 3


def _phis(target: float, phi1: float | None, phi2: float | None) -> tuple[float, float]:
    p1 = 0.6 * target if phi1 is None else float(phi1)
    p2 = 1.4 * target if phi2 is None else float(phi2)
    if not 0.0 < p1 < target < p2 < 1.0:
        raise DesignInputError(
            f"need 0 < phi1 < target < phi2 < 1, got phi1={p1}, target={target}, phi2={p2}"
        )
    return p1, p2


def boin_intervals(
    target: float, phi1: float | None = None, phi2: float | None = None
) -> tuple[float, float]:
    """Escalation and de-escalation boundaries (λe, λd) for target φ."""
    phi = check_target(target)
    p1, p2 = _phis(phi, phi1, phi2)
    lam_e = log((1 - p1) / (1 - phi)) / log(phi * (1 - p1) / (p1 * (1 - phi)))
    lam_d = log((1 - phi) / (1 - p2)) / log(p2 * (1 - phi) / (phi * (1 - p2)))
    return lam_e, lam_d


def _elimination_min(n: int, target: float, cutoff: float) -> int | None:
    """Fewest toxicities out of n for which Pr(p > target | y, n) > cutoff; None if none or n < 3."""
    if n < ELIMINATION_MIN_N:
        return None
    y = np.arange(n + 1)
    tail = beta_dist.sf(target, 1 + y, 1 + n - y)
    hits = np.flatnonzero(tail > cutoff)
    return int(hits[0]) if hits.size else None


@dataclass(frozen=True)
class BoinBoundaries:
    """Decision table: entry n − 1 applies when n patients have been treated at the dose.

    Escalate if toxicities ≤ ``escalate_max``, de-escalate if ≥ ``deescalate_min``, eliminate
    the dose (and all above) if ≥ ``eliminate_min`` (None: cannot be eliminated at that n).
    """

    target: float
    phi1: float
    phi2: float
    lambda_e: float
    lambda_d: float
    cutoff_eli: float
    escalate_max: tuple[int, ...]
    deescalate_min: tuple[int, ...]
    eliminate_min: tuple[int | None, ...]

    @property
    def n_max(self) -> int:
        return len(self.escalate_max)

    def rows(self) -> list[dict[str, int | None]]:
        return [
            {"n": n, "escalate_max": e, "deescalate_min": d, "eliminate_min": x}
            for n, e, d, x in zip(
                range(1, self.n_max + 1),
                self.escalate_max,
                self.deescalate_min,
                self.eliminate_min,
                strict=True,
            )
        ]


def boin_boundaries(
    target: float,
    n_max: int = 30,
    phi1: float | None = None,
    phi2: float | None = None,
    cutoff_eli: float = 0.95,
) -> BoinBoundaries:
    """The BOIN decision table for 1..n_max patients at a dose."""
    if n_max < 1:
        raise DesignInputError(f"n_max must be at least 1, got {n_max}")
    if not 0.0 < cutoff_eli < 1.0:
        raise DesignInputError(f"cutoff_eli must lie strictly between 0 and 1, got {cutoff_eli}")
    phi = check_target(target)
    p1, p2 = _phis(phi, phi1, phi2)
    lam_e, lam_d = boin_intervals(phi, p1, p2)
    ns = range(1, n_max + 1)
    return BoinBoundaries(
        target=phi,
        phi1=p1,
        phi2=p2,
        lambda_e=lam_e,
        lambda_d=lam_d,
        cutoff_eli=cutoff_eli,
        escalate_max=tuple(floor(n * lam_e + _EPS) for n in ns),
        deescalate_min=tuple(ceil(n * lam_d - _EPS) for n in ns),
        eliminate_min=tuple(_elimination_min(n, phi, cutoff_eli) for n in ns),
    )


def _select_mtd_batch(
    patients: NDArray[np.int64], toxicities: NDArray[np.int64], usable: NDArray[np.int64], target: float
) -> NDArray[np.int64]:
    """Selected dose index per row (-1: none). Row s may choose among its first usable[s] doses."""
    n = patients.astype(float)
    y = toxicities.astype(float)
    rate = (y + 0.05) / (n + 0.1)
    var = (y + 0.05) * (n - y + 0.05) / ((n + 0.1) ** 2 * (n + 0.1 + 1.0))
    fit = pava_prefix_batch(rate, 1.0 / var, usable)
    dist = np.where(np.isnan(fit), np.inf, np.abs(fit - target))
    best = dist.min(axis=1, keepdims=True)
    tied = dist <= best + 1e-12
    below = tied & (fit < target)
    k = patients.shape[1]
    highest_below = k - 1 - np.argmax(below[:, ::-1], axis=1)
    lowest_tied = np.argmax(tied, axis=1)
    chosen = np.where(below.any(axis=1), highest_below, lowest_tied)
    return np.where(np.asarray(usable) > 0, chosen, -1)


def _usable_doses(patients: NDArray[np.int64], eliminated: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Length of the leading run of doses that are tried and not eliminated, per row."""
    ok = (patients > 0) & ~eliminated
    return np.where(ok.all(axis=1), ok.shape[1], np.argmin(ok, axis=1))


def boin_select_mtd(
    patients: Sequence[int], toxicities: Sequence[int], target: float, cutoff_eli: float = 0.95
) -> int | None:
    """The dose level (from 1) BOIN selects from final data; None if the lowest dose is eliminated.

    Elimination is re-derived from the data: a dose with n ≥ 3 and Pr(p > φ) > cutoff goes,
    with all higher doses.
    """
    phi = check_target(target)
    n = np.asarray(patients, dtype=np.int64)[None, :]
    y = np.asarray(toxicities, dtype=np.int64)[None, :]
    elim = _eliminated(n[0], y[0], phi, cutoff_eli)[None, :]
    chosen = int(_select_mtd_batch(n, y, _usable_doses(n, elim), phi)[0])
    return None if chosen < 0 else chosen + 1


def _eliminated(
    n: NDArray[np.int64], y: NDArray[np.int64], target: float, cutoff: float
) -> NDArray[np.bool_]:
    out = np.zeros(n.size, dtype=bool)
    for i in range(n.size):
        limit = _elimination_min(int(n[i]), target, cutoff)
        if limit is not None and y[i] >= limit:
            out[i:] = True
            break
    return out


def boin_next_dose(
    data: DoseCounts,
    target: float,
    n_doses: int | None = None,
    phi1: float | None = None,
    phi2: float | None = None,
    cutoff_eli: float = 0.95,
) -> Recommendation:
    """Where BOIN sends the next cohort given the data so far.

    ``n_doses`` is the number of levels in the design; None means levels above the data exist.
    """
    phi = check_target(target)
    n, y = data.arrays()
    if n_doses is not None and n_doses < data.n_doses:
        raise DesignInputError(f"data go up to dose {data.n_doses} but the design has {n_doses} dose(s)")
    lam_e, lam_d = boin_intervals(phi, phi1, phi2)
    table = boin_boundaries(phi, int(n.max()), phi1, phi2, cutoff_eli)
    elim = _eliminated(n, y, phi, cutoff_eli)
    elim_levels = tuple(int(i) + 1 for i in np.flatnonzero(elim))
    if n_doses is not None and elim_levels:
        elim_levels = tuple(range(elim_levels[0], n_doses + 1))
    d = data.current
    nd, yd = int(n[d - 1]), int(y[d - 1])
    rate = yd / nd
    estimates = tuple((float(t) / float(m)) if m else None for t, m in zip(y, n, strict=True))
    mtd = boin_select_mtd(n, y, phi, cutoff_eli)
    common = {
        "design": "boin",
        "current_dose": d,
        "eliminated": elim_levels,
        "estimates": estimates,
        "mtd": mtd,
    }
    obs = f"{yd}/{nd} = {rate:.3f} at dose {d}"
    if elim[0]:
        reason = (
            f"dose 1 is eliminated (Pr(p > {phi:g} | data) > {cutoff_eli:g} with {int(n[0])} patients): "
            "every dose is too toxic, stop the trial with no dose selected"
        )
        return Recommendation(next_dose=None, action="stop", reason=reason, **common)
    top = n_doses if n_doses is not None else None
    if elim[d - 1]:
        return Recommendation(
            next_dose=d - 1,
            action="de-escalate",
            reason=f"{obs}; dose {d} is eliminated as too toxic, go down to dose {d - 1}",
            **common,
        )
    if yd <= table.escalate_max[nd - 1]:
        if top is not None and d >= top:
            reason = f"{obs} ≤ λe = {lam_e:.3f} but dose {d} is the top dose: stay"
            return Recommendation(next_dose=d, action="stay", reason=reason, **common)
        if d < elim.size and elim[d]:
            reason = f"{obs} ≤ λe = {lam_e:.3f} but dose {d + 1} is eliminated: stay"
            return Recommendation(next_dose=d, action="stay", reason=reason, **common)
        reason = f"{obs} ≤ λe = {lam_e:.3f}: escalate"
        return Recommendation(next_dose=d + 1, action="escalate", reason=reason, **common)
    if yd >= table.deescalate_min[nd - 1]:
        if d == 1:
            reason = f"{obs} ≥ λd = {lam_d:.3f} but dose 1 is the lowest dose: stay"
            return Recommendation(next_dose=1, action="stay", reason=reason, **common)
        reason = f"{obs} ≥ λd = {lam_d:.3f}: de-escalate"
        return Recommendation(next_dose=d - 1, action="de-escalate", reason=reason, **common)
    reason = f"λe = {lam_e:.3f} < {obs} < λd = {lam_d:.3f}: stay"
    return Recommendation(next_dose=d, action="stay", reason=reason, **common)


def boin_simulate(
    true_tox: Sequence[float],
    target: float = 0.3,
    cohort_size: int = 3,
    n_cohorts: int = 10,
    n_sims: int = 10_000,
    seed: int | None = None,
    n_earlystop: int | None = None,
    phi1: float | None = None,
    phi2: float | None = None,
    cutoff_eli: float = 0.95,
) -> OperatingCharacteristics:
    """Simulated operating characteristics of BOIN, vectorised over trials.

    Trials start at dose 1 and enrol at most ``n_cohorts`` cohorts of ``cohort_size``. With
    ``n_earlystop`` set, a trial also ends once the dose chosen for the next cohort already
    has that many patients (off by default). Only the cohort loop is in Python; every step
    updates all trials with array operations. Same seed, same result.
    """
    tox = check_probabilities(true_tox)
    phi = check_target(target)
    if cohort_size < 1 or n_cohorts < 1 or n_sims < 1:
        raise DesignInputError(
            f"cohort_size, n_cohorts and n_sims must be at least 1, got {cohort_size}, {n_cohorts}, {n_sims}"
        )
    if n_earlystop is not None and n_earlystop < 1:
        raise DesignInputError(f"n_earlystop must be at least 1, got {n_earlystop}")
    k = tox.size
    n_max = cohort_size * n_cohorts
    table = boin_boundaries(phi, n_max, phi1, phi2, cutoff_eli)
    never = n_max + 1
    esc = np.array([-1, *table.escalate_max])  # index by n; n = 0 never looked up
    deesc = np.array([never, *table.deescalate_min])
    elim_at = np.array([never] + [never if v is None else v for v in table.eliminate_min])

    rng = np.random.default_rng(seed)
    rows = np.arange(n_sims)
    levels = np.arange(k)
    n = np.zeros((n_sims, k), dtype=np.int64)
    y = np.zeros((n_sims, k), dtype=np.int64)
    eliminated = np.zeros((n_sims, k), dtype=bool)
    cur = np.zeros(n_sims, dtype=np.int64)
    active = np.ones(n_sims, dtype=bool)
    failed = np.zeros(n_sims, dtype=bool)  # lowest dose eliminated
    for _ in range(n_cohorts):
        if not active.any():
            break
        dlt = rng.binomial(cohort_size, tox[cur])
        y[rows, cur] += dlt * active
        n[rows, cur] += cohort_size * active
        nd = n[rows, cur]
        yd = y[rows, cur]
        drop = active & (yd >= elim_at[nd])
        eliminated |= drop[:, None] & (levels[None, :] >= cur[:, None])
        failed |= drop & (cur == 0)
        active &= ~failed
        up_blocked = eliminated[rows, np.minimum(cur + 1, k - 1)]
        up = (yd <= esc[nd]) & (cur < k - 1) & ~up_blocked
        down = ((yd >= deesc[nd]) | drop) & (cur > 0)
        nxt = np.where(active, cur + up - down, cur)
        if n_earlystop is not None:
            active &= n[rows, nxt] < n_earlystop
        cur = nxt
    usable = _usable_doses(n, eliminated)
    selected = _select_mtd_batch(n, y, usable, phi)
    selected[failed] = -1
    return summarise_simulations(
        design="boin", target=phi, true_tox=tox, selected=selected, patients=n, toxicities=y, seed=seed
    )
