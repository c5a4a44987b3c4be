"""`mscatlas serve` (the web interface) and `mscatlas release` (a citable data release)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from mscatlas.cli.options import DbOption, JsonOption
from mscatlas.cli.output import err_console, fail, print_json
from mscatlas.kb.files import OutputError
from mscatlas.kb.store import DEFAULT_DB_ENV, Store

__all__ = ["release", "serve"]



def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, help="Worker processes (several need a store they all reach: PostgreSQL)."
        ),
    ] = 1,
    db: DbOption = None,
) -> None:
    """Serve the web interface (browse and curate) and the JSON API at http://HOST:PORT/."""
    import uvicorn

    from mscatlas.web import create_app
    from mscatlas.web.server import PROTOCOL

    store = Store.open(db)  # migrate and fill the store once, before any worker starts
    err_console.print(f"mscatlas at http://{host}:{port}/ (API schema: /api/openapi.json)")
    if workers == 1:
        uvicorn.run(create_app(store), host=host, port=port, log_level="info", http=PROTOCOL)
        return
    store.secret_key()  # one signing key for every worker
    os.environ[DEFAULT_DB_ENV] = store.url
    store.close()
    uvicorn.run(
        "mscatlas.web.server:app_from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="info",
        http=PROTOCOL,
    )


def release(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the release into.")] = Path("release"),
    created: Annotated[
        str | None,
        typer.Option(
            "--created", help="Creation time to record, ISO 8601 (default: now); fixes the release's bytes."
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    force: Annotated[bool, typer.Option("--force", help="Write through a symbolic link at --out.")] = False,
) -> None:
    """Write a versioned release of the accepted records: JSON, TSV and a manifest with SHA-256 sums."""
    from mscatlas.kb.release import write_release_from_store

    when = None
    if created is not None:
        try:
            when = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError as exc:
            raise typer.BadParameter(f"not an ISO 8601 time: {created!r}", param_hint="--created") from exc
        if when.tzinfo is None:
            raise typer.BadParameter("give a time zone, e.g. 2025-01-01T00:00:00Z", param_hint="--created")
    try:
        manifest = write_release_from_store(Store.open(db), out, created=when, force=force)
    except OutputError as exc:
        fail(str(exc))
    if as_json:
        print_json(manifest)
        return
    counts = manifest["counts"]
    err_console.print(
        f"wrote {manifest['release']} to {out}: {counts['studies']} studies, {counts['evidence']} evidence "
        f"items, {counts['trials']} trials ({counts['evidence_not_released']} unaccepted items left out)"
    )
