"""The in silico lab in the browser: a form, background runs and their curves.

A run needs no login (it writes nothing to the store), but the HTML form is a POST like every
other and carries the session's CSRF token. Runs go to a small in-process job registry: a
``ThreadPoolExecutor`` owned by the app, random unguessable job ids, and at most ``max_jobs``
jobs kept (the oldest finished one is forgotten first; when every kept job is still queued or
running, a new one is refused with 503). The job page refreshes itself with an HTTP
``<meta http-equiv="refresh">`` while the run is going (the pages run no script), then shows the
curves as inline SVG and a table of the key numbers. ``/api/simulations`` starts runs from JSON
and reports status and results (time grid and every series).
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment

from mscatlas._svg import csp_safe_svg
from mscatlas.kb import strict_json
from mscatlas.kb.dose import DoseParseError, parse_dose
from mscatlas.kb.enums import CancerClass, MscSource
from mscatlas.web.auth import Sessions, read_form, redirect
from mscatlas.web.pages import render

__all__ = [
    "KINDS",
    "RESULT_RETENTION_S",
    "SIMULATIONS_PER_MINUTE",
    "ClientRateLimit",
    "SimulationJob",
    "SimulationRegistry",
    "SimulationSpec",
    "parse_spec",
    "run_spec",
    "simulate_router",
]

KINDS = {
    "coculture": "direct co-culture",
    "transwell": "transwell (no contact)",
    "cm": "conditioned medium",
    "ev": "extracellular vesicles",
    "xenograft": "xenograft",
}
ROUTES = ("intravenous", "intratumoral", "co_injection")
GROWTH_MODELS = ("gompertz", "logistic")
EV_UNITS = ("ug/mL", "ng/mL", "mg/mL", "ug", "particles/mL")
MAX_HOURS = 720.0
MAX_DAYS = 365.0
MAX_ANIMALS = 50
MAX_INJECTIONS = 20
MAX_MSC_DOSE = 1e10
MAX_EV_UG_PER_ML = 1e4
MAX_FIELD = 200  # characters of any one field

DEFAULTS: dict[str, str] = {
    "kind": "coculture",
    "msc_source": "bone_marrow",
    "cancer_class": "solid",
    "ratio": "1:10",
    "cm_percent": "50",
    "ev_amount": "50",
    "ev_unit": "ug/mL",
    "hours": "72",
    "msc_dose": "1e6",
    "route": "intravenous",
    "schedule": "0",
    "days": "28",
    "n_animals": "8",
    "model": "gompertz",
    "seed": "0",
}
FIELDS = tuple(DEFAULTS)


@dataclass(frozen=True)
class SimulationSpec:
    """A validated request: the in vitro or xenograft run it stands for."""

    kind: str
    msc_source: str
    cancer_class: str
    ratio: str | None = None  # as written, e.g. "1:10"
    msc_per_cancer: float = 0.0
    cm_percent: float = 0.0
    ev_amount: float = 0.0
    ev_unit: str = "ug/mL"
    ev_ug_per_ml: float = 0.0
    hours: float = 72.0
    msc_dose: float = 0.0
    route: str = "intravenous"
    schedule: tuple[float, ...] = ()
    days: float = 28.0
    n_animals: int = 8
    model: str = "gompertz"
    seed: int = 0

    @property
    def in_vitro(self) -> bool:
        return self.kind != "xenograft"

    def to_dict(self) -> dict[str, Any]:
        """The request as run, only the fields that matter for its kind."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "msc_source": self.msc_source,
            "cancer_class": self.cancer_class,
        }
        if self.kind in ("coculture", "transwell"):
            out.update(ratio=self.ratio, msc_per_cancer=self.msc_per_cancer, hours=self.hours)
        elif self.kind == "cm":
            out.update(cm_percent=self.cm_percent, hours=self.hours)
        elif self.kind == "ev":
            out.update(
                ev_amount=self.ev_amount,
                ev_unit=self.ev_unit,
                ev_ug_per_ml=self.ev_ug_per_ml,
                hours=self.hours,
            )
        else:
            out.update(
                msc_dose=self.msc_dose,
                route=self.route,
                schedule=list(self.schedule),
                days=self.days,
                n_animals=self.n_animals,
                model=self.model,
                seed=self.seed,
            )
        return out

    def describe(self) -> str:
        """One line for people."""
        who = f"{self.msc_source.replace('_', ' ')} MSCs on {self.cancer_class} cancer"
        if self.kind in ("coculture", "transwell"):
            return f"{KINDS[self.kind]}, MSC:cancer {self.ratio}, {self.hours:g} h, {who}"
        if self.kind == "cm":
            return f"conditioned medium {self.cm_percent:g}%, {self.hours:g} h, {who}"
        if self.kind == "ev":
            return f"extracellular vesicles {self.ev_amount:g} {self.ev_unit}, {self.hours:g} h, {who}"
        days = ", ".join(f"{d:g}" for d in self.schedule)
        return (
            f"xenograft ({self.model}), {self.msc_dose:.3g} MSCs {self.route.replace('_', ' ')} "
            f"on day {days}, {self.days:g} days, {self.n_animals} animals, {who}"
        )


