"""Why results disagree: a Bayesian multilevel logistic model of P(inhibits).

Outcome: 1 when an evidence item inhibits the cancer, 0 when it promotes it or shows no effect
(``mixed`` items are left out). Moderators: MSC source, delivery, cancer class, setting,
engineered vs native, and dose (standardised within its delivery's scale, with an indicator for
items whose dose cannot be placed). Study is a random intercept, u_s ~ N(0, sigma^2), because
items of one study are not independent.

Priors (weakly informative, on the logit scale): intercept N(0, 2.5^2), each moderator
coefficient N(0, 1.5^2), sigma half-normal(1).

Inference is deterministic "grid Laplace": for each sigma on a log-spaced grid the joint
posterior of (beta, u) is approximated by a Gaussian at its mode (Newton's method), and the
grid points are weighted by their Laplace marginal likelihood times the prior. Draws for
intervals come from that mixture with a seeded generator. This is written here because the
model is small and the established samplers (PyMC, Stan) are heavy dependencies whose runs are
not bit-reproducible across machines; the grid keeps fits exact to rerun and fast enough for
leave-one-study-out validation.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.special import expit

from mscatlas.stats import cache
from mscatlas.stats.harmonize import HarmonizedItem

__all__ = [
    "BASE_SPEC",
    "MODERATORS",
    "SEED",
    "Design",
    "Groups",
    "ModeratorFit",
    "ModeratorSpec",
    "Validation",
    "design",
    "fit_design",
    "fit_moderator_model",
    "leave_one_study_out",
    "paired_bootstrap",
    "verdict",
]

# Moderator -> reference level (the level absorbed by the intercept).
MODERATORS: dict[str, str] = {
    "msc_source": "bone_marrow",
    "delivery": "direct_coculture",
    "cancer_class": "solid",
    "setting": "in_vitro",
}


@dataclass(frozen=True)
class ModeratorSpec:
    """Which moderators a model uses beyond the item's own fields.

    ``categorical`` maps a moderator to its reference level, ``binary`` are 0/1 moderators and
    ``numeric`` are standardised (mean 0, sd 1 over the items that have a value) with an indicator
    for items without one. Values of moderators that are not fields of :class:`HarmonizedItem`
    come from the ``extra`` mapping (item id -> {moderator: value}) given to :func:`design`.
    """

    categorical: dict[str, str]
    binary: tuple[str, ...] = ("engineered",)
    numeric: tuple[str, ...] = ()


SEED = 2024  # the one seed of the posterior draws: CLI, web and report all use it
INTERCEPT_SD = 2.5
COEF_SD = 1.5
SIGMA_GRID = np.geomspace(0.05, 10.0, 32)
BASE_SPEC = ModeratorSpec(categorical=MODERATORS)


def _outcome(item: HarmonizedItem) -> int | None:
    if item.direction == "inhibits":
        return 1
    if item.direction in ("promotes", "no_effect"):
        return 0
    return None


def _primary_source(item: HarmonizedItem) -> str:
    # An item pooling sources is coded by its first source (sorted); pooled items are rare.
    return item.msc_source[0]


def _value(item: HarmonizedItem, name: str, extra: dict[str, dict[str, Any]] | None) -> Any:
    """A moderator's value for an item: the item's own field, or the ``extra`` mapping's."""
    if name == "msc_source":
        return _primary_source(item)
    if extra is not None and name in extra.get(item.id, {}):
        return extra[item.id][name]
    if hasattr(item, name):
        return getattr(item, name)
    raise ValueError(f"item {item.id}: no value for moderator '{name}' (not a field and not in extra)")


