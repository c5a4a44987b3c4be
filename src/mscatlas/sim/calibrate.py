"""Calibrate shared parameters of the in vitro model on the directions of the knowledge base.

What is fitted
    Factors multiplying the parameter file's values, shared by every item of an MSC source or of
    a cancer class (never one per study): per MSC source the inhibitory and stimulatory secretion,
    the contact strength and the vesicle cargo; per cancer class the sensitivity to the inhibitory
    and to the stimulatory signal (a factor dividing the channel's EC50). They are estimated on the
    log scale, ``theta = ln(factor)``; ``theta = 0`` is the assumed value of ``parameters.yaml``.

Objective
    Each accepted in vitro item whose direction is ``inhibits``, ``promotes`` or ``no_effect``
    contributes the log-probability of its observed direction under an ordered logistic model
    of the simulated read-out at the item's highest dose: ``z`` is the read-out divided by its
    calling threshold (% inhibition / ``inhibition_threshold`` for counts; percentage-point change
    / ``fraction_threshold`` for apoptosis and S phase), and
    ``P(inhibits) = expit((z - 1) / T)``, ``P(promotes) = expit((-z - 1) / T)``, the rest is
    ``no_effect``; ``T`` (:data:`TEMPERATURE`) is the label noise in threshold units. This is a
    smooth version of "the model calls the observed direction". Gaussian priors on ``theta``
    (:data:`PRIOR_SD_SOURCE`, :data:`PRIOR_SD_CLASS`) pull every factor to its assumed value, so
    a source with two items cannot run wild; a factor that no training item informs stays at 1.

How it is fast
    An item's read-out depends on ``theta`` only through three coordinates: the log-strength of
    the inhibitory signal it sees (source + class), of the stimulatory signal (source + class) and
    of contact (source; direct co-culture only). Each distinct protocol is therefore simulated
    once on a regular grid of those coordinates with the vectorised RK4 of
    :mod:`mscatlas.sim.ensemble` (one array run per protocol, spread over Dask by
    :func:`mscatlas.sim.sweep.run_tasks`), and the objective reads the grid through a cubic
    B-spline, with an exact gradient. The grid depends on the protocols only, never on the
    observed directions, so computing it once for all items leaks nothing into leave-one-study-out
    refits. Minimisation: L-BFGS-B within bounds from fixed starts (zeros, then starts drawn
    from a generator seeded with ``seed``); the best end point wins. The objective is not convex
    (on the shipped knowledge base 30 random starts found two local optima), hence the
    multi-start; every leave-one-study-out refit runs the same procedure from the same starts.

Regenerate the shipped file with ``mscatlas sim calibrate --out
src/mscatlas/sim/data/calibrated.yaml`` (same knowledge base and seed, same file). ``mscatlas sim
calibrate [--out FILE] [--seed N] [--scheduler ADDRESS]`` runs the same fit (:func:`write_calibration`)
from the command line; ``mscatlas sim coculture/cm/ev --calibration FILE`` then simulates with it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.ndimage import spline_filter1d
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from mscatlas import __version__
from mscatlas.kb.enums import CancerClass, CurationStatus, Setting
from mscatlas.kb.models import EvidenceItem
from mscatlas.sim.build import Product, cell_params, product
from mscatlas.sim.ensemble import rk4
from mscatlas.sim.model import CellParams, broadcast_params
from mscatlas.sim.parameters import ParameterTable, load_parameters
from mscatlas.sim.protocol import Protocol, _start

__all__ = [
    "PRIOR_SD_CLASS",
    "PRIOR_SD_SOURCE",
    "TEMPERATURE",
    "Calibration",
    "FitResult",
    "Surfaces",
    "Target",
    "calibration_text",
    "compute_surfaces",
    "fit",
    "items_digest",
    "load_calibration",
    "out_of_sample",
    "targets_from_items",
    "write_calibration",
]

TEMPERATURE = 0.5
PRIOR_SD_SOURCE = 1.0
PRIOR_SD_CLASS = 0.5
SOURCE_BOUND = 3.0  # |theta| of a source factor (a factor between 1/20 and 20)
CLASS_BOUND = 1.5
N_STARTS = 6  # zeros, then seeded N(0, 1) starts clipped to +-START_SPREAD
START_SPREAD = 1.5
SOURCE_KEYS = ("inhibitory", "stimulatory", "contact", "ev_cargo")
CLASS_KEYS = ("inhibitory", "stimulatory")
READOUTS = ("viable", "apoptotic_fraction", "s_phase")
_READOUT_OF_ENDPOINT = {"apoptosis": "apoptotic_fraction", "cell_cycle": "s_phase"}
DIRECTIONS = ("inhibits", "promotes", "no_effect")

# Grid of the coordinates (log-strengths) on which every protocol is simulated.
SIGNAL_GRID = np.linspace(-SOURCE_BOUND - CLASS_BOUND, SOURCE_BOUND + CLASS_BOUND, 19)
CONTACT_GRID = np.linspace(-SOURCE_BOUND, SOURCE_BOUND, 13)
SURFACE_DT = 1.0  # h; RK4 at 1 h matches LSODA to ~1e-6 relative on these systems (tested)


# --------------------------------------------------------------------------------------------
# The calibrated factors


@dataclass(frozen=True)
class Calibration:
    """Fitted log-factors: ``source[src][key]`` and ``cancer_class[cls][key]`` (0 = assumed)."""

    source: dict[str, dict[str, float]]
    cancer_class: dict[str, dict[str, float]]
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)

    def _src(self, name: str, key: str) -> float:
        return math.exp(self.source.get(name, {}).get(key, 0.0))

    def _cls(self, name: str, key: str) -> float:
        return math.exp(self.cancer_class.get(name, {}).get(key, 0.0))

    def adjust_product(self, prod: Product) -> Product:
        """The product with its source's fitted secretion, contact and vesicle factors applied."""
        src = prod.msc_source
        secretion = list(prod.secretion)
        secretion[0] *= self._src(src, "inhibitory")
        secretion[1] *= self._src(src, "stimulatory")
        return replace(
            prod,
            secretion=tuple(secretion),
            contact_scale=prod.contact_scale * self._src(src, "contact"),
            ev_cargo_scale=prod.ev_cargo_scale * self._src(src, "ev_cargo"),
        )

    def adjust_params(self, p: CellParams, cancer_class: str) -> CellParams:
        """The cells' fitted sensitivity to the two native signals (EC50 divided by the factor)."""
        ec50 = np.array(p.sig_ec50, dtype=float, copy=True)
        ec50[0] = ec50[0] / self._cls(cancer_class, "inhibitory")
        ec50[1] = ec50[1] / self._cls(cancer_class, "stimulatory")
        return p.with_(sig_ec50=ec50)

    def to_yaml_dict(self) -> dict[str, Any]:
        stamp = self.provenance.get("stamp", "calibrated")
        counts = self.provenance.get("n_items", {})

        def entry(theta: float, name: str) -> dict[str, Any]:
            informed = counts.get(name, 0)
            return {
                "factor": round(math.exp(theta), 6),
                "log_factor": round(theta, 6),
                "n_items": informed,
                "source": stamp if informed else "assumed (no item informs it; prior mode kept)",
            }

        return {
            "schema_version": 1,
            "provenance": {k: v for k, v in self.provenance.items() if k != "n_items"},
            "msc_sources": {
                src: {k: entry(v, f"source.{src}.{k}") for k, v in keys.items()}
                for src, keys in sorted(self.source.items())
            },
            "cancer_classes": {
                cls: {k: entry(v, f"class.{cls}.{k}") for k, v in keys.items()}
                for cls, keys in sorted(self.cancer_class.items())
            },
        }

    @classmethod
    def from_yaml_dict(cls, data: dict[str, Any]) -> Calibration:
        if data.get("schema_version") != 1:
            raise ValueError("calibration file: unknown schema_version")
        source = {
            s: {k: float(v["log_factor"]) for k, v in keys.items()} for s, keys in data["msc_sources"].items()
        }
        klass = {
            c: {k: float(v["log_factor"]) for k, v in keys.items()}
            for c, keys in data["cancer_classes"].items()
        }
        for keys in source.values():
            if set(keys) - set(SOURCE_KEYS):
                raise ValueError(
                    f"calibration file: unknown source factor(s) {sorted(set(keys) - set(SOURCE_KEYS))}"
                )
        for keys in klass.values():
            if set(keys) - set(CLASS_KEYS):
                raise ValueError(
                    f"calibration file: unknown class factor(s) {sorted(set(keys) - set(CLASS_KEYS))}"
                )
        return cls(source, klass, dict(data.get("provenance", {})))


