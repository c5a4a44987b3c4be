"""`mscatlas sim abm`: the spatial agent-based run, with snapshots, series and an optional GIF.

``cli/sim.py`` registers it on ``sim_app``.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mscatlas.cli.options import JsonOption
from mscatlas.cli.output import console, print_json
from mscatlas.cli.sim_common import ClassOption, PayloadOption, SourceOption
from mscatlas.kb.enums import CancerClass, MscSource

__all__ = ["abm_cmd"]


def abm_cmd(
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random generator.")] = 0,
    days: Annotated[float, typer.Option("--days", min=0.01, help="Simulated days.")] = 2.0,
    out: Annotated[
        str, typer.Option("--out", help="Folder for snapshots, series.csv and the optional GIF.")
    ] = "abm-out",
    cells: Annotated[
        int | None, typer.Option("--cells", min=1, help="Cancer cells seeded (default: parameter file).")
    ] = None,
    mscs: Annotated[
        int | None, typer.Option("--mscs", min=0, help="MSCs seeded (default: parameter file).")
    ] = None,
    msc_source: SourceOption = MscSource.bone_marrow,
    cancer_class: ClassOption = CancerClass.solid,
    payload: PayloadOption = None,
    animate: Annotated[bool, typer.Option("--animate", help="Also write abm.gif.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Spatial agent-based run: a tumour secreting CXCL12 and MSCs homing to it by chemotaxis."""
    from pathlib import Path

    from mscatlas.sim.abm import AbmConfig, AbmModel
    from mscatlas.sim.abm.plot import plot_series, plot_snapshot, save_animation

    overrides: dict[str, int] = {}
    if cells is not None:
        overrides["n_cancer"] = cells
    if mscs is not None:
        overrides["n_msc"] = mscs
    config = AbmConfig.from_parameters(
        msc_source.value, cancer_class, payloads=[p.value for p in payload or []], **overrides
    )
    hours = 24.0 * days
    frames = [hours * i / 24 for i in range(25)] if animate else [0.0, hours]
    result = AbmModel(config, seed=seed).run(hours, snapshot_at=frames)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    extent = config.domain_size
    first, last = result.snapshots[0], result.snapshots[-1]
    files = [
        plot_snapshot(first, extent, folder / "snapshot_start.png"),
        plot_snapshot(last, extent, folder / "snapshot_end.png"),
        plot_series(result, folder / "series.png"),
    ]
    data = result.to_dict()
    csv = folder / "series.csv"
    with csv.open("w", encoding="utf-8") as fh:
        fh.write("time_h,cancer_cells,mscs,homing_fraction,cxcl12_tumour_ng_per_ml\n")
        for row in zip(
            data["time_h"],
            data["cancer_cells"],
            data["mscs"],
            data["homing_fraction"],
            data["cxcl12_tumour_ng_per_ml"],
            strict=True,
        ):
            fh.write(",".join("" if v is None else f"{v:g}" for v in row) + "\n")
    files.append(csv)
    gif_note = None
    if animate:
        if save_animation(result.snapshots, extent, folder / "abm.gif"):
            files.append(folder / "abm.gif")
        else:
            gif_note = "animation skipped: the run kept no snapshots"
    data.update(
        {
            "days": days,
            "msc_source": msc_source.value,
            "cancer_class": cancer_class.value,
            "payloads": [p.value for p in payload or []],
            "domain_um": extent,
            "files": [str(f) for f in files],
        }
    )
    (folder / "abm.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if as_json:
        print_json(data)
        return
    table = Table(title=f"spatial ABM, seed {seed}, {days:g} days, {extent:g} µm domain")
    for col in ("hour", "cancer cells", "MSCs", "MSCs in tumour %"):
        table.add_column(col, justify="right")
    step = max(1, len(result.time_h) // 12)
    rows = list(range(0, len(result.time_h), step))
    if rows[-1] != len(result.time_h) - 1:
        rows.append(len(result.time_h) - 1)
    for i in rows:
        frac = result.homing_fraction[i]
        table.add_row(
            f"{result.time_h[i]:g}",
            str(result.cancer[i]),
            str(result.msc[i]),
            "n/a" if frac != frac else f"{100 * frac:.1f}",
        )
    console.print(table)
    if gif_note:
        console.print(f"note: {gif_note}")
    console.print(f"wrote {', '.join(str(f) for f in files)}")
