"""Parameter sweeps of the in vitro model, on Dask (through :mod:`mscatlas.sim.tasks`).

Work is cut into chunks whose boundaries depend only on the problem (never on the number of
workers), each chunk is one Dask task, and results come back in chunk order. Random numbers (the
optional parameter-uncertainty ensemble at each grid point) come from
``numpy.random.SeedSequence(seed).spawn(n_points)``: grid point ``i`` always receives the ``i``-th
child seed, so a sweep gives the same numbers for a given seed whatever the scheduler, the number
of workers or the chunk size.

Schedulers: see :func:`mscatlas.sim.tasks.run_tasks`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from mscatlas.kb.enums import CancerClass
from mscatlas.sim.build import cell_params, product
from mscatlas.sim.calibration import load_calibration
from mscatlas.sim.ensemble import lognormal_ensemble, rk4
from mscatlas.sim.model import CellParams, stack_params
from mscatlas.sim.parameters import ParameterTable, load_parameters
from mscatlas.sim.protocol import Protocol, start_state
from mscatlas.sim.tasks import run_tasks

__all__ = [
    "PROTOCOL_PARAMS",
    "SweepResult",
    "parse_values",
    "run_tasks",  # re-exported: the executor lives in mscatlas.sim.tasks
    "sweep",
    "sweepable",
]

PROTOCOL_PARAMS = {
    "ratio": "msc_per_cancer",
    "cm_percent": "cm_percent",
    "ev_dose": "ev_ug_per_ml",
}
"""Sweepable protocol quantities (name -> :class:`Protocol` field); every other name is a path
of the parameter file, e.g. ``signals.inhibitory.ec50`` or ``msc_sources.bone_marrow.contact_scale``."""

DELIVERY = {
    "coculture": "direct_coculture",
    "transwell": "transwell",
    "cm": "conditioned_medium",
    "extract": "cell_extract",
    "ev": "extracellular_vesicles",
}

CHUNK = 16  # grid points per Dask task; fixed so that chunking never depends on the workers


# --------------------------------------------------------------------------------------------
# Sweeps


def sweepable(table: ParameterTable | None = None) -> list[str]:
    """Every name :func:`sweep` accepts: the protocol quantities and the parameter-file paths."""
    t = table or load_parameters()
    return [*PROTOCOL_PARAMS, *(str(r["path"]) for r in t.rows())]


def parse_values(text: str) -> list[float]:
    """``"0.1,0.5,1"`` -> ``[0.1, 0.5, 1.0]``."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ValueError(f"values must be comma-separated numbers, got '{text}'") from exc
    if not values:
        raise ValueError("give at least one value")
    return values


def _with_values(table: ParameterTable, changes: dict[str, float]) -> ParameterTable:
    """A copy of the table with the values at some paths replaced (validated again)."""
    if not changes:
        return table
    data = table.model_dump(mode="json")
    for path, value in changes.items():
        node = data
        keys = path.split(".")
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                raise KeyError(f"no parameter '{path}'")
            node = node[key]
        if not isinstance(node, dict) or "value" not in node:
            raise KeyError(f"'{path}' is a group, not a parameter")
        node["value"] = float(value)
    return ParameterTable.model_validate(data)


@dataclass(frozen=True)
class _Point:
    index: int
    values: dict[str, float]
    seed: int


def _point_members(
    point: _Point,
    base_proto: Protocol,
    msc_source: str,
    cancer_class: str,
    table: ParameterTable,
    calibration: Any,
    n_ensemble: int,
    cv: float,
) -> tuple[CellParams, np.ndarray, np.ndarray]:
    """Parameters (treated and control members) and start states of one grid point."""
    proto_changes = {PROTOCOL_PARAMS[k]: v for k, v in point.values.items() if k in PROTOCOL_PARAMS}
    table_changes = {k: v for k, v in point.values.items() if k not in PROTOCOL_PARAMS}
    t = _with_values(table, table_changes)
    proto = Protocol(**{**base_proto.__dict__, **proto_changes})
    prod = product(msc_source, (), (), t)
    if calibration is not None:
        prod = calibration.adjust_product(prod)
    p = cell_params(prod, CancerClass(cancer_class), contact=proto.delivery == "direct_coculture", table=t)
    if calibration is not None:
        p = calibration.adjust_params(p, cancer_class)
    cancer = proto.cancer_cells or t.cancer[CancerClass(cancer_class)]["seed_cells"].value
    y_treated = start_state(prod, p, proto, t, cancer)
    y_control = start_state(prod, p, proto.control(), t, cancer)
    n = max(1, n_ensemble)
    members = lognormal_ensemble(p, n, seed=point.seed, cv=cv) if n_ensemble > 0 else None
    return (
        members if members is not None else stack_params([p]),
        np.repeat(y_treated[:, None], n, axis=1),
        np.repeat(y_control[:, None], n, axis=1),
    )


def _split(params: CellParams, k: int) -> list[CellParams]:
    """Members of an ensemble as ``k`` scalar parameter sets (for restacking across points)."""
    out = []
    for j in range(k):
        values = {}
        for f in fields(CellParams):
            v = np.asarray(getattr(params, f.name))
            values[f.name] = v[..., j]
        out.append(CellParams(**values))
    return out