@lru_cache(maxsize=4)
def _load_cached(path: str | None) -> Calibration | None:
    if path is None:
        res = resources.files("mscatlas.sim").joinpath("data/calibrated.yaml")
        if not res.is_file():
            return None
        text = res.read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return Calibration.from_yaml_dict(yaml.safe_load(text))


def load_calibration(path: str | Path | None = None) -> Calibration | None:
    """The shipped calibration (``data/calibrated.yaml``; ``None`` if absent), or the one in ``path``."""
    return _load_cached(None if path is None else str(path))


def default_calibration() -> tuple[Calibration | None, str | None]:
    """The parameters outputs use when none is asked for: whichever is better out of sample.

    The shipped calibration is the default only while its stored leave-one-study-out accuracy
    does not lose to the majority baseline; otherwise the default is the assumed parameters
    (``None``) and the second value says why, so no output uses losing factors silently.
    """
    calibration = load_calibration()
    if calibration is None:
        return None, "no calibration file is shipped; parameters.yaml used as is"
    check = out_of_sample("calibrated")
    if check.get("loses_to_baseline"):
        return None, (
            f"the shipped calibration loses to the majority baseline out of sample "
            f"(accuracy {check['accuracy']:.2f} vs {check['baseline_accuracy']:.2f}), "
            "so it is not the default"
        )
    return calibration, None


