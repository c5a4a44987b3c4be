"""`mscatlas sim` commands: in vitro protocols, a xenograft study and the replay of the knowledge base.

The lead registers ``sim_app`` on the main app; this module only parses options, calls
``mscatlas.sim`` and renders a table (people) or JSON with the time grid and every series
(programs).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mscatlas.cli.options import JsonOption
from mscatlas.cli.output import bad_input, console, print_json
from mscatlas.cli.sim_sensitivity import sensitivity
from mscatlas.kb.dose import DoseParseError, parse_ratio
from mscatlas.kb.enums import CancerClass, EngineeringKind, MscSource
from mscatlas.sim import Conditioning, Injection, Protocol, call_direction, replay, run, simulate_xenograft
from mscatlas.sim.build import PAYLOADS
from mscatlas.sim.protocol import SOLVER, Outcome

if TYPE_CHECKING:
    from mscatlas.sim.calibration import Calibration

__all__ = ["sim_app"]

sim_app = typer.Typer(
    name="sim",
    help="In silico lab: simulate co-cultures, conditioned media, vesicles and xenografts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Payload = StrEnum("Payload", {p: p for p in PAYLOADS})  # type: ignore[misc]


class GrowthModelName(StrEnum):
    gompertz = "gompertz"
    logistic = "logistic"


class RouteName(StrEnum):
    intravenous = "intravenous"
    intratumoral = "intratumoral"
    co_injection = "co_injection"


SourceOption = Annotated[MscSource, typer.Option("--msc-source", help="MSC tissue source.")]
ClassOption = Annotated[CancerClass, typer.Option("--cancer-class", help="Cancer class.")]
HoursOption = Annotated[float, typer.Option("--hours", min=0.1, help="Exposure time in hours.")]
CellsOption = Annotated[
    float | None,
    typer.Option("--cancer-cells", min=1.0, help="Cancer cells per well (default: class default)."),
]
EngineeringOption = Annotated[
    list[str] | None,
    typer.Option(
        "--engineering",
        help="Engineering of the product, KIND or KIND:DETAIL (e.g. cytokine_activation, "
        "gene_modified:TRAIL); repeatable.",
    ),
]
PayloadOption = Annotated[
    list[Payload] | None, typer.Option("--payload", help="Payload carried; repeatable.")
]
AssumedOption = Annotated[
    bool,
    typer.Option("--assumed", help="Use parameters.yaml as is, without the calibrated shared factors."),
]
CalibrationOption = Annotated[
    str | None,
    typer.Option(
        "--calibration",
        help="Calibration file written by `mscatlas sim calibrate` (default: the shipped one).",
    ),
]
SchedulerOption = Annotated[
    str,
    typer.Option(
        "--scheduler",
        help="Dask: threads (local cluster, default), processes, synchronous, or a scheduler ADDRESS.",
    ),
]
WorkersOption = Annotated[int | None, typer.Option("--workers", min=1, help="Local Dask workers.")]


def _ratio(text: str) -> float:
    """MSC per cancer cell from --ratio (the one ratio reader, mscatlas.kb.dose.parse_ratio)."""
    try:
        return parse_ratio(text)
    except DoseParseError as exc:
        bad_input(f"--ratio: {exc}")


def _engineering(values: list[str] | None) -> list[tuple[str, str]]:
    out = []
    known = {k.value for k in EngineeringKind} | {
        "cytokine_activation",
        "heat_treatment",
        "hypoxia",
        "culture_3d",
        "senescence",
        "drug_loaded",
        "other",
    }
    for value in values or []:
        kind, _, detail = value.partition(":")
        if kind not in known:
            bad_input(f"unknown engineering kind '{kind}'; known: {', '.join(sorted(known))}")
        out.append((kind, detail or kind))
    return out


def _calibration(assumed: bool, path: str | None) -> tuple[Calibration | None, dict[str, Any]]:
    """The shared factors to simulate with, and how the output names them."""
    from mscatlas.sim.calibration import default_calibration, load_calibration

    if assumed:
        if path is not None:
            bad_input("--assumed and --calibration exclude each other")
        return None, {"parameters": "assumed", "calibration": None}
    if path is None:
        calibration, why_not = default_calibration()
        if calibration is None:
            return None, {"parameters": "assumed", "calibration": None, "note": why_not}
    else:
        try:
            calibration = load_calibration(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            bad_input(f"cannot read calibration file '{path}': {exc}")
        if calibration is None:
            bad_input(f"no calibration in '{path}'")
    stamp = calibration.provenance.get("stamp", "calibrated")
    return calibration, {"parameters": "calibrated", "calibration": stamp}


def _with_validation(used: dict[str, Any]) -> dict[str, Any]:
    """``used`` with the out-of-sample validation of its parameters (shown on every output)."""
    from mscatlas.sim.calibration import out_of_sample

    return {**used, "validation": out_of_sample(used["parameters"])}


def _describe(used: dict[str, Any]) -> str:
    if used["parameters"] == "calibrated":
        return f"parameters: calibrated shared factors ({used['calibration']})"
    return "parameters: assumed (parameters.yaml as is" + (f"; {used['note']})" if "note" in used else ")")


def _calibrated_call(outcome: Outcome, calibration: Calibration | None) -> dict[str, Any] | None:
    """The calibration's direction probabilities for this read-out, for a new study (as validated)."""
    if calibration is None:
        return None
    from mscatlas.sim.hierarchical import readout_probabilities
    from mscatlas.sim.parameters import load_parameters

    z = outcome.inhibition_percent()[-1] / load_parameters().value("protocol", "inhibition_threshold")
    probs = readout_probabilities(float(z), calibration)
    return {
        "endpoint": "proliferation",
        "probabilities": probs,
        "direction": max(probs, key=probs.__getitem__),
        "note": "the calibrated model's call for a new study (endpoint offset added, study effect "
        "integrated out), the quantity its held-out validation scores",
    }


