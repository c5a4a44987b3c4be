"""The multilevel model against R: metafor 3.8 ``rma.mv(random = ~ 1 | outer/inner)``, its
``confint`` and ``robust(..., clubSandwich = TRUE)`` (clubSandwich 0.5.8), on metafor's
dat.konstantopoulos2011, dat.assink2016 and dat.bornmann2007, with and without moderators,
REML and ML.

Reference: tests/data/metafor_rma_mv_reference.json, inputs tests/data/metafor/*_mv.csv,
both written by validation/metafor_rma_mv_reference.R (no R is needed here).

Tolerances (relative):
- σ²: metafor's nlminb stops when the objective changes by less than its rel.tol (the script
  tightens it to between 1e-12 and 1e-10, the tightest nlminb accepts for each fit). An
  objective off by δ leaves the parameters off by about √δ, so R's σ² are off by up to ~1e-6
  relative (the largest seen is 1.2e-6); we solve the score equations to 1e-13: 5e-6.
- everything computed from σ² (β, se, z, p, QM, the CR2 covariance, Satterthwaite df, HTZ):
  first order in σ², observed up to 5e-7: 2e-6.
- p-values: a tail probability's relative error is about z² times that of z (z up to 5
  here): 2e-5.
- logLik: second order in the σ² error at the maximum: 1e-10.
- QE does not depend on σ²; both sides evaluate the same formula: 1e-12.
- profile-likelihood bounds: both sides solve the root to ~1e-12 and the inner
  re-maximisation absorbs the optimiser's error: 1e-9 (observed ~1e-11).
"""

from __future__ import annotations

import csv
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from mscatlas.cli.meta import meta
from mscatlas.stats.effect_sizes import InputError
from mscatlas.stats.multilevel import MultilevelResult, rma_mv

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "metafor_rma_mv_reference.json").read_text())
FITS = REFERENCE["fits"]

RTOL_SIGMA2 = 5e-6
RTOL_DERIVED = 2e-6
RTOL_P = 2e-5
RTOL_LOGLIK = 1e-10
RTOL_QE = 1e-12
RTOL_PROFILE = 1e-9


@cache
def rows(name: str) -> list[dict[str, str]]:
    with (DATA / "metafor" / name).open(newline="") as fh:
        return list(csv.DictReader(fh))


def design(data: list[dict[str, str]], mods: list[str]) -> tuple[np.ndarray | None, list[str] | None]:
    """Moderators coded as R codes a formula: numbers as they are, text as indicators against the
    first level in sorted order, named column+level."""
    cols, names = [], []
    for m in mods:
        values = [r[m] for r in data]
        try:
            cols.append([float(x) for x in values])
            names.append(m)
        except ValueError:
            for level in sorted(set(values))[1:]:
                cols.append([1.0 if x == level else 0.0 for x in values])
                names.append(f"{m}{level}")
    return (np.array(cols).T, names) if cols else (None, None)


@cache
def fitted(key: str) -> MultilevelResult:
    ref = FITS[key]
    data = rows(ref["file"])
    X, names = design(data, ref["mods"])
    return rma_mv(
        [float(r["yi"]) for r in data],
        [float(r["vi"]) for r in data],
        [r[ref["outer"]] for r in data],
        [r[ref["inner"]] for r in data],
        X,
        method=ref["method"],
        mod_names=names,
    )


def close(actual: Any, expected: Any, rtol: float, what: str) -> None:
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=0, err_msg=what
    )


def first(value: Any) -> float:
    """The first element (the R script writes a length-1 vector as a bare number)."""
    return float(np.atleast_1d(np.asarray(value, dtype=float))[0])


KEYS = sorted(FITS)


def test_reference_covers_the_brief() -> None:
    assert REFERENCE["metafor_version"].startswith("3.8")
    datasets = {FITS[k]["file"] for k in KEYS}
    assert {"konstantopoulos2011_mv.csv", "assink2016_mv.csv", "bornmann2007_mv.csv"} <= datasets
    assert {FITS[k]["method"] for k in KEYS} == {"REML", "ML"}
    assert any(FITS[k]["mods"] for k in KEYS) and any(not FITS[k]["mods"] for k in KEYS)