def shipped_validation() -> dict[str, Any]:
    """Leave-one-study-out figures stored beside the shipped calibration (empty if none)."""
    res = resources.files("mscatlas.sim").joinpath("data/calibrated.yaml")
    if not res.is_file():
        return {}
    data = yaml.safe_load(res.read_text(encoding="utf-8"))
    return dict(data.get("provenance", {}).get("validation", {}))


def out_of_sample(parameters: str) -> dict[str, Any]:
    """How the parameters a simulation used fare out of sample, for every output that uses them.

    ``parameters`` is ``calibrated`` or ``assumed``. The figures are the leave-one-study-out
    replay stored with the shipped calibration (direction accuracy over the scored in vitro
    items, beside the majority-class baseline). ``loses_to_baseline`` is true when the
    calibrated parameters' held-out accuracy is below the baseline's; ``line`` says so in words.
    Log loss is reported where the stored replay has it (``None`` otherwise).
    """
    v = shipped_validation()
    if not v:
        line = "no out-of-sample validation is shipped"
        return {"parameters": parameters, "validated": False, "line": line}
    accuracy = v.get("loo_accuracy") if parameters == "calibrated" else v.get("accuracy_assumed")
    baseline = v.get("baseline_accuracy")
    loses = None if accuracy is None or baseline is None else bool(accuracy < baseline)
    out = {
        "parameters": parameters,
        "validated": accuracy is not None,
        "n_items": v.get("n_scored"),
        "n_studies": v.get("n_studies"),
        "accuracy": accuracy,
        "baseline_accuracy": baseline,
        "log_loss": v.get("loo_log_loss" if parameters == "calibrated" else "log_loss_assumed"),
        "baseline_log_loss": v.get("baseline_log_loss"),
        "loses_to_baseline": loses,
    }
    if accuracy is None:
        out["line"] = (
            f"validation: {parameters} parameters not validated out of sample; majority baseline "
            f"accuracy {baseline:.2f} on {v.get('n_scored')} in vitro items"
        )
    else:
        verdict = "LOSES TO" if loses else "beats"
        out["line"] = (
            f"validation: {parameters} parameters, leave-one-study-out direction accuracy {accuracy:.2f} "
            f"{verdict} the majority baseline's {baseline:.2f} ({v.get('n_scored')} in vitro items, "
            f"{v.get('n_studies')} studies)"
            + ("; treat the predicted direction as unvalidated" if loses else "")
        )
    return out


