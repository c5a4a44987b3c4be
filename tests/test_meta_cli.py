"""`mscatlas meta`: JSON keys, agreement with the engine's metafor reference, plots, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mscatlas.cli.meta import meta

# The command is registered on the main app by `app.command("meta")(meta)` in mscatlas.cli;
# these tests mount it on an app of their own so they do not depend on that line.
app = typer.Typer()
app.command("meta")(meta)
app.command("noop", hidden=True)(lambda: None)  # a second command keeps "meta" a subcommand

DATA = Path(__file__).parent / "data"
BCG = DATA / "metafor" / "bcg.csv"
NORMAND = DATA / "metafor" / "normand1999.csv"
MOLLOY = DATA / "metafor" / "molloy2014.csv"
REFERENCE = json.loads((DATA / "metafor_reference.json").read_text())

runner = CliRunner()


def run_json(*args: str) -> dict:
    result = runner.invoke(app, ["meta", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_keys_and_values_match_metafor() -> None:
    out = run_json(str(BCG), "--measure", "RR", "--method", "REML", "--egger", "--trimfill")
    ref = REFERENCE["cases"]["bcg_RR"]["fits"]["REML_z"]
    for key in (
        "k",
        "estimate",
        "se",
        "ci_lb",
        "ci_ub",
        "pi_lb",
        "pi_ub",
        "tau2",
        "tau2_ci",
        "I2",
        "H2",
        "Q",
        "Q_p",
    ):
        assert key in out
    assert out["k"] == 13
    assert out["scale"] == "log"
    for key in ("estimate", "se", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "tau2", "I2", "H2", "Q", "Q_p"):
        assert out[key] == pytest.approx(ref[key], rel=1e-6), key
    assert out["tau2_ci"] == pytest.approx([ref["tau2_ci_lb"], ref["tau2_ci_ub"]], rel=1e-6)
    assert out["egger"]["z"] == pytest.approx(ref["egger_stat"], rel=1e-6)
    assert out["egger"]["p"] == pytest.approx(ref["egger_p"], rel=1e-6)
    assert out["trimfill"]["k0"] == ref["trimfill_k0"]
    assert out["trimfill"]["estimate"] == pytest.approx(ref["trimfill_estimate"], rel=1e-6)


def test_knha_meta_regression_json() -> None:
    out = run_json(str(BCG), "--measure", "OR", "--method", "DL", "--test", "knha", "--mods", "ablat,year")
    ref = REFERENCE["metareg"]["bcg_OR"]["fits"]["DL_knha"]
    assert [c["name"] for c in out["coefficients"]] == ["intrcpt", "ablat", "year"]
    assert [c["estimate"] for c in out["coefficients"]] == pytest.approx(ref["beta"], rel=1e-6)
    assert [c["se"] for c in out["coefficients"]] == pytest.approx(ref["se"], rel=1e-6)
    assert [c["p"] for c in out["coefficients"]] == pytest.approx(ref["p"], rel=1e-6)
    assert out["QM"] == pytest.approx(ref["QM"], rel=1e-6)
    assert out["R2"] == pytest.approx(ref["R2"], rel=1e-6)
    assert out["residual"]["tau2"] == pytest.approx(ref["tau2"], rel=1e-6)
    assert out["df"] == 12  # the pooled model's t reference: k - 1


def test_text_moderator_is_coded_against_its_first_level(tmp_path: Path) -> None:
    lines = BCG.read_text().splitlines()
    rows = [lines[0] + ",alloc"] + [
        line + ("," + ("random" if i % 2 else "systematic")) for i, line in enumerate(lines[1:])
    ]
    path = tmp_path / "bcg_alloc.csv"
    path.write_text("\n".join(rows) + "\n")
    out = run_json(str(path), "--measure", "RR", "--mods", "alloc")
    assert [c["name"] for c in out["coefficients"]] == ["intrcpt", "alloc[systematic]"]


@pytest.mark.parametrize(
    ("path", "measure", "case"), [(NORMAND, "SMD", "normand1999_SMD"), (MOLLOY, "GEN", "molloy2014_GEN")]
)
def test_other_measures(path: Path, measure: str, case: str) -> None:
    out = run_json(str(path), "--measure", measure, "--method", "PM", "--leave1out")
    ref = REFERENCE["cases"][case]["fits"]["PM_z"]
    assert out["estimate"] == pytest.approx(ref["estimate"], rel=1e-6)
    assert [r["estimate"] for r in out["leave1out"]] == pytest.approx(ref["l1o_estimate"], rel=1e-6)


def test_table_output_and_svg_plots(tmp_path: Path) -> None:
    forest, funnel = tmp_path / "forest.svg", tmp_path / "funnel.svg"
    result = runner.invoke(
        app,
        ["meta", str(BCG), "--measure", "RR", "--trimfill", "--forest", str(forest), "--funnel", str(funnel)],
    )
    assert result.exit_code == 0, result.output
    assert "-0.7145" in result.stdout
    assert "trim-and-fill" in result.stdout
    for path in (forest, funnel):
        svg = path.read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert re.findall(r"https?://[^\"']*", svg) == ["http://www.w3.org/2000/svg"]  # namespace only
    # Labels default to the 'trial' column; --label picks another one.
    assert "Aronson" not in forest.read_text()
    result = runner.invoke(
        app, ["meta", str(BCG), "--measure", "RR", "--label", "author", "--forest", str(forest)]
    )
    assert result.exit_code == 0, result.output
    assert "Aronson" in forest.read_text()


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "studies.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("study,ai,bi,ci\nA,1,2,3\nB,2,3,4\n", ["--measure", "RR"], "missing column(s) di"),
        ("ai,bi,ci,di\n1,2,3,4\n2,-3,4,5\n", ["--measure", "OR"], "row 2: column 'bi' is negative"),
        (
            "m1i,sd1i,n1i,m2i,sd2i,n2i\n1,1,10,2,1,10\n1,-1,10,2,1,10\n",
            ["--measure", "SMD"],
            "row 2: column 'sd1i' is negative",
        ),
        ("yi,vi\n0.1,0.01\n", ["--measure", "GEN"], "at least 2 studies"),
        ("yi,vi\n0.1,0.01\n0.2,\n", ["--measure", "GEN"], "row 2, column 'vi': value is empty"),
        ("yi,vi\n0.1,0.01\nabc,0.02\n", ["--measure", "GEN"], "row 2, column 'yi': 'abc' is not a number"),
        (
            "yi,vi\n0.1,0.01\n0.2,0.02\n0.3,0.03\n",
            ["--measure", "GEN", "--mods", "x"],
            "moderator column 'x'",
        ),
    ],
)
def test_bad_input_names_row_and_column(tmp_path: Path, text: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["meta", str(write_csv(tmp_path, text)), *args])
    assert result.exit_code == 1
    assert message in " ".join(result.stderr.split())


def test_unknown_method_is_rejected() -> None:
    result = runner.invoke(app, ["meta", str(BCG), "--measure", "RR", "--method", "XX"])
    assert result.exit_code != 0