def _report(
    outcome: Outcome, as_json: bool, title: str, used: dict[str, Any], calibration: Calibration | None = None
) -> None:
    used = _with_validation(used)
    final = outcome.final()
    direction = call_direction(outcome)
    calibrated = _calibrated_call(outcome, calibration)
    if as_json:
        print_json(
            {
                **used,
                "protocol": {
                    "delivery": outcome.protocol.delivery,
                    "hours": outcome.protocol.hours,
                    "msc_per_cancer": outcome.protocol.msc_per_cancer,
                    "cm_percent": outcome.protocol.cm_percent,
                    "ev_ug_per_ml": outcome.protocol.ev_ug_per_ml,
                },
                "msc_source": outcome.product.msc_source,
                "cancer_class": outcome.cancer_class,
                "payloads": list(outcome.product.payloads),
                "solver": SOLVER,
                "series": outcome.series(),
                "final": final,
                "predicted_direction": direction,
                "calibrated_direction": calibrated,
                "notes": list(outcome.notes),
            }
        )
        return
    table = Table(title=title)
    for col in (
        "hour",
        "control cells",
        "treated cells",
        "inhibition %",
        "apoptotic % (T/C)",
        "G0/G1 % (T/C)",
    ):
        table.add_column(col, justify="right")
    inhibition = outcome.inhibition_percent()
    apo_t, apo_c = outcome.apoptotic_fraction("treated"), outcome.apoptotic_fraction("control")
    g1_t, g1_c = outcome.phase_fractions("treated")["g0_g1"], outcome.phase_fractions("control")["g0_g1"]
    last = len(outcome.times) - 1
    rows = [i for i, h in enumerate(outcome.times) if abs(h / 24.0 - round(h / 24.0)) < 1e-9] or [0]
    if rows[-1] != last:
        rows.append(last)
    for i in rows:
        table.add_row(
            f"{outcome.times[i]:g}",
            f"{outcome.viable('control')[i]:.3g}",
            f"{outcome.viable('treated')[i]:.3g}",
            f"{inhibition[i]:.1f}",
            f"{100 * apo_t[i]:.1f} / {100 * apo_c[i]:.1f}",
            f"{100 * g1_t[i]:.1f} / {100 * g1_c[i]:.1f}",
        )
    console.print(table)
    console.print(
        f"predicted direction: [bold]{direction}[/bold] ({final['inhibition_percent']:.1f}% inhibition)"
    )
    if calibrated is not None:
        p = calibrated["probabilities"]
        console.print(
            f"calibrated model, new study: P(inhibits) {p['inhibits']:.2f}, P(promotes) {p['promotes']:.2f}, "
            f"P(no effect) {p['no_effect']:.2f}",
            highlight=False,
        )
    console.print(_describe(used), highlight=False)
    console.print(used["validation"]["line"], highlight=False)
    for note in outcome.notes:
        console.print(f"note: {note}")


