"""Vote counting, harvest tables and the list of strata where studies disagree.

A stratum is one MSC tissue source x cancer type (or class) x delivery x setting. Items that
pool sources count under each of their sources.

Items from one study are not independent, so each stratum reports two counts: items, and
studies voting by their majority direction in that stratum (a study whose items split evenly
between inhibiting and promoting votes "mixed"). The exact (Clopper-Pearson) 95% interval on
the share that inhibits is computed over studies, the independent units, among the studies
with a clear vote (inhibits, promotes or no effect).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from scipy.stats import binomtest

from mscatlas.stats.harmonize import HarmonizedItem

__all__ = ["Conflict", "Level", "Stratum", "conflicts", "harvest", "study_votes"]

Level = Literal["type", "class"]
DIRECTIONS = ("inhibits", "promotes", "no_effect", "mixed")
# Fields compared between the two sides of a conflict: the candidate explanations.
MODERATORS = ("msc_species", "engineered", "cancer_type", "endpoint", "dose_value", "dose_dependent", "study")


@dataclass(frozen=True)
class Stratum:
    msc_source: str
    cancer: str
    delivery: str
    setting: str
    items: tuple[HarmonizedItem, ...]
    item_counts: dict[str, int]
    study_counts: dict[str, int]
    share_inhibits: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_studies(self) -> int:
        return len({h.study for h in self.items})

    def to_dict(self) -> dict[str, Any]:
        return {
            "msc_source": self.msc_source,
            "cancer": self.cancer,
            "delivery": self.delivery,
            "setting": self.setting,
            "n_items": self.n_items,
            "n_studies": self.n_studies,
            "items": self.item_counts,
            "studies": self.study_counts,
            "share_inhibits": self.share_inhibits,
            "ci_95": [self.ci_low, self.ci_high],
            "item_ids": [h.id for h in self.items],
        }


def study_votes(items: Sequence[HarmonizedItem]) -> dict[str, str]:
    """Each study's majority direction among the given items ("mixed" on an even split)."""
    by_study: dict[str, Counter[str]] = defaultdict(Counter)
    for item in items:
        by_study[item.study][item.direction] += 1
    votes = {}
    for study, counter in by_study.items():
        (top, n_top), *rest = counter.most_common()
        votes[study] = "mixed" if rest and rest[0][1] == n_top else top
    return votes


def _strata_keys(item: HarmonizedItem, level: Level) -> list[tuple[str, str, str, str]]:
    cancer = item.cancer_type if level == "type" else item.cancer_class
    return [(source, cancer, item.delivery, item.setting) for source in item.msc_source]


def harvest(items: Sequence[HarmonizedItem], level: Level = "type") -> list[Stratum]:
    """Every stratum with its item and study counts and the exact CI on the share inhibiting."""
    groups: dict[tuple[str, str, str, str], list[HarmonizedItem]] = defaultdict(list)
    for item in items:
        for key in _strata_keys(item, level):
            groups[key].append(item)
    strata = []
    for key, members in groups.items():
        item_counts = Counter(h.direction for h in members)
        study_counts = Counter(study_votes(members).values())
        decided = study_counts["inhibits"] + study_counts["promotes"] + study_counts["no_effect"]
        share = low = high = None
        if decided:
            share = study_counts["inhibits"] / decided
            interval = binomtest(study_counts["inhibits"], decided).proportion_ci(0.95, method="exact")
            low, high = float(interval.low), float(interval.high)
        strata.append(
            Stratum(
                *key,
                items=tuple(sorted(members, key=lambda h: h.id)),
                item_counts={d: item_counts[d] for d in DIRECTIONS},
                study_counts={d: study_counts[d] for d in DIRECTIONS},
                share_inhibits=share,
                ci_low=low,
                ci_high=high,
            )
        )
    return sorted(strata, key=lambda s: (-s.n_items, s.msc_source, s.cancer, s.delivery, s.setting))


@dataclass(frozen=True)
class Conflict:
    """A stratum whose items both inhibit and promote the cancer, and what differs between sides."""

    stratum: Stratum
    inhibiting: tuple[HarmonizedItem, ...]
    promoting: tuple[HarmonizedItem, ...]
    differing: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        s = self.stratum
        return {
            "msc_source": s.msc_source,
            "cancer": s.cancer,
            "delivery": s.delivery,
            "setting": s.setting,
            "inhibiting": [h.id for h in self.inhibiting],
            "promoting": [h.id for h in self.promoting],
            "differing": self.differing,
        }


def _values(items: Sequence[HarmonizedItem], name: str) -> list[Any]:
    values = {getattr(h, name) for h in items}
    # Doses are compared at three significant digits: finer differences are noise of the scale.
    values = {float(f"{v:.3g}") if isinstance(v, float) else v for v in values}
    return sorted(values, key=lambda v: (v is None, str(v)))


def conflicts(items: Sequence[HarmonizedItem], level: Level = "type") -> list[Conflict]:
    """Strata with items on both sides, and the moderators whose values do not overlap."""
    found = []
    for stratum in harvest(items, level):
        inhibiting = tuple(h for h in stratum.items if h.direction == "inhibits")
        promoting = tuple(h for h in stratum.items if h.direction == "promotes")
        if not (inhibiting and promoting):
            continue
        differing = {}
        for name in MODERATORS:
            left, right = _values(inhibiting, name), _values(promoting, name)
            if not set(left) & set(right):
                differing[name] = {"inhibiting": left, "promoting": right}
        found.append(Conflict(stratum, inhibiting, promoting, differing))
    return found
