"""`mscatlas sim sensitivity`: which parameters move the in silico lab's predictions (Morris, on Dask).

Registered on ``sim_app`` by :mod:`mscatlas.cli.sim`. The core is :mod:`mscatlas.sim.sensitivity`;
this module parses options and renders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["sensitivity"]

_TOP = 15


def _render(result: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"Morris screening: {result['n_factors']} factors, {result['evaluations']} model runs"
    )
    for column in ("factor", "source", "score", "matters", "largest mu* (output)"):
        table.add_column(column)
    for row in result["factors"][:_TOP]:
        output, value = max(row["mu_star"].items(), key=lambda kv: kv[1])
        table.add_row(
            row["factor"],
            "sourced" if row["sourced"] else "assumed",
            f"{row['score']:.3f}",
            "yes" if row["matters"] else "",
            f"{value:.3g} ({output})",
        )
    console.print(table)
    share = result["share_sourced_among_matter"]
    console.print(
        f"sourced: {result['n_sourced']} of {result['n_factors']} factors "
        f"({100 * result['share_sourced']:.0f}%); among the {result['n_matter']} that matter "
        f"(score >= {result['matter_threshold']:g} x the top): {result['n_matter_sourced']}"
        + ("" if share is None else f" ({100 * share:.0f}%; goal 80%)")
    )


def sensitivity(
    trajectories: Annotated[int, typer.Option("--trajectories", min=2, help="Morris trajectories (r).")] = 10,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the trajectories (default: the shipped run's).")
    ] = None,
    shipped: Annotated[
        bool,
        typer.Option("--shipped", help="Show the committed result (sim/data/sensitivity.json); run nothing."),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the result as JSON to this file.")
    ] = None,
    scheduler: Annotated[
        str,
        typer.Option(
            "--scheduler", help="threads (default), processes, synchronous, or a scheduler ADDRESS."
        ),
    ] = "threads",
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Local workers.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Rank the parameters by how much they move the lab's predictions (Morris elementary effects)."""
    from mscatlas.sim import sensitivity as core

    if shipped:
        result = core.load_shipped()
        if result is None:
            typer.echo("no sensitivity result is shipped; run without --shipped", err=True)
            raise typer.Exit(1)
    else:
        chosen_seed = core.SEED if seed is None else seed
        result = core.analyse(r=trajectories, seed=chosen_seed, scheduler=scheduler, workers=workers)
    if out is not None:
        core.write(result, out)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    _render(result, Console() if sys.stdout.isatty() else Console(width=160))
    if out is not None:
        typer.echo(f"wrote {out}")
