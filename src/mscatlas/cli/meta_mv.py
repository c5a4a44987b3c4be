"""`mscatlas meta FILE --yi COL --vi COL --random OUTER/INNER`: the multilevel model.

The pooled model (no moderators) gives the top-level numbers; with ``--mods`` the
coefficients, ``QM`` and the residual components come from the meta-regression, as for the
univariate command. Every fit also reports the profile-likelihood CI of each variance
component and CR2 cluster-robust inference with the outer level as the cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mscatlas.cli.table_io import (
    MetaInputError,
    coefficient_rows,
    moderator_matrix,
    numeric_column,
    read_table,
)
from mscatlas.stats import InputError
from mscatlas.stats.multilevel import MV_METHODS, MultilevelResult, rma_mv

__all__ = ["multilevel_json", "parse_random", "print_multilevel"]


def parse_random(spec: str) -> tuple[str, str]:
    """``outer/inner`` -> the two column names."""
    parts = [p.strip() for p in spec.split("/")]
    if len(parts) != 2 or not all(parts):
        raise MetaInputError(f"--random {spec!r}: expected two columns as OUTER/INNER, e.g. district/school")
    return parts[0], parts[1]


def _robust(fit: MultilevelResult) -> dict[str, Any]:
    rob = fit.robust()
    return {
        "cluster": "outer",
        "n_clusters": rob.n_clusters,
        "se": [float(x) for x in rob.se],
        "df": [float(x) for x in rob.df],
        "ci_lb": [float(x) for x in rob.ci_lb],
        "ci_ub": [float(x) for x in rob.ci_ub],
        "p": [float(x) for x in rob.pval],
        "QM": rob.QM,
        "QM_df": list(rob.QM_df),
        "QM_p": rob.QM_p,
    }


def multilevel_json(
    path: Path, yi: str, vi: str, random: str, method: str, mods: str | None
) -> dict[str, Any]:
    """Fit the model on FILE and return the JSON document `mscatlas meta --random` prints."""
    if method not in MV_METHODS:
        raise MetaInputError(f"--method {method}: a multilevel model is fitted by {' or '.join(MV_METHODS)}")
    outer, inner = parse_random(random)
    header, rows = read_table(path)
    missing = [c for c in (yi, vi, outer, inner) if c not in header]
    if missing:
        raise MetaInputError(f"missing column(s) {', '.join(missing)} (the file has: {', '.join(header)})")
    y, v = numeric_column(rows, yi), numeric_column(rows, vi)
    outer_labels = [row.get(outer, "") for row in rows]
    inner_labels = [row.get(inner, "") for row in rows]
    try:
        fit = rma_mv(y, v, outer_labels, inner_labels, method=method)
    except InputError as exc:
        raise MetaInputError(str(exc)) from exc
    out: dict[str, Any] = {
        "model": "multilevel",
        "method": method,
        "random": {"outer": outer, "inner": inner},
        "k": fit.k,
        "n_levels": list(fit.n_levels),
        "estimate": fit.estimate,
        "se": float(fit.se[0]),
        "zval": float(fit.zval[0]),
        "p": float(fit.pval[0]),
        "ci_lb": float(fit.ci_lb[0]),
        "ci_ub": float(fit.ci_ub[0]),
        "sigma2": list(fit.sigma2),
        "sigma2_ci": [list(fit.sigma2_ci(i)) for i in range(len(fit.sigma2))],
        "QE": fit.QE,
        "QE_p": fit.QE_p,
        "logLik": fit.logLik,
        "robust": _robust(fit),
    }
    if mods:
        X, names = moderator_matrix(rows, header, mods)
        try:
            reg = rma_mv(y, v, outer_labels, inner_labels, X, method=method, mod_names=names)
        except InputError as exc:
            raise MetaInputError(f"meta-regression: {exc}") from exc
        out["coefficients"] = coefficient_rows(reg.coefficients)
        out["QM"] = reg.QM
        out["QM_p"] = reg.QM_p
        out["QM_df"] = reg.QM_df
        out["residual"] = {
            "sigma2": list(reg.sigma2),
            "QE": reg.QE,
            "QE_p": reg.QE_p,
            "logLik": reg.logLik,
            "robust": _robust(reg),
        }
    return out


def print_multilevel(out: dict[str, Any], console: Console) -> None:
    r = out["random"]
    table = Table(
        title=f"Multilevel model ({r['inner']} within {r['outer']}), {out['method']}, k = {out['k']}"
    )
    table.add_column("statistic")
    table.add_column("value", justify="right")
    table.add_row("estimate [95% CI]", f"{out['estimate']:.4f} [{out['ci_lb']:.4f}, {out['ci_ub']:.4f}]")
    table.add_row("se / p", f"{out['se']:.4f} / {out['p']:.4g}")
    for name, s2, (lo, hi) in zip((r["outer"], r["inner"]), out["sigma2"], out["sigma2_ci"], strict=True):
        table.add_row(f"σ² {name} [profile 95% CI]", f"{s2:.4f} [{lo:.4f}, {hi:.4f}]")
    table.add_row("QE (p)", f"{out['QE']:.2f} ({out['QE_p']:.4g})")
    table.add_row("log-likelihood", f"{out['logLik']:.4f}")
    rob = out["robust"]
    table.add_row(
        f"CR2 robust se, df ({rob['n_clusters']} clusters)", f"{rob['se'][0]:.4f}, {rob['df'][0]:.2f}"
    )
    console.print(table)
    if "coefficients" in out:
        reg = Table(title=f"Meta-regression: QM = {out['QM']:.2f} (p = {out['QM_p']:.4g})")
        for col in ("coefficient", "estimate", "se", "95% CI", "p", "CR2 se", "CR2 p"):
            reg.add_column(col, justify="left" if col == "coefficient" else "right")
        rrob = out["residual"]["robust"]
        for i, c in enumerate(out["coefficients"]):
            reg.add_row(
                c["name"],
                f"{c['estimate']:.4f}",
                f"{c['se']:.4f}",
                f"[{c['ci_lb']:.4f}, {c['ci_ub']:.4f}]",
                f"{c['p']:.4g}",
                f"{rrob['se'][i]:.4f}",
                f"{rrob['p'][i]:.4g}",
            )
        console.print(reg)
