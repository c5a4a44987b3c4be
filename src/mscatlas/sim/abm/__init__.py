"""Spatial agent-based model of MSC homing to a tumour in a 2D slab of tissue.

- :class:`AbmConfig` gathers every number (from ``parameters.yaml`` via
  :meth:`AbmConfig.from_parameters`); :class:`AbmModel` holds agents, fields and the random
  generator of one run; :func:`run_abm` builds and runs one in a call.
- :class:`Agents` stores cells as rows of NumPy arrays with preallocated, growing capacity.
- :class:`FieldSolver` diffuses, decays and accumulates a field on a :class:`Grid` (implicit,
  zero-flux walls).
- :class:`Mechanics` (optional, ``AbmConfig.mechanics``) adds PhysiCell's cell-cell repulsion and
  adhesion, with neighbours found by cell lists (:mod:`mscatlas.sim.abm.mechanics`).
- :func:`drift_velocity` and :func:`walk_step` are the chemotactic biased random walk.
- :mod:`mscatlas.sim.abm.plot` draws snapshots, series and an optional GIF.
"""

from mscatlas.sim.abm.agents import CANCER, MSC, Agents
from mscatlas.sim.abm.chemotaxis import drift_velocity, reflect, walk_step
from mscatlas.sim.abm.diffusion import FieldSolver, Grid
from mscatlas.sim.abm.mechanics import Mechanics
from mscatlas.sim.abm.model import AbmConfig, AbmModel, AbmResult, Snapshot, run_abm

__all__ = [
    "CANCER",
    "MSC",
    "AbmConfig",
    "AbmModel",
    "AbmResult",
    "Agents",
    "FieldSolver",
    "Grid",
    "Mechanics",
    "Snapshot",
    "drift_velocity",
    "reflect",
    "run_abm",
    "walk_step",
]
