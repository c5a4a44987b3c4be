"""The answer a design gives for a running trial: where the next cohort goes, and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Recommendation"]


@dataclass(frozen=True)
class Recommendation:
    """Next-dose advice. Dose levels count from 1; ``next_dose`` is None when the trial stops.

    ``action`` is one of "escalate", "stay", "de-escalate" or "stop". ``estimates`` holds the
    design's toxicity estimate per dose (None where it has none), ``mtd`` the dose the design
    would select if the trial ended now (None: no dose selectable).
    """

    design: str
    current_dose: int
    next_dose: int | None
    action: str
    reason: str
    eliminated: tuple[int, ...] = ()
    estimates: tuple[float | None, ...] = ()
    mtd: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["eliminated"] = list(self.eliminated)
        data["estimates"] = list(self.estimates)
        return data