def _ratio(text: str) -> float:
    """MSC per cancer cell, read as the CLI reads it (MSC first; a bare ratio is MSC:cancer)."""
    try:
        dose = parse_dose(text)
    except DoseParseError as exc:
        if not re.fullmatch(r"\s*\d+(?:[.,]\d+)?\s*:\s*\d+(?:[.,]\d+)?\s*", text):
            raise ValueError(f"cannot read '{text}' as an MSC:cancer ratio such as 1:10 ({exc})") from exc
        dose = parse_dose(f"{text} (MSC:cancer)")
    if len(dose.ratios) != 1:
        raise ValueError(f"expected one MSC:cancer ratio such as 1:10 in '{text}', found {len(dose.ratios)}")
    value = dose.ratios[0].msc_per_cancer
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"the ratio '{text}' must give a positive number of MSCs per cancer cell")
    return value


def _ev_ug_per_ml(amount: float, unit: str, cancer_class: str) -> float:
    """An EV dose in µg/mL, converted as the CLI converts it."""
    from mscatlas.sim.parameters import load_parameters

    factors = {"ug/mL": 1.0, "ng/mL": 1e-3, "mg/mL": 1e3}
    if unit in factors:
        return amount * factors[unit]
    table = load_parameters()
    if unit == "ug":
        return amount / table.value("cancer", cancer_class, "well_volume")
    return amount / table.value("ev", "particles_per_ug")


