"""Every number of the engine against R's metafor (3.8) on metafor's classic datasets.

The reference file tests/data/metafor_reference.json and the input CSVs under
tests/data/metafor/ are written by validation/metafor_reference.R (run it to regenerate; it
records the R and metafor versions it used). No R is needed here.

Tolerances (relative, with a tiny absolute floor for values that are exactly 0):
- effect sizes and closed-form fits (EE, DL, HE, HS, SJ): both sides evaluate the same
  formulas in double precision, so only rounding differs: 1e-9.
- iterative τ² (ML, REML, EB, PM) and everything that depends on it (weights, CIs, I², trim-
  and-fill's inner fits): the reference was solved with metafor's convergence threshold set to
  1e-12 and our root finder stops at ~1e-13, so 1e-7 relative leaves room only for
  conditioning. Fisher scoring stops once τ² moves by less than 1e-12, which can leave an
  absolute error of a few 1e-12 (and a τ² of 1e-13 where the exact answer is 0), so these
  comparisons also allow 1e-10 absolute.
- meta-regression on calendar year: XᵀWX has a condition number near 1e12 (bcg, RD), so two
  correct solvers (metafor's Cholesky, our inverse) differ by ~1e-9 relative: 1e-7.
- Q-profile CI of τ²: a root of Q(τ²) − χ² quantile on each side, both solved to 1e-12: 1e-7.
- metafor under its *default* settings stops Fisher scoring when τ² changes by < 1e-5 and
  solves PM with uniroot's tolerance 1.2e-4; those numbers are compared at 5e-4 absolute, for
  the data sets whose sampling variances are well above that stopping rule (risk differences,
  with variances near 1e-4, are only converged to tens of percent by metafor's defaults and
  are compared with the tight reference only).
- I² is a percentage: compared as a proportion (I²/100), so the absolute floor means the same
  as for τ² (metafor leaves τ² ~ 1e-12 where the boundary answer is 0, i.e. I² ~ 1e-9 %).
"""

from __future__ import annotations

import csv
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mscatlas.stats import escalc, leave1out, regtest, rma, trimfill

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "metafor_reference.json").read_text())

CLOSED_FORM = {"EE", "DL", "HE", "HS", "SJ"}
RTOL_CLOSED = 1e-9
RTOL_ITERATIVE = 1e-7
RTOL_TAU2_CI = 1e-7
RTOL_METAREG = 1e-7
ATOL = 1e-12  # floor for quantities that are 0 (τ² truncated at 0, I² = 0, ...)
ATOL_ITERATIVE = 1e-10
ATOL_METAFOR_DEFAULTS = 5e-4


@cache
def read_csv(name: str) -> dict[str, np.ndarray]:
    with (DATA / "metafor" / name).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    cols: dict[str, np.ndarray] = {}
    for key in rows[0]:
        try:
            cols[key] = np.array([float(r[key]) if r[key] != "" else np.nan for r in rows])
        except ValueError:
            continue  # a text column (study labels)
    return cols