@dataclass(frozen=True)
class Groups:
    """A design's items grouped by study and raw moderator values, as binomial counts.

    Items that agree on their study and on every moderator value share one design row, and the
    Bernoulli likelihood of those items is the binomial likelihood of the group (successes out of
    trials, without the binomial coefficient, which does not depend on the parameters). The
    fits and every leave-one-study-out refit run on the groups: at 10^5 items copied from a few
    hundred designs that is hundreds of rows, not 10^5. Raw values are kept (not only the
    design rows) because a refit without one study re-derives levels and standardisations
    from the other studies' values.
    """

    keys: list[tuple[Any, ...]]  # (study, categorical..., binary..., numeric..., dose, delivery)
    study: np.ndarray  # study index of each group
    codes: dict[str, np.ndarray]  # categorical moderator -> index of each group's value in values
    values: dict[str, list[Any]]  # categorical moderator -> its distinct values
    binary: dict[str, np.ndarray]  # 0/1
    numeric: dict[str, np.ndarray]  # NaN where the item has no value
    dose: np.ndarray  # NaN where the dose cannot be placed
    delivery: np.ndarray  # each group's own delivery (object array)
    trials: np.ndarray  # items in the group
    successes: np.ndarray  # inhibiting items in the group
    item_group: np.ndarray  # the group of each item of the design
    X: np.ndarray  # the design row of each group