@pytest.mark.parametrize("key", KEYS)
def test_fit_matches_rma_mv(key: str) -> None:
    ref, fit = FITS[key], fitted(key)
    assert list(fit.names) == ref["names"]
    assert fit.k == ref["k"]
    assert list(fit.n_levels) == ref["s_nlevels"]
    close(fit.sigma2, ref["sigma2"], RTOL_SIGMA2, "sigma2")
    close(fit.logLik, ref["logLik"], RTOL_LOGLIK, "logLik")
    # At least as high as metafor's (our optimum is not a worse one).
    assert fit.logLik >= ref["logLik"] - 1e-12 * abs(ref["logLik"])
    close(fit.beta, ref["beta"], RTOL_DERIVED, "beta")
    close(fit.se, ref["se"], RTOL_DERIVED, "se")
    close(fit.zval, ref["zval"], RTOL_DERIVED, "zval")
    close(fit.pval, ref["pval"], RTOL_P, "pval")
    close(fit.ci_lb, ref["ci_lb"], RTOL_DERIVED, "ci_lb")
    close(fit.ci_ub, ref["ci_ub"], RTOL_DERIVED, "ci_ub")
    close(fit.QE, ref["QE"], RTOL_QE, "QE")
    close(fit.QE_p, ref["QE_p"], RTOL_QE, "QE_p")
    close(fit.QM, ref["QM"], RTOL_DERIVED, "QM")
    close(fit.QM_p, ref["QM_p"], RTOL_P, "QM_p")
    close(fit.I2, ref["I2"], RTOL_DERIVED, "multilevel I2 (metafor FAQ formula, computed in R)")


@pytest.mark.parametrize("key", KEYS)
def test_profile_likelihood_cis_match_confint(key: str) -> None:
    ref, fit = FITS[key], fitted(key)
    close(fit.sigma2_ci(0), ref["sigma2_1_ci"], RTOL_PROFILE, "outer sigma2 CI")
    close(fit.sigma2_ci(1), ref["sigma2_2_ci"], RTOL_PROFILE, "inner sigma2 CI")


@pytest.mark.parametrize("key", KEYS)
def test_cr2_robust_matches_clubsandwich(key: str) -> None:
    ref, rob = FITS[key]["robust"], fitted(key).robust()
    p = len(FITS[key]["names"])
    close(rob.vcov.ravel(order="F"), ref["vcov"], RTOL_DERIVED, "CR2 vcov")
    close(rob.se, ref["se"], RTOL_DERIVED, "robust se")
    close(rob.tval, ref["tval"], RTOL_DERIVED, "robust t")
    close(rob.df, ref["df"], RTOL_DERIVED, "Satterthwaite df")
    close(rob.pval, ref["pval"], RTOL_P, "robust p")
    close(rob.ci_lb, ref["ci_lb"], RTOL_DERIVED, "robust ci_lb")
    close(rob.ci_ub, ref["ci_ub"], RTOL_DERIVED, "robust ci_ub")
    close(rob.QM, ref["QM"], RTOL_DERIVED, "HTZ F")
    close(rob.QM_df, ref["QM_df"], RTOL_DERIVED, "HTZ df")
    close(rob.QM_p, ref["QM_p"], RTOL_P, "HTZ p")
    assert rob.vcov.shape == (p, p)


def _dense_reml(fit: MultilevelResult, s1: float, s2: float) -> float:
    """The restricted log-likelihood from its textbook formula with dense matrices, written
    apart from the module (no blocks, no Cholesky), for an independent check."""
    y, v, X = fit.yi, fit.vi, fit.X
    k, p = X.shape
    same = [(g[:, None] == g[None, :]).astype(float) for g in fit.groups]
    M = np.diag(v) + s1 * same[0] + s2 * same[1]
    W = np.linalg.inv(M)
    xtwx = X.T @ W @ X
    beta = np.linalg.solve(xtwx, X.T @ W @ y)
    r = y - X @ beta
    return float(
        -0.5 * (k - p) * np.log(2 * np.pi)
        + 0.5 * np.linalg.slogdet(X.T @ X)[1]
        - 0.5 * np.linalg.slogdet(M)[1]
        - 0.5 * np.linalg.slogdet(xtwx)[1]
        - 0.5 * r @ W @ r
    )


def test_profile_bounds_are_roots_of_the_likelihood_ratio() -> None:
    """Independent of R: at each bound of the outer component, re-maximising the dense
    likelihood over the inner one gives an LRT statistic equal to χ²₁(0.95)."""
    from scipy.optimize import minimize_scalar
    from scipy.stats import chi2

    fit = fitted("konstantopoulos2011_intercept_REML")
    assert _dense_reml(fit, *fit.sigma2) == pytest.approx(fit.logLik, rel=1e-12)
    for bound in fit.sigma2_ci(0):
        best = minimize_scalar(
            lambda s2, b=bound: -_dense_reml(fit, b, s2),
            bounds=(0.0, 1.0),
            method="bounded",
            options={"xatol": 1e-12},
        )
        lrt = -2 * (-best.fun - fit.logLik)
        assert lrt == pytest.approx(chi2.ppf(0.95, 1), rel=1e-8)


