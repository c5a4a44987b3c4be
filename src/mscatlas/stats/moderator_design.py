"""The design of the moderator model (:mod:`mscatlas.stats.moderators`): which moderators, how
items become binomial groups, and how groups become design rows.

Kept apart from the fit because leave-one-study-out validation re-derives the encoding (levels,
dose standardisation within each delivery) from the other studies' groups for every refit:
:func:`encode_groups` and :func:`group_rows` are that step, public for
:mod:`mscatlas.stats.moderator_validation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mscatlas.stats.harmonize import HarmonizedItem

__all__ = [
    "BASE_SPEC",
    "MODERATORS",
    "Design",
    "GroupEncoding",
    "Groups",
    "ModeratorSpec",
    "design",
    "encode_groups",
    "group_rows",
    "outcome",
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


BASE_SPEC = ModeratorSpec(categorical=MODERATORS)


def outcome(item: HarmonizedItem) -> int | None:
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
class GroupEncoding:
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
    y = np.array([outcome(h) for h in kept], dtype=float)
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


def encode_groups(g: Groups, mask: np.ndarray, spec: ModeratorSpec) -> GroupEncoding:
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
    return GroupEncoding(columns, levels, dose_stats, numeric_stats)


def group_rows(g: Groups, mask: np.ndarray, enc: GroupEncoding, spec: ModeratorSpec) -> np.ndarray:
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
    kept = [h for h in items if outcome(h) is not None]
    if not kept:
        raise ValueError("no items with an inhibiting, promoting or null outcome")
    studies = sorted({h.study for h in kept})
    raw = _raw_groups(kept, spec, extra, studies, grouped)
    everything = np.ones(len(raw.keys), dtype=bool)
    enc = encode_groups(raw, everything, spec)
    groups = replace(raw, X=group_rows(raw, everything, enc, spec))
    X = groups.X[groups.item_group]
    y = np.array([outcome(h) for h in kept], dtype=float)
    study = groups.study[groups.item_group]
    return Design(
        enc.columns, X, y, study, studies, kept, enc.levels, enc.dose_stats, spec, enc.numeric_stats, groups
    )
