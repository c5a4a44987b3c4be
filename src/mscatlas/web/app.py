"""The web application: :func:`create_app` builds it around one store, with no global state."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mscatlas import __version__
from mscatlas.kb.store import Store
from mscatlas.web.api import api_router
from mscatlas.web.auth import Sessions
from mscatlas.web.curation import curation_router
from mscatlas.web.intake import intake_router
from mscatlas.web.pages import make_templates, pages_router, render
from mscatlas.web.params import PARAM_ENUMS, FilterError
from mscatlas.web.security import DEFAULT_MAX_BODY_BYTES, SecurityMiddleware
from mscatlas.web.simulate import ClientRateLimit, SimulationRegistry, simulate_router
from mscatlas.web.submission import submission_router
from mscatlas.web.synthesis import SynthesisCache, synthesis_router

__all__ = ["create_app"]


def _is_api(request: Request) -> bool:
    return request.url.path == "/api/openapi.json" or request.url.path.startswith("/api/")


def _problems(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Each invalid parameter with its value, a message, and the allowed values when known."""
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        param = loc[-1] if loc else "request"
        value = error.get("input")
        allowed = list(PARAM_ENUMS.get(param, [])) if error.get("type") in ("enum", "literal_error") else []
        message = f"invalid value {value!r} for parameter '{param}': {error.get('msg', 'invalid')}"
        if allowed:
            message = f"unknown value {value!r} for parameter '{param}'; allowed values: " + ", ".join(
                allowed
            )
        problems.append(
            {
                "param": param,
                "where": loc[0] if len(loc) > 1 else None,
                "value": value
                if isinstance(value, str | int | float | bool) or value is None
                else str(value),
                "message": message,
                "allowed": allowed,
            }
        )
    return problems


def create_app(
    store: Store,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    secret_key: str | None = None,
    simulations: SimulationRegistry | None = None,
    simulation_limit: ClientRateLimit | None = None,
) -> FastAPI:
    """The mscatlas web app (pages, curation, the in silico lab and the JSON API) over ``store``.

    Sessions are signed with ``secret_key``, else ``MSCATLAS_SECRET_KEY``, else a random key
    kept in the store's meta table. Simulations run in ``simulations`` (by default a registry
    of its own, with a small thread pool that the app shuts down with itself), each client
    address limited by ``simulation_limit`` (default: ``SIMULATIONS_PER_MINUTE`` a minute).
    """
    app = FastAPI(
        title="mscatlas",
        version=__version__,
        description=(
            "MSC therapy in cancer as validated, computable records: evidence items, the studies of the "
            "review's reference list, clinical trials, and the conflict map. The API is read-only; "
            "curation happens in the web pages, behind a login."
        ),
        openapi_url="/api/openapi.json",
        docs_url=None,  # the interactive docs load scripts from a CDN; /api lists the endpoints instead
        redoc_url=None,
    )
    env = make_templates()
    sessions = Sessions(store, secret_key)
    app.state.sessions = sessions
    registry = simulations if simulations is not None else SimulationRegistry()
    app.state.simulations = registry
    app.router.on_shutdown.append(registry.shutdown)

    def error_response(request: Request, status: int, title: str, messages: list[str], body: Any) -> Response:
        if _is_api(request):
            return JSONResponse(body, status_code=status)
        return render(
            env, request, "error.html.j2", status_code=status, status=status, title=title, messages=messages
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = _problems(exc)
        return error_response(
            request, 422, "Invalid request", [p["message"] for p in problems], {"detail": problems}
        )

    @app.exception_handler(FilterError)
    async def invalid_filter(request: Request, exc: FilterError) -> Response:
        problem = {
            "param": exc.param,
            "where": "query",
            "value": exc.value,
            "message": exc.message,
            "allowed": exc.allowed,
        }
        return error_response(request, 422, "Invalid request", [exc.message], {"detail": [problem]})

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> Response:
        # A last line of defence: the readers refuse deep nesting with a located error first.
        message = "the request is nested too deeply to read"
        return error_response(request, 422, "Invalid request", [message], {"detail": message})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no page at {request.url.path}"
        titles = {
            401: "Not logged in",
            403: "Forbidden",
            404: "Not found",
            405: "Method not allowed",
            409: "Conflict",
            415: "Unsupported form encoding",
            422: "Invalid request",
        }
        response = error_response(
            request, exc.status_code, titles.get(exc.status_code, "Error"), [detail], {"detail": detail}
        )
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    app.include_router(api_router(store))
    app.include_router(curation_router(store, env, sessions))
    app.include_router(submission_router(store, env, sessions))
    app.include_router(intake_router(store, env, sessions))
    app.include_router(simulate_router(env, sessions, registry, simulation_limit))
    synthesis = SynthesisCache()
    app.state.synthesis = synthesis
    app.include_router(synthesis_router(store, env, synthesis))  # before /trials/{nct_id}
    app.include_router(pages_router(store, env))
    app.mount("/static", StaticFiles(packages=[("mscatlas.web", "static")]), name="static")
    app.add_middleware(SecurityMiddleware, max_body_bytes=max_body_bytes)
    app.state.store = store
    return app
