"""`mscatlas sim sweep`: % inhibition over a grid of parameters, computed on Dask.

The lead registers it with ``sim_app.command("sweep")(sweep)``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mscatlas.cli.options import JsonOption
from mscatlas.cli.output import bad_input, console, print_json, term
from mscatlas.kb.dose import DoseParseError, parse_ratio
from mscatlas.kb.enums import CancerClass, MscSource
from mscatlas.kb.terms import enum_choices, label

__all__ = ["sweep"]


def _grid_values(name: str, text: str) -> list[float]:
    """The values of one --values: ratios such as 1:10 (or MSCs per cancer cell) for
    ``--param ratio``, numbers for every other parameter."""
    from mscatlas.sim.sweep import parse_values

    if name != "ratio":
        return parse_values(text)
    values = [parse_ratio(part) for part in text.split(",") if part.strip()]
    if not values:
        raise ValueError("give at least one value")
    return values


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
        list[str],
        typer.Option(
            "--values",
            help="Comma-separated values of the matching --param; ratios may be written 1:10,1:1 "
            "(MSC:cancer) or as MSCs per cancer cell (0.1,1).",
        ),
    ],
    protocol: Annotated[
        str, typer.Option("--protocol", help="coculture, transwell, cm, extract or ev.")
    ] = "coculture",
    ratio: Annotated[
        str | None,
        typer.Option("--ratio", help="Fixed MSC:cancer ratio, e.g. 1:10 (or MSCs per cancer cell, 0.1)."),
    ] = None,
    percent: Annotated[
        float | None, typer.Option("--percent", min=0.0, max=100.0, help="Fixed CM share, %.")
    ] = None,
    ev_dose: Annotated[float | None, typer.Option("--ev-dose", min=0.0, help="Fixed EV ug/mL.")] = None,
    hours: Annotated[float | None, typer.Option("--hours", min=0.1, help="Exposure time, h.")] = None,
    msc_source: Annotated[
        str,
        typer.Option("--msc-source", help=f"One of: {', '.join(enum_choices(MscSource))} (or a synonym)."),
    ] = MscSource.bone_marrow.value,
    cancer_class: Annotated[str, typer.Option("--cancer-class", help="solid or hematological.")] = (
        CancerClass.solid.value
    ),
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
    as_json: JsonOption = False,
) -> None:
    """% inhibition at every point of a parameter grid (same seed, same numbers, any worker count)."""
    from mscatlas.sim.sweep import sweep as run_sweep

    source = term(MscSource, msc_source, "--msc-source")
    cancer = term(CancerClass, cancer_class, "--cancer-class")
    assert source is not None and cancer is not None
    if len(param) != len(values):
        bad_input(f"{len(param)} --param but {len(values)} --values: give one --values per --param")
    grid: dict[str, list[float]] = {}
    for name, text in zip(param, values, strict=True):
        if name in grid:
            bad_input(f"--param {name} given twice")
        try:
            grid[name] = _grid_values(name, text)
        except ValueError as exc:  # DoseParseError is a ValueError
            bad_input(f"--values for {name}: {exc}")
    fixed_ratio = None
    if ratio is not None:
        try:
            fixed_ratio = parse_ratio(ratio)
        except DoseParseError as exc:
            bad_input(f"--ratio: {exc}")
    try:
        result = run_sweep(
            grid,
            protocol=protocol,
            msc_source=source.value,
            cancer_class=cancer.value,
            hours=hours,
            ratio=fixed_ratio,
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
        bad_input(str(exc).strip("'\""))
    data = result.to_dict()
    if as_json:
        print_json(data)
        return
    table = Table(
        title=f"sweep: {data['protocol']['delivery']}, {label(source)} on {label(cancer)}, "
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
    console.print(table)