def test_grouping_is_nested_inner_labels_repeat_across_outer_groups() -> None:
    """School numbers restart in each district (1, 2, ...): `district/school` must not merge
    school 1 of one district with school 1 of another."""
    fit = fitted("konstantopoulos2011_intercept_REML")
    data = rows("konstantopoulos2011_mv.csv")
    assert len({r["school"] for r in data}) < fit.n_levels[1] == len(data)


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(InputError, match="row 2: the outer grouping value is empty"):
        rma_mv([0.1, 0.2, 0.3], [0.01, 0.01, 0.01], ["a", "", "b"], ["1", "2", "3"])
    with pytest.raises(InputError, match="single group"):
        rma_mv([0.1, 0.2, 0.3], [0.01, 0.01, 0.01], ["a", "a", "a"], ["1", "2", "3"])
    with pytest.raises(ValueError, match="choose one of REML, ML"):
        rma_mv([0.1, 0.2, 0.3], [0.01, 0.01, 0.01], ["a", "b", "b"], ["1", "2", "3"], method="DL")
    fit = fitted("konstantopoulos2011_intercept_REML")
    with pytest.raises(InputError, match="not nested"):
        fit.robust(cluster=np.arange(fit.k) % 2)


# --- the command line -------------------------------------------------------------------
app = typer.Typer()
app.command("meta")(meta)
app.command("noop", hidden=True)(lambda: None)
runner = CliRunner()
CONTRACT = ("estimate", "se", "ci_lb", "ci_ub", "sigma2", "QE", "QE_p", "k", "logLik")


def run_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["meta", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_cli_contract_matches_metafor(method: str) -> None:
    path = str(DATA / "metafor" / "konstantopoulos2011_mv.csv")
    out = run_json(path, "--yi", "yi", "--vi", "vi", "--random", "district/school", "--method", method)
    ref = FITS[f"konstantopoulos2011_intercept_{method}"]
    assert set(CONTRACT) <= set(out)
    assert out["k"] == ref["k"]
    close(out["sigma2"], ref["sigma2"], RTOL_SIGMA2, "sigma2 (outer first)")
    close(out["estimate"], first(ref["beta"]), RTOL_DERIVED, "estimate")
    for key in ("se", "ci_lb", "ci_ub"):
        close(out[key], first(ref[key]), RTOL_DERIVED, key)
    close([out["QE"], out["QE_p"]], [ref["QE"], ref["QE_p"]], RTOL_QE, "QE")
    close(out["logLik"], ref["logLik"], RTOL_LOGLIK, "logLik")
    close(out["sigma2_ci"], [ref["sigma2_1_ci"], ref["sigma2_2_ci"]], RTOL_PROFILE, "profile CIs")
    close(out["robust"]["se"], ref["robust"]["se"], RTOL_DERIVED, "robust se")
    assert "coefficients" not in out and "QM" not in out


def test_cli_with_moderators_matches_metafor() -> None:
    path = str(DATA / "metafor" / "assink2016_mv.csv")
    out = run_json(path, "--yi", "yi", "--vi", "vi", "--random", "study/esid", "--mods", "deltype,year")
    ref = FITS["assink2016_deltype+year_REML"]
    names = [c["name"] for c in out["coefficients"]]
    assert names == ["intrcpt", "deltype[general]", "deltype[overt]", "year"]
    close([c["estimate"] for c in out["coefficients"]], ref["beta"], RTOL_DERIVED, "coefficients")
    close([c["se"] for c in out["coefficients"]], ref["se"], RTOL_DERIVED, "coefficient se")
    close(out["QM"], ref["QM"], RTOL_DERIVED, "QM")
    close(out["residual"]["sigma2"], ref["sigma2"], RTOL_SIGMA2, "residual sigma2")
    close(out["residual"]["robust"]["QM"], ref["robust"]["QM"], RTOL_DERIVED, "HTZ")
    pooled = FITS["assink2016_intercept_REML"]
    close(out["estimate"], first(pooled["beta"]), RTOL_DERIVED, "pooled estimate")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--yi", "yi", "--vi", "vi", "--random", "district"], "expected two columns as OUTER/INNER"),
        (["--yi", "yi", "--vi", "vi", "--random", "district/room"], "missing column(s) room"),
        (["--yi", "yi", "--vi", "vi", "--random", "district/school", "--method", "DL"], "REML or ML"),
        (["--yi", "yi", "--random", "district/school"], "takes --yi COL --vi COL --random"),
    ],
)
def test_cli_bad_input(args: list[str], message: str) -> None:
    path = str(DATA / "metafor" / "konstantopoulos2011_mv.csv")
    result = runner.invoke(app, ["meta", path, *args])
    assert result.exit_code == 1
    assert message in " ".join(result.stderr.split())
