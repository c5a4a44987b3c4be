"""`mscatlas synthesize` and `mscatlas predict`: conflicts, moderator effects, predictions."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from mscatlas.cli.options import DbOption, JsonOption
from mscatlas.cli.output import bad_input, console, fail, print_json, term
from mscatlas.kb.enums import CancerClass, Delivery, MscSource, Setting
from mscatlas.kb.store import Store
from mscatlas.kb.terms import enum_choices, label
from mscatlas.stats.synthesis import SEED, run_synthesis

__all__ = ["predict", "synthesize"]

SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the posterior draws.")]


def _shown(values: Any) -> str:
    """Moderator values for people: lists joined, None 'not stated', booleans yes/no."""
    if isinstance(values, list | tuple | set):
        return ", ".join(_shown(v) for v in values) or "none"
    if isinstance(values, float):
        return f"{values:g}"
    return label(values)


def _option(cls: type, name: str) -> Any:
    help_text = f"One of: {', '.join(enum_choices(cls))} (labels and synonyms work too)."
    return typer.Option(name, help=help_text)


def synthesize(
    level: Annotated[
        str, typer.Option("--level", help="Strata by cancer 'type' (fine) or cancer 'class' (coarse).")
    ] = "type",
    seed: SeedOption = SEED,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Vote counts, conflicts, moderator effects and leave-one-study-out validation."""
    if level not in ("type", "class"):
        bad_input(f"--level: use 'type' or 'class', not '{level}'")
    result = run_synthesis(Store.open(db).dataset().evidence, level=level, seed=seed)  # type: ignore[arg-type]
    if as_json:
        print_json(result.to_dict())
        return
    items, strata, found = result.items, result.strata(), result.conflicts()
    table = Table(title=f"Harvest table ({len(items)} accepted items; studies vote by majority)")
    columns = ("MSC source", "cancer", "delivery", "setting", "items i/p/n", "studies i/p/n")
    for col in (*columns, "share inhibiting [95% CI]"):
        table.add_column(col)
    for s in strata:
        share = "—"
        if s.share_inhibits is not None:
            share = f"{s.share_inhibits:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}]"
        ic, sc = s.item_counts, s.study_counts
        table.add_row(
            label(s.msc_source), s.cancer, label(s.delivery), label(s.setting),
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
            f"{label(st.msc_source)} · {st.cancer} · {label(st.delivery)} · {label(st.setting)}",
            ", ".join(h.id for h in c.inhibiting),
            ", ".join(h.id for h in c.promoting),
            "; ".join(
                f"{label(k)}: {_shown(v['inhibiting'])} vs {_shown(v['promoting'])}"
                for k, v in c.differing.items()
            )
            or "none",
        )
    console.print(conflict_table)
    if result.fit is None or result.validation is None:
        console.print("no moderator model: no accepted item has a direction")
        return
    effect_table = Table(title="Moderator model: log odds of inhibiting vs the reference level")
    for col in ("term", "estimate", "95% interval", "odds ratio", "items"):
        effect_table.add_column(col)
    for e in result.effects:
        mark = " *" if e["supported"] and e["name"] != "intercept" else ""
        effect_table.add_row(
            e["name"] + mark, f"{e['estimate']:.2f}", f"[{e['ci_lb']:.2f}, {e['ci_ub']:.2f}]",
            f"{e['odds_ratio']:.2f}", str(e["n_items"]),
        )  # fmt: skip
    console.print(effect_table)
    sd = result.fit.sigma_summary()
    console.print(f"between-study SD (logit): {sd['mean']:.2f} [{sd['ci_lb']:.2f}, {sd['ci_ub']:.2f}]")
    validation = result.validation.to_dict()
    model, base = validation["model"], validation["majority_baseline"]
    console.print(
        f"leave-one-study-out ({validation['n_items']} items, {validation['n_studies']} studies): "
        f"log loss {model['log_loss']:.3f} vs baseline {base['log_loss']:.3f}; "
        f"Brier {model['brier']:.3f} vs {base['brier']:.3f}; "
        f"accuracy {model['accuracy']:.3f} vs {base['accuracy']:.3f}"
    )
    console.print(result.verdict)


def predict(
    msc_source: Annotated[str, _option(MscSource, "--msc-source")],
    cancer_class: Annotated[str, _option(CancerClass, "--cancer-class")],
    delivery: Annotated[str, _option(Delivery, "--delivery")],
    setting: Annotated[str, _option(Setting, "--setting")] = Setting.in_vitro.value,
    engineered: Annotated[bool, typer.Option("--engineered/--native")] = False,
    dose: Annotated[
        float | None,
        typer.Option("--dose", help="On the delivery's scale (e.g. log10 MSC:cancer ratio, CM %)."),
    ] = None,
    seed: SeedOption = SEED,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """P(inhibits) for one combination, with its interval and the items that inform it most."""
    values = {
        "msc_source": term(MscSource, msc_source, "--msc-source"),
        "cancer_class": term(CancerClass, cancer_class, "--cancer-class"),
        "delivery": term(Delivery, delivery, "--delivery"),
        "setting": term(Setting, setting, "--setting"),
    }
    fit = run_synthesis(Store.open(db).dataset().evidence, seed=seed).fit
    if fit is None:
        fail("no accepted evidence item to fit the model on")
    try:
        result = fit.predict(
            **{k: v.value for k, v in values.items() if v is not None}, engineered=engineered, dose=dose
        )
    except ValueError as exc:  # a level absent from the knowledge base
        fail(str(exc))
    if as_json:
        print_json(result)
        return
    console.print(
        f"P(inhibits) = {result['p_inhibits']:.2f} [{result['ci_lb']:.2f}, {result['ci_ub']:.2f}] for an "
        f"average study; {result['p_inhibits_new_study']:.2f} for a new study"
    )
    table = Table(title="Items closest to this combination")
    for col in ("id", "direction", "moderators that differ"):
        table.add_column(col)
    for item in result["closest_items"]:
        table.add_row(item["id"], label(item["direction"]), _shown(item["mismatches"]))
    console.print(table)
