"""Diffusion, decay and secretion of a concentration field on a uniform 2D grid.

The grid is cell-centred: voxel ``(j, i)`` covers ``[i h, (i+1) h) x [j h, (j+1) h)`` and fields
have shape ``(ny, nx)``. Every boundary is zero-flux (a reflecting wall), written with mirror
ghost voxels, so diffusion alone never changes the total amount.

One step of length ``dt`` is split into three parts, each exact or unconditionally stable:

1. secretion: ``c += dt * source`` (explicit; the source does not depend on ``c``);
2. diffusion: backward Euler. ``method="split"`` solves it one axis at a time (Lie splitting of
   the two 1D backward-Euler operators, also called locally one-dimensional); each 1D system is
   symmetric positive definite and tridiagonal, factorised once with LAPACK ``dpttrf`` and
   solved for all rows at once with ``dpttrs`` (cost and memory linear in the number of voxels).
   ``method="direct"`` solves the full 2D backward-Euler system with a sparse LU factorisation
   (``scipy.sparse.linalg.splu``) computed once; it is the reference and suits small grids;
3. decay: ``c *= exp(-k dt)``, the exact solution of ``dc/dt = -k c``.

Both diffusion operators keep the total exactly (to rounding): each 1D matrix and the 2D matrix
have unit column sums. With no source the total therefore follows ``exp(-k t)`` exactly.
Time accuracy is first order in ``dt``; space accuracy is second order in ``h``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.linalg import lapack
from scipy.sparse.linalg import splu

__all__ = ["FieldSolver", "Grid"]

Array = NDArray[np.float64]
Method = Literal["split", "direct"]


@dataclass(frozen=True)
class Grid:
    """A uniform cell-centred grid of ``ny`` x ``nx`` square voxels of side ``h`` (µm)."""

    nx: int
    ny: int
    h: float

    @classmethod
    def square(cls, size: float, h: float) -> Grid:
        """The grid covering ``[0, size]^2`` with voxels of side about ``h``."""
        n = max(1, round(size / h))
        return cls(n, n, size / n)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.ny, self.nx)

    @property
    def size(self) -> int:
        return self.nx * self.ny

    @property
    def extent(self) -> tuple[float, float]:
        """Width and height of the domain (µm)."""
        return (self.nx * self.h, self.ny * self.h)

    def centres(self) -> tuple[Array, Array]:
        """Voxel-centre coordinates ``(X, Y)``, each of shape ``(ny, nx)``."""
        xs = (np.arange(self.nx) + 0.5) * self.h
        ys = (np.arange(self.ny) + 0.5) * self.h
        return np.meshgrid(xs, ys)

    def voxel_of(self, x: Array, y: Array) -> NDArray[np.intp]:
        """Flat voxel index of each point (points on the far wall go to the last voxel)."""
        i = np.minimum((x / self.h).astype(np.intp), self.nx - 1)
        j = np.minimum((y / self.h).astype(np.intp), self.ny - 1)
        return j * self.nx + i


def _neumann_1d(n: int, r: float) -> sp.csr_matrix:
    """``r`` times the 1D negative Laplacian with zero-flux ends (unit spacing)."""
    main = np.full(n, 2.0 * r)
    if n > 1:
        main[0] = main[-1] = r
    else:
        main[0] = 0.0
    off = np.full(max(n - 1, 0), -r)
    return sp.diags([off, main, off], [-1, 0, 1], shape=(n, n), format="csr")


@dataclass
class _Tridiagonal:
    """Factorised ``I + r T`` (T: 1D zero-flux negative Laplacian) for repeated solves."""

    d: Array
    e: Array

    @classmethod
    def factor(cls, n: int, r: float) -> _Tridiagonal:
        d = np.full(n, 1.0 + 2.0 * r)
        if n > 1:
            d[0] = d[-1] = 1.0 + r
        else:
            d[0] = 1.0
        e = np.full(max(n - 1, 0), -r)
        d, e, info = lapack.dpttrf(d, e)
        if info != 0:
            raise np.linalg.LinAlgError(f"dpttrf failed with info={info}")
        return cls(d, e)

    def solve(self, b: Array) -> Array:
        """Solve along the first axis of ``b`` (shape ``(n, m)``)."""
        if self.d.size == 1:
            return b
        x, info = lapack.dpttrs(self.d, self.e, b)
        if info != 0:
            raise np.linalg.LinAlgError(f"dpttrs failed with info={info}")
        return x


@dataclass
class FieldSolver:
    """Advances one field by steps of ``dt`` with diffusivity ``diffusivity`` and decay ``decay``.

    Units follow the caller: with ``h`` in µm and ``dt`` in hours, ``diffusivity`` is µm²/h and
    ``decay`` 1/h; ``source`` is a concentration rate (field unit per hour) per voxel.
    """

    grid: Grid
    diffusivity: float
    decay: float
    dt: float
    method: Method = "split"
    _x: _Tridiagonal | None = field(init=False, default=None, repr=False)
    _y: _Tridiagonal | None = field(init=False, default=None, repr=False)
    _lu: object = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        if self.diffusivity < 0 or self.decay < 0 or self.dt <= 0:
            raise ValueError("diffusivity and decay must be >= 0 and dt > 0")
        r = self.diffusivity * self.dt / self.grid.h**2
        if self.method == "split":
            self._x = _Tridiagonal.factor(self.grid.nx, r)
            self._y = _Tridiagonal.factor(self.grid.ny, r)
        elif self.method == "direct":
            lx = _neumann_1d(self.grid.nx, r)
            ly = _neumann_1d(self.grid.ny, r)
            a = (
                sp.identity(self.grid.size, format="csc")
                + sp.kron(sp.identity(self.grid.ny), lx)
                + sp.kron(ly, sp.identity(self.grid.nx))
            )
            self._lu = splu(sp.csc_matrix(a))
        else:
            raise ValueError(f"unknown method '{self.method}' (split or direct)")
        self._decay_factor = math.exp(-self.decay * self.dt)

    def step(self, c: Array, source: Array | None = None) -> Array:
        """The field one step later (a new array; ``c`` has shape ``grid.shape``)."""
        if c.shape != self.grid.shape:
            raise ValueError(f"field of shape {c.shape}, grid is {self.grid.shape}")
        c = c + self.dt * source if source is not None else c
        if self.diffusivity > 0:
            if self.method == "split":
                assert self._x is not None and self._y is not None
                # along x: rows of c are the right-hand sides -> pass c.T (nx, ny), F-ordered
                c = self._x.solve(c.T).T
                c = self._y.solve(np.asfortranarray(c))
            else:
                c = self._lu.solve(c.ravel()).reshape(self.grid.shape)  # type: ignore[attr-defined]
        if self.decay > 0:
            c = c * self._decay_factor
        return np.ascontiguousarray(c)

    def run(self, c: Array, steps: int, source: Array | None = None) -> Array:
        """The field after ``steps`` steps with a constant ``source``."""
        for _ in range(steps):
            c = self.step(c, source)
        return c