def _run_and_report(
    proto: Protocol,
    msc_source: MscSource,
    cancer_class: CancerClass,
    engineering: list[str] | None,
    payload: list[Payload] | None,
    assumed: bool,
    calibration_file: str | None,
    as_json: bool,
    title: str,
) -> None:
    """Run one protocol with the chosen parameters and print it (shared by coculture and cm)."""
    calibration, used = _calibration(assumed, calibration_file)
    outcome = run(
        proto,
        msc_source.value,
        cancer_class,
        engineering=_engineering(engineering),
        payloads=[p.value for p in payload or []],
        calibration=calibration,
    )
    _report(outcome, as_json, title, used, calibration)


@sim_app.command()
def coculture(
    ratio: Annotated[
        str, typer.Option("--ratio", help="MSC:cancer seeding ratio, MSC first (e.g. 1:10).")
    ] = "1:1",
    transwell: Annotated[bool, typer.Option("--transwell", help="MSCs in an insert: no contact.")] = False,
    msc_source: SourceOption = MscSource.bone_marrow,
    cancer_class: ClassOption = CancerClass.solid,
    hours: HoursOption = 72.0,
    cancer_cells: CellsOption = None,
    engineering: EngineeringOption = None,
    payload: PayloadOption = None,
    assumed: AssumedOption = False,
    calibration_file: CalibrationOption = None,
    as_json: JsonOption = False,
) -> None:
    """Direct co-culture (or transwell) of MSCs with cancer cells at a seeding ratio."""
    proto = Protocol(
        "transwell" if transwell else "direct_coculture",
        hours,
        msc_per_cancer=_ratio(ratio),
        cancer_cells=cancer_cells,
    )
    title = f"{proto.delivery}, MSC:cancer {ratio}, {msc_source.value} on {cancer_class.value}"
    _run_and_report(
        proto, msc_source, cancer_class, engineering, payload, assumed, calibration_file, as_json, title
    )


@sim_app.command()
def cm(
    percent: Annotated[
        float, typer.Option("--percent", min=0.0, max=100.0, help="CM share of the medium, %.")
    ] = 50.0,
    conditioning_cells: Annotated[float, typer.Option("--conditioning-cells", min=1.0)] = 1e6,
    conditioning_volume: Annotated[
        float, typer.Option("--conditioning-volume", min=0.001, help="mL.")
    ] = 10.0,
    conditioning_hours: Annotated[float, typer.Option("--conditioning-hours", min=0.1)] = 48.0,
    msc_source: SourceOption = MscSource.bone_marrow,
    cancer_class: ClassOption = CancerClass.solid,
    hours: HoursOption = 72.0,
    cancer_cells: CellsOption = None,
    engineering: EngineeringOption = None,
    payload: PayloadOption = None,
    assumed: AssumedOption = False,
    calibration_file: CalibrationOption = None,
    as_json: JsonOption = False,
) -> None:
    """Conditioned medium made by CONDITIONING-CELLS MSCs in CONDITIONING-VOLUME mL, at PERCENT."""
    proto = Protocol(
        "conditioned_medium",
        hours,
        cm_percent=percent,
        conditioning=Conditioning(conditioning_cells, conditioning_volume, conditioning_hours),
        cancer_cells=cancer_cells,
    )
    title = f"conditioned medium {percent:g}%, {msc_source.value} on {cancer_class.value}"
    _run_and_report(
        proto, msc_source, cancer_class, engineering, payload, assumed, calibration_file, as_json, title
    )


@sim_app.command()
def ev(
    amount: Annotated[float, typer.Option("--amount", min=0.0, help="EV dose.")] = 50.0,
    unit: Annotated[
        str, typer.Option("--unit", help="ug/mL (or µg/mL), ng/mL, mg/mL, ug (per well) or particles/mL.")
    ] = "ug/mL",
    msc_source: SourceOption = MscSource.bone_marrow,
    cancer_class: ClassOption = CancerClass.solid,
    hours: HoursOption = 72.0,
    cancer_cells: CellsOption = None,
    assumed: AssumedOption = False,
    calibration_file: CalibrationOption = None,
    as_json: JsonOption = False,
) -> None:
    """Extracellular vesicles added once at the start, taken up and degraded."""
    from mscatlas.sim.parameters import load_parameters
    from mscatlas.sim.units import ev_ug_per_ml

    calibration, used = _calibration(assumed, calibration_file)
    table = load_parameters()
    try:
        dose = ev_ug_per_ml(amount, unit, cancer_class=cancer_class.value, table=table)
    except ValueError as exc:
        bad_input(f"--unit: {exc}")
    proto = Protocol("extracellular_vesicles", hours, ev_ug_per_ml=dose, cancer_cells=cancer_cells)
    outcome = run(proto, msc_source.value, cancer_class, table=table, calibration=calibration)
    _report(
        outcome,
        as_json,
        f"EVs {amount:g} {unit}, {msc_source.value} on {cancer_class.value}",
        used,
        calibration,
    )


