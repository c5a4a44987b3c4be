"""Effect sizes and their sampling variances, following metafor's ``escalc`` conventions.

Each measure maps per-study summary data to ``yi`` (the effect on its analysis scale) and
``vi`` (its large-sample sampling variance). Ratio measures live on the log scale, as in
metafor: RR is the log risk ratio, OR the log odds ratio, ROM the log ratio of means.

Zero cells: a study with any zero among its four counts gets 1/2 added to all four cells
before RR, OR or RD are computed (metafor's default ``add=1/2, to="only0"``); studies without
a zero cell are left untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln

__all__ = ["MEASURE_COLUMNS", "EffectSizes", "InputError", "Measure", "escalc", "hedges_correction"]

Measure = Literal["RR", "OR", "RD", "MD", "SMD", "ROM", "GEN"]

#: The input columns each measure needs, named as metafor names them.
MEASURE_COLUMNS: dict[str, tuple[str, ...]] = {
    "RR": ("ai", "bi", "ci", "di"),
    "OR": ("ai", "bi", "ci", "di"),
    "RD": ("ai", "bi", "ci", "di"),
    "MD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "SMD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "ROM": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "GEN": ("yi", "vi"),
}

#: Columns that must not be negative (counts, SDs, sample sizes, variances).
_NONNEGATIVE = frozenset({"ai", "bi", "ci", "di", "sd1i", "sd2i", "n1i", "n2i", "vi"})


class InputError(ValueError):
    """Bad study data; ``row`` (0-based) and ``column`` say where, when one place is to blame.

    Messages count rows from 1, as a person reads a table without its header.
    """

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


@dataclass(frozen=True)
class EffectSizes:
    """Per-study effects ``yi`` with sampling variances ``vi`` for one ``measure``."""

    measure: str
    yi: NDArray[np.float64]
    vi: NDArray[np.float64]

    @property
    def sei(self) -> NDArray[np.float64]:
        return np.sqrt(self.vi)

    def __len__(self) -> int:
        return len(self.yi)


def hedges_correction(df: ArrayLike) -> NDArray[np.float64]:
    """Exact small-sample bias factor J(m) = Γ(m/2) / (√(m/2) Γ((m−1)/2)) for Hedges' g."""
    m = np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.exp(gammaln(m / 2) - 0.5 * np.log(m / 2) - gammaln((m - 1) / 2))


def _columns(data: Mapping[str, ArrayLike], names: Sequence[str]) -> dict[str, NDArray[np.float64]]:
    missing = [n for n in names if n not in data]
    if missing:
        raise InputError(f"missing column(s): {', '.join(missing)}", column=missing[0])
    cols = {n: np.asarray(data[n], dtype=float) for n in names}
    lengths = {len(c) for c in cols.values()}
    if len(lengths) != 1:
        raise InputError("columns have different lengths")
    for name, col in cols.items():
        bad = np.flatnonzero(~np.isfinite(col))
        if bad.size:
            raise InputError(
                f"row {bad[0] + 1}: column {name!r} is missing or not a number", row=int(bad[0]), column=name
            )
        if name in _NONNEGATIVE:
            neg = np.flatnonzero(col < 0)
            if neg.size:
                raise InputError(
                    f"row {neg[0] + 1}: column {name!r} is negative ({col[neg[0]]:g})",
                    row=int(neg[0]),
                    column=name,
                )
    return cols


def _first(mask: NDArray[np.bool_]) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def escalc(measure: str, data: Mapping[str, ArrayLike]) -> EffectSizes:
    """Compute ``yi``/``vi`` for ``measure`` from columns named as in metafor.

    ``data`` maps column names (``ai,bi,ci,di``; ``m1i,sd1i,n1i,m2i,sd2i,n2i``; or ``yi,vi``)
    to equal-length sequences. Raises :class:`InputError` naming the row and column of the
    first problem found.
    """
    measure = measure.upper()
    if measure not in MEASURE_COLUMNS:
        raise InputError(f"unknown measure {measure!r}; choose one of {', '.join(MEASURE_COLUMNS)}")
    cols = _columns(data, MEASURE_COLUMNS[measure])
    if measure in ("RR", "OR", "RD"):
        return _two_by_two(measure, **cols)
    if measure == "GEN":
        return EffectSizes("GEN", cols["yi"], cols["vi"])
    return _two_means(measure, **cols)


def _two_by_two(
    measure: str,
    ai: NDArray[np.float64],
    bi: NDArray[np.float64],
    ci: NDArray[np.float64],
    di: NDArray[np.float64],
) -> EffectSizes:
    for name, n in (("ai+bi", ai + bi), ("ci+di", ci + di)):
        row = _first(n <= 0)
        if row is not None:
            col = "bi" if name == "ai+bi" else "di"
            raise InputError(f"row {row + 1}: group size {name} is zero", row=row, column=col)
    zero = (ai == 0) | (bi == 0) | (ci == 0) | (di == 0)
    add = np.where(zero, 0.5, 0.0)
    a, b, c, d = ai + add, bi + add, ci + add, di + add
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    if measure == "RR":
        yi = np.log(p1) - np.log(p2)
        vi = 1 / a - 1 / n1 + 1 / c - 1 / n2
    elif measure == "OR":
        yi = np.log(a * d) - np.log(b * c)
        vi = 1 / a + 1 / b + 1 / c + 1 / d
    else:
        yi = p1 - p2
        vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    return EffectSizes(measure, yi, vi)


def _two_means(
    measure: str,
    m1i: NDArray[np.float64],
    sd1i: NDArray[np.float64],
    n1i: NDArray[np.float64],
    m2i: NDArray[np.float64],
    sd2i: NDArray[np.float64],
    n2i: NDArray[np.float64],
) -> EffectSizes:
    for name, n in (("n1i", n1i), ("n2i", n2i)):
        row = _first(n < 1)
        if row is not None:
            raise InputError(f"row {row + 1}: column {name!r} must be at least 1", row=row, column=name)
    if measure == "MD":
        return EffectSizes("MD", m1i - m2i, sd1i**2 / n1i + sd2i**2 / n2i)
    if measure == "ROM":
        for name, m in (("m1i", m1i), ("m2i", m2i)):
            row = _first(m <= 0)
            if row is not None:
                message = f"row {row + 1}: column {name!r} must be positive for ROM"
                raise InputError(message, row=row, column=name)
        yi = np.log(m1i / m2i)
        vi = sd1i**2 / (n1i * m1i**2) + sd2i**2 / (n2i * m2i**2)
        return EffectSizes("ROM", yi, vi)
    df = n1i + n2i - 2
    row = _first(df < 2)
    if row is not None:
        raise InputError(f"row {row + 1}: SMD needs n1i + n2i of at least 4", row=row, column="n1i")
    pooled_sd = np.sqrt(((n1i - 1) * sd1i**2 + (n2i - 1) * sd2i**2) / df)
    row = _first(pooled_sd == 0)
    if row is not None:
        raise InputError(f"row {row + 1}: both SDs are zero, SMD is undefined", row=row, column="sd1i")
    g = hedges_correction(df) * (m1i - m2i) / pooled_sd
    vi = 1 / n1i + 1 / n2i + g**2 / (2 * (n1i + n2i))
    return EffectSizes("SMD", g, vi)