@dataclass(frozen=True)
class _Encoding:
    columns: list[str]
    levels: dict[str, list[str]]
    dose_stats: dict[str, tuple[float, float]]
    numeric_stats: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class Design:
    """Design matrix with named columns, the outcome, and each row's study index."""

    columns: list[str]
    X: np.ndarray
    y: np.ndarray
    study: np.ndarray
    studies: list[str]
    items: list[HarmonizedItem]
    levels: dict[str, list[str]]
    dose_stats: dict[str, tuple[float, float]]
    spec: ModeratorSpec = BASE_SPEC
    numeric_stats: dict[str, tuple[float, float]] = field(default_factory=dict)
    groups: Groups | None = field(default=None, repr=False)

    def row(self, **covariates: Any) -> np.ndarray:
        """The design row of one covariate combination (missing keys take reference levels)."""
        x = np.zeros(len(self.columns))
        x[0] = 1.0
        for name, reference in self.spec.categorical.items():
            value = covariates.get(name, reference)
            if value not in self.levels[name]:
                raise ValueError(f"unknown {name} '{value}'; known: {', '.join(self.levels[name])}")
            if value != reference:
                x[self.columns.index(f"{name}={value}")] = 1.0
        for name in self.spec.binary:
            x[self.columns.index(name)] = float(bool(covariates.get(name, False)))
        for name in self.spec.numeric:
            value = covariates.get(name)
            if value is None or name not in self.numeric_stats:
                x[self.columns.index(f"{name}_missing")] = 1.0
            else:
                mean, sd = self.numeric_stats[name]
                x[self.columns.index(f"{name}_z")] = (float(value) - mean) / sd
        dose = covariates.get("dose")
        delivery = covariates.get("delivery", MODERATORS["delivery"])
        if dose is None or delivery not in self.dose_stats:
            x[self.columns.index("dose_missing")] = 1.0
        else:
            mean, sd = self.dose_stats[delivery]
            x[self.columns.index("dose_z")] = (float(dose) - mean) / sd
        return x

    def covariates(
        self, item: HarmonizedItem, extra: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """An item's covariates, with levels unseen in this design mapped to the reference level."""
        out: dict[str, Any] = {}
        for name, reference in self.spec.categorical.items():
            value = _value(item, name, extra)
            out[name] = value if value in self.levels[name] else reference
        for name in (*self.spec.binary, *self.spec.numeric):
            out[name] = _value(item, name, extra)
        out["dose"] = item.dose_value
        return out


def _group(
    kept: Sequence[HarmonizedItem],
    spec: ModeratorSpec,
    extra: dict[str, dict[str, Any]] | None,
    studies: list[str],
    merge: bool,
) -> tuple[list[tuple[Any, ...]], np.ndarray, np.ndarray, np.ndarray]:
    """Group keys, each item's group, and each group's trials and successes (``merge=False``:
    one group per item)."""
    index: dict[tuple[Any, ...], int] = {}
    keys: list[tuple[Any, ...]] = []
    item_group = np.empty(len(kept), dtype=np.intp)
    position = {s: k for k, s in enumerate(studies)}
    names = (*spec.categorical, *spec.binary, *spec.numeric)
    for i, h in enumerate(kept):
        key = (position[h.study], *(_value(h, n, extra) for n in names), h.dose_value, h.delivery)
        if not merge:
            keys.append(key)
            item_group[i] = i
            continue
        g = index.get(key)
        if g is None:
            g = index[key] = len(keys)
            keys.append(key)
        item_group[i] = g
    y = np.array([_outcome(h) for h in kept], dtype=float)
    trials = np.bincount(item_group, minlength=len(keys)).astype(float)
    successes = np.bincount(item_group, weights=y, minlength=len(keys))
    return keys, item_group, trials, successes


def _raw_groups(
    kept: Sequence[HarmonizedItem],
    spec: ModeratorSpec,
    extra: dict[str, dict[str, Any]] | None,
    studies: list[str],
    merge: bool,
) -> Groups:
    keys, item_group, trials, successes = _group(kept, spec, extra, studies, merge)
    columns = list(zip(*keys, strict=True)) if keys else []
    n_cat, n_bin = len(spec.categorical), len(spec.binary)
    codes: dict[str, np.ndarray] = {}
    values: dict[str, list[Any]] = {}
    for k, name in enumerate(spec.categorical, start=1):
        distinct = list(dict.fromkeys(columns[k]))
        where = {v: j for j, v in enumerate(distinct)}
        codes[name] = np.array([where[v] for v in columns[k]], dtype=np.intp)
        values[name] = distinct
    binary = {
        name: np.array([float(bool(v)) for v in columns[1 + n_cat + k]])
        for k, name in enumerate(spec.binary)
    }
    numeric = {
        name: np.array([np.nan if v is None else float(v) for v in columns[1 + n_cat + n_bin + k]])
        for k, name in enumerate(spec.numeric)
    }
    dose = np.array([np.nan if v is None else float(v) for v in columns[-2]])
    delivery = np.array(columns[-1], dtype=object)
    study = np.array(columns[0], dtype=np.intp)
    empty = np.zeros((len(keys), 0))
    return Groups(
        keys, study, codes, values, binary, numeric, dose, delivery, trials, successes, item_group, empty
    )


def _weighted_stats(values: np.ndarray, weights: np.ndarray) -> tuple[float, float] | None:
    """Mean and sd of values repeated ``weights`` times; None with fewer than two items or one
    distinct value (an sd of rounding error only would blow the z scores up)."""
    known = ~np.isnan(values)
    v, w = values[known], weights[known]
    if w.sum() < 2 or v.size == 0 or np.ptp(v) == 0:
        return None
    mean = float(np.average(v, weights=w))
    return mean, float(np.sqrt(np.average((v - mean) ** 2, weights=w)))


def _encode(g: Groups, mask: np.ndarray, spec: ModeratorSpec) -> _Encoding:
    """Columns, levels and standardisations of the design of the groups in ``mask``."""
    levels: dict[str, list[str]] = {}
    columns = ["intercept"]
    for name, reference in spec.categorical.items():
        present = np.unique(g.codes[name][mask])
        levels[name] = sorted({g.values[name][c] for c in present} | {reference})
        columns += [f"{name}={lvl}" for lvl in levels[name] if lvl != reference]
    columns += list(spec.binary)
    for name in spec.numeric:
        columns += [f"{name}_z", f"{name}_missing"]
    columns += ["dose_z", "dose_missing"]
    dose_stats: dict[str, tuple[float, float]] = {}
    delivery, dose, trials = g.delivery[mask], g.dose[mask], g.trials[mask]
    for value in sorted(set(delivery)):  # dose is standardised within each delivery's own scale
        stats = _weighted_stats(dose[delivery == value], trials[delivery == value])
        if stats is not None:
            dose_stats[value] = stats
    numeric_stats: dict[str, tuple[float, float]] = {}
    for name in spec.numeric:
        stats = _weighted_stats(g.numeric[name][mask], trials)
        if stats is not None:
            numeric_stats[name] = stats
    return _Encoding(columns, levels, dose_stats, numeric_stats)


def _rows(g: Groups, mask: np.ndarray, enc: _Encoding, spec: ModeratorSpec) -> np.ndarray:
    """Design rows of the groups in ``mask`` under ``enc``; a level ``enc`` has not seen takes
    the reference level (as :meth:`Design.covariates` does for a held-out item)."""
    index = {c: j for j, c in enumerate(enc.columns)}
    n = int(mask.sum())
    X = np.zeros((n, len(enc.columns)))
    X[:, 0] = 1.0
    rows = np.arange(n)
    mapped_delivery = g.delivery[mask]
    for name, reference in spec.categorical.items():
        known = set(enc.levels[name])
        lookup = np.array(
            [index[f"{name}={v}"] if v in known and v != reference else -1 for v in g.values[name]],
            dtype=np.intp,
        )
        col = lookup[g.codes[name][mask]]
        on = col >= 0
        X[rows[on], col[on]] = 1.0
        if name == "delivery":
            unseen = np.array([v not in known for v in g.values[name]], dtype=bool)[g.codes[name][mask]]
            mapped_delivery = np.where(unseen, reference, mapped_delivery)
    for name in spec.binary:
        X[:, index[name]] = g.binary[name][mask]
    for name in spec.numeric:
        values = g.numeric[name][mask]
        if name in enc.numeric_stats:
            mean, sd = enc.numeric_stats[name]
            placed = ~np.isnan(values)
            X[placed, index[f"{name}_z"]] = (values[placed] - mean) / sd
            X[~placed, index[f"{name}_missing"]] = 1.0
        else:
            X[:, index[f"{name}_missing"]] = 1.0
    dose = g.dose[mask]
    placed = np.zeros(n, dtype=bool)
    for value, (mean, sd) in enc.dose_stats.items():
        on = (mapped_delivery == value) & ~np.isnan(dose)
        X[on, index["dose_z"]] = (dose[on] - mean) / sd
        placed |= on
    X[~placed, index["dose_missing"]] = 1.0
    return X


def design(
    items: Sequence[HarmonizedItem],
    spec: ModeratorSpec = BASE_SPEC,
    extra: dict[str, dict[str, Any]] | None = None,
    *,
    grouped: bool = True,
) -> Design:
    """The design of the items with an outcome; ``grouped=False`` keeps one group per item
    (the same numbers, slower: it exists to check the grouping)."""
    kept = [h for h in items if _outcome(h) is not None]
    if not kept:
        raise ValueError("no items with an inhibiting, promoting or null outcome")
    studies = sorted({h.study for h in kept})
    raw = _raw_groups(kept, spec, extra, studies, grouped)
    everything = np.ones(len(raw.keys), dtype=bool)
    enc = _encode(raw, everything, spec)
    groups = replace(raw, X=_rows(raw, everything, enc, spec))
    X = groups.X[groups.item_group]
    y = np.array([_outcome(h) for h in kept], dtype=float)
    study = groups.study[groups.item_group]
    return Design(
        enc.columns, X, y, study, studies, kept, enc.levels, enc.dose_stats, spec, enc.numeric_stats, groups
    )


@dataclass(frozen=True)
class _Mode:
    theta: np.ndarray  # (beta, u)
    cov: np.ndarray
    log_evidence: float


def _laplace(
    X: np.ndarray,
    y: np.ndarray,
    study: np.ndarray,
    n_studies: int,
    sigma: float,
    theta0: np.ndarray | None = None,
    trials: np.ndarray | None = None,
    incidence: csr_matrix | None = None,
) -> _Mode:
    """Mode and Gaussian approximation of p(beta, u | y, sigma), and log p(y | sigma).

    Rows are groups of items: ``y`` successes out of ``trials`` (default one item per row).
    Each row loads on one study effect, so the Hessian's study block is diagonal: Newton steps,
    the log determinant and the coefficients' covariance come from the p x p Schur complement,
    O(n p^2) per step instead of O((p + studies)^3). ``cov`` is the covariance of beta only.
    """
    p = X.shape[1]
    m = np.ones(len(y)) if trials is None else trials
    prior_b = np.concatenate([[INTERCEPT_SD], np.full(p - 1, COEF_SD)]) ** -2.0
    prior_u = sigma**-2.0
    theta = np.zeros(p + n_studies) if theta0 is None else theta0.copy()
    if incidence is None:
        incidence = _incidence(study, n_studies)

    def blocks(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        eta = X @ theta[:p] + theta[p:][study]
        prob = expit(eta)
        w = m * prob * (1 - prob)
        xw = X * w[:, None]  # (n, p)
        xwz = incidence @ xw  # row s: sum over study s's rows of w_i x_i
        d = np.bincount(study, weights=w, minlength=n_studies) + prior_u
        schur = X.T @ xw + np.diag(prior_b) - (xwz.T / d) @ xwz
        return eta, prob, xwz, d, schur

    for _ in range(100):
        eta, prob, xwz, d, schur = blocks(theta)
        resid = y - m * prob
        g_b = X.T @ resid - prior_b * theta[:p]
        g_u = np.bincount(study, weights=resid, minlength=n_studies) - prior_u * theta[p:]
        step_b = np.linalg.solve(schur, g_b - xwz.T @ (g_u / d))
        step_u = (g_u - xwz @ step_b) / d
        theta[:p] += step_b
        theta[p:] += step_u
        if max(np.max(np.abs(step_b)), np.max(np.abs(step_u), initial=0.0)) < 1e-10:
            break
    eta, prob, xwz, d, schur = blocks(theta)
    loglik = float(np.sum(y * eta - m * np.logaddexp(0.0, eta)))
    precision = np.concatenate([prior_b, np.full(n_studies, prior_u)])
    logprior = float(-0.5 * np.sum(precision * theta**2) + 0.5 * np.sum(np.log(precision / (2 * np.pi))))
    _, logdet_schur = np.linalg.slogdet(schur)
    logdet = float(np.sum(np.log(d))) + logdet_schur
    dim = len(theta)
    log_evidence = loglik + logprior + 0.5 * dim * np.log(2 * np.pi) - 0.5 * logdet
    return _Mode(theta, np.linalg.inv(schur), log_evidence)


def _incidence(study: np.ndarray, n_studies: int) -> csr_matrix:
    """Study-by-row incidence, sparse: its product is ~25x faster than np.add.at."""
    return csr_matrix((np.ones(len(study)), (study, np.arange(len(study)))), shape=(n_studies, len(study)))


@dataclass
class ModeratorFit:
    """The fitted model: grid weights, modes, and seeded posterior draws of the coefficients."""

    design: Design
    sigmas: np.ndarray
    weights: np.ndarray
    modes: list[_Mode | None]  # None where the grid point's weight is negligible (not fitted)
    beta_draws: np.ndarray
    sigma_draws: np.ndarray
    seed: int
    rng: np.random.Generator = field(repr=False)

    @property
    def columns(self) -> list[str]:
        return self.design.columns

    def effects(self) -> list[dict[str, Any]]:
        """Each coefficient (log odds ratio vs the reference level) with its 95% interval."""
        out = []
        for j, name in enumerate(self.columns):
            draws = self.beta_draws[:, j]
            low, high = np.percentile(draws, [2.5, 97.5])
            n_items = int(np.sum(self.design.X[:, j] != 0)) if j else len(self.design.y)
            out.append(
                {
                    "name": name,
                    "estimate": float(np.mean(draws)),
                    "ci_lb": float(low),
                    "ci_ub": float(high),
                    "odds_ratio": float(np.exp(np.mean(draws))),
                    "n_items": n_items,
                    "supported": bool(low > 0 or high < 0),
                }
            )
        return out

    def sigma_summary(self) -> dict[str, float]:
        low, high = np.percentile(self.sigma_draws, [2.5, 97.5])
        return {"mean": float(np.mean(self.sigma_draws)), "ci_lb": float(low), "ci_ub": float(high)}

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """Predictive P(inhibits) for a new study with these design rows (study effect integrated)."""
        return _predictive(self.beta_draws, self.sigma_draws, self.rng, rows)

    def predict(self, **covariates: Any) -> dict[str, Any]:
        """P(inhibits) for a combination: for an average study (with interval) and a new study."""
        row = self.design.row(**covariates)
        eta = self.beta_draws @ row
        average = expit(eta)
        low, high = np.percentile(average, [2.5, 97.5])
        new_study = float(np.mean(expit(eta + self.rng.standard_normal(len(eta)) * self.sigma_draws)))
        return {
            "covariates": {k: v for k, v in covariates.items() if v is not None},
            "p_inhibits": float(np.mean(average)),
            "ci_lb": float(low),
            "ci_ub": float(high),
            "p_inhibits_new_study": new_study,
            "closest_items": self._closest_items(row),
        }

    def _closest_items(self, row: np.ndarray, n: int = 5) -> list[dict[str, str]]:
        # The items whose moderators match the query best inform it most directly.
        categorical = [j for j, c in enumerate(self.columns) if "=" in c or c == "engineered"]
        distance = np.abs(self.design.X[:, categorical] - row[categorical]).sum(axis=1)
        order = np.argsort(distance, kind="stable")[:n]
        return [
            {
                "id": self.design.items[i].id,
                "direction": self.design.items[i].direction,
                "mismatches": int(distance[i]),
            }
            for i in order
        ]


def fit_moderator_model(
    items: Sequence[HarmonizedItem], *, seed: int = SEED, draws: int = 4000
) -> ModeratorFit:
    return fit_design(design(items), seed=seed, draws=draws)


def fit_design(d: Design, *, seed: int = SEED, draws: int = 4000) -> ModeratorFit:
    """Fit the model on a prepared design (any :class:`ModeratorSpec`), on its groups; a fit of
    the same content in this process comes from :mod:`mscatlas.stats.cache`."""
    key = cache.digest("fit", _design_digest(d), seed, draws)
    return cache.fit(key, lambda: _fit(d, seed=seed, draws=draws))


def _design_digest(d: Design) -> str:
    """The content a fit depends on: items (ids and groups), group values, columns, counts."""
    g = d.groups
    assert g is not None
    return cache.digest(
        d.columns, d.studies, [h.id for h in d.items], g.item_group, g.X, g.trials, g.successes, g.study
    )


# Grid points whose log weight is this far below the best carry less than e^-30 of the mass:
# the walk along the grid stops there (the rest of the grid would not change a draw).
_NEGLIGIBLE = 30.0


@dataclass(frozen=True)
class _Posterior:
    weights: np.ndarray
    modes: list[_Mode | None]
    beta: np.ndarray
    sigma: np.ndarray
    rng: np.random.Generator


def _posterior(
    X: np.ndarray,
    y: np.ndarray,
    trials: np.ndarray,
    study: np.ndarray,
    n_studies: int,
    *,
    seed: int,
    draws: int,
    start: int | None = None,
    warm: np.ndarray | None = None,
) -> _Posterior:
    """Grid-Laplace posterior of rows of ``y`` successes out of ``trials``; ``start`` (a grid
    index) and ``warm`` (a starting (beta, u)) only speed it up: a leave-one-study-out refit
    starts where the full fit's weight peaked."""
    # Half-normal(1) prior on sigma, expressed on the log-spaced grid (Jacobian sigma).
    log_prior = np.log(2.0) - 0.5 * np.log(2 * np.pi) - 0.5 * SIGMA_GRID**2 + np.log(SIGMA_GRID)
    n_grid = len(SIGMA_GRID)
    found: dict[int, _Mode] = {}
    log_w = np.full(n_grid, -np.inf)
    incidence = _incidence(study, n_studies)

    def visit(g: int, theta0: np.ndarray | None) -> _Mode:
        mode = _laplace(X, y, study, n_studies, SIGMA_GRID[g], theta0, trials, incidence)
        found[g] = mode
        log_w[g] = mode.log_evidence + log_prior[g]
        return mode

    # Walk up and down the grid from its middle, each mode starting from its neighbour's (fewer
    # Newton steps, same optimum), until the weights have fallen below e^-30 of the best.
    start = n_grid // 2 if start is None else start
    centre = visit(start, warm)
    for direction in (1, -1):
        last, g = centre, start + direction
        while 0 <= g < n_grid:
            last = visit(g, last.theta)
            if log_w[g] < np.max(log_w) - _NEGLIGIBLE and log_w[g] < log_w[g - direction]:
                break
            g += direction
    weights = np.exp(log_w - log_w.max())
    weights /= weights.sum()
    rng = np.random.default_rng(seed)
    which = rng.choice(n_grid, size=draws, p=weights)
    p = X.shape[1]
    beta = np.empty((draws, p))
    for g in np.unique(which):
        idx = np.flatnonzero(which == g)
        mode = found[int(g)]
        beta[idx] = rng.multivariate_normal(
            mode.theta[:p], mode.cov[:p, :p], size=len(idx), method="cholesky"
        )
    return _Posterior(weights, [found.get(g) for g in range(n_grid)], beta, SIGMA_GRID[which], rng)


def _fit(
    d: Design, *, seed: int, draws: int, start: int | None = None, warm: np.ndarray | None = None
) -> ModeratorFit:
    g = d.groups
    assert g is not None
    post = _posterior(
        g.X, g.successes, g.trials, g.study, len(d.studies), seed=seed, draws=draws, start=start, warm=warm
    )
    return ModeratorFit(d, SIGMA_GRID, post.weights, post.modes, post.beta, post.sigma, seed, post.rng)


def _predictive(
    beta: np.ndarray, sigma: np.ndarray, rng: np.random.Generator, rows: np.ndarray
) -> np.ndarray:
    """Predictive P(inhibits) for a new study with these design rows (study effect integrated)."""
    eta = beta @ rows.T  # draws x rows
    u_new = rng.standard_normal(eta.shape[0])[:, None] * sigma[:, None]
    return np.mean(expit(eta + u_new), axis=0)


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
    key = cache.digest("loso", _design_digest(full), list(full.groups.keys), seed, draws)  # type: ignore[union-attr]
    return cache.validation(key, lambda: _loso(full, seed=seed, draws=draws))


def _loso(full: Design, *, seed: int, draws: int) -> Validation:
    g = full.groups
    assert g is not None
    spec = full.spec
    reference = _fit(full, seed=seed, draws=1)  # only to start each refit near its optimum
    peak = int(np.argmax(reference.weights))
    peak_theta = reference.modes[peak].theta  # type: ignore[union-attr]
    p_full = len(full.columns)
    item_study = g.study[g.item_group]
    predictions: list[tuple[str, int, float]] = []
    held_out: list[tuple[str, float]] = []
    for s, name in enumerate(full.studies):
        train = g.study != s
        enc = _encode(g, train, spec)
        study = g.study[train]
        warm = None
        if enc.columns == full.columns:  # same coefficients: start from the full fit's mode
            warm = np.concatenate([peak_theta[:p_full], np.delete(peak_theta[p_full:], s)])
        post = _posterior(
            _rows(g, train, enc, spec),
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
        probs = _predictive(post.beta, post.sigma, post.rng, _rows(g, held, enc, spec))
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
    studies = sorted({s for s, _ in validation.held_out})
    position = {s: k for k, s in enumerate(studies)}
    which = np.array([position[s] for s, _ in validation.held_out])
    ll_a, br_a = _item_losses(y, p)
    ll_b, br_b = _item_losses(y, q)
    # Per-study sums, so a resample is a weighted sum over studies.
    sums = {
        name: np.bincount(which, weights=v, minlength=len(studies))
        for name, v in (("ll", ll_a - ll_b), ("br", br_a - br_b))
    }
    counts = np.bincount(which, minlength=len(studies)).astype(float)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(studies), np.full(len(studies), 1 / len(studies)), size=n_boot)
    out: dict[str, Any] = {"n_boot": n_boot, "n_studies": len(studies), "seed": seed}
    for name, label in (("ll", "log_loss"), ("br", "brier")):
        boot = (weights @ sums[name]) / (weights @ counts)
        low, high = np.percentile(boot, [2.5, 97.5])
        out[label] = {
            "difference": float(sums[name].sum() / counts.sum()),
            "ci_lb": float(low),
            "ci_ub": float(high),
            "p_better": float(np.mean(boot < 0)),
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
