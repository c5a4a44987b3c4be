"""`mscatlas sim sweep`: % inhibition over a grid of parameters, computed on Dask.

The lead registers it with ``sim_app.command("sweep")(sweep)``.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mscatlas.kb.enums import CancerClass, MscSource

__all__ = ["sweep"]


def _fail(message: str) -> None:
    Console(stderr=True).print(f"[red]error[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def sweep(
    param: Annotated[
        list[str],
        typer.Option(
            "--param",
            help="Parameter to vary: ratio, cm_percent, ev_dose, or a parameter-file path such as "
            "signals.inhibitory.ec50; repeatable, each followed by its --values.",
        ),
    ],
    values: Annotated[
        list[str], typer.Option("--values", help="Comma-separated values of the matching --param.")
    ],
    protocol: Annotated[
        str, typer.Option("--protocol", help="coculture, transwell, cm, extract or ev.")
    ] = "coculture",
    ratio: Annotated[
        float | None, typer.Option("--ratio", min=0.0, help="Fixed MSC per cancer cell (e.g. 0.1).")
    ] = None,
    percent: Annotated[
        float | None, typer.Option("--percent", min=0.0, max=100.0, help="Fixed CM share, %.")
    ] = None,
    ev_dose: Annotated[float | None, typer.Option("--ev-dose", min=0.0, help="Fixed EV ug/mL.")] = None,
    hours: Annotated[float | None, typer.Option("--hours", min=0.1, help="Exposure time, h.")] = None,
    msc_source: Annotated[MscSource, typer.Option("--msc-source")] = MscSource.bone_marrow,
    cancer_class: Annotated[CancerClass, typer.Option("--cancer-class")] = CancerClass.solid,
    ensemble: Annotated[
        int, typer.Option("--ensemble", min=0, help="Log-normal parameter draws per grid point (0: none).")
    ] = 0,
    cv: Annotated[float, typer.Option("--cv", min=0.0, help="Coefficient of variation of the draws.")] = 0.3,
    assumed: Annotated[
        bool, typer.Option("--assumed", help="Use parameters.yaml as is, without the calibrated factors.")
    ] = False,
    scheduler: Annotated[
        str,
        typer.Option(
            "--scheduler",
            help="processes (local cluster, default), threads, synchronous, or a scheduler ADDRESS.",
        ),
    ] = "processes",
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Local workers.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the parameter draws.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """% inhibition at every point of a parameter grid (same seed, same numbers, any worker count)."""
    from mscatlas.sim.sweep import parse_values
    from mscatlas.sim.sweep import sweep as run_sweep

    if len(param) != len(values):
        _fail(f"{len(param)} --param but {len(values)} --values: give one --values per --param")
    grid: dict[str, list[float]] = {}
    for name, text in zip(param, values, strict=True):
        if name in grid:
            _fail(f"--param {name} given twice")
        try:
            grid[name] = parse_values(text)
        except ValueError as exc:
            _fail(f"--values for {name}: {exc}")
    try:
        result = run_sweep(
            grid,
            protocol=protocol,
            msc_source=msc_source.value,
            cancer_class=cancer_class.value,
            hours=hours,
            ratio=ratio,
            cm_percent=percent,
            ev_dose=ev_dose,
            seed=seed,
            n_ensemble=ensemble,
            cv=cv,
            calibration=None if assumed else "shipped",
            scheduler=scheduler,
            workers=workers,
            progress=not as_json,
        )
    except (ValueError, KeyError) as exc:
        _fail(str(exc).strip("'\""))
    data = result.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    table = Table(
        title=f"sweep: {data['protocol']['delivery']}, {msc_source.value} on {cancer_class.value}, "
        f"{data['protocol']['hours']:g} h ({'calibrated' if data['calibrated'] else 'assumed'} parameters)"
    )
    for name in grid:
        table.add_column(name, justify="right")
    table.add_column("inhibition %", justify="right")
    if ensemble:
        table.add_column("5-95 %", justify="right")
    for row in data["points"]:
        cells = [f"{row[n]:g}" for n in grid] + [f"{row['inhibition_percent']:.1f}"]
        if ensemble:
            cells.append(f"{row['inhibition_p05']:.1f} to {row['inhibition_p95']:.1f}")
        table.add_row(*cells)
    Console(width=160).print(table)
