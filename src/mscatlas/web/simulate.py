"""The in silico lab in the browser: a form, background runs and their curves.

A run needs no login (it writes nothing to the store), but the HTML form is a POST like every
other and carries the session's CSRF token. The request is a :class:`mscatlas.sim.spec.SimulationSpec`
(the same pydantic model validates the form and the JSON API, and is the API's request schema in
the OpenAPI document); runs go to a :class:`mscatlas.web.jobs.JobRegistry` owned by the app. The
job page refreshes itself with an HTTP ``<meta http-equiv="refresh">`` while the run is going
(the pages run no script), then shows the curves as inline SVG and a table of the key numbers.
``/api/simulations`` starts runs from JSON and reports status and results (time grid and every
series). This module holds the routes and the rendering: the figures, the table rows and the key
numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment

from mscatlas.kb import strict_json
from mscatlas.kb.enums import CancerClass, Direction, MscSource
from mscatlas.kb.terms import label
from mscatlas.sim.spec import (
    FIELDS,
    GROWTH_MODELS,
    KINDS,
    MAX_FIELD,
    ROUTES,
    ProgressFn,
    SimulationSpec,
    parse_spec,
    run_spec,
    spec_errors,
)
from mscatlas.sim.units import EV_UNITS
from mscatlas.web.auth import Sessions, read_form, redirect
from mscatlas.web.jobs import RESULT_RETENTION_S, ClientRateLimit, Job, JobRegistry, RegistryFull, Runner
from mscatlas.web.pages import render
from mscatlas.web.sim_figures import draw

__all__ = [
    "SIMULATIONS_PER_MINUTE",
    "ClientRateLimit",
    "SimulationRegistry",
    "run_and_draw",
    "simulate_router",
]

SIMULATIONS_PER_MINUTE = 10  # per client address, with bursts of as many
FORM_DEFAULTS = {
    name: ", ".join(f"{d:g}" for d in value)
    if isinstance(value, tuple)
    else (f"{value:g}" if isinstance(value, float) else str(value))
    for name, value in ((n, f.default) for n, f in SimulationSpec.model_fields.items())
}


def run_and_draw(spec: SimulationSpec, progress: ProgressFn) -> tuple[dict[str, Any], str]:
    """The registry's runner: run ``spec``, then draw it."""
    result = run_spec(spec, progress)
    progress(0.8, "drawing the curves")
    return result, draw(result)


class SimulationRegistry(JobRegistry):
    """The app's registry of simulation jobs (runner: :func:`run_and_draw`)."""

    def __init__(self, *, runner: Runner = run_and_draw, **options: Any) -> None:
        super().__init__(runner, thread_name_prefix="mscatlas-sim", **options)


# ---------------------------------------------------------------- pages and API

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{10,64}")
REFRESH_SECONDS = 1


def _table_rows(job: Job) -> list[list[str]]:
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


def _key_numbers(job: Job) -> list[tuple[str, str]]:
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
            ("predicted direction", label(r["predicted_direction"], Direction)),
        ]
    s = r["series"]
    return [
        ("days", f"{s['day'][-1]:g}"),
        ("tumour volume, control (mm³, mean)", f"{s['control_mean_mm3'][-1]:.0f}"),
        ("tumour volume, treated (mm³, mean)", f"{s['treated_mean_mm3'][-1]:.0f}"),
        ("TGI %", f"{r['tgi_percent']:.1f}"),
        ("animals per group", str(r["n_animals"])),
    ]


class _StrictJSONRequest(Request):
    """A request whose JSON body is read by :mod:`mscatlas.kb.strict_json`: no NaN, no duplicate
    keys, no deep nesting (refused: 422; unreadable: 400)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = strict_json.loads((await self.body()).decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise HTTPException(status_code=400, detail=f"unreadable JSON: {exc}") from exc
            except strict_json.StrictJSONError as exc:
                status = 400 if exc.message.startswith("invalid JSON") else 422
                raise HTTPException(status_code=status, detail=str(exc)) from exc
        return self._json


class _SimulationRoute(APIRoute):
    """``POST /api/simulations``: JSON only (415 otherwise), read strictly, and invalid fields
    reported with the form's messages, one per field."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/json":
                raise HTTPException(status_code=415, detail="send the simulation request as application/json")
            try:
                return await handle(_StrictJSONRequest(request.scope, request.receive))
            except RequestValidationError as exc:
                errors = [{**e, "loc": tuple(e["loc"])[1:]} for e in exc.errors()]  # drop "body"
                body = exc.body if isinstance(exc.body, dict) else {}
                detail = [
                    {"param": k, "where": "body", "value": _plain(body.get(k)), "message": f"{k}: {m}"}
                    for k, m in spec_errors(errors).items()
                ]
                return JSONResponse({"detail": detail}, status_code=422)

        return handler


def simulate_router(
    env: Environment, sessions: Sessions, registry: JobRegistry, limit: ClientRateLimit | None = None
) -> APIRouter:
    router = APIRouter()
    limit = limit or ClientRateLimit(SIMULATIONS_PER_MINUTE)

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

    def job_or_404(job_id: str) -> Job:
        job = registry.get(job_id) if _JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise HTTPException(status_code=404, detail="no such simulation (unknown id, or forgotten)")
        return job

    def start(spec: SimulationSpec) -> Job:
        try:
            return registry.submit(spec)
        except RegistryFull as exc:
            raise HTTPException(
                status_code=503, detail=f"{exc}; try again shortly", headers={"retry-after": "5"}
            ) from exc

    def as_json(job: Job, *, with_result: bool = True) -> dict[str, Any]:
        urls = {"url": f"/simulate/{job.id}", "api_url": f"/api/simulations/{job.id}"}
        return {**job.to_dict(with_result=with_result), **urls}

    @router.get("/simulate", response_class=HTMLResponse, include_in_schema=False)
    def simulate_form(request: Request) -> HTMLResponse:
        return form_page(request, dict(FORM_DEFAULTS), {})

    @router.post("/simulate", include_in_schema=False)
    async def simulate_post(request: Request) -> Response:
        form = await read_form(request, sessions)
        values = {name: form[name][:MAX_FIELD] for name in FIELDS if name in form}
        spec, errors = parse_spec(values)
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

    def api_start(request: Request, spec: SimulationSpec) -> JSONResponse:
        check_rate(request)
        job = start(spec)
        return JSONResponse(
            as_json(job, with_result=False),
            status_code=202,
            headers={"location": f"/api/simulations/{job.id}"},
        )

    router.add_api_route(
        "/api/simulations",
        api_start,
        methods=["POST"],
        status_code=202,
        route_class_override=_SimulationRoute,
        summary="Start a simulation of the in silico lab",
        description=(
            "Queue a run; answers 202 with the job's id and where to poll. Blank or missing fields "
            "take their defaults, and only the fields of the chosen kind are read. Invalid or unknown "
            "fields: 422, one message per field.\n\n"
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
    )

    @router.get("/api/simulations/{job_id}", summary="Status and results of one simulation")
    def api_status(job_id: str) -> dict[str, Any]:
        """Status (queued, running, done, failed), progress and, once done, the result with the time
        grid and every series."""
        return as_json(job_or_404(job_id))

    return router


def _plain(value: Any) -> Any:
    """A value as JSON can echo it (``1e400`` reads as infinity, which JSON cannot write)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)