def parse_spec(data: Mapping[str, Any]) -> tuple[SimulationSpec | None, dict[str, str]]:
    """Validate a request (form fields or JSON); blank or missing fields take their defaults.

    Returns the spec, or the errors as ``{field: message}``. Only the fields of the chosen kind
    are checked.
    """
    errors: dict[str, str] = {}

    def text(name: str) -> str:
        value = data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULTS[name]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            errors[name] = "must be a string or a number"
            return DEFAULTS[name]
        value = str(value).strip()
        if len(value) > MAX_FIELD:
            errors[name] = f"longer than {MAX_FIELD} characters"
            return DEFAULTS[name]
        return value

    def choice(name: str, allowed: Any) -> str:
        value = text(name)
        allowed = list(allowed)
        if value not in allowed:
            errors[name] = f"unknown value '{value}'; allowed: {', '.join(allowed)}"
        return value

    def number(name: str, low: float, high: float, *, low_open: bool = False) -> float:
        raw = text(name)
        try:
            value = float(raw)
        except ValueError:
            errors.setdefault(name, f"'{raw}' is not a number")
            return float(DEFAULTS[name])
        if not math.isfinite(value) or value > high or value < low or (low_open and value <= low):
            bound = f"more than {low:g}" if low_open else f"at least {low:g}"
            errors[name] = f"must be {bound} and at most {high:g} (got {raw})"
        return value

    def integer(name: str, low: int, high: int) -> int:
        raw = text(name)
        try:
            value = int(raw)
        except ValueError:
            errors.setdefault(name, f"'{raw}' is not a whole number")
            return int(DEFAULTS[name])
        if not low <= value <= high:
            errors[name] = f"must lie between {low} and {high} (got {raw})"
        return value

    kind = choice("kind", KINDS)
    source = choice("msc_source", [s.value for s in MscSource])
    cancer = choice("cancer_class", [c.value for c in CancerClass])
    values: dict[str, Any] = {"kind": kind, "msc_source": source, "cancer_class": cancer}
    if kind in ("coculture", "transwell", "cm", "ev"):
        values["hours"] = number("hours", 0.0, MAX_HOURS, low_open=True)
    if kind in ("coculture", "transwell"):
        ratio = text("ratio")
        values["ratio"] = ratio
        if "ratio" not in errors:
            try:
                values["msc_per_cancer"] = _ratio(ratio)
            except ValueError as exc:
                errors["ratio"] = str(exc)
    elif kind == "cm":
        values["cm_percent"] = number("cm_percent", 0.0, 100.0, low_open=True)
    elif kind == "ev":
        amount = number("ev_amount", 0.0, 1e15, low_open=True)
        unit = choice("ev_unit", EV_UNITS)
        values.update(ev_amount=amount, ev_unit=unit)
        if not {"ev_amount", "ev_unit", "cancer_class"} & errors.keys():
            dose = _ev_ug_per_ml(amount, unit, cancer)
            values["ev_ug_per_ml"] = dose
            if dose > MAX_EV_UG_PER_ML:
                errors["ev_amount"] = f"{dose:.3g} µg/mL is more than the {MAX_EV_UG_PER_ML:g} µg/mL allowed"
    elif kind == "xenograft":
        days = number("days", 1.0, MAX_DAYS)
        values.update(
            msc_dose=number("msc_dose", 0.0, MAX_MSC_DOSE, low_open=True),
            route=choice("route", ROUTES),
            days=days,
            n_animals=integer("n_animals", 1, MAX_ANIMALS),
            model=choice("model", GROWTH_MODELS),
            seed=integer("seed", 0, 2**32 - 1),
        )
        raw = text("schedule")
        try:
            schedule = tuple(sorted({float(x) for x in raw.split(",") if x.strip()}))
        except ValueError:
            errors["schedule"] = f"'{raw}' is not a list of injection days such as 0,7,14"
        else:
            if not schedule:
                errors["schedule"] = "name at least one injection day"
            elif len(schedule) > MAX_INJECTIONS:
                errors["schedule"] = f"at most {MAX_INJECTIONS} injection days"
            elif any(not math.isfinite(d) or d < 0 for d in schedule):
                errors["schedule"] = "injection days must be non-negative"
            elif "days" not in errors and schedule[-1] > days:
                errors["schedule"] = f"day {schedule[-1]:g} is after the end of the study (day {days:g})"
            values["schedule"] = schedule
    if errors:
        return None, errors
    return SimulationSpec(**values), {}


# ---------------------------------------------------------------- running one request

_PLOT_LOCK = threading.Lock()  # matplotlib's global state is not thread-safe
ProgressFn = Callable[[float, str], None]


def _in_vitro(spec: SimulationSpec) -> tuple[dict[str, Any], Any]:
    from mscatlas.sim import Protocol, call_direction, run
    from mscatlas.sim.calibrate import default_calibration, out_of_sample
    from mscatlas.sim.protocol import SOLVER

    delivery = {
        "coculture": "direct_coculture",
        "transwell": "transwell",
        "cm": "conditioned_medium",
        "ev": "extracellular_vesicles",
    }[spec.kind]
    proto = Protocol(
        delivery,  # type: ignore[arg-type]
        spec.hours,
        msc_per_cancer=spec.msc_per_cancer,
        cm_percent=spec.cm_percent,
        ev_ug_per_ml=spec.ev_ug_per_ml,
    )
    # The same parameters as the command line: the shipped calibration unless it loses out of sample.
    calibration, _ = default_calibration()
    outcome = run(proto, spec.msc_source, spec.cancer_class, calibration=calibration)
    result = {
        "kind": "in_vitro",
        "parameters": "calibrated" if calibration is not None else "assumed",
        "validation": out_of_sample("calibrated" if calibration is not None else "assumed"),
        "protocol": {
            "delivery": proto.delivery,
            "hours": proto.hours,
            "msc_per_cancer": proto.msc_per_cancer,
            "cm_percent": proto.cm_percent,
            "ev_ug_per_ml": proto.ev_ug_per_ml,
        },
        "msc_source": outcome.product.msc_source,
        "cancer_class": outcome.cancer_class,
        "solver": SOLVER,
        "series": outcome.series(),
        "final": outcome.final(),
        "predicted_direction": call_direction(outcome),
        "notes": list(outcome.notes),
    }
    return result, outcome