def effects(case: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    es = escalc(case["measure"], read_csv(case["file"]))
    return es.yi, es.vi


def close(actual: Any, expected: Any, rtol: float, what: str) -> None:
    atol = ATOL if rtol == RTOL_CLOSED else ATOL_ITERATIVE
    expected = np.asarray(expected, dtype=float)
    np.testing.assert_allclose(np.asarray(actual, dtype=float), expected, rtol=rtol, atol=atol, err_msg=what)


def compare(key: str, actual: Any, expected: Any, rtol: float) -> None:
    if key.endswith("I2") or key == "R2":
        close(np.asarray(actual) / 100, np.asarray(expected, dtype=float) / 100, rtol, key)
    else:
        close(actual, expected, rtol, key)


FIT_IDS = [(cid, fid) for cid, case in REFERENCE["cases"].items() for fid in case["fits"]]
# metafor's confint gives no τ² interval for a common-effect (EE) model: there is no τ².
TAU2_CI_IDS = [(cid, fid) for cid, fid in FIT_IDS if not fid.startswith("EE_")]
METAREG_IDS = [(cid, fid) for cid, mr in REFERENCE["metareg"].items() for fid in mr["fits"]]


def test_reference_covers_every_estimator_and_test() -> None:
    methods = {fid.split("_")[0] for _, fid in FIT_IDS}
    tests = {fid.split("_")[1] for _, fid in FIT_IDS}
    measures = {case["measure"] for case in REFERENCE["cases"].values()}
    assert methods == {"EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"}
    assert tests == {"z", "knha"}
    assert measures == {"RR", "OR", "RD", "MD", "SMD", "ROM", "GEN"}
    assert {fid for _, fid in METAREG_IDS} == {fid for _, fid in FIT_IDS}


@pytest.mark.parametrize("case_id", sorted(REFERENCE["cases"]))
def test_effect_sizes(case_id: str) -> None:
    case = REFERENCE["cases"][case_id]
    yi, vi = effects(case)
    close(yi, case["yi"], RTOL_CLOSED, "yi")
    close(vi, case["vi"], RTOL_CLOSED, "vi")


@pytest.mark.parametrize(("case_id", "fit_id"), FIT_IDS)
def test_model(case_id: str, fit_id: str) -> None:
    case = REFERENCE["cases"][case_id]
    ref = case["fits"][fit_id]
    method, test = fit_id.split("_")
    rtol = RTOL_CLOSED if method in CLOSED_FORM else RTOL_ITERATIVE
    yi, vi = effects(case)
    res = rma(yi, vi, method=method, test=test)
    pred = res.predict()
    got = {
        "estimate": res.estimate,
        "se": res.se[0],
        "stat": res.stat[0],
        "p": res.pval[0],
        "ci_lb": res.ci_lb[0],
        "ci_ub": res.ci_ub[0],
        "pi_lb": pred.pi_lb,
        "pi_ub": pred.pi_ub,
        "tau2": res.tau2,
        "I2": res.I2,
        "H2": res.H2,
        "Q": res.QE,
        "Q_p": res.QE_p,
    }
    if method == "EE":
        # metafor reports no prediction interval for a common-effect model; with τ² = 0 ours
        # is the confidence interval, which is what metafor's formula would give.
        assert ref["pi_lb"] is None and ref["pi_ub"] is None
        ref = {**ref, "pi_lb": ref["ci_lb"], "pi_ub": ref["ci_ub"]}
    for key, value in got.items():
        compare(key, value, ref[key], rtol)


@pytest.mark.parametrize(("case_id", "fit_id"), TAU2_CI_IDS)
def test_tau2_qprofile_ci(case_id: str, fit_id: str) -> None:
    case = REFERENCE["cases"][case_id]
    ref = case["fits"][fit_id]
    method, test = fit_id.split("_")
    yi, vi = effects(case)
    lb, ub = rma(yi, vi, method=method, test=test).tau2_ci()
    close(lb, ref["tau2_ci_lb"], RTOL_TAU2_CI, "tau2_ci_lb")
    close(ub, ref["tau2_ci_ub"], RTOL_TAU2_CI, "tau2_ci_ub")


@pytest.mark.parametrize(("case_id", "fit_id"), FIT_IDS)
def test_egger_and_trimfill(case_id: str, fit_id: str) -> None:
    case = REFERENCE["cases"][case_id]
    ref = case["fits"][fit_id]
    method, test = fit_id.split("_")
    rtol = RTOL_CLOSED if method in CLOSED_FORM else RTOL_ITERATIVE
    yi, vi = effects(case)
    res = rma(yi, vi, method=method, test=test)
    egger = regtest(res)
    close(egger.stat, ref["egger_stat"], rtol, "egger stat")
    close(egger.p, ref["egger_p"], rtol, "egger p")
    tf = trimfill(res)
    assert tf.k0 == ref["trimfill_k0"]
    assert tf.side == ref["trimfill_side"]
    close(tf.estimate, ref["trimfill_estimate"], rtol, "trimfill estimate")


@pytest.mark.parametrize(("case_id", "fit_id"), FIT_IDS)
def test_leave1out(case_id: str, fit_id: str) -> None:
    case = REFERENCE["cases"][case_id]
    ref = case["fits"][fit_id]
    method, test = fit_id.split("_")
    rtol = RTOL_CLOSED if method in CLOSED_FORM else RTOL_ITERATIVE
    yi, vi = effects(case)
    rows = leave1out(rma(yi, vi, method=method, test=test))
    close([r.estimate for r in rows], ref["l1o_estimate"], rtol, "l1o estimate")
    close([r.se for r in rows], ref["l1o_se"], rtol, "l1o se")
    if method == "EE":
        assert ref["l1o_tau2"] is None  # metafor omits τ² of common-effect fits; ours is 0
        assert all(r.tau2 == 0 for r in rows)
    else:
        close([r.tau2 for r in rows], ref["l1o_tau2"], rtol, "l1o tau2")
    compare("l1o_I2", [r.I2 for r in rows], ref["l1o_I2"], rtol)
    close([r.Q for r in rows], ref["l1o_Q"], rtol, "l1o Q")


@pytest.mark.parametrize(("case_id", "fit_id"), METAREG_IDS)
def test_meta_regression(case_id: str, fit_id: str) -> None:
    mr = REFERENCE["metareg"][case_id]
    ref = mr["fits"][fit_id]
    case = REFERENCE["cases"][case_id]
    method, test = fit_id.split("_")
    rtol = RTOL_METAREG
    yi, vi = effects(case)
    table = read_csv(case["file"])
    mods = np.column_stack([table[m] for m in mr["mods"]])
    res = rma(yi, vi, mods, method=method, test=test, mod_names=mr["mods"])
    assert res.names == ("intrcpt", *mr["mods"])
    got = {
        "beta": res.beta,
        "se": res.se,
        "stat": res.stat,
        "p": res.pval,
        "ci_lb": res.ci_lb,
        "ci_ub": res.ci_ub,
        "QM": res.QM,
        "QM_p": res.QM_p,
        "tau2": res.tau2,
        "I2": res.I2,
        "H2": res.H2,
        "QE": res.QE,
        "QE_p": res.QE_p,
    }
    for key, value in got.items():
        compare(key, value, ref[key], rtol)
    assert res.R2 is not None
    compare("R2", res.R2, ref["R2"], rtol)


DEFAULTS_IDS = sorted(cid for cid in REFERENCE["defaults"] if min(REFERENCE["cases"][cid]["vi"]) > 1e-3)


def test_default_convergence_cases_are_most_of_the_reference() -> None:
    assert len(DEFAULTS_IDS) >= 6


@pytest.mark.parametrize("case_id", DEFAULTS_IDS)
@pytest.mark.parametrize("method", ["ML", "REML", "EB", "PM"])
def test_against_metafor_default_convergence(case_id: str, method: str) -> None:
    ref = REFERENCE["defaults"][case_id][method]
    yi, vi = effects(REFERENCE["cases"][case_id])
    res = rma(yi, vi, method=method)
    np.testing.assert_allclose(res.tau2, ref["tau2"], rtol=0, atol=ATOL_METAFOR_DEFAULTS)
    np.testing.assert_allclose(res.estimate, ref["estimate"], rtol=0, atol=ATOL_METAFOR_DEFAULTS)
