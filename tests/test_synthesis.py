"""Harmonisation, vote counting and conflicts, on hand-built items with known answers."""

from __future__ import annotations

import json
import math

import pytest
from scipy.stats import beta
from typer.testing import CliRunner

from mscatlas.cli import app
from mscatlas.kb.dose import Dose
from mscatlas.kb.enums import CurationStatus, Delivery, Direction
from mscatlas.kb.shipped import shipped_dataset
from mscatlas.stats.conflict import conflicts, harvest, study_votes
from mscatlas.stats.harmonize import dose_coverage, harmonize, inhibition_score

BASE = shipped_dataset().evidence[0]


def item(id_: str, study: str, direction: str, **changes):
    ref = int(study[3:])
    data = {"id": id_, "study": study, "refs": [ref], "direction": Direction(direction), **changes}
    return BASE.model_copy(update=data)


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    """Exact interval from the beta quantiles, written independently of scipy's binomtest."""
    low = 0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1)
    high = 1.0 if k == n else beta.ppf(0.975, k + 1, n - k)
    return low, high


def test_inhibition_axis() -> None:
    assert [inhibition_score(Direction(d)) for d in ("inhibits", "promotes", "no_effect", "mixed")] == [
        1,
        -1,
        0,
        None,
    ]


def test_dose_scales_and_unplaced_items_are_counted() -> None:
    coculture = item("ev-900-a", "ref29", "inhibits", dose=Dose.model_validate("[0:1, 1:10, 10:1 (SC:CC)]"))
    cm = item(
        "ev-900-b",
        "ref29",
        "inhibits",
        delivery=Delivery.conditioned_medium,
        dose=Dose.model_validate("CM (1:3)"),
    )
    blank = item("ev-900-c", "ref29", "promotes", delivery=Delivery.conditioned_medium, dose=Dose())
    h = {x.id: x for x in harmonize([coculture, cm, blank])}
    assert h["ev-900-a"].dose_value == pytest.approx(1.0)  # log10 of the highest ratio, 10:1
    assert h["ev-900-b"].dose_value == pytest.approx(25.0)  # 1 part CM in 4
    assert h["ev-900-c"].dose_value is None
    assert dose_coverage(list(h.values()))["conditioned_medium"] == {"placed": 1, "not_placed": 1}


def test_unaccepted_items_are_left_out_by_default() -> None:
    pending = item("ev-900-d", "ref29", "promotes", curation_status=CurationStatus.submitted)
    assert harmonize([pending]) == []
    assert len(harmonize([pending], only_accepted=False)) == 1


def test_study_votes_by_majority_and_ties_are_mixed() -> None:
    items = harmonize(
        [
            item("ev-901-a", "ref30", "inhibits"),
            item("ev-901-b", "ref30", "inhibits"),
            item("ev-901-c", "ref30", "promotes"),
            item("ev-902-a", "ref31", "inhibits"),
            item("ev-902-b", "ref31", "promotes"),
        ]
    )
    assert study_votes(items) == {"ref30": "inhibits", "ref31": "mixed"}


def test_harvest_counts_studies_and_exact_interval() -> None:
    items = harmonize(
        [item(f"ev-9{i:02d}-a", f"ref{30 + i}", "inhibits") for i in range(4)]
        + [item("ev-999-a", "ref40", "promotes"), item("ev-999-b", "ref40", "promotes")]
    )
    (stratum,) = harvest(items)
    assert stratum.item_counts["inhibits"] == 4 and stratum.item_counts["promotes"] == 2
    assert stratum.study_counts["inhibits"] == 4 and stratum.study_counts["promotes"] == 1
    assert stratum.share_inhibits == pytest.approx(4 / 5)
    low, high = clopper_pearson(4, 5)
    assert (stratum.ci_low, stratum.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert math.isclose(stratum.ci_low, 0.2836, abs_tol=1e-4)  # published table value for 4/5


def test_conflict_names_the_moderator_that_separates_the_sides() -> None:
    native = item("ev-903-a", "ref31", "promotes")
    heated = item(
        "ev-903-b",
        "ref31",
        "inhibits",
        engineering=[{"kind": "heat_treatment", "detail": "43 °C for 45 min"}],
    )
    (conflict,) = conflicts(harmonize([native, heated]))
    assert [h.id for h in conflict.inhibiting] == ["ev-903-b"]
    assert conflict.differing["engineered"] == {"inhibiting": [True], "promoting": [False]}
    assert "study" not in conflict.differing


def test_shipped_data_shows_the_reviews_conflicts() -> None:
    found = {
        (c.stratum.msc_source, c.stratum.cancer, c.stratum.delivery): c
        for c in conflicts(harmonize(shipped_dataset().evidence))
    }
    # ref 31: conditioned medium promotes spheroid growth, heat-treated conditioned medium inhibits
    heat = found[("amniotic_membrane", "lung adenocarcinoma", "conditioned_medium")]
    assert "engineered" in heat.differing


def test_synthesize_cli_json() -> None:
    result = CliRunner().invoke(app, ["synthesize", "--json", "--level", "class"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    accepted = [e for e in shipped_dataset().evidence if e.curation_status is CurationStatus.accepted]
    assert data["n_items"] == len(accepted)
    # items that pool sources count once per source, so strata hold at least every item
    assert sum(s["n_items"] for s in data["strata"]) >= len(accepted)
    assert sum(sum(d.values()) for d in data["dose_coverage"].values()) == len(accepted)
    assert all(set(c) >= {"inhibiting", "promoting", "differing"} for c in data["conflicts"])
    assert CliRunner().invoke(app, ["synthesize", "--level", "species"]).exit_code == 2
