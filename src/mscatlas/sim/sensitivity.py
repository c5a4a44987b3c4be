"""Global sensitivity of the in silico lab to its parameters: Morris elementary effects, on Dask.

Which numbers of ``data/parameters.yaml`` move the lab's predictions, and are those numbers
sourced or assumed? :func:`analyse` answers with the Morris screening method (Morris 1991,
Technometrics 33:161) and the ``mu*`` of Campolongo, Cariboni & Saltelli (2007, Environ Model
Softw 22:1509):

- every factor (one parameter, or one group that moves together, see :func:`factors`) is mapped
  to the unit interval between its bounds -- the published ``range`` where the parameter file
  gives one, else half to twice the value -- on a log scale, since the bounds span a ratio;
- ``r`` trajectories of ``k + 1`` points start at a random point of a ``p``-level grid and change
  one factor at a time, in random order and direction, by ``delta = p / (2 (p - 1))``;
- the elementary effect of factor ``i`` is ``(y(x + delta e_i) - y(x)) / delta`` in unit
  coordinates, so effects of factors with different units compare; ``mu*`` (mean of absolute
  effects) ranks the factors, ``sigma`` (their standard deviation) flags interaction or
  non-linearity.

Why hand-written: SALib (which has Morris) is not installed in this environment and would be a new
dependency for about forty lines of sampling and averaging; the sampler is checked against an
analytic model (a linear function, whose elementary effects are its coefficients exactly) in
``tests/test_sim_sensitivity.py``.

The outputs (:data:`SCENARIOS`) are the predictions the lab makes for an item that states no dose:
% inhibition of viable cancer cells for each in vitro delivery, and the tumour-growth inhibition
of a xenograft after intravenous or intratumoral MSCs. The trajectories are drawn up front from
``numpy.random.default_rng(seed)``, one Dask task per trajectory, so the result depends on the
seed only, never on the scheduler or the number of workers. Parameters that are structural --
the cell-cycle phase shares (they must sum to one) and entries whose value is zero (a channel
switched off) -- are not varied, and :func:`analyse` lists them as such.

The shipped result (``data/sensitivity.json``) is written by ``mscatlas sim sensitivity --out``
and read by the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mscatlas.kb.enums import CancerClass
from mscatlas.sim.parameters import ParameterTable, load_parameters
from mscatlas.sim.protocol import Conditioning, Protocol, run
from mscatlas.sim.sweep import run_tasks
from mscatlas.sim.xenograft import Injection, simulate_xenograft

__all__ = [
    "LEVELS",
    "MATTER_SHARE",
    "SCENARIOS",
    "Factor",
    "MorrisResult",
    "analyse",
    "factors",
    "load_shipped",
    "morris",
    "morris_trajectories",
    "predictions",
    "sourced_share",
    "stated_defaults",
    "table_at",
    "write",
]

LEVELS = 4  # p: grid levels per factor; delta = p / (2 (p - 1)) = 2/3
SEED = 2024
TRAJECTORIES = 10
MATTER_SHARE = 0.1  # a factor "matters" when its mu* is at least this share of the largest mu*
SPREAD = 2.0  # unsourced bounds: value / SPREAD to value * SPREAD
STRUCTURAL = ("g1_fraction", "s_fraction", "g2m_fraction")
SCENARIOS = (
    "coculture_solid",
    "coculture_hematological",
    "transwell_solid",
    "conditioned_medium_solid",
    "vesicles_solid",
    "xenograft_iv_solid",
    "xenograft_intratumoral_solid",
)
XENO_CELLS = 1e6  # MSCs per injection in the xenograft scenarios (a usual mouse dose)
XENO_DAYS = 28.0


# --------------------------------------------------------------------------------------------
# The sampler (unit cube)


def morris_trajectories(
    k: int, r: int, *, levels: int = LEVELS, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """``r`` trajectories of ``k + 1`` points in ``[0, 1]^k`` and the factor moved at each step.

    Returns ``(points, moved)``: ``points`` has shape ``(r, k + 1, k)``; ``moved[t, j]`` is the
    factor changed between points ``j`` and ``j + 1`` of trajectory ``t``.
    """
    if k < 1 or r < 1 or levels < 2:
        raise ValueError("need at least one factor, one trajectory and two levels")
    rng = np.random.default_rng(seed)
    delta = levels / (2.0 * (levels - 1))
    starts = np.arange(levels) / (levels - 1)
    starts = starts[starts <= 1.0 - delta + 1e-12]
    points = np.empty((r, k + 1, k))
    moved = np.empty((r, k), dtype=int)
    for t in range(r):
        x = rng.choice(starts, size=k)
        up = rng.random(k) < 0.5
        x = np.where(up, x, x + delta)  # a step down starts delta higher, so it stays in [0, 1]
        order = rng.permutation(k)
        points[t, 0] = x
        for j, i in enumerate(order):
            x = x.copy()
            x[i] += delta if up[i] else -delta
            points[t, j + 1] = x
        moved[t] = order
    return points, moved


def _effects(points: np.ndarray, moved: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Elementary effects, shape ``(r, k, n_outputs)``, from outputs of shape ``(r, k + 1, n)``."""
    r, k = moved.shape
    out = np.empty((r, k, outputs.shape[2]))
    for t in range(r):
        for j, i in enumerate(moved[t]):
            step = points[t, j + 1, i] - points[t, j, i]
            out[t, i] = (outputs[t, j + 1] - outputs[t, j]) / step
    return out


