"""`mscatlas synthesize`: harvest table and conflict list over the knowledge base."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mscatlas.kb.store import Store
from mscatlas.stats.conflict import conflicts, harvest
from mscatlas.stats.harmonize import dose_coverage, harmonize

__all__ = ["synthesize"]


def synthesize(
    level: Annotated[
        str, typer.Option("--level", help="Strata by cancer 'type' (fine) or cancer 'class' (coarse).")
    ] = "type",
    db: Annotated[str | None, typer.Option("--db", help="Database URL.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Vote counts per MSC source x cancer x delivery x setting, and where studies disagree."""
    if level not in ("type", "class"):
        raise typer.BadParameter("use 'type' or 'class'", param_hint="--level")
    items = harmonize(Store.open(db).dataset().evidence)
    strata = harvest(items, level)  # type: ignore[arg-type]
    found = conflicts(items, level)  # type: ignore[arg-type]
    if as_json:
        payload = {
            "level": level,
            "n_items": len(items),
            "dose_coverage": dose_coverage(items),
            "strata": [s.to_dict() for s in strata],
            "conflicts": [c.to_dict() for c in found],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    console = Console() if sys.stdout.isatty() else Console(width=160)
    table = Table(title=f"Harvest table ({len(items)} accepted items; studies vote by majority)")
    for col in (
        "MSC source",
        "cancer",
        "delivery",
        "setting",
        "items i/p/n",
        "studies i/p/n",
        "share inhibiting [95% CI]",
    ):
        table.add_column(col)
    for s in strata:
        share = (
            "—" if s.share_inhibits is None else f"{s.share_inhibits:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}]"
        )
        ic, sc = s.item_counts, s.study_counts
        table.add_row(
            s.msc_source, s.cancer, s.delivery, s.setting,
            f"{ic['inhibits']}/{ic['promotes']}/{ic['no_effect'] + ic['mixed']}",
            f"{sc['inhibits']}/{sc['promotes']}/{sc['no_effect'] + sc['mixed']}",
            share,
        )  # fmt: skip
    console.print(table)
    conflict_table = Table(title=f"{len(found)} conflict(s): strata with items on both sides")
    for col in ("stratum", "inhibiting", "promoting", "moderators that differ"):
        conflict_table.add_column(col, overflow="fold")
    for c in found:
        st = c.stratum
        conflict_table.add_row(
            f"{st.msc_source} · {st.cancer} · {st.delivery} · {st.setting}",
            ", ".join(h.id for h in c.inhibiting),
            ", ".join(h.id for h in c.promoting),
            "; ".join(f"{k}: {v['inhibiting']} vs {v['promoting']}" for k, v in c.differing.items())
            or "none",
        )
    console.print(conflict_table)
