"""Screening decisions: the reason codes, and what a candidate's decisions add up to.

Reason codes are read from ``kb/data/intake/exclusion_reasons.yaml``, which curators edit.
An exclusion needs a reason; an inclusion or a maybe may carry one.

One reviewer (the default): a candidate's state at a stage is the latest decision there.
Two reviewers: each reviewer's latest decision counts; two reviewers who agree settle it,
two who disagree make a *conflict* listed for resolution, one alone leaves it *awaiting a
second* reviewer; a decision marked ``resolves`` settles a conflict whatever came before.
The full-text stage, once decided, overrides the title/abstract stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

__all__ = [
    "DECISIONS",
    "STAGES",
    "Decision",
    "ScreeningState",
    "check_decision",
    "reason_codes",
    "screening_state",
]

DECISIONS = ("include", "exclude", "maybe")
STAGES = ("title_abstract", "full_text")
Status = Literal["unscreened", "include", "exclude", "maybe", "conflict", "awaiting_second"]


@cache
def reason_codes() -> dict[str, str]:
    """code -> label, from the curators' vocabulary file."""
    path = resources.files("mscatlas.kb").joinpath("data", "intake", "exclusion_reasons.yaml")
    rows = yaml.safe_load(path.read_text("utf-8")) or []
    codes: dict[str, str] = {}
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not isinstance(row.get("code"), str):
            raise ValueError(f"intake/exclusion_reasons.yaml entry {index}: needs a 'code'")
        codes[row["code"]] = str(row.get("label", ""))
    return codes


def check_decision(decision: str, reason: str | None, stage: str) -> None:
    """Raise ValueError naming the field when a decision is not one the vocabulary allows."""
    if decision not in DECISIONS:
        raise ValueError(f"decision: {decision!r} is not one of {', '.join(DECISIONS)}")
    if stage not in STAGES:
        raise ValueError(f"stage: {stage!r} is not one of {', '.join(STAGES)}")
    codes = reason_codes()
    if reason is not None and reason not in codes:
        raise ValueError(f"reason: unknown code {reason!r}; codes: {', '.join(codes)}")
    if decision == "exclude" and (reason is None or reason == "include"):
        raise ValueError(
            "reason: an exclusion needs a reason code (" + ", ".join(c for c in codes if c != "include") + ")"
        )


@dataclass(frozen=True)
class Decision:
    candidate: str
    decision: str
    reason: str | None
    note: str | None
    stage: str
    by: str
    at: datetime
    resolves: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "decision": self.decision,
            "reason": self.reason,
            "note": self.note,
            "stage": self.stage,
            "by": self.by,
            "at": self.at.isoformat(),
            "resolves": self.resolves,
        }


@dataclass(frozen=True)
class ScreeningState:
    stage: str | None  # the stage the status comes from
    status: Status
    reason: str | None = None
    reviewers: tuple[str, ...] = ()


def _stage_state(decisions: Sequence[Decision], reviewers: int) -> ScreeningState | None:
    if not decisions:
        return None
    stage = decisions[-1].stage
    resolutions = [d for d in decisions if d.resolves]
    if resolutions:
        last = resolutions[-1]
        return ScreeningState(stage, last.decision, last.reason, (last.by,))  # type: ignore[arg-type]
    if reviewers <= 1:
        last = decisions[-1]
        return ScreeningState(stage, last.decision, last.reason, (last.by,))  # type: ignore[arg-type]
    latest: dict[str, Decision] = {}
    for d in decisions:
        latest[d.by] = d
    who = tuple(sorted(latest))
    if len(latest) < 2:
        return ScreeningState(stage, "awaiting_second", None, who)
    verdicts = {d.decision for d in latest.values()}
    if len(verdicts) == 1:
        last = decisions[-1]
        reasons = [d.reason for d in latest.values() if d.reason]
        return ScreeningState(stage, last.decision, reasons[-1] if reasons else None, who)  # type: ignore[arg-type]
    return ScreeningState(stage, "conflict", None, who)


def screening_state(decisions: Iterable[Decision], reviewers: int = 1) -> ScreeningState:
    """The state of one candidate from its decisions (oldest first)."""
    ordered = sorted(decisions, key=lambda d: d.at)
    full = _stage_state([d for d in ordered if d.stage == "full_text"], reviewers)
    if full is not None:
        return full
    abstract = _stage_state([d for d in ordered if d.stage == "title_abstract"], reviewers)
    return abstract or ScreeningState(None, "unscreened")
