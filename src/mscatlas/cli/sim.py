"""`mscatlas sim` commands: in vitro protocols, a xenograft study and the replay of the knowledge base.

The lead registers ``sim_app`` on the main app; this module only parses options, calls
``mscatlas.sim`` and renders a table (people) or JSON with the time grid and every series
(programs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mscatlas.cli.options import JsonOption
from mscatlas.cli.output import bad_input, console, print_json
from mscatlas.cli.sim_abm import abm_cmd
from mscatlas.cli.sim_common import (
    AssumedOption,
    CalibrationOption,
    CellsOption,
    ClassOption,
    EngineeringOption,
    GrowthModelName,
    HoursOption,
    Payload,
    PayloadOption,
    RouteName,
    SourceOption,
    calibration_in_use,
    with_validation,
)
from mscatlas.cli.sim_replay import calibrate_cmd, replay_cmd
from mscatlas.cli.sim_sensitivity import sensitivity
from mscatlas.kb.dose import DoseParseError, parse_ratio
from mscatlas.kb.enums import CancerClass, EngineeringKind, MscSource
from mscatlas.sim import Conditioning, Injection, Protocol, call_direction, run, simulate_xenograft
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
    used = with_validation(used)
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
    calibration, used = calibration_in_use(assumed, calibration_file)
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

    calibration, used = calibration_in_use(assumed, calibration_file)
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


sim_app.command("calibrate")(calibrate_cmd)
sim_app.command("replay")(replay_cmd)
sim_app.command("abm")(abm_cmd)
sim_app.command("sensitivity")(sensitivity)