@dataclass(frozen=True)
class MorrisResult:
    """Per factor and output: mean effect, mean absolute effect (mu*) and its spread (sigma)."""

    names: list[str]
    outputs: list[str]
    mu: np.ndarray  # (k, n_outputs)
    mu_star: np.ndarray
    sigma: np.ndarray
    trajectories: int
    levels: int
    seed: int

    def score(self) -> np.ndarray:
        """One number per factor: mu* of each output relative to that output's largest mu*,
        averaged over outputs (so an output in large units does not dominate the ranking)."""
        top = self.mu_star.max(axis=0)
        rel = np.divide(self.mu_star, top, out=np.zeros_like(self.mu_star), where=top > 0)
        return rel.mean(axis=1)

    def ranking(self) -> list[str]:
        score = self.score()
        return [self.names[i] for i in np.argsort(-score, kind="stable")]


def morris(
    fn: Callable[[np.ndarray], np.ndarray],
    names: Sequence[str],
    *,
    outputs: Sequence[str] = ("y",),
    r: int = TRAJECTORIES,
    levels: int = LEVELS,
    seed: int = SEED,
    scheduler: str = "synchronous",
    workers: int | None = None,
) -> MorrisResult:
    """Morris screening of ``fn`` (unit-cube point -> vector of outputs), one Dask task per trajectory."""
    k = len(names)
    points, moved = morris_trajectories(k, r, levels=levels, seed=seed)
    rows = run_tasks(_trajectory, [(fn, points[t]) for t in range(r)], scheduler=scheduler, workers=workers)
    values = np.asarray(rows, dtype=float).reshape(r, k + 1, len(outputs))
    ee = _effects(points, moved, values)
    return MorrisResult(
        names=list(names),
        outputs=list(outputs),
        mu=ee.mean(axis=0),
        mu_star=np.abs(ee).mean(axis=0),
        sigma=ee.std(axis=0, ddof=1) if r > 1 else np.zeros((k, len(outputs))),
        trajectories=r,
        levels=levels,
        seed=seed,
    )


def _trajectory(fn: Callable[[np.ndarray], np.ndarray], points: np.ndarray) -> list[list[float]]:
    return [np.atleast_1d(np.asarray(fn(x), dtype=float)).tolist() for x in points]


# --------------------------------------------------------------------------------------------
# The lab's parameters as factors


@dataclass(frozen=True)
class Factor:
    """One varied quantity: the parameter paths it sets, its bounds and whether it is sourced."""

    name: str
    paths: tuple[str, ...]
    value: float
    low: float
    high: float
    sourced: bool

    def at(self, u: float) -> float:
        """The value at unit coordinate ``u`` (log scale between the bounds)."""
        return self.low * (self.high / self.low) ** u


def _bounds(value: float, rng: tuple[float, float] | None, cap: float | None) -> tuple[float, float]:
    low, high = (
        rng if rng is not None and rng[0] > 0 and rng[1] > rng[0] else (value / SPREAD, value * SPREAD)
    )
    if cap is not None:
        high = min(high, cap)
    return low, high


