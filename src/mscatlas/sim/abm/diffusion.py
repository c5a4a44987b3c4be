"""Diffusion, decay and secretion of a concentration field on a uniform 2D grid.

The grid is cell-centred: voxel ``(j, i)`` covers ``[i h, (i+1) h) x [j h, (j+1) h)`` and fields
have shape ``(ny, nx)``. Every boundary is zero-flux (a reflecting wall), written with mirror
ghost voxels, so diffusion alone never changes the total amount.

Three methods advance ``dc/dt = D lap(c) - k c + s`` by a step ``dt``; all are unconditionally
stable and solve tridiagonal or sparse systems factorised once.

- ``method="douglas"`` (the default): the Douglas-Gunn alternating-direction scheme with the
  decay inside the operator, ``A = A_x + A_y`` with ``A_x = -D d_xx + k/2``:
  ``(I + dt A_x)(I + dt A_y) c' = c + dt s + dt^2 A_x A_y c``. Its fixed point is exactly the
  discrete steady state ``A c = s`` (the splitting error cancels at rest), it is first order in
  time for transients, and it is solved in delta form (the 5-point stencil once for ``A c``,
  then two tridiagonal solves for the increment).
- ``method="split"``: secretion ``c += dt s`` (explicit), then backward Euler one axis at a time
  (Lie splitting, "locally one-dimensional", the scheme of BioFVM/PhysiCell), then exact decay
  ``c *= exp(-k dt)``. Its fixed point carries an ``O(dt^2 A_x A_y)`` splitting error, which is
  large near a point source when ``D dt / h^2 >> 1``.
- ``method="direct"``: secretion, then the full 2D backward-Euler system solved with a sparse LU
  factorisation (``scipy.sparse.linalg.splu``) computed once (a reference for small grids), then
  exact decay.

The tridiagonal systems are symmetric positive definite: LAPACK ``dpttrf`` factorises each once
and ``dpttrs`` solves every row (or column) of the field in one call, in place. How large a step
is accurate enough is measured, not assumed: :mod:`mscatlas.sim.abm.accuracy` compares each
method with the analytic field of a point source and picks the step from an error tolerance.

Without decay and source, ``split`` and ``direct`` keep the total exactly (each matrix has unit
column sums) and ``douglas`` too; with decay the total follows ``exp(-k t)`` exactly under
``split`` and ``direct`` and ``((1 + (k dt/2)^2) / (1 + k dt/2)^2)^n`` under ``douglas``.
Space accuracy is second order in ``h``.
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
Method = Literal["douglas", "split", "direct"]


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

    def gradient_at(self, c: Array, flat: NDArray[np.intp]) -> tuple[Array, Array]:
        """``(d/dx, d/dy)`` of field ``c`` at the voxels ``flat``, as ``np.gradient`` gives them.

        Central differences inside, one-sided at the walls, computed only where asked (a gather
        of four neighbours per point instead of two whole-field passes).
        """
        flat = np.asarray(flat, dtype=np.intp)
        values = c.ravel()
        j, i = np.divmod(flat, self.nx)
        out = []
        for pos, n, stride in ((i, self.nx, 1), (j, self.ny, self.nx)):
            hi = np.minimum(pos + 1, n - 1)
            lo = np.maximum(pos - 1, 0)
            span = (hi - lo) * self.h
            diff = values[flat + (hi - pos) * stride] - values[flat - (pos - lo) * stride]
            out.append(np.divide(diff, span, out=np.zeros(flat.size), where=span > 0))
        return out[0], out[1]


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
    def factor(cls, n: int, r: float, shift: float = 0.0) -> _Tridiagonal:
        """Factorise ``(1 + shift) I + r T``."""
        d = np.full(n, 1.0 + shift + 2.0 * r)
        if n > 1:
            d[0] = d[-1] = 1.0 + shift + r
        else:
            d[0] = 1.0 + shift
        e = np.full(max(n - 1, 0), -r)
        d, e, info = lapack.dpttrf(d, e)
        if info != 0:
            raise np.linalg.LinAlgError(f"dpttrf failed with info={info}")
        return cls(d, e)

    def solve(self, b: Array, *, overwrite: bool = False) -> Array:
        """Solve along the first axis of ``b`` (shape ``(n, m)``; in place if ``overwrite`` and
        ``b`` is Fortran-ordered)."""
        if self.d.size == 1:
            return b / self.d[0]
        x, info = lapack.dpttrs(self.d, self.e, b, overwrite_b=overwrite)
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
    method: Method = "douglas"
    _x: _Tridiagonal | None = field(init=False, default=None, repr=False)
    _y: _Tridiagonal | None = field(init=False, default=None, repr=False)
    _lu: object = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        if self.diffusivity < 0 or self.decay < 0 or self.dt <= 0:
            raise ValueError("diffusivity and decay must be >= 0 and dt > 0")
        r = self.diffusivity * self.dt / self.grid.h**2
        self._r = r
        self._half_decay = 0.5 * self.decay * self.dt
        if self.method == "douglas":
            self._x = _Tridiagonal.factor(self.grid.nx, r, self._half_decay)
            self._y = _Tridiagonal.factor(self.grid.ny, r, self._half_decay)
        elif self.method == "split":
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
            raise ValueError(f"unknown method '{self.method}' (douglas, split or direct)")
        self._decay_factor = math.exp(-self.decay * self.dt)

    def step(self, c: Array, source: Array | None = None) -> Array:
        """The field one step later (a new array; ``c`` has shape ``grid.shape``)."""
        if c.shape != self.grid.shape:
            raise ValueError(f"field of shape {c.shape}, grid is {self.grid.shape}")
        if self.method == "douglas":
            return self._douglas(c, source)
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

    def _douglas(self, c: Array, source: Array | None) -> Array:
        """One Douglas-Gunn step in delta form: ``(I + dt A_x)(I + dt A_y) (c' - c) = dt (s - A c)``.

        Algebraically the scheme of the module docstring (expand both sides); the right-hand side
        needs ``A c`` once (the 5-point stencil in flux form, :meth:`_minus_dt_a`) instead of the
        product ``A_x A_y c``, and the increment vanishes exactly at the steady state.
        """
        assert self._x is not None and self._y is not None
        if self._r == 0 and self._half_decay == 0:
            return c + self.dt * source if source is not None else c.copy()
        rhs = self._minus_dt_a(c)
        if source is not None:
            rhs += self.dt * source
        # along x: rows of rhs are the right-hand sides; rhs.T is (nx, ny) and Fortran-ordered
        w = self._x.solve(rhs.T, overwrite=True).T
        delta = self._y.solve(np.asfortranarray(w), overwrite=True)
        out = np.empty_like(c)
        return np.add(c, delta, out=out)

    def _minus_dt_a(self, c: Array) -> Array:
        """``-dt A c``: the fluxes between neighbours (none through the walls), minus the decay."""
        out = c * (-2.0 * self._half_decay)
        for axis in (0, 1):
            if c.shape[axis] > 1 and self._r > 0:
                flux = np.diff(c, axis=axis)
                flux *= self._r
                lo = (slice(None, -1), slice(None)) if axis == 0 else (slice(None), slice(None, -1))
                hi = (slice(1, None), slice(None)) if axis == 0 else (slice(None), slice(1, None))
                out[lo] += flux
                out[hi] -= flux
        return out

    def run(self, c: Array, steps: int, source: Array | None = None) -> Array:
        """The field after ``steps`` steps with a constant ``source``."""
        for _ in range(steps):
            c = self.step(c, source)
        return c
