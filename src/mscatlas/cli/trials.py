"""`mscatlas trials` commands for dose-finding: operating characteristics, BOIN tables, next dose.

The lead registers ``trials_app`` on the main app; this module only parses options, calls
``mscatlas.trials`` and renders a table (people) or JSON (programs).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from mscatlas.cli.options import JsonOption
from mscatlas.cli.output import bad_input, console, print_json
from mscatlas.trials import (
    CrmModel,
    DesignInputError,
    OperatingCharacteristics,
    Recommendation,
    boin_boundaries,
    boin_next_dose,
    boin_simulate,
    crm_next_dose,
    crm_simulate,
    parse_dose_counts,
    three_plus_three_exact,
    three_plus_three_simulate,
)

__all__ = ["trials_app"]

trials_app = typer.Typer(
    name="trials",
    help="Dose-finding designs for a phase I trial: 3+3, BOIN and CRM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class DesignName(StrEnum):
    three_plus_three = "3+3"
    boin = "boin"
    crm = "crm"


class AdaptiveDesign(StrEnum):
    boin = "boin"
    crm = "crm"


class CrmFamily(StrEnum):
    empiric = "empiric"
    logistic = "logistic"


TargetOption = Annotated[float, typer.Option("--target", help="Target toxicity rate φ, in (0, 1).")]
SkeletonOption = Annotated[
    str | None,
    typer.Option("--skeleton", help="CRM prior guesses per dose, increasing, e.g. 0.05,0.12,0.25."),
]
ModelOption = Annotated[CrmFamily, typer.Option("--model", help="CRM working model.")]


def _floats(text: str, option: str) -> list[float]:
    values = []
    for part in text.split(","):
        item = part.strip()
        try:
            values.append(float(item))
        except ValueError:
            bad_input(
                f"{option}: {item!r} is not a number (expected comma-separated numbers, e.g. 0.05,0.15,0.30)"
            )
    return values


def _oc_table(oc: OperatingCharacteristics) -> Table:
    source = "exact enumeration" if oc.method == "exact" else f"{oc.n_sims} simulated trials, seed {oc.seed}"
    table = Table(title=f"{oc.design} operating characteristics (target {oc.target:g}; {source})")
    for col in ("Dose", "True toxicity", "Selected %", "Mean patients", "Mean toxicities"):
        table.add_column(col, justify="right")
    for i, p in enumerate(oc.true_tox):
        mark = " (MTD)" if i == oc.true_mtd else ""
        table.add_row(
            f"{i + 1}{mark}",
            f"{p:.3f}",
            f"{oc.selection_pct[i]:.1f}",
            f"{oc.mean_patients[i]:.2f}",
            f"{oc.mean_toxicities[i]:.2f}",
        )
    table.add_section()
    table.add_row("stopped, none selected", "", f"{oc.stop_pct:.1f}", "", "")
    table.add_row("total", "", "100.0", f"{oc.expected_n:.2f}", f"{oc.expected_toxicities:.2f}")
    table.caption = (
        f"{oc.pct_patients_at_mtd:.1f}% of patients treated at the true MTD (dose {oc.true_mtd + 1})"
    )
    return table


@trials_app.command()
def design(
    design_name: Annotated[DesignName, typer.Option("--design", help="Which design to evaluate.")],
    true_tox: Annotated[
        str, typer.Option("--true-tox", help="True toxicity per dose, e.g. 0.05,0.15,0.30,0.45,0.60.")
    ],
    target: TargetOption = 0.3,
    cohort_size: Annotated[
        int | None, typer.Option("--cohort-size", min=1, help="Patients per cohort (BOIN, CRM; default 3).")
    ] = None,
    n_cohorts: Annotated[
        int | None, typer.Option("--n-cohorts", min=1, help="Cohorts per trial (BOIN, CRM; default 10).")
    ] = None,
    skeleton: SkeletonOption = None,
    model: ModelOption = CrmFamily.empiric,
    sims: Annotated[int, typer.Option("--sims", min=1, help="Simulated trials.")] = 10_000,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Random seed (default: fresh, reported).")
    ] = None,
    exact: Annotated[
        bool, typer.Option("--exact", help="3+3 only: exact enumeration instead of simulation.")
    ] = False,
    n_earlystop: Annotated[
        int | None,
        typer.Option(
            "--n-earlystop", min=1, help="BOIN: stop once the next dose already has this many patients."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Operating characteristics of a design under a true toxicity scenario."""
    tox = _floats(true_tox, "--true-tox")
    if exact and design_name is not DesignName.three_plus_three:
        bad_input("--exact is available for the 3+3 design only; BOIN and CRM are simulated")
    if design_name is DesignName.three_plus_three and (cohort_size not in (None, 3) or n_cohorts is not None):
        bad_input("--cohort-size and --n-cohorts do not apply to 3+3 (cohorts of 3, at most 6 per dose)")
    if design_name is not DesignName.crm and skeleton is not None:
        bad_input("--skeleton applies to the crm design only")
    if design_name is not DesignName.boin and n_earlystop is not None:
        bad_input("--n-earlystop applies to the boin design only")
    if seed is None and not exact:
        seed = int(np.random.SeedSequence().entropy % 2**32)
    size = 3 if cohort_size is None else cohort_size
    cohorts = 10 if n_cohorts is None else n_cohorts
    try:
        if design_name is DesignName.three_plus_three:
            if exact:
                oc = three_plus_three_exact(tox, target)
            else:
                oc = three_plus_three_simulate(tox, target, n_sims=sims, seed=seed)
        elif design_name is DesignName.boin:
            oc = boin_simulate(tox, target, size, cohorts, n_sims=sims, seed=seed, n_earlystop=n_earlystop)
        else:
            if skeleton is None:
                bad_input("--skeleton is required for the crm design (prior toxicity guesses, one per dose)")
            crm = CrmModel(tuple(_floats(skeleton, "--skeleton")), target, model=model.value)
            oc = crm_simulate(tox, crm, size, cohorts, n_sims=sims, seed=seed)
    except DesignInputError as exc:
        bad_input(str(exc))
    if as_json:
        print_json(oc.to_dict())
    else:
        console.print(_oc_table(oc))