def _xenograft(spec: SimulationSpec) -> tuple[dict[str, Any], Any]:
    from mscatlas.sim import Injection, simulate_xenograft

    injections = [Injection(d, spec.msc_dose, spec.route) for d in spec.schedule]  # type: ignore[arg-type]
    outcome = simulate_xenograft(
        model=spec.model,  # type: ignore[arg-type]
        msc_source=spec.msc_source,
        cancer_class=spec.cancer_class,
        injections=injections,
        days=spec.days,
        n_animals=spec.n_animals,
        seed=spec.seed,
    )
    series = outcome.series()
    result = {
        "kind": "xenograft",
        "model": spec.model,
        "route": spec.route,
        "msc_dose": spec.msc_dose,
        "schedule_days": [i.day for i in injections],
        "n_animals": spec.n_animals,
        "seed": spec.seed,
        "msc_source": spec.msc_source,
        "cancer_class": spec.cancer_class,
        "series": series,
        "tgi_percent": series["tgi_percent"],
    }
    return result, outcome


def _plot_in_vitro(result: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from mscatlas._svg import figure_to_svg

    s = result["series"]
    fig = Figure(figsize=(9.0, 3.4))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(s["time_h"], s["control"]["viable_cells"], color="0.4", label="control")
    ax1.plot(s["time_h"], s["treated"]["viable_cells"], color="#1f5fa8", label="treated")
    ax1.set_xlabel("hours")
    ax1.set_ylabel("viable cancer cells")
    ax1.set_title("Viable cancer cells", fontsize=10)
    ax1.legend(fontsize=8, frameon=False)
    ax2.plot(s["time_h"], s["inhibition_percent"], color="#1c7c4a")
    ax2.axhline(0.0, color="0.6", lw=0.8)
    ax2.set_xlabel("hours")
    ax2.set_ylabel("% inhibition vs control")
    ax2.set_title("Inhibition (positive: fewer cells)", fontsize=10)
    fig.tight_layout()
    return figure_to_svg(fig, standalone=False)


def _plot_xenograft(result: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure

    from mscatlas._svg import figure_to_svg

    s = result["series"]
    days = np.asarray(s["day"])
    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.subplots()
    for arm, color in (("control", "0.4"), ("treated", "#1f5fa8")):
        mean = np.asarray(s[f"{arm}_mean_mm3"])
        sd = np.asarray(s[f"{arm}_sd_mm3"])
        ax.plot(days, mean, color=color, label=f"{arm} (mean ± sd)")
        ax.fill_between(days, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)
    for day in result["schedule_days"]:
        ax.axvline(day, color="#8a5a00", lw=0.7, ls=":")
    ax.set_xlabel("days")
    ax.set_ylabel("tumour volume (mm³)")
    ax.set_title(f"Tumour volume, TGI {result['tgi_percent']:.1f}% (dotted: injections)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return figure_to_svg(fig, standalone=False)


_RC = {"svg.fonttype": "none", "svg.hashsalt": "mscatlas-sim", "font.size": 9}


def run_spec(spec: SimulationSpec, progress: ProgressFn | None = None) -> tuple[dict[str, Any], str]:
    """Run ``spec``; returns the JSON result and the figure as inline SVG."""
    report = progress or (lambda _f, _s: None)
    report(0.1, "solving the treated and control arms")
    result, _ = _in_vitro(spec) if spec.in_vitro else _xenograft(spec)
    report(0.8, "drawing the curves")
    import matplotlib

    with _PLOT_LOCK, matplotlib.rc_context(_RC):
        svg = _plot_in_vitro(result) if spec.in_vitro else _plot_xenograft(result)
    return result, csp_safe_svg(svg)


# ---------------------------------------------------------------- the job registry


@dataclass
class SimulationJob:
    id: str
    spec: SimulationSpec
    created: float = field(default_factory=time.time)
    status: str = "queued"  # queued -> running -> done | failed
    progress: float = 0.0
    stage: str = "waiting for a free worker"
    result: dict[str, Any] | None = None
    svg: str | None = None
    error: str | None = None
    finished: float | None = None

    @property
    def over(self) -> bool:
        return self.status in ("done", "failed")

    def to_dict(self, *, with_result: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "progress": round(self.progress, 3),
            "stage": self.stage,
            "request": self.spec.to_dict(),
            "url": f"/simulate/{self.id}",
            "api_url": f"/api/simulations/{self.id}",
            "error": self.error,
        }
        if with_result:
            out["result"] = self.result
        return out


class RegistryFull(RuntimeError):
    """Every slot of the job registry holds a job that is running or whose result is still kept."""


RESULT_RETENTION_S = 30 * 60  # a finished job's result stays retrievable at least this long
SIMULATIONS_PER_MINUTE = 10  # per client address, with bursts of as many


class ClientRateLimit:
    """A token bucket per client address: ``per_minute`` requests a minute, bursts of as many.

    Kept in the memory of one server process (each worker of a deployment counts on its own).
    """

    def __init__(
        self, per_minute: int = SIMULATIONS_PER_MINUTE, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Take one request for ``client``: 0 when allowed, else the seconds until it would be."""
        rate = self.per_minute / 60.0
        now = self.clock()
        with self._lock:
            tokens, since = self._buckets.pop(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - since) * rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
            self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > 10_000:  # forget the least recent clients
                self._buckets.popitem(last=False)
        return wait


class SimulationRegistry:
    """Background runs in a thread pool, with at most ``max_jobs`` jobs remembered.

    A finished job (done or failed) is kept for at least ``retention_s`` seconds after it
    finished; only then may a new job take its slot. Jobs live in this process's memory: they
    do not survive a restart, and with several server workers a job is known only to the worker
    that started it.
    """

    def __init__(
        self,
        *,
        max_workers: int = 2,
        max_jobs: int = 64,
        retention_s: float = RESULT_RETENTION_S,
        runner: Callable[[SimulationSpec, ProgressFn], tuple[dict[str, Any], str]] = run_spec,
    ) -> None:
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="mscatlas-sim")
        self.max_jobs = max_jobs
        self.retention_s = retention_s
        self.runner = runner
        self._jobs: OrderedDict[str, SimulationJob] = OrderedDict()
        self._lock = threading.Lock()

    def _expired(self, job: SimulationJob, now: float) -> bool:
        return job.over and job.finished is not None and now - job.finished >= self.retention_s

    def submit(self, spec: SimulationSpec) -> SimulationJob:
        """Queue a run; raises :class:`RegistryFull` when no kept job may be forgotten yet."""
        with self._lock:
            now = time.time()
            while len(self._jobs) >= self.max_jobs:
                oldest = next((k for k, j in self._jobs.items() if self._expired(j, now)), None)
                if oldest is None:
                    raise RegistryFull(
                        f"{len(self._jobs)} simulations are queued, running or keeping their results"
                    )
                del self._jobs[oldest]
            job = SimulationJob(secrets.token_urlsafe(16), spec)
            self._jobs[job.id] = job
        self.executor.submit(self._work, job)
        return job

    def get(self, job_id: str) -> SimulationJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def __len__(self) -> int:
        return len(self._jobs)

    def _work(self, job: SimulationJob) -> None:
        def progress(fraction: float, stage: str) -> None:
            job.progress, job.stage = fraction, stage

        job.status, job.stage = "running", "starting"
        try:
            result, svg = self.runner(job.spec, progress)
        except Exception as exc:  # a failed run is shown on its page, never lost in a thread
            job.error = f"{type(exc).__name__}: {exc}"
            job.status, job.stage = "failed", "failed"
        else:
            job.result, job.svg = result, svg
            job.progress, job.stage, job.status = 1.0, "done", "done"
        job.finished = time.time()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


# ---------------------------------------------------------------- pages and API

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{10,64}")
REFRESH_SECONDS = 1


def _table_rows(job: SimulationJob) -> list[list[str]]:
    """A few rows of the curves for the job page: every 24 h (in vitro) or about ten days."""
    assert job.result is not None
    s = job.result["series"]
    if job.result["kind"] == "in_vitro":
        times = s["time_h"]
        idx = [i for i, h in enumerate(times) if abs(h / 24.0 - round(h / 24.0)) < 1e-9] or [0]
        if idx[-1] != len(times) - 1:
            idx.append(len(times) - 1)
        return [
            [
                f"{times[i]:g}",
                f"{s['control']['viable_cells'][i]:,.0f}",
                f"{s['treated']['viable_cells'][i]:,.0f}",
                f"{s['inhibition_percent'][i]:.1f}",
            ]
            for i in idx
        ]
    days = s["day"]
    step = max(1, len(days) // 10)
    idx = list(range(0, len(days), step))
    if idx[-1] != len(days) - 1:
        idx.append(len(days) - 1)
    return [
        [
            f"{days[i]:g}",
            f"{s['control_mean_mm3'][i]:.0f} ± {s['control_sd_mm3'][i]:.0f}",
            f"{s['treated_mean_mm3'][i]:.0f} ± {s['treated_sd_mm3'][i]:.0f}",
            f"{s['msc_in_tumour_mean'][i]:.3g}",
        ]
        for i in idx
    ]


def _key_numbers(job: SimulationJob) -> list[tuple[str, str]]:
    assert job.result is not None
    r = job.result
    if r["kind"] == "in_vitro":
        f = r["final"]
        return [
            ("hours", f"{f['hours']:g}"),
            ("viable cells, control", f"{f['viable_control']:,.0f}"),
            ("viable cells, treated", f"{f['viable_treated']:,.0f}"),
            ("inhibition %", f"{f['inhibition_percent']:.1f}"),
            (
                "apoptotic % (treated / control)",
                f"{100 * f['apoptotic_fraction_treated']:.1f} / {100 * f['apoptotic_fraction_control']:.1f}",
            ),
            (
                "G0/G1 % (treated / control)",
                f"{100 * f['g0_g1_treated']:.1f} / {100 * f['g0_g1_control']:.1f}",
            ),
            ("S % (treated / control)", f"{100 * f['s_treated']:.1f} / {100 * f['s_control']:.1f}"),
            ("G2/M % (treated / control)", f"{100 * f['g2_m_treated']:.1f} / {100 * f['g2_m_control']:.1f}"),
            ("predicted direction", r["predicted_direction"].replace("_", " ")),
        ]
    s = r["series"]
    return [
        ("days", f"{s['day'][-1]:g}"),
        ("tumour volume, control (mm³, mean)", f"{s['control_mean_mm3'][-1]:.0f}"),
        ("tumour volume, treated (mm³, mean)", f"{s['treated_mean_mm3'][-1]:.0f}"),
        ("TGI %", f"{r['tgi_percent']:.1f}"),
        ("animals per group", str(r["n_animals"])),
    ]


def simulate_router(
    env: Environment, sessions: Sessions, registry: SimulationRegistry, limit: ClientRateLimit | None = None
) -> APIRouter:
    router = APIRouter()
    limit = limit or ClientRateLimit()

    def check_rate(request: Request) -> None:
        wait = limit.wait(request.client.host if request.client else "unknown")
        if wait > 0:
            raise HTTPException(
                status_code=429,
                detail=f"at most {limit.per_minute} simulations a minute from one address; "
                f"try again in {math.ceil(wait)} s",
                headers={"retry-after": str(math.ceil(wait))},
            )

    def form_page(
        request: Request, values: dict[str, str], errors: dict[str, str], status_code: int = 200
    ) -> HTMLResponse:
        return render(
            env,
            request,
            "simulate.html.j2",
            status_code=status_code,
            values=values,
            errors=errors,
            kinds=KINDS,
            sources=[s.value for s in MscSource],
            classes=[c.value for c in CancerClass],
            routes=ROUTES,
            models=GROWTH_MODELS,
            ev_units=EV_UNITS,
        )

    def job_or_404(job_id: str) -> SimulationJob:
        job = registry.get(job_id) if _JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise HTTPException(status_code=404, detail="no such simulation (unknown id, or forgotten)")
        return job

    def start(spec: SimulationSpec) -> SimulationJob:
        try:
            return registry.submit(spec)
        except RegistryFull as exc:
            raise HTTPException(
                status_code=503, detail=f"{exc}; try again shortly", headers={"retry-after": "5"}
            ) from exc

    @router.get("/simulate", response_class=HTMLResponse, include_in_schema=False)
    def simulate_form(request: Request) -> HTMLResponse:
        return form_page(request, dict(DEFAULTS), {})

    @router.post("/simulate", include_in_schema=False)
    async def simulate_post(request: Request) -> Response:
        form = await read_form(request, sessions)
        values = {name: form.get(name, "")[:MAX_FIELD] for name in FIELDS}
        spec, errors = parse_spec(form)
        if spec is None:
            return form_page(request, values, errors, status_code=422)
        check_rate(request)
        job = start(spec)
        return redirect(request, sessions, f"/simulate/{job.id}")

    @router.get("/simulate/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def simulate_job(request: Request, job_id: str) -> HTMLResponse:
        job = job_or_404(job_id)
        done = job.status == "done"
        return render(
            env,
            request,
            "simulation.html.j2",
            job=job,
            refresh=None if job.over else REFRESH_SECONDS,
            percent=round(100 * job.progress),
            key_numbers=_key_numbers(job) if done else [],
            rows=_table_rows(job) if done else [],
            in_vitro=job.spec.in_vitro,
        )

    @router.post(
        "/api/simulations",
        status_code=202,
        summary="Start a simulation of the in silico lab",
        description=(
            "Queue a run; answers 202 with the job's id and where to poll. Invalid fields: 422.\n\n"
            "**No login is needed; the endpoint is rate-limited per client address** to "
            f"{SIMULATIONS_PER_MINUTE} runs a minute (bursts of as many): over the limit it answers "
            "429 with a Retry-After header. When the server already holds its maximum of jobs that "
            "are running or keeping results it answers 503 with Retry-After.\n\n"
            f"**Results are kept for at least {RESULT_RETENTION_S // 60} minutes** after a run "
            "finishes (`GET /api/simulations/{id}`). **Jobs do not survive a restart of the "
            "server**: they live in the memory of the server process that ran them, so with "
            "several workers poll through a load balancer with sticky sessions, or run the "
            "simulations on a one-worker server."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "description": "Blank or missing fields take their defaults; only the "
                            "fields of the chosen kind are read.",
                            "properties": {
                                "kind": {"type": "string", "enum": list(KINDS)},
                                "msc_source": {"type": "string", "enum": [s.value for s in MscSource]},
                                "cancer_class": {"type": "string", "enum": [c.value for c in CancerClass]},
                                "ratio": {"type": "string", "example": "1:10"},
                                "cm_percent": {"type": "number"},
                                "ev_amount": {"type": "number"},
                                "ev_unit": {"type": "string", "enum": list(EV_UNITS)},
                                "hours": {"type": "number"},
                                "msc_dose": {"type": "number"},
                                "route": {"type": "string", "enum": list(ROUTES)},
                                "schedule": {"type": "string", "example": "0,7,14"},
                                "days": {"type": "number"},
                                "n_animals": {"type": "integer"},
                                "model": {"type": "string", "enum": list(GROWTH_MODELS)},
                                "seed": {"type": "integer"},
                            },
                        }
                    }
                },
            }
        },
    )
    async def api_start(request: Request) -> JSONResponse:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise HTTPException(status_code=415, detail="send the simulation request as application/json")
        try:
            data = strict_json.loads((await request.body() or b"{}").decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise HTTPException(status_code=400, detail=f"unreadable JSON: {exc}") from exc
        except strict_json.StrictJSONError as exc:
            # Syntax errors are unreadable (400); NaN, duplicate keys or deep nesting are readable
            # but refused (422).
            status = 400 if exc.message.startswith("invalid JSON") else 422
            raise HTTPException(status_code=status, detail=str(exc)) from exc
        if not isinstance(data, dict):
            raise HTTPException(status_code=422, detail="the request must be a JSON object")
        if isinstance(data.get("schedule"), list):
            data["schedule"] = ",".join(str(x) for x in data["schedule"])
        unknown = sorted(set(data) - set(FIELDS))
        spec, errors = parse_spec(data)
        for name in unknown:
            errors[name] = f"unknown field; known: {', '.join(FIELDS)}"
        if spec is None or errors:
            detail = [
                {"param": k, "where": "body", "value": _plain(data.get(k)), "message": f"{k}: {m}"}
                for k, m in errors.items()
            ]
            return JSONResponse({"detail": detail}, status_code=422)
        check_rate(request)
        job = start(spec)
        return JSONResponse(
            job.to_dict(with_result=False),
            status_code=202,
            headers={"location": f"/api/simulations/{job.id}"},
        )

    @router.get("/api/simulations/{job_id}", summary="Status and results of one simulation")
    def api_status(job_id: str) -> dict[str, Any]:
        """Status (queued, running, done, failed), progress and, once done, the result with the time
        grid and every series."""
        return job_or_404(job_id).to_dict()

    return router


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)