def _schedule(text: str) -> list[float]:
    try:
        days = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        bad_input(f"--schedule must be comma-separated days, got '{text}'")
    if not days or any(d < 0 for d in days):
        bad_input("--schedule needs at least one non-negative day")
    return days


@sim_app.command()
def xenograft(
    model: Annotated[
        GrowthModelName, typer.Option("--model", help="Tumour growth law.")
    ] = GrowthModelName.gompertz,
    msc_dose: Annotated[float, typer.Option("--msc-dose", min=0.0, help="MSCs per injection.")] = 1e6,
    route: Annotated[RouteName, typer.Option("--route")] = RouteName.intravenous,
    schedule: Annotated[str, typer.Option("--schedule", help="Injection days, e.g. 0,7,14.")] = "0",
    days: Annotated[float, typer.Option("--days", min=1.0, help="Study length in days.")] = 28.0,
    n_animals: Annotated[int, typer.Option("--n-animals", min=1)] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the between-animal variation.")] = 0,
    msc_source: SourceOption = MscSource.bone_marrow,
    cancer_class: ClassOption = CancerClass.solid,
    engineering: EngineeringOption = None,
    payload: PayloadOption = None,
    as_json: JsonOption = False,
) -> None:
    """Tumour-volume curves of an MSC-treated group and its paired control group, with TGI."""
    injections = [Injection(d, msc_dose, route.value) for d in _schedule(schedule)] if msc_dose > 0 else []
    result = simulate_xenograft(
        model=model.value,
        msc_source=msc_source.value,
        cancer_class=cancer_class,
        injections=injections,
        days=days,
        n_animals=n_animals,
        seed=seed,
        engineering=_engineering(engineering),
        payloads=[p.value for p in payload or []],
    )
    series = result.series()
    invivo = _xenograft_data()
    if as_json:
        print_json(
            {
                "model": model.value,
                "parameters": "assumed",
                "validation": invivo,
                "route": route.value,
                "msc_dose": msc_dose,
                "schedule_days": [i.day for i in injections],
                "n_animals": n_animals,
                "seed": seed,
                "series": series,
                "tgi_percent": series["tgi_percent"],
            }
        )
        return
    table = Table(title=f"xenograft ({model.value}), {msc_dose:.3g} MSCs {route.value} on days {schedule}")
    for col in ("day", "control mm³ (mean ± sd)", "treated mm³ (mean ± sd)", "MSCs in tumour"):
        table.add_column(col, justify="right")
    step = max(1, len(result.days) // 10)
    rows = list(range(0, len(result.days), step))
    if rows[-1] != len(result.days) - 1:
        rows.append(len(result.days) - 1)
    for i in rows:
        table.add_row(
            f"{result.days[i]:g}",
            f"{series['control_mean_mm3'][i]:.0f} ± {series['control_sd_mm3'][i]:.0f}",
            f"{series['treated_mean_mm3'][i]:.0f} ± {series['treated_sd_mm3'][i]:.0f}",
            f"{series['msc_in_tumour_mean'][i]:.3g}",
        )
    console.print(table)
    console.print(f"TGI: [bold]{series['tgi_percent']:.1f}%[/bold]")
    console.print(invivo["line"], highlight=False)


def _xenograft_data() -> dict[str, Any]:
    """What the shipped in vivo evidence offers to calibrate the xenograft model (counts, verdict)."""
    from mscatlas.sim.calibrate import shipped_evidence
    from mscatlas.sim.invivo import tumour_growth_data

    data = tumour_growth_data(shipped_evidence())
    return {k: v for k, v in data.items() if k != "ratios"}


DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (default: the user store).")]


@sim_app.command("calibrate")
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

    The leave-one-study-out validation is stored beside the factors. Pass the file to coculture,
    cm and ev with --calibration; regenerate the shipped one with
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
        f"leave one study out {pct(validation.get('loo_accuracy'))}, "
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


@sim_app.command("replay")
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
        calibration, used = _calibration(False, None)
        report = {**_with_validation(used), **replay(items, calibration=calibration).to_dict()}
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


@sim_app.command("abm")
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


sim_app.command("sensitivity")(sensitivity)
