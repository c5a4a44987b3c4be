"""`trials list` and `trials flow`: filters, errors, the trial search flow, and one results gap
shared by the landscape, the listing and the web filter (issue 13 point 2, issue 15 points 3 and 7)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mscatlas.cli import app
from mscatlas.intake.screening import reason_codes
from mscatlas.kb.records import validate_paths
from mscatlas.kb.shipped import shipped_files
from mscatlas.report.translation_section import translation_section_context
from mscatlas.trials.flow import read_trial_screening, read_trial_searches, trial_flow
from mscatlas.trials.landscape import landscape
from mscatlas.trials.listing import TrialFilter, select_trials
from mscatlas.web.query import ResultsPosted, TrialQuery, filter_trials

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset():
    data, errors = validate_paths(shipped_files())
    assert not errors
    return data


def _json(args: list[str], tmp_path: Path) -> object:
    result = runner.invoke(app, ["trials", *args, "--db", f"sqlite:///{tmp_path / 'l.sqlite'}", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_no_cancer_patients_is_a_known_reason_and_the_shipped_rows_read_cleanly() -> None:
    assert "no_cancer_patients" in reason_codes()
    rows, problems = read_trial_screening()
    queries, trouble = read_trial_searches()
    assert problems == [] and trouble == []
    assert len(rows) >= 50 and len(queries) >= 50


def test_bad_screening_rows_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "trial-screening.csv"
    path.write_text(
        "trial_id,title,search,decision,reason,note,by,at\n"
        "NCT01234567,a,q-1,exclude,no_cancer_patients,,me,2026-12-03\n"
        "NCT7,b,q-1,include,include,,me,2026-12-03\n"
        "NCT01234568,c,q-1,exclude,not_a_code,,me,2026-12-03\n"
        "NCT01234569,d,q-1,exclude,,,me,2026-12-03\n",
        encoding="utf-8",
    )
    rows, problems = read_trial_screening(path)
    assert [r.trial_id for r in rows] == ["NCT01234567"] and rows[0].reason == "no_cancer_patients"
    assert len(problems) == 3
    assert problems[0].startswith("intake/trial-screening.csv line 3 (NCT7), field trial_id")
    assert "line 4 (NCT01234568), field reason: unknown code 'not_a_code'" in problems[1]
    assert "line 5 (NCT01234569), field reason: an exclusion needs a reason code" in problems[2]


def test_bad_search_entries_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "trial-searches.yaml"
    path.write_text(
        "- id: q-1\n  query: x\n  yielded: 1\n  records:\n"
        "  - {id: NCT01234567, title: a}\n  - {id: XYZ1, title: b}\n",
        encoding="utf-8",
    )
    queries, problems = read_trial_searches(path)
    assert queries[0].yielded == 2 and queries[0].record_ids == ("NCT01234567", None)
    assert any("query q-1, field yielded: 1 is fewer than the 2 records" in p for p in problems)
    assert any("query q-1 record 2, field id: registry id 'XYZ1'" in p for p in problems)


def test_flow_counts_add_up_on_the_shipped_data(dataset) -> None:
    flow = trial_flow(dataset.trials)
    assert flow["problems"] == []
    assert flow["screened"] == (
        flow["excluded"]["total"] + flow["included"] + flow["maybe"] + len(flow["not_retrieved"])
    )
    assert flow["included"] == flow["included_curated"] + len(flow["included_not_curated"])
    assert flow["registry_total"] == len(dataset.trials) >= 60
    # Every trial the registry search added is screened; only the review's own trials are not.
    review_ids = {t.nct_id for t in dataset.trials if t.provenance.table is not None}
    assert set(flow["registry_not_from_search"]) <= review_ids
    assert "NCT04213248" not in flow["included_not_curated"]  # its registry copies were read
    section = translation_section_context(dataset)
    assert section["flow"]["included_curated"] == flow["included_curated"]


def test_flow_with_given_rows_counts_exclusions_by_reason(dataset, tmp_path: Path) -> None:
    path = tmp_path / "trial-screening.csv"
    path.write_text(
        "trial_id,title,search,decision,reason,note,by,at\n"
        "NCT01234567,a,q-1,exclude,no_cancer_patients,,me,2026-12-03\n"
        "NCT00366145,b,q-1,include,include,,me,2026-12-03\n"
        "NCT09999999,c,q-1,include,include,,me,2026-12-03\n",
        encoding="utf-8",
    )
    rows, _ = read_trial_screening(path)
    queries, _ = read_trial_searches()
    flow = trial_flow(dataset.trials, queries, rows)
    assert flow["excluded"] == {"total": 1, "reasons": {"no_cancer_patients": 1}}
    assert flow["included_curated"] == 1 and flow["included_not_curated"] == ["NCT09999999"]
    assert any("field search: unknown query 'q-1'" in p for p in flow["problems"])


def test_list_filters_and_json(tmp_path: Path, dataset) -> None:
    rows = _json(["list", "--purpose", "anti_tumor"], tmp_path)
    assert rows and {r["purpose"] for r in rows} == {"anti_tumor"}
    assert len(rows) == sum(1 for t in dataset.trials if t.purpose.value == "anti_tumor")
    eudract = _json(["list", "--registry", "EudraCT"], tmp_path)
    assert eudract and {r["registry"] for r in eudract} == {"EudraCT"}
    phase1 = _json(["list", "--phase", "phase1"], tmp_path)
    assert any(r["phases"] == ["PHASE1", "PHASE2"] for r in phase1)
    assert all("PHASE1" in r["phases"] for r in phase1)
    marrow = _json(["list", "--source", "BM-MSC", "--status", "completed"], tmp_path)
    assert marrow and all("bone_marrow" in r["msc_source"] and r["status"] == "COMPLETED" for r in marrow)
    decidua = _json(["list", "--source", "decidua"], tmp_path)
    assert {r["id"] for r in decidua} >= {"NCT02172924", "NCT02172937", "NCT05132166", "NCT04118556"}


def test_list_bad_values_are_errors_naming_the_option(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'e.sqlite'}"
    bad = runner.invoke(app, ["trials", "list", "--status", "finished", "--db", db, "--json"])
    assert bad.exit_code == 2
    payload = json.loads(bad.stdout)
    assert payload["error"].startswith("--status: 'FINISHED'") and "COMPLETED" in payload["error"]
    bad_registry = runner.invoke(app, ["trials", "list", "--registry", "clinicaltrials", "--db", db])
    assert bad_registry.exit_code == 2 and "--registry" in bad_registry.output
    table = runner.invoke(app, ["trials", "list", "--source", "decidua", "--db", db])
    assert table.exit_code == 0 and "NCT02172937" in table.output and "trials" in table.output


def test_trials_help_describes_every_subcommand() -> None:
    result = runner.invoke(app, ["trials", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for word in ("list", "landscape", "roots", "flow", "import", "sync", "design", "next-dose", "registry"):
        assert word in text, word


def test_one_results_gap_for_landscape_listing_and_web(dataset) -> None:
    seneca = next(t for t in dataset.trials if t.nct_id == "NCT02509156")
    assert seneca.has_results is True  # its registry copy says results were posted
    silent = seneca.model_copy(
        update={"nct_id": "NCT00000001", "has_results": False, "result_pmids": [], "pmids": None}
    )
    trials = [*dataset.trials, silent]
    gap = {g.nct_id for g in landscape(trials, today=dt.date(2026, 12, 3)).results_gap}
    assert "NCT02509156" not in gap and "NCT00000001" in gap
    assert gap == {t.nct_id for t in select_trials(trials, TrialFilter(results_gap=True))}
    web_no = {t.nct_id for t in filter_trials(trials, TrialQuery(results_posted=ResultsPosted.no))}
    web_yes = {t.nct_id for t in filter_trials(trials, TrialQuery(results_posted=ResultsPosted.yes))}
    assert gap <= web_no and "NCT02509156" in web_yes
