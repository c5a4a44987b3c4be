"""`mscatlas trials roots NCT...`: the preclinical evidence behind each trial's product."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mscatlas.cli.options import JsonOption
from mscatlas.cli.output import console, fail, print_json
from mscatlas.kb.enums import MscSource
from mscatlas.kb.store import Store
from mscatlas.kb.terms import label
from mscatlas.trials.roots import MIN_STUDIES, SHARE_THRESHOLD, trial_roots

__all__ = ["roots"]



def roots(
    trial_ids: Annotated[
        list[str] | None, typer.Argument(help="Trial ids (NCT or registry ids); none: all.")
    ] = None,
    db: Annotated[str | None, typer.Option("--db", help="Database URL.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Which preclinical evidence stands behind each trial: same source, product, payload, cancer class."""
    store = Store.open(db)
    try:
        dataset = store.dataset()
    finally:
        store.close()
    trials = {t.nct_id: t for t in dataset.trials}
    wanted = [t.upper() if t.lower().startswith("nct") else t for t in (trial_ids or sorted(trials))]
    unknown = [t for t in wanted if t not in trials]
    if unknown:
        fail(f"unknown trial id(s): {', '.join(unknown)}", detail={"unknown": unknown})
    results = [trial_roots(trials[t], dataset.evidence) for t in wanted]
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    table = Table(title="preclinical roots of trials")
    for col in ("trial", "product", "source", "cancer", "verdict", "inhibits/promotes/other", "studies"):
        table.add_column(col)
    for r in results:
        other = r.n_items - r.by_direction["inhibits"] - r.by_direction["promotes"]
        product = label(r.product) + (f" + {r.payload}" if r.payload else "")
        product += " (engineered)" if r.engineered and not r.payload else ""
        table.add_row(
            r.nct_id,
            product,
            ", ".join(label(s, MscSource) for s in r.msc_source),
            r.cancer_class,
            label(r.verdict),
            f"{r.by_direction['inhibits']}/{r.by_direction['promotes']}/{other}",
            str(r.n_studies),
        )
    console.print(table)
    console.print(
        f"verdict rule: consistent inhibition or promotion needs >= {MIN_STUDIES} studies and "
        f">= {SHARE_THRESHOLD:.0%} of inhibit/promote items one way; contested otherwise; thin = one study."
    )
