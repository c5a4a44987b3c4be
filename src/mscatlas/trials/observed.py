"""Observed data of a running dose-finding trial: patients and toxicities per dose level."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mscatlas.trials._checks import DesignInputError

__all__ = ["DoseCounts", "parse_dose_counts"]

_ENTRY = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class DoseCounts:
    """Patients treated and toxicities seen at each dose level (levels are numbered from 1).

    ``current`` is the level the most recent cohort received.
    """

    patients: tuple[int, ...]
    toxicities: tuple[int, ...]
    current: int

    def __post_init__(self) -> None:
        if len(self.patients) != len(self.toxicities):
            raise DesignInputError("patients and toxicities need one entry per dose")
        for level, (n, y) in enumerate(zip(self.patients, self.toxicities, strict=True), start=1):
            if n < 0 or y < 0 or y > n:
                raise DesignInputError(f"dose {level}: {y} toxicities in {n} patients is impossible")
        if not 1 <= self.current <= len(self.patients):
            raise DesignInputError(f"current dose {self.current} is not among levels 1..{len(self.patients)}")
        if self.patients[self.current - 1] == 0:
            raise DesignInputError(f"current dose {self.current} has no treated patients")

    @property
    def n_doses(self) -> int:
        return len(self.patients)

    def arrays(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Patients and toxicities as integer arrays, indexed from 0."""
        return np.asarray(self.patients, dtype=np.int64), np.asarray(self.toxicities, dtype=np.int64)


def parse_dose_counts(text: str, n_doses: int | None = None) -> DoseCounts:
    """Read ``"1:0/3,2:1/3"`` (level:toxicities/patients, comma separated).

    The last entry written is taken as the current dose. Levels not listed have no patients.
    ``n_doses`` (when known) sets the number of levels; otherwise it is the highest level listed.
    """
    entries = [part for part in text.split(",") if part.strip()]
    if not entries:
        raise DesignInputError(f"no dose data in {text!r}; expected e.g. '1:0/3,2:1/3'")
    seen: dict[int, tuple[int, int]] = {}
    last = 0
    for part in entries:
        match = _ENTRY.match(part)
        if match is None:
            raise DesignInputError(
                f"malformed dose entry {part.strip()!r}; expected LEVEL:TOXICITIES/PATIENTS"
            )
        level, tox, n = (int(g) for g in match.groups())
        if level < 1:
            raise DesignInputError(f"dose level must be 1 or more in {part.strip()!r}")
        if n < 1:
            raise DesignInputError(f"no patients in {part.strip()!r}")
        if tox > n:
            raise DesignInputError(f"more toxicities than patients in {part.strip()!r}")
        if level in seen:
            raise DesignInputError(f"dose {level} is listed twice in {text!r}")
        seen[level] = (tox, n)
        last = level
    top = max(seen)
    size = top if n_doses is None else n_doses
    if top > size:
        raise DesignInputError(f"dose {top} is listed but the design has only {size} dose(s)")
    patients = tuple(seen.get(level, (0, 0))[1] for level in range(1, size + 1))
    toxicities = tuple(seen.get(level, (0, 0))[0] for level in range(1, size + 1))
    return DoseCounts(patients=patients, toxicities=toxicities, current=last)