def factors(table: ParameterTable | None = None) -> tuple[list[Factor], list[dict[str, str]]]:
    """The varied factors and the parameters left out (path and why).

    The per-source MSC scales are identical for every source (all at the generic value), so each
    of the four scales is one factor that moves all sources together.
    """
    t = table or load_parameters()
    grouped: dict[str, list[dict[str, Any]]] = {}
    left_out: list[dict[str, str]] = []
    for row in t.rows():
        path = str(row["path"])
        parts = path.split(".")
        name = f"msc_sources.*.{parts[2]}" if parts[0] == "msc_sources" else path
        if parts[-1] in STRUCTURAL:
            left_out.append({"path": path, "why": "cell-cycle phase shares must sum to one"})
            continue
        if float(row["value"]) == 0.0:
            left_out.append({"path": path, "why": "zero: the term is switched off"})
            continue
        grouped.setdefault(name, []).append(row)
    out = []
    for name, rows in grouped.items():
        first = rows[0]
        if any(r["value"] != first["value"] or r["source"] != first["source"] for r in rows):
            raise ValueError(f"{name}: grouped parameters differ; vary them one by one")
        cap = 1.0 if name.split(".")[-1] in ("arrest_max", "initial_fill") or "retention" in name else None
        low, high = _bounds(float(first["value"]), first.get("range"), cap)
        out.append(
            Factor(
                name=name,
                paths=tuple(str(r["path"]) for r in rows),
                value=float(first["value"]),
                low=low,
                high=high,
                sourced=str(first["source"]).strip().lower() != "assumed",
            )
        )
    return out, left_out


def _set(data: dict[str, Any], path: str, value: float) -> None:
    node: Any = data
    for key in path.split("."):
        node = node[key]
    node["value"] = value


def table_at(table: ParameterTable, chosen: Sequence[Factor], u: np.ndarray) -> ParameterTable:
    """The parameter table with each factor set to its value at unit coordinate ``u[i]``."""
    data = table.model_dump(mode="json")
    for factor, ui in zip(chosen, u, strict=True):
        for path in factor.paths:
            _set(data, path, factor.at(float(ui)))
    return ParameterTable.model_validate(data)


def predictions(table: ParameterTable) -> np.ndarray:
    """The lab's predictions for each of :data:`SCENARIOS` (bone-marrow MSCs, no calibration)."""
    hours = table.value("protocol", "default_hours")
    ratio = table.value("protocol", "default_ratio")
    cond = Conditioning(
        table.value("protocol", "conditioning_cells"),
        table.value("protocol", "conditioning_volume"),
        table.value("protocol", "conditioning_hours"),
    )
    in_vitro = [
        (Protocol("direct_coculture", hours, msc_per_cancer=ratio), CancerClass.solid),
        (Protocol("direct_coculture", hours, msc_per_cancer=ratio), CancerClass.hematological),
        (Protocol("transwell", hours, msc_per_cancer=ratio), CancerClass.solid),
        (
            Protocol(
                "conditioned_medium",
                hours,
                cm_percent=table.value("protocol", "default_cm_percent"),
                conditioning=cond,
            ),
            CancerClass.solid,
        ),
        (
            Protocol(
                "extracellular_vesicles", hours, ev_ug_per_ml=table.value("protocol", "default_ev_dose")
            ),
            CancerClass.solid,
        ),
    ]
    out = [
        run(proto, "bone_marrow", cls_, table=table).final()["inhibition_percent"] for proto, cls_ in in_vitro
    ]
    for route in ("intravenous", "intratumoral"):
        result = simulate_xenograft(
            injections=[Injection(0.0, XENO_CELLS, route)],  # type: ignore[arg-type]
            days=XENO_DAYS,
            n_animals=1,
            table=table,
        )
        out.append(result.tgi_percent())
    return np.asarray(out, dtype=float)


@dataclass(frozen=True)
class _LabModel:
    """Picklable unit-cube -> predictions map (Dask process workers need to pickle the task)."""

    table: ParameterTable
    chosen: tuple[Factor, ...]

    def __call__(self, u: np.ndarray) -> np.ndarray:
        return predictions(table_at(self.table, self.chosen, u))