def _sweep_chunk(
    points: list[_Point],
    base_proto: Protocol,
    msc_source: str,
    cancer_class: str,
    table: ParameterTable,
    calibration: Any,
    n_ensemble: int,
    cv: float,
    dt: float,
) -> list[dict[str, Any]]:
    """% inhibition at the end of the protocol for every point of a chunk (one vectorised RK4 run).

    Points may differ in hours only if the caller groups them; here every point shares the base
    protocol's duration.
    """
    members: list[CellParams] = []
    starts_t: list[np.ndarray] = []
    starts_c: list[np.ndarray] = []
    sizes: list[int] = []
    for point in points:
        ens, y_t, y_c = _point_members(
            point, base_proto, msc_source, cancer_class, table, calibration, n_ensemble, cv
        )
        k = y_t.shape[1]
        members.extend(_split(ens, k))
        starts_t.append(y_t)
        starts_c.append(y_c)
        sizes.append(k)
    stacked = stack_params(members + members)
    y0 = np.concatenate([*starts_t, *starts_c], axis=1)
    final = rk4(stacked, y0, np.array([0.0, base_proto.hours]), dt=dt).viable[-1]
    half = len(members)
    inhibition = 100.0 * (1.0 - final[:half] / final[half:])
    out = []
    offset = 0
    for point, k in zip(points, sizes, strict=True):
        values = inhibition[offset : offset + k]
        offset += k
        row: dict[str, Any] = {"index": point.index, **point.values}
        row["inhibition_percent"] = float(values[0]) if n_ensemble == 0 else float(np.mean(values))
        if n_ensemble > 0:
            row["inhibition_p05"] = float(np.percentile(values, 5))
            row["inhibition_p95"] = float(np.percentile(values, 95))
        out.append(row)
    return out


@dataclass(frozen=True)
class SweepResult:
    params: dict[str, list[float]]
    protocol: dict[str, Any]
    msc_source: str
    cancer_class: str
    seed: int
    n_ensemble: int
    cv: float
    calibrated: bool
    rows: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "protocol": self.protocol,
            "msc_source": self.msc_source,
            "cancer_class": self.cancer_class,
            "seed": self.seed,
            "n_ensemble": self.n_ensemble,
            "cv": self.cv,
            "calibrated": self.calibrated,
            "n_points": len(self.rows),
            "points": self.rows,
        }


def sweep(
    params: dict[str, Sequence[float]],
    *,
    protocol: str = "coculture",
    msc_source: str = "bone_marrow",
    cancer_class: str = "solid",
    hours: float | None = None,
    ratio: float | None = None,
    cm_percent: float | None = None,
    ev_dose: float | None = None,
    seed: int = 0,
    n_ensemble: int = 0,
    cv: float = 0.3,
    calibration: Any = "shipped",
    table: ParameterTable | None = None,
    scheduler: str = "threads",
    workers: int | None = None,
    progress: bool = False,
    dt: float = 0.25,
) -> SweepResult:
    """% inhibition at every point of the full grid of ``params`` (name -> values).

    ``protocol`` is ``coculture``, ``transwell``, ``cm``, ``extract`` or ``ev``; the fixed dose
    (``ratio`` MSC per cancer cell, ``cm_percent``, ``ev_dose`` in ug/mL) defaults to the
    parameter file's protocol defaults. ``n_ensemble > 0`` adds, at each point, that many
    log-normal perturbations of the action terms (coefficient of variation ``cv``) and reports
    their mean and 5-95 % range. ``calibration`` is ``"shipped"`` (the fitted factors of
    ``data/calibrated.yaml``), ``None`` (the parameter file as it is) or a
    :class:`~mscatlas.sim.calibration.Calibration`.
    """
    t = table or load_parameters()
    if protocol not in DELIVERY:
        raise ValueError(f"unknown protocol '{protocol}'; known: {', '.join(DELIVERY)}")
    known = set(sweepable(t))
    for name in params:
        if name not in known:
            raise ValueError(f"cannot sweep '{name}'; use a protocol quantity or a parameter path")
        if not params[name]:
            raise ValueError(f"no values for '{name}'")
    cal = load_calibration() if calibration == "shipped" else calibration
    base = Protocol(
        DELIVERY[protocol],  # type: ignore[arg-type]
        hours or t.value("protocol", "default_hours"),
        msc_per_cancer=(ratio if ratio is not None else t.value("protocol", "default_ratio"))
        if protocol in ("coculture", "transwell")
        else 0.0,
        cm_percent=(cm_percent if cm_percent is not None else t.value("protocol", "default_cm_percent"))
        if protocol in ("cm", "extract")
        else 0.0,
        ev_ug_per_ml=(ev_dose if ev_dose is not None else t.value("protocol", "default_ev_dose"))
        if protocol == "ev"
        else 0.0,
    )
    names = list(params)
    grid = list(itertools.product(*(params[n] for n in names)))
    children = np.random.SeedSequence(seed).spawn(len(grid))
    points = [
        _Point(i, dict(zip(names, map(float, combo), strict=True)), int(children[i].generate_state(1)[0]))
        for i, combo in enumerate(grid)
    ]
    chunks = [points[i : i + CHUNK] for i in range(0, len(points), CHUNK)]
    tasks = [(c, base, msc_source, cancer_class, t, cal, n_ensemble, cv, dt) for c in chunks]
    results = run_tasks(
        _sweep_chunk, tasks, scheduler=scheduler, workers=workers, progress=progress, description="sweep"
    )
    rows = [row for chunk in results for row in chunk]
    return SweepResult(
        params={n: [float(v) for v in params[n]] for n in names},
        protocol={
            "delivery": base.delivery,
            "hours": base.hours,
            "msc_per_cancer": base.msc_per_cancer,
            "cm_percent": base.cm_percent,
            "ev_ug_per_ml": base.ev_ug_per_ml,
        },
        msc_source=msc_source,
        cancer_class=cancer_class,
        seed=seed,
        n_ensemble=n_ensemble,
        cv=cv,
        calibrated=cal is not None,
        rows=rows,
    )
