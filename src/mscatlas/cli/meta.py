"""`mscatlas meta`: meta-analysis of a CSV of studies, printed as tables or JSON.

Columns follow metafor's names (``ai,bi,ci,di``; ``m1i,sd1i,n1i,m2i,sd2i,n2i``; ``yi,vi``);
any other column can be a moderator (numbers, or text coded as indicators against the first
level in sorted order, like an R factor) or the study label.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table

from mscatlas.cli.options import JsonOption
from mscatlas.cli.output import console, fail, print_json
from mscatlas.cli.table_io import (
    MetaInputError,
    coefficient_rows,
    moderator_matrix,
    numeric_column,
    read_table,
)
from mscatlas.stats import InputError, escalc, leave1out, regtest, rma, trimfill
from mscatlas.stats.effect_sizes import MEASURE_COLUMNS
from mscatlas.stats.meta_model import MetaResult

__all__ = ["meta"]


LABEL_COLUMNS = ("study", "label", "trial", "author", "authors")
LOG_SCALE = {"RR", "OR", "ROM"}


class MeasureChoice(StrEnum):
    RR = "RR"
    OR = "OR"
    RD = "RD"
    MD = "MD"
    SMD = "SMD"
    ROM = "ROM"
    GEN = "GEN"


class MethodChoice(StrEnum):
    EE = "EE"
    DL = "DL"
    HE = "HE"
    HS = "HS"
    SJ = "SJ"
    ML = "ML"
    REML = "REML"
    EB = "EB"
    PM = "PM"


class TestChoice(StrEnum):
    z = "z"
    knha = "knha"


def _labels(rows: list[dict[str, str]], header: list[str], label: str | None) -> list[str]:
    if label is not None and label not in header:
        raise MetaInputError(f"label column {label!r} is not in the file")
    column = label or next((c for c in LABEL_COLUMNS if c in header), None)
    if column is None:
        return [f"Study {i}" for i in range(1, len(rows) + 1)]
    return [row.get(column, "") or f"Study {i}" for i, row in enumerate(rows, start=1)]


def _summary(res: MetaResult) -> dict[str, Any]:
    pred = res.predict()
    tau2_ci = None if res.method == "EE" else list(res.tau2_ci())
    return {
        "k": res.k,
        "estimate": res.estimate,
        "se": float(res.se[0]),
        "stat": float(res.stat[0]),
        "p": float(res.pval[0]),
        "ci_lb": float(res.ci_lb[0]),
        "ci_ub": float(res.ci_ub[0]),
        "pi_lb": pred.pi_lb,
        "pi_ub": pred.pi_ub,
        "tau2": res.tau2,
        "tau2_ci": tau2_ci,
        "I2": res.I2,
        "H2": res.H2,
        "Q": res.QE,
        "Q_p": res.QE_p,
    }


def _analyse(
    path: Path,
    measure: str,
    method: str,
    test: str,
    mods: str | None,
    label: str | None,
    egger: bool,
    fill: bool,
    loo: bool,
) -> tuple[dict[str, Any], MetaResult, Any, list[str]]:
    header, rows = read_table(path)
    needed = MEASURE_COLUMNS[measure]
    missing = [c for c in needed if c not in header]
    if missing:
        have = ", ".join(header)
        raise MetaInputError(
            f"missing column(s) {', '.join(missing)} for --measure {measure} (the file has: {have})"
        )
    if len(rows) < 2:
        raise MetaInputError(f"k = {len(rows)}: a meta-analysis needs at least 2 studies")
    data = {c: numeric_column(rows, c) for c in needed}
    try:
        es = escalc(measure, data)
    except InputError as exc:
        raise MetaInputError(str(exc)) from exc
    labels = _labels(rows, header, label)

    res = rma(es.yi, es.vi, method=method, test=test)  # type: ignore[arg-type]
    out: dict[str, Any] = {"measure": measure, "method": method, "test": test}
    out.update(_summary(res))
    out["df"] = res.df
    if measure in LOG_SCALE:
        out["scale"] = "log"
    if mods:
        X, names = moderator_matrix(rows, header, mods)
        try:
            reg = rma(es.yi, es.vi, X, method=method, test=test, mod_names=names)  # type: ignore[arg-type]
        except InputError as exc:
            raise MetaInputError(f"meta-regression: {exc}") from exc
        out["coefficients"] = coefficient_rows(reg.coefficients)
        out["QM"] = reg.QM
        out["QM_p"] = reg.QM_p
        out["QM_df"] = list(reg.QM_df)
        out["R2"] = reg.R2
        out["residual"] = {"tau2": reg.tau2, "I2": reg.I2, "H2": reg.H2, "QE": reg.QE, "QE_p": reg.QE_p}
    if egger:
        if res.k < 3:
            raise MetaInputError("Egger's test needs at least 3 studies")
        eg = regtest(res)
        out["egger"] = {"z": eg.stat, "p": eg.p, "df": eg.df, "limit_estimate": eg.limit_estimate}
    tf = None
    if fill:
        tf = trimfill(res)
        out["trimfill"] = {"k0": tf.k0, "side": tf.side, "estimate": tf.estimate}
    if loo:
        if res.k < 3:
            raise MetaInputError("leave-one-out needs at least 3 studies")
        out["leave1out"] = [
            {
                "omitted": labels[r.omitted],
                "estimate": r.estimate,
                "se": r.se,
                "ci_lb": r.ci_lb,
                "ci_ub": r.ci_ub,
                "p": r.p,
                "tau2": r.tau2,
                "I2": r.I2,
                "Q": r.Q,
            }
            for r in leave1out(res)
        ]
    return out, res, tf, labels


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    if x != 0 and (abs(x) < 10 ** (-digits) or abs(x) >= 1e6):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}f}"


def _print_tables(out: dict[str, Any]) -> None:
    scale = " (log scale)" if out.get("scale") == "log" else ""
    table = Table(title=f"{out['measure']}{scale}, {out['method']} model, {out['test']} test, k = {out['k']}")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    table.add_row(
        "estimate [95% CI]", f"{_fmt(out['estimate'])} [{_fmt(out['ci_lb'])}, {_fmt(out['ci_ub'])}]"
    )
    table.add_row("se / p", f"{_fmt(out['se'])} / {_fmt(out['p'])}")
    table.add_row("95% prediction interval", f"[{_fmt(out['pi_lb'])}, {_fmt(out['pi_ub'])}]")
    ci = out["tau2_ci"]
    tau2 = _fmt(out["tau2"]) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")
    table.add_row("tau² [95% CI]", tau2)
    table.add_row("I² / H²", f"{out['I2']:.1f}% / {_fmt(out['H2'], 2)}")
    table.add_row("Q (p)", f"{_fmt(out['Q'], 2)} ({_fmt(out['Q_p'])})")
    if "egger" in out:
        table.add_row("Egger test stat (p)", f"{_fmt(out['egger']['z'])} ({_fmt(out['egger']['p'])})")
    if "trimfill" in out:
        tf = out["trimfill"]
        table.add_row(
            "trim-and-fill", f"{tf['k0']} filled on the {tf['side']}, estimate {_fmt(tf['estimate'])}"
        )
    console.print(table)
    if "coefficients" in out:
        reg = Table(
            title=f"Meta-regression: QM = {_fmt(out['QM'], 2)} (p = {_fmt(out['QM_p'])}), R² = "
            + ("-" if out["R2"] is None else f"{out['R2']:.1f}%")
        )
        for col in ("coefficient", "estimate", "se", "95% CI", "p"):
            reg.add_column(col, justify="left" if col == "coefficient" else "right")
        for c in out["coefficients"]:
            reg.add_row(
                c["name"],
                _fmt(c["estimate"]),
                _fmt(c["se"]),
                f"[{_fmt(c['ci_lb'])}, {_fmt(c['ci_ub'])}]",
                _fmt(c["p"]),
            )
        console.print(reg)
    if "leave1out" in out:
        loo = Table(title="Leave one out")
        for col in ("omitted", "estimate", "95% CI", "tau²", "I²"):
            loo.add_column(col, justify="left" if col == "omitted" else "right")
        for r in out["leave1out"]:
            loo.add_row(
                r["omitted"],
                _fmt(r["estimate"]),
                f"[{_fmt(r['ci_lb'])}, {_fmt(r['ci_ub'])}]",
                _fmt(r["tau2"]),
                f"{r['I2']:.1f}%",
            )
        console.print(loo)


def meta(
    file: Annotated[Path, typer.Argument(help="CSV with one study per row (metafor column names).")],
    measure: Annotated[
        MeasureChoice | None, typer.Option("--measure", help="Effect size to compute (not with --random).")
    ] = None,
    method: Annotated[
        MethodChoice,
        typer.Option("--method", help="τ² estimator (EE: common effect); REML or ML with --random."),
    ] = MethodChoice.REML,
    test: Annotated[
        TestChoice, typer.Option("--test", help="z (Wald) or knha (Knapp–Hartung).")
    ] = TestChoice.z,
    mods: Annotated[str | None, typer.Option("--mods", help="Moderator columns, comma-separated.")] = None,
    label: Annotated[str | None, typer.Option("--label", help="Column with study labels.")] = None,
    egger: Annotated[bool, typer.Option("--egger", help="Egger's regression test.")] = False,
    fill: Annotated[bool, typer.Option("--trimfill", help="Trim-and-fill (L0).")] = False,
    loo: Annotated[bool, typer.Option("--leave1out", help="Leave-one-out estimates.")] = False,
    forest: Annotated[Path | None, typer.Option("--forest", help="Write a forest plot (SVG).")] = None,
    funnel: Annotated[Path | None, typer.Option("--funnel", help="Write a funnel plot (SVG).")] = None,
    as_json: JsonOption = False,
    yi: Annotated[str | None, typer.Option("--yi", help="Column of effect sizes (with --random).")] = None,
    vi: Annotated[
        str | None, typer.Option("--vi", help="Column of sampling variances (with --random).")
    ] = None,
    random: Annotated[
        str | None,
        typer.Option(
            "--random", help="Nested random effects OUTER/INNER (e.g. study/outcome): multilevel model."
        ),
    ] = None,
) -> None:
    """Meta-analyse the studies in FILE (metafor semantics; numbers checked against metafor).

    Without --mods the results are those of the pooled model. With --mods they stay the pooled
    model's, and `coefficients`, `QM`, `R2` (percent of τ² explained) and `residual`
    heterogeneity come from the meta-regression (intercept first).

    With --random OUTER/INNER (and --yi, --vi) the model is metafor's rma.mv with random
    = ~ 1 | OUTER/INNER: `sigma2` lists the outer then the inner variance component, each with
    its profile-likelihood CI, and `robust` holds CR2 cluster-robust inference by OUTER.
    """
    from mscatlas.stats.meta_plots import forest_plot, funnel_plot

    if random is not None or yi is not None or vi is not None:
        _multilevel(file, yi, vi, random, method.value, mods, measure, as_json)
        return
    if measure is None:
        _fail(file, "--measure is required (or --yi, --vi and --random for a multilevel model)")
    try:
        out, res, tf, labels = _analyse(
            file, measure.value, method.value, test.value, mods, label, egger, fill, loo
        )
    except MetaInputError as exc:
        _fail(file, str(exc))
    xlabel = f"{measure.value}{' (log scale)' if measure.value in LOG_SCALE else ''}"
    if forest is not None:
        forest.write_text(forest_plot(res, labels, xlabel=xlabel), encoding="utf-8")
    if funnel is not None:
        funnel.write_text(funnel_plot(res, tf, xlabel=xlabel), encoding="utf-8")
    if as_json:
        print_json(out)
    else:
        _print_tables(out)
        for path in (forest, funnel):
            if path is not None:
                console.print(f"wrote {path}")


def _fail(file: Path, message: str) -> NoReturn:
    fail(f"{file}: {message}", detail={"file": str(file)})


def _multilevel(
    file: Path,
    yi: str | None,
    vi: str | None,
    random: str | None,
    method: str,
    mods: str | None,
    measure: MeasureChoice | None,
    as_json: bool,
) -> None:
    from mscatlas.cli.meta_mv import multilevel_json, print_multilevel

    if random is None or yi is None or vi is None or measure is not None:
        _fail(file, "a multilevel model takes --yi COL --vi COL --random OUTER/INNER (and no --measure)")
    try:
        out = multilevel_json(file, yi, vi, random, method, mods)
    except MetaInputError as exc:
        _fail(file, str(exc))
    if as_json:
        print_json(out)
    else:
        print_multilevel(out, console)