@trials_app.command("boin-boundaries")
def boin_boundaries_command(
    target: TargetOption = 0.3,
    n_max: Annotated[int, typer.Option("--n-max", min=1, help="Largest number of patients at a dose.")] = 30,
    as_json: JsonOption = False,
) -> None:
    """BOIN decision table: per number of patients at a dose, the escalate/de-escalate/eliminate counts."""
    try:
        table = boin_boundaries(target, n_max)
    except DesignInputError as exc:
        bad_input(str(exc))
    if as_json:
        print_json(
            {
                "target": table.target,
                "phi1": table.phi1,
                "phi2": table.phi2,
                "lambda_e": table.lambda_e,
                "lambda_d": table.lambda_d,
                "cutoff_eli": table.cutoff_eli,
                "boundaries": table.rows(),
            }
        )
        return
    lambdas = f"λe = {table.lambda_e:.4f}, λd = {table.lambda_d:.4f}"
    out = Table(title=f"BOIN boundaries, target {table.target:g}: {lambdas}")
    for col in ("Patients at dose", "Escalate if DLTs ≤", "De-escalate if DLTs ≥", "Eliminate if DLTs ≥"):
        out.add_column(col, justify="right")
    for row in table.rows():
        elim = row["eliminate_min"]
        out.add_row(
            str(row["n"]),
            str(row["escalate_max"]),
            str(row["deescalate_min"]),
            "-" if elim is None else str(elim),
        )
    out.caption = (
        f"elimination: Pr(p > {table.target:g} | data) > {table.cutoff_eli:g}, Beta(1,1) prior, n ≥ 3"
    )
    console.print(out)


def _recommendation_table(rec: Recommendation) -> Table:
    out = Table(title=f"{rec.design.upper()} next dose: {'stop' if rec.next_dose is None else rec.next_dose}")
    out.add_column("Field")
    out.add_column("Value")
    out.add_row("current dose", str(rec.current_dose))
    out.add_row("action", rec.action)
    out.add_row("next dose", "none (stop)" if rec.next_dose is None else str(rec.next_dose))
    out.add_row("reason", rec.reason)
    if rec.eliminated:
        out.add_row("eliminated doses", ", ".join(str(d) for d in rec.eliminated))
    if rec.estimates:
        shown = ["-" if v is None else f"{v:.3f}" for v in rec.estimates]
        out.add_row("toxicity estimates", ", ".join(f"{i}: {v}" for i, v in enumerate(shown, start=1)))
    out.add_row("MTD if the trial ended now", "none" if rec.mtd is None else str(rec.mtd))
    return out


@trials_app.command("next-dose")
def next_dose(
    design_name: Annotated[AdaptiveDesign, typer.Option("--design", help="boin or crm.")],
    data: Annotated[
        str,
        typer.Option(
            "--data", help="LEVEL:DLTS/PATIENTS per dose, last entry = current dose, e.g. 1:0/3,2:1/3."
        ),
    ],
    target: TargetOption = 0.3,
    skeleton: SkeletonOption = None,
    model: ModelOption = CrmFamily.empiric,
    n_doses: Annotated[
        int | None, typer.Option("--n-doses", min=1, help="BOIN: doses in the design (default: more exist).")
    ] = None,
    last_cohort_dlts: Annotated[
        int | None,
        typer.Option(
            "--last-cohort-dlts", min=0, help="CRM: DLTs in the latest cohort (default: all at current dose)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recommend the dose for the next cohort of a running trial, with the reason."""
    try:
        if design_name is AdaptiveDesign.boin:
            if skeleton is not None:
                bad_input("--skeleton applies to the crm design only")
            counts = parse_dose_counts(data, n_doses)
            rec = boin_next_dose(counts, target, n_doses=n_doses)
        else:
            if skeleton is None:
                bad_input("--skeleton is required for the crm design (prior toxicity guesses, one per dose)")
            crm = CrmModel(tuple(_floats(skeleton, "--skeleton")), target, model=model.value)
            if n_doses is not None and n_doses != crm.n_doses:
                bad_input(f"--n-doses {n_doses} disagrees with the {crm.n_doses}-dose skeleton")
            counts = parse_dose_counts(data, crm.n_doses)
            rec = crm_next_dose(crm, counts, last_cohort_toxicities=last_cohort_dlts)
    except DesignInputError as exc:
        bad_input(str(exc))
    if as_json:
        print_json(rec.to_dict())
    else:
        console.print(_recommendation_table(rec))