def sourced_share(items: Sequence[Factor]) -> float | None:
    return None if not items else sum(f.sourced for f in items) / len(items)


def analyse(
    *,
    r: int = TRAJECTORIES,
    levels: int = LEVELS,
    seed: int = SEED,
    scheduler: str = "threads",
    workers: int | None = None,
    only: Sequence[str] | None = None,
    table: ParameterTable | None = None,
) -> dict[str, Any]:
    """Morris screening of the lab's predictions over the parameter file; a JSON-ready summary.

    ``only`` restricts the varied factors to these names (tests); the others keep their values.
    """
    t = table or load_parameters()
    all_factors, left_out = factors(t)
    chosen = [f for f in all_factors if only is None or f.name in only]
    if only is not None and len(chosen) != len(set(only)):
        known = {f.name for f in all_factors}
        raise ValueError(f"unknown factors: {', '.join(sorted(set(only) - known))}")
    result = morris(
        _LabModel(t, tuple(chosen)),
        [f.name for f in chosen],
        outputs=SCENARIOS,
        r=r,
        levels=levels,
        seed=seed,
        scheduler=scheduler,
        workers=workers,
    )
    score = result.score()
    top = float(score.max()) if len(score) else 0.0
    rows = []
    for i in np.argsort(-score, kind="stable"):
        f = chosen[i]
        rows.append(
            {
                "factor": f.name,
                "sourced": f.sourced,
                "value": f.value,
                "low": f.low,
                "high": f.high,
                "score": float(score[i]),
                "matters": bool(top > 0 and score[i] >= MATTER_SHARE * top),
                "mu_star": dict(zip(SCENARIOS, result.mu_star[i].tolist(), strict=True)),
                "mu": dict(zip(SCENARIOS, result.mu[i].tolist(), strict=True)),
                "sigma": dict(zip(SCENARIOS, result.sigma[i].tolist(), strict=True)),
            }
        )
    matter = [chosen[i] for i in range(len(chosen)) if top > 0 and score[i] >= MATTER_SHARE * top]
    return {
        "method": "Morris elementary effects (mu*, Campolongo et al. 2007)",
        "seed": seed,
        "trajectories": r,
        "levels": levels,
        "evaluations": r * (len(chosen) + 1),
        "scenarios": list(SCENARIOS),
        "matter_threshold": MATTER_SHARE,
        "n_factors": len(chosen),
        "n_sourced": sum(f.sourced for f in chosen),
        "share_sourced": sourced_share(chosen),
        "n_matter": len(matter),
        "n_matter_sourced": sum(f.sourced for f in matter),
        "share_sourced_among_matter": sourced_share(matter),
        "factors": rows,
        "left_out": left_out,
    }


def stated_defaults(evidence: Sequence[Any]) -> dict[str, dict[str, float]]:
    """What in vitro items state, per protocol default: ``n``, median and quartiles.

    ``default_hours`` reads each item's longest stated exposure and ``default_ratio`` its highest
    stated MSC-per-cancer-cell ratio (items that state none are left out); the parameter file's
    fitted defaults are these medians, with the quartiles as their range.
    """
    hours: list[float] = []
    ratios: list[float] = []
    for item in evidence:
        if item.setting.value != "in_vitro":
            continue
        if item.duration is not None and item.duration.hours:
            hours.append(max(item.duration.hours))
        if item.dose is not None:
            stated = [r.msc / r.cancer for r in item.dose.ratios if r.msc > 0 and r.cancer > 0]
            if stated:
                ratios.append(max(stated))
    out = {}
    for name, values in (("default_hours", hours), ("default_ratio", ratios)):
        if values:
            q1, median, q3 = np.percentile(values, [25, 50, 75])
            out[name] = {"n": float(len(values)), "median": float(median), "q1": float(q1), "q3": float(q3)}
    return out


def load_shipped() -> dict[str, Any] | None:
    """The committed analysis (``data/sensitivity.json``), or ``None`` when none is shipped."""
    ref = resources.files("mscatlas.sim").joinpath("data/sensitivity.json")
    if not ref.is_file():
        return None
    return json.loads(ref.read_text(encoding="utf-8"))


def write(result: dict[str, Any], path: str | Path) -> Path:
    out = Path(path)
    out.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return out
