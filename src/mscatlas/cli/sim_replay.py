"""`mscatlas sim calibrate` and `mscatlas sim replay`: the in vitro model against the knowledge base.

``calibrate`` fits the shared factors and stores their held-out validation; ``replay`` runs every
in vitro item's protocol and scores predicted against observed directions. ``cli/sim.py``
registers both on ``sim_app``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mscatlas.cli.options import JsonOption
from mscatlas.cli.output import bad_input, console, print_json
from mscatlas.cli.sim_common import (
    DbOption,
    SchedulerOption,
    WorkersOption,
    calibration_in_use,
    with_validation,
)
from mscatlas.sim import replay

__all__ = ["calibrate_cmd", "replay_cmd"]


def calibrate_cmd(
    out: Annotated[str, typer.Option("--out", help="Calibration file to write (YAML).")] = "calibrated.yaml",
    db: DbOption = None,
    shipped: Annotated[
        bool,
        typer.Option(
            "--shipped", help="Fit on the package's shipped data files, not a store (as the shipped file is)."
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the optimiser's random starts.")] = 0,
    starts: Annotated[int, typer.Option("--starts", min=1, help="Optimiser starts per fit.")] = 6,
    folds: Annotated[
        int | None,
        typer.Option("--folds", min=2, help="Hold studies out in this many folds (default: one per study)."),
    ] = None,
    scheduler: SchedulerOption = "threads",
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fit the shared per-source and per-class factors to the knowledge base and write them to OUT.

    The held-out validation (studies held out by fold) is stored beside the factors. Pass the
    file to coculture, cm and ev with --calibration; regenerate the shipped one with
    --shipped --out src/mscatlas/sim/data/calibrated.yaml. Both the flat and the hierarchical
    fit are scored by leaving each study out (slow: tens of minutes on the field-scale base);
    the one with the lower held-out log loss is written.
    """
    from mscatlas.sim.calibrate import write_calibration

    if shipped and db is not None:
        bad_input("--shipped and --db exclude each other")
    command = f"mscatlas sim calibrate {'--shipped ' if shipped else ''}--out {out} --seed {seed}"
    command += f" --starts {starts}" + (f" --folds {folds}" if folds else "")
    path, data = write_calibration(
        out,
        db=db,
        shipped=shipped,
        seed=seed,
        n_starts=starts,
        n_folds=folds,
        scheduler=scheduler,
        workers=workers,
        progress=not as_json,
        command=command,
    )
    validation = data["provenance"].get("validation", {})
    if as_json:
        print_json({"out": str(path), **data})
        return

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    console.print(f"wrote {path}: {data['provenance']['stamp']}", highlight=False)
    console.print(
        f"{data['provenance']['n_targets']} items from {data['provenance']['n_studies']} studies; "
        f"in sample {pct(validation.get('accuracy'))}, "
        f"{validation.get('scheme', 'held out by study')} {pct(validation.get('loo_accuracy'))}, "
        f"majority baseline {pct(validation.get('baseline_accuracy'))}",
        highlight=False,
    )


_DOSE_LABELS = {"msc_per_cancer": "MSC:cancer", "cm_percent": "CM", "ev_ug_per_ml": "EVs"}


def _dose_text(name: str, value: float) -> str:
    """A replayed dose as people read it: MSC:cancer 1:6, CM 50%, EVs 20 µg/mL."""
    if name == "msc_per_cancer":
        ratio = f"1:{1 / value:.3g}" if value < 1 else f"{value:.3g}:1"
        return f"MSC:cancer {ratio}"
    if name == "cm_percent":
        return f"CM {value:g}%"
    return f"EVs {value:.3g} µg/mL"


def replay_cmd(
    db: DbOption = None,
    refit: Annotated[
        bool,
        typer.Option(
            "--refit",
            help="Refit the shared factors on these items and once per study left out (slow: "
            "minutes to hours on the field-scale base).",
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the calibration's random starts.")] = 0,
    scheduler: SchedulerOption = "threads",
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run every in vitro item's protocol and compare predicted with observed directions.

    Without --refit the default parameters are used as they are (in sample) and the output
    carries their stored out-of-sample validation.
    """
    from mscatlas.kb.store import Store

    store = Store.open(db)
    try:
        items = store.dataset().evidence
    finally:
        store.close()
    if refit:
        report = replay(
            items, calibrate=True, seed=seed, scheduler=scheduler, workers=workers, progress=not as_json
        ).to_dict()
    else:
        calibration, used = calibration_in_use(False, None)
        report = {**with_validation(used), **replay(items, calibration=calibration).to_dict()}
    if as_json:
        print_json(report)
        return
    table = Table(title="replay of in vitro evidence items")
    for col in ("id", "delivery", "endpoint", "dose", "hours", "observed", "predicted", "inhibition %"):
        table.add_column(col)
    for item in report["items"]:
        top = item["doses"][-1]
        inputs = item.get("inputs", {})
        dose = next((k for k in _DOSE_LABELS if k in inputs), None)
        hours = inputs.get("hours", {"value": item["hours"], "origin": ""})
        mark = "" if item["agree"] else " ✗"
        table.add_row(
            item["id"],
            item["delivery"],
            item["endpoint"],
            "" if dose is None else f"{_dose_text(dose, inputs[dose]['value'])} ({inputs[dose]['origin']})",
            f"{hours['value']:g} h ({hours['origin']})",
            item["observed"],
            item["predicted"] + mark,
            f"{top['inhibition_percent']:.1f}",
        )
    console.print(
        "inputs: recorded = read from the item; derived = computed from what it records; "
        "assumed = a protocol default of parameters.yaml (the item does not say)",
        highlight=False,
    )
    console.print(table)

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    console.print(
        f"accuracy {pct(report['accuracy'])} on {report['n_scored']} items "
        f"from {report['n_studies']} studies; "
        f"majority baseline ('{report['baseline_majority']}') {pct(report['baseline_accuracy'])}; "
        f"modelled endpoints only {pct(report['accuracy_modelled_endpoints'])}"
    )
    console.print(f"leave-one-study-out: {pct(report['loo_accuracy'])}. {report['loo_note']}")
    if "validation" in report:
        console.print(report["validation"]["line"], highlight=False)
