"""Agents as rows of NumPy arrays with preallocated capacity.

Every agent (cancer cell or MSC) is one row index into a set of column arrays. Rows ``[0, n)``
are in use; among them ``alive`` marks the living ones. Division writes daughters into the rows
after ``n`` (the arrays grow geometrically when full); death clears ``alive``; :meth:`compact`
squeezes the dead rows out, keeping the order of the living. No Python object exists per agent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["CANCER", "COLUMNS", "MSC", "Agents"]

CANCER = 0
MSC = 1

COLUMNS: dict[str, type] = {
    "x": np.float64,  # position, µm
    "y": np.float64,
    "alive": np.bool_,
    "kind": np.int8,  # CANCER or MSC
    "phase": np.int8,  # cycle phase of a cancer cell: 0 G0/G1, 1 S, 2 G2/M (MSC: 0)
    "clone": np.int32,  # index of the founding agent; daughters inherit it
    "vx": np.float64,  # mechanical velocity of the last mechanics step, µm/h (0 without mechanics)
    "vy": np.float64,
}
"""Column name -> dtype of every per-agent array."""


@dataclass
class Agents:
    """Struct of arrays holding every agent of a simulation."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    alive: NDArray[np.bool_]
    kind: NDArray[np.int8]
    phase: NDArray[np.int8]
    clone: NDArray[np.int32]
    vx: NDArray[np.float64]
    vy: NDArray[np.float64]
    n: int = 0
    grown: int = 0  # how many times the arrays were reallocated

    @classmethod
    def empty(cls, capacity: int) -> Agents:
        capacity = max(int(capacity), 1)
        return cls(**{name: np.zeros(capacity, dtype=dt) for name, dt in COLUMNS.items()})

    @property
    def capacity(self) -> int:
        return int(self.x.shape[0])

    def reserve(self, rows: int) -> None:
        """Make room for at least ``rows`` rows in use (doubling, so appends stay amortised O(1))."""
        if rows <= self.capacity:
            return
        new_cap = max(rows, 2 * self.capacity)
        for name in COLUMNS:
            old = getattr(self, name)
            new = np.zeros(new_cap, dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)
        self.grown += 1

    def append(
        self,
        x: NDArray[np.float64],
        y: NDArray[np.float64],
        kind: int | NDArray[np.int8],
        phase: int | NDArray[np.int8] = 0,
        clone: NDArray[np.int32] | None = None,
    ) -> slice:
        """Add living agents in new rows; returns the slice of rows they occupy."""
        k = int(np.asarray(x).shape[0])
        self.reserve(self.n + k)
        rows = slice(self.n, self.n + k)
        self.x[rows] = x
        self.y[rows] = y
        self.alive[rows] = True
        self.kind[rows] = kind
        self.phase[rows] = phase
        self.clone[rows] = np.arange(self.n, self.n + k) if clone is None else clone
        self.vx[rows] = 0.0
        self.vy[rows] = 0.0
        self.n += k
        return rows

    def compact(self) -> None:
        """Drop dead rows, keeping the living in their order."""
        keep = np.flatnonzero(self.alive[: self.n])
        m = keep.size
        if m == self.n:
            return
        for name in COLUMNS:
            arr = getattr(self, name)
            arr[:m] = arr[keep]
            arr[m : self.n] = 0
        self.n = m

    def count(self, kind: int) -> int:
        """Living agents of one kind."""
        view = slice(0, self.n)
        return int(np.count_nonzero(self.alive[view] & (self.kind[view] == kind)))

    def rows_of(self, kind: int) -> NDArray[np.intp]:
        """Row indices of the living agents of one kind."""
        view = slice(0, self.n)
        return np.flatnonzero(self.alive[view] & (self.kind[view] == kind))

    def snapshot(self) -> dict[str, NDArray]:
        """Copies of the columns of the rows in use."""
        return {name: getattr(self, name)[: self.n].copy() for name in COLUMNS}