def items_digest(items: Iterable[EvidenceItem]) -> str:
    """A short hash of the in vitro items a calibration sees (ids, protocols, directions)."""
    rows = sorted(
        json.dumps(i.model_dump(mode="json", exclude={"provenance", "flags", "notes"}), sort_keys=True)
        for i in items
        if i.setting is Setting.in_vitro and i.curation_status is CurationStatus.accepted
    )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# Targets: what each item contributes


SurfaceKey = tuple[Protocol, str, Product]


@dataclass(frozen=True)
class Target:
    item_id: str
    study: str
    msc_source: str
    cancer_class: str
    delivery: str
    readout: str
    observed: str
    key: SurfaceKey


def _key(proto: Protocol, cancer_class: str, prod: Product) -> SurfaceKey:
    # The source's name does not enter the simulation, only its scales: identical protocols of
    # different sources share a grid.
    return (proto, cancer_class, replace(prod, msc_source="", ignored=()))


def targets_from_items(items: Iterable[EvidenceItem], table: ParameterTable | None = None) -> list[Target]:
    """One target per accepted in vitro item with a single direction and a simulated delivery."""
    from mscatlas.sim.replay import _SIMULATED, item_setup

    t = table or load_parameters()
    out = []
    for item in items:
        if item.setting is not Setting.in_vitro or item.curation_status is not CurationStatus.accepted:
            continue
        if item.delivery.value not in _SIMULATED or item.direction.value not in DIRECTIONS:
            continue
        setup = item_setup(item, t)
        prod = product(setup.msc_source, setup.engineering, (), t)
        out.append(
            Target(
                item_id=item.id,
                study=item.study,
                msc_source=setup.msc_source,
                cancer_class=setup.cancer_class,
                delivery=item.delivery.value,
                readout=_READOUT_OF_ENDPOINT.get(item.endpoint.value, "viable"),
                observed=item.direction.value,
                key=_key(setup.protocols[-1], setup.cancer_class, prod),
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Response surfaces


def _surface_of(key: SurfaceKey, table: ParameterTable, dt: float) -> np.ndarray:
    """z of every read-out on the coordinate grid: shape ``(3, n_signal, n_signal, n_contact)``."""
    proto, cancer_class, prod = key
    direct = proto.delivery == "direct_coculture"
    p = cell_params(prod, CancerClass(cancer_class), contact=direct, table=table)
    cancer = proto.cancer_cells or table.cancer[CancerClass(cancer_class)]["seed_cells"].value
    y_t = _start(prod, p, proto, table, cancer)
    y_c = _start(prod, p, proto.control(), table, cancer)
    contact = CONTACT_GRID if direct else np.zeros(1)
    uu, vv, cc = np.meshgrid(SIGNAL_GRID, SIGNAL_GRID, contact, indexing="ij")
    u, v, c = uu.ravel(), vv.ravel(), cc.ravel()
    n = len(u)
    pe = broadcast_params(p, n + 1)  # the last member is the control arm
    ec50 = np.array(pe.sig_ec50)
    ec50[0, :n] *= np.exp(-u)
    ec50[1, :n] *= np.exp(-v)
    changes: dict[str, Any] = {"sig_ec50": ec50}
    if direct:
        arrest, death = table.contact["arrest_max"].value, table.contact["death_max"].value
        ca, cd = np.array(pe.contact_arrest), np.array(pe.contact_death)
        ca[:n] = np.minimum(1.0, arrest * prod.contact_scale * np.exp(c))
        cd[:n] = death * prod.contact_scale * np.exp(c)
        changes |= {"contact_arrest": ca, "contact_death": cd}
    pe = pe.with_(**changes)
    y0 = np.concatenate([np.repeat(y_t[:, None], n, axis=1), y_c[:, None]], axis=1)
    y = rk4(pe, y0, np.array([0.0, proto.hours]), dt=dt).states[-1]
    viable = y[0] + y[1] + y[2]
    apo = y[3] / (viable + y[3])
    s_phase = y[1] / viable
    inh_thr = table.value("protocol", "inhibition_threshold")
    frac_thr = table.value("protocol", "fraction_threshold")
    z = np.stack(
        [
            100.0 * (1.0 - viable[:n] / viable[n]) / inh_thr,
            100.0 * (apo[:n] - apo[n]) / frac_thr,
            100.0 * (s_phase[n] - s_phase[:n]) / frac_thr,
        ]
    ).reshape(3, len(SIGNAL_GRID), len(SIGNAL_GRID), len(contact))
    if not direct:
        z = np.repeat(z, len(CONTACT_GRID), axis=3)
    return z


def _surface_chunk(keys: list[SurfaceKey], table: ParameterTable, dt: float) -> list[np.ndarray]:
    return [_surface_of(k, table, dt) for k in keys]


@dataclass(frozen=True)
class Surfaces:
    """Read-out grids of distinct protocols, as cubic B-spline coefficients."""

    index: dict[SurfaceKey, int]
    values: np.ndarray  # (n_keys, 3, n_signal, n_signal, n_contact), z on the grid
    coeffs: np.ndarray  # same shape, B-spline coefficients along the three grid axes

    def evaluate(self, which: np.ndarray, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """z and dz/dcoords for flat surface indices ``which`` (key * 3 + read-out) at ``coords``."""
        flat = self.coeffs.reshape(-1, *self.coeffs.shape[2:])
        grids = (SIGNAL_GRID, SIGNAL_GRID, CONTACT_GRID)
        idx, w, dw = [], [], []
        for d, g in enumerate(grids):
            step = g[1] - g[0]
            x = np.clip((coords[:, d] - g[0]) / step, 0.0, len(g) - 1.0)
            i0 = np.minimum(np.floor(x).astype(int), len(g) - 2)
            f = x - i0
            ii = i0[:, None] + np.arange(-1, 3)[None, :]
            n = len(g)
            ii = np.where(ii < 0, -ii, ii)
            ii = np.where(ii > n - 1, 2 * (n - 1) - ii, ii)
            idx.append(ii)
            w.append(
                np.stack([(1 - f) ** 3, 3 * f**3 - 6 * f**2 + 4, -3 * f**3 + 3 * f**2 + 3 * f + 1, f**3], 1)
                / 6.0
            )
            dw.append(
                np.stack([-((1 - f) ** 2), 3 * f**2 - 4 * f, -3 * f**2 + 2 * f + 1, f**2], 1) / 2.0 / step
            )
        block = flat[
            which[:, None, None, None],
            idx[0][:, :, None, None],
            idx[1][:, None, :, None],
            idx[2][:, None, None, :],
        ]
        z = np.einsum("tabc,ta,tb,tc->t", block, w[0], w[1], w[2])
        grad = np.stack(
            [
                np.einsum("tabc,ta,tb,tc->t", block, dw[0], w[1], w[2]),
                np.einsum("tabc,ta,tb,tc->t", block, w[0], dw[1], w[2]),
                np.einsum("tabc,ta,tb,tc->t", block, w[0], w[1], dw[2]),
            ],
            axis=1,
        )
        return z, grad


def compute_surfaces(
    targets: Sequence[Target],
    table: ParameterTable | None = None,
    *,
    scheduler: str = "threads",
    workers: int | None = None,
    progress: bool = False,
    dt: float = SURFACE_DT,
    chunk: int = 4,
) -> Surfaces:
    """Simulate every distinct protocol of ``targets`` on the coordinate grid (on Dask)."""
    from mscatlas.sim.sweep import run_tasks

    t = table or load_parameters()
    keys = list(dict.fromkeys(tg.key for tg in targets))
    chunks = [keys[i : i + chunk] for i in range(0, len(keys), chunk)]
    results = run_tasks(
        _surface_chunk,
        [(c, t, dt) for c in chunks],
        scheduler=scheduler,
        workers=workers,
        progress=progress,
        description="protocol grids",
    )
    values = np.stack([z for part in results for z in part]) if keys else np.zeros((0, 3, 1, 1, 1))
    coeffs = values.copy()
    for axis in (2, 3, 4):
        coeffs = spline_filter1d(coeffs, order=3, axis=axis, mode="mirror")
    return Surfaces({k: i for i, k in enumerate(keys)}, values, coeffs)


# --------------------------------------------------------------------------------------------
# The objective and the fit


@dataclass(frozen=True)
class _Problem:
    names: list[str]
    prior_sd: np.ndarray
    bounds: list[tuple[float, float]]
    A: np.ndarray  # (n_targets, 3, n_params): coordinates = A @ theta
    which: np.ndarray  # flat surface index per target
    observed: np.ndarray  # 0 inhibits, 1 promotes, 2 no_effect
    counts: dict[str, int]


def _problem(targets: Sequence[Target], surfaces: Surfaces, prior_scale: float = 1.0) -> _Problem:
    used: dict[str, int] = Counter()
    for tg in targets:
        for name in _param_names(tg):
            if name is not None:
                used[name] += 1
    names = sorted(used)
    col = {n: j for j, n in enumerate(names)}
    A = np.zeros((len(targets), 3, len(names)))
    for i, tg in enumerate(targets):
        for d, name in enumerate(_coordinate_params(tg)):
            for n in name:
                A[i, d, col[n]] = 1.0
    prior_sd = np.array([(PRIOR_SD_CLASS if n.startswith("class.") else PRIOR_SD_SOURCE) for n in names])
    bounds = [
        ((-CLASS_BOUND, CLASS_BOUND) if n.startswith("class.") else (-SOURCE_BOUND, SOURCE_BOUND))
        for n in names
    ]
    which = np.array([surfaces.index[tg.key] * 3 + READOUTS.index(tg.readout) for tg in targets], dtype=int)
    observed = np.array([DIRECTIONS.index(tg.observed) for tg in targets], dtype=int)
    return _Problem(names, prior_sd * prior_scale, bounds, A, which, observed, dict(used))


def _coordinate_params(tg: Target) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The parameters adding up to each of the item's three coordinates."""
    s, c = f"source.{tg.msc_source}", f"class.{tg.cancer_class}"
    if tg.delivery == "extracellular_vesicles":
        return (f"{s}.ev_cargo", f"{c}.inhibitory"), (f"{s}.ev_cargo", f"{c}.stimulatory"), ()
    contact = (f"{s}.contact",) if tg.delivery == "direct_coculture" else ()
    return (f"{s}.inhibitory", f"{c}.inhibitory"), (f"{s}.stimulatory", f"{c}.stimulatory"), contact


def _param_names(tg: Target) -> set[str]:
    return {n for coord in _coordinate_params(tg) for n in coord}


def _loglik_terms(z: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log P(observed | z) and its derivative in z, for the ordered logistic of the module doc."""
    a = (z - 1.0) / TEMPERATURE
    b = (-z - 1.0) / TEMPERATURE
    pa, pb = expit(a), expit(b)
    ll = np.empty_like(z)
    dll = np.empty_like(z)
    inh, pro, none = observed == 0, observed == 1, observed == 2
    ll[inh] = log_expit(a[inh])
    dll[inh] = (1.0 - pa[inh]) / TEMPERATURE
    ll[pro] = log_expit(b[pro])
    dll[pro] = -(1.0 - pb[pro]) / TEMPERATURE
    p_none = np.maximum(expit(-a[none]) - pb[none], 1e-300)
    ll[none] = np.log(p_none)
    dll[none] = -(pa[none] * (1 - pa[none]) - pb[none] * (1 - pb[none])) / TEMPERATURE / p_none
    return ll, dll


def _objective(theta: np.ndarray, prob: _Problem, surfaces: Surfaces) -> tuple[float, np.ndarray]:
    coords = prob.A @ theta  # (n_targets, 3)
    z, dz = surfaces.evaluate(prob.which, coords)
    ll, dll = _loglik_terms(z, prob.observed)
    penalty = 0.5 * np.sum((theta / prob.prior_sd) ** 2)
    value = -float(np.sum(ll)) + float(penalty)
    grad = -np.einsum("t,td,tdp->p", dll, dz, prob.A) + theta / prob.prior_sd**2
    return value, grad


@dataclass(frozen=True)
class FitResult:
    calibration: Calibration
    theta: dict[str, float]
    objective: float
    n_targets: int
    starts: int
    converged: bool


def fit(
    targets: Sequence[Target],
    surfaces: Surfaces,
    *,
    seed: int = 0,
    n_starts: int = N_STARTS,
    prior_scale: float = 1.0,
    provenance: dict[str, Any] | None = None,
) -> FitResult:
    """Maximum a posteriori log-factors for ``targets`` (deterministic for a given seed)."""
    if not targets:
        return FitResult(Calibration({}, {}, dict(provenance or {})), {}, 0.0, 0, 0, True)
    prob = _problem(targets, surfaces, prior_scale)
    rng = np.random.default_rng(seed)
    k = len(prob.names)
    low = np.array([b[0] for b in prob.bounds])
    high = np.array([b[1] for b in prob.bounds])
    start_low, start_high = np.maximum(low, -START_SPREAD), np.minimum(high, START_SPREAD)
    starts = [np.zeros(k)] + [
        np.clip(rng.normal(0.0, 1.0, k), start_low, start_high) for _ in range(n_starts - 1)
    ]
    best = None
    for x0 in starts:
        res = minimize(
            _objective,
            x0,
            args=(prob, surfaces),
            jac=True,
            method="L-BFGS-B",
            bounds=prob.bounds,
            options={"maxiter": 1000, "gtol": 1e-8, "ftol": 1e-12},
        )
        if best is None or res.fun < best.fun - 1e-12:
            best = res
    assert best is not None
    theta = {n: float(v) for n, v in zip(prob.names, best.x, strict=True)}
    source: dict[str, dict[str, float]] = {}
    klass: dict[str, dict[str, float]] = {}
    for name, value in theta.items():
        kind, group, key = name.split(".")
        (source if kind == "source" else klass).setdefault(group, {})[key] = value
    prov = dict(provenance or {})
    prov["n_items"] = {n: prob.counts[n] for n in prob.names}
    return FitResult(
        Calibration(source, klass, prov),
        theta,
        float(best.fun),
        len(targets),
        len(starts),
        bool(best.success),
    )


def predict_z(targets: Sequence[Target], surfaces: Surfaces, calibration: Calibration) -> np.ndarray:
    """The surrogate's read-out z of each target under ``calibration`` (from the grids)."""
    coords = np.zeros((len(targets), 3))
    for i, tg in enumerate(targets):
        for d, names in enumerate(_coordinate_params(tg)):
            for n in names:
                kind, group, key = n.split(".")
                table = calibration.source if kind == "source" else calibration.cancer_class
                coords[i, d] += table.get(group, {}).get(key, 0.0)
    which = np.array([surfaces.index[tg.key] * 3 + READOUTS.index(tg.readout) for tg in targets], dtype=int)
    return surfaces.evaluate(which, coords)[0]


def direction_of(z: float | np.ndarray) -> Any:
    """The direction a lab would call from z (at least one threshold either way)."""
    z = np.asarray(z)
    out = np.where(z >= 1.0, "inhibits", np.where(z <= -1.0, "promotes", "no_effect"))
    return out.item() if out.ndim == 0 else out


def _fold(
    study: str, targets: Sequence[Target], surfaces: Surfaces, seed: int, n_starts: int
) -> tuple[str, Calibration]:
    train = [tg for tg in targets if tg.study != study]
    return study, fit(train, surfaces, seed=seed, n_starts=n_starts).calibration


def leave_one_study_out(
    targets: Sequence[Target],
    surfaces: Surfaces,
    *,
    seed: int = 0,
    n_starts: int = N_STARTS,
    scheduler: str = "threads",
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, Calibration]:
    """One refit per study, each without that study's items: study -> calibration."""
    from mscatlas.sim.sweep import run_tasks

    studies = sorted({tg.study for tg in targets})
    results = run_tasks(
        _fold,
        [(s, targets, surfaces, seed, n_starts) for s in studies],
        scheduler=scheduler,
        workers=workers,
        progress=progress,
        description="leave-one-study-out refits",
    )
    return dict(results)


# --------------------------------------------------------------------------------------------
# The command that writes data/calibrated.yaml


def calibrate_knowledge_base(
    items: Sequence[EvidenceItem],
    *,
    seed: int = 0,
    n_starts: int = N_STARTS,
    scheduler: str = "threads",
    workers: int | None = None,
    progress: bool = False,
    validate: bool = True,
    command: str = "mscatlas sim calibrate --out src/mscatlas/sim/data/calibrated.yaml",
) -> tuple[Calibration, dict[str, Any]]:
    """Fit on ``items``; with ``validate``, also run the honest replay and store its figures."""
    from mscatlas.sim.replay import replay

    digest = items_digest(items)
    targets = targets_from_items(items)
    stamp = f"calibrated on knowledge base {__version__} (in vitro items sha256:{digest}), seed {seed}"
    provenance: dict[str, Any] = {
        "stamp": stamp,
        "knowledge_base": {"package_version": __version__, "items_sha256": digest},
        "seed": seed,
        "n_starts": n_starts,
        "n_targets": len(targets),
        "n_studies": len({tg.study for tg in targets}),
        "objective": (
            f"ordered logistic likelihood of the observed direction given the simulated read-out "
            f"in threshold units (temperature {TEMPERATURE}), Gaussian priors on the log-factors "
            f"(sd {PRIOR_SD_SOURCE} per source, {PRIOR_SD_CLASS} per class), L-BFGS-B from "
            f"{n_starts} fixed starts"
        ),
        "command": command,
    }
    surfaces = compute_surfaces(targets, scheduler=scheduler, workers=workers, progress=progress)
    result = fit(targets, surfaces, seed=seed, n_starts=n_starts, provenance=provenance)
    cal = result.calibration
    cal.provenance["objective_value"] = round(result.objective, 6)
    if validate:
        report = replay(
            items,
            calibrate=True,
            seed=seed,
            n_starts=n_starts,
            scheduler=scheduler,
            workers=workers,
            progress=progress,
            _prepared=(targets, surfaces, result),
        ).to_dict()
        cal.provenance["validation"] = {
            k: report[k]
            for k in (
                "n_scored",
                "n_studies",
                "accuracy",
                "loo_accuracy",
                "baseline_accuracy",
                "loo_accuracy_binary",
                "moderator_loo_accuracy",
                "baseline_in_sample_accuracy",
                "accuracy_assumed",
            )
            if k in report
        }
    return cal, cal.to_yaml_dict()


def calibration_text(data: dict[str, Any]) -> str:
    """The YAML file of a calibration (``Calibration.to_yaml_dict()``), with its header."""
    header = (
        "# Calibrated factors of the in vitro model (mscatlas.sim.calibrate). Written by\n"
        f"#   {data['provenance']['command']}\n"
        "# Each factor multiplies the value of parameters.yaml; do not edit by hand.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def write_calibration(
    out: str | Path,
    *,
    db: str | None = None,
    seed: int = 0,
    scheduler: str = "threads",
    workers: int | None = None,
    progress: bool = True,
    command: str | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Calibrate on the knowledge base in ``db`` (default: the user store) and write ``out``."""
    from mscatlas.kb.store import Store

    store = Store.open(db)
    try:
        items = store.dataset().evidence
    finally:
        store.close()
    extra = {} if command is None else {"command": command}
    _, data = calibrate_knowledge_base(
        items, seed=seed, scheduler=scheduler, workers=workers, progress=progress, **extra
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(calibration_text(data), encoding="utf-8")
    return path, data
