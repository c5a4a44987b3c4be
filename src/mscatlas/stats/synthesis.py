"""The synthesis pipeline, computed in one place: harmonise → fit → leave-one-study-out → verdict.

:func:`run_synthesis` turns evidence items into one :class:`SynthesisResult`: the harmonised
items, the harvest strata and conflicts at the requested level, the dose coverage, the
moderator model and, on first use, its leave-one-study-out validation and the plain verdict.
``mscatlas synthesize``/``predict``, the web synthesis page and API, and the report only
render this object, so the three always show the same numbers for the same store. The one
seed of the posterior draws is :data:`mscatlas.stats.moderators.SEED`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from mscatlas.kb.models import EvidenceItem
from mscatlas.stats.conflict import Conflict, Stratum, conflicts, harvest
from mscatlas.stats.harmonize import HarmonizedItem, dose_coverage, harmonize
from mscatlas.stats.moderators import SEED, ModeratorFit, Validation, fit_moderator_model, leave_one_study_out
from mscatlas.stats.moderators import verdict as moderator_verdict

__all__ = ["SEED", "SynthesisResult", "run_synthesis"]

Level = Literal["type", "class"]


@dataclass(frozen=True)
class SynthesisResult:
    """Everything the CLI, the web and the report show of the synthesis."""

    level: Level
    seed: int
    items: list[HarmonizedItem] = field(repr=False)
    fit: ModeratorFit | None = field(repr=False)

    @property
    def n_studies(self) -> int:
        return len({h.study for h in self.items})

    def strata(self, level: Level | None = None) -> list[Stratum]:
        return harvest(self.items, level or self.level)

    def conflicts(self, level: Level | None = None) -> list[Conflict]:
        return conflicts(self.items, level or self.level)

    def dose_coverage(self) -> dict[str, Any]:
        return dose_coverage(self.items)

    @cached_property
    def effects(self) -> list[dict[str, Any]]:
        return [] if self.fit is None else self.fit.effects()

    @cached_property
    def validation(self) -> Validation | None:
        """Leave-one-study-out validation (about a second): computed once, on first use."""
        return None if self.fit is None else leave_one_study_out(self.items, seed=self.seed)

    @property
    def verdict(self) -> str | None:
        if self.validation is None:
            return None
        return moderator_verdict(self.effects, self.validation.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The JSON of `mscatlas synthesize --json`."""
        return {
            "level": self.level,
            "n_items": len(self.items),
            "dose_coverage": self.dose_coverage(),
            "strata": [s.to_dict() for s in self.strata()],
            "conflicts": [c.to_dict() for c in self.conflicts()],
            "moderators": {
                "effects": self.effects,
                "study_sd": None if self.fit is None else self.fit.sigma_summary(),
                "seed": self.seed,
            },
            "validation": None if self.validation is None else self.validation.to_dict(),
            "verdict": self.verdict,
        }


def run_synthesis(
    evidence: Sequence[EvidenceItem], *, level: Level = "type", seed: int = SEED
) -> SynthesisResult:
    """Harmonise accepted items and fit the moderator model (when any item has a direction);
    validation and verdict follow lazily, on first use."""
    if level not in ("type", "class"):
        raise ValueError(f"level {level!r}: use 'type' or 'class'")
    items = harmonize(evidence)
    fit = fit_moderator_model(items, seed=seed) if items else None
    return SynthesisResult(level, seed, items, fit)
