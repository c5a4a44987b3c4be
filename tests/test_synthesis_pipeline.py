"""One synthesis pipeline (issue 12, part 4): the CLI, the web and the report render the same
result object, and one seed constant serves them all."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mscatlas.kb.shipped import shipped_dataset
from mscatlas.stats.harmonize import harmonize
from mscatlas.stats.moderators import SEED, fit_moderator_model, leave_one_study_out
from mscatlas.stats.synthesis import run_synthesis

SRC = Path(__file__).resolve().parents[1] / "src" / "mscatlas"


@pytest.fixture(scope="module")
def result():
    return run_synthesis(shipped_dataset().evidence)


def test_pipeline_matches_its_steps_run_by_hand(result) -> None:
    items = harmonize(shipped_dataset().evidence)
    assert [h.id for h in result.items] == [h.id for h in items]
    assert result.seed == SEED
    assert result.effects == fit_moderator_model(items, seed=SEED).effects()
    assert result.validation.to_dict() == leave_one_study_out(items, seed=SEED).to_dict()
    assert result.verdict and "baseline" in result.verdict


def test_validation_is_computed_once(result) -> None:
    assert result.validation is result.validation


def test_cli_json_is_the_result_object() -> None:
    from mscatlas.cli import app
    from mscatlas.kb.store import Store

    out = CliRunner().invoke(app, ["synthesize", "--json"])  # the default store: the shipped data
    assert out.exit_code == 0, out.output
    expected = run_synthesis(Store.open(None).dataset().evidence).to_dict()
    assert json.loads(out.stdout) == json.loads(json.dumps(expected))


def test_report_and_web_use_the_pipeline() -> None:
    """Neither the report, the web nor the CLI fits or validates the model itself."""
    for path in ("report/build.py", "web/synthesis.py", "cli/synthesis.py"):
        text = (SRC / path).read_text(encoding="utf-8")
        assert "run_synthesis" in text, path
        assert "fit_moderator_model(" not in text.replace("``fit_moderator_model(", ""), path
        assert "leave_one_study_out(" not in text, path


def test_one_seed_constant() -> None:
    """The synthesis seed is written once; the sensitivity analysis names its own (SEED in
    sim/sensitivity.py), and nothing else repeats either number."""
    seeded = [
        f"{p.relative_to(SRC)}:{i}"
        for p in SRC.rglob("*.py")
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"\b2024\b", line) and "seed" in line.lower()
    ]
    assert sorted(s.split(":")[0] for s in seeded) == ["sim/sensitivity.py", "stats/moderator_fit.py"], seeded


def test_bad_level_is_refused() -> None:
    with pytest.raises(ValueError, match="level 'tissue'"):
        run_synthesis([], level="tissue")  # type: ignore[arg-type]
