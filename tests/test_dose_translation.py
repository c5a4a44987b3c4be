"""Dose translation: hand-computed values from the FDA 2005 table (Km factors, reference
weights), the Kabat et al. (2020) comparison, bad input and the CLI contract."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from mscatlas.cli.translate import translate_app
from mscatlas.trials.dose_translation import (
    HUMAN,
    SPECIES,
    DoseTranslationError,
    parse_cell_dose,
    translate_dose,
)

# FDA 2005 guidance, Table 1, typed from the table: (reference weight kg, Km, and the
# table's own "multiply animal dose by" column, Km/37 rounded to 3 decimals).
FDA_TABLE = {
    "mouse": (0.02, 3, 0.081),
    "hamster": (0.08, 5, 0.135),
    "rat": (0.15, 6, 0.162),
    "ferret": (0.30, 7, 0.189),
    "guinea pig": (0.40, 8, 0.216),
    "rabbit": (1.8, 12, 0.324),
    "dog": (10.0, 20, 0.541),
    "monkey": (3.0, 12, 0.324),
    "marmoset": (0.35, 6, 0.162),
    "squirrel monkey": (0.60, 7, 0.189),
    "baboon": (12.0, 20, 0.541),
    "micro-pig": (20.0, 27, 0.730),
    "mini-pig": (40.0, 35, 0.946),
}


def test_table_is_the_fdas() -> None:
    assert (HUMAN.reference_weight_kg, HUMAN.km) == (60.0, 37)
    assert set(SPECIES) == set(FDA_TABLE)
    for name, (weight, km, factor) in FDA_TABLE.items():
        assert (SPECIES[name].reference_weight_kg, SPECIES[name].km) == (weight, km), name
        # the conversion the code applies reproduces the FDA's own printed factor
        assert round(km / 37, 3) == pytest.approx(factor, abs=1e-3), name


def test_mouse_example_by_hand() -> None:
    # 5e5 cells in a 20 g mouse: 2.5e7 cells/kg; × 3/37 = 2.0270e6 cells/kg; × 70 = 1.4189e8.
    t = translate_dose("mouse", cells=5e5)
    assert t.cells_per_kg == pytest.approx(2.5e7, rel=1e-12)
    assert t.hed_cells_per_kg_bsa == pytest.approx(2.5e7 * 3 / 37, rel=1e-12)
    assert t.hed_cells_per_kg_bsa == pytest.approx(2.027027e6, rel=1e-6)
    assert t.hed_total_70kg == pytest.approx(1.418919e8, rel=1e-6)
    assert t.hed_cells_per_kg_bw == pytest.approx(2.5e7)
    assert t.hed_total_70kg_bw == pytest.approx(1.75e9)
    d = t.to_dict()
    assert d["vs_kabat_2020_bsa"] == "within" and d["vs_kabat_2020_bw"] == "above"
    assert d["kabat_2020_iv_range"] == [70e6, 190e6]


@pytest.mark.parametrize(
    ("species", "cells", "weight", "per_kg", "hed_bsa"),
    [
        ("rat", 1e6, None, 1e6 / 0.15, 1e6 / 0.15 * 6 / 37),  # 6.667e6 -> 1.0811e6 cells/kg
        ("mouse", 1e6, 0.025, 4e7, 4e7 * 3 / 37),  # a weighed 25 g mouse
        ("dog", 2e7, None, 2e6, 2e6 * 20 / 37),
        ("mini-pig", 4e8, None, 1e7, 1e7 * 35 / 37),
    ],
)
def test_other_species_by_hand(
    species: str, cells: float, weight: float | None, per_kg: float, hed_bsa: float
) -> None:
    t = translate_dose(species, cells=cells, weight_kg=weight)
    assert t.cells_per_kg == pytest.approx(per_kg, rel=1e-12)
    assert t.hed_cells_per_kg_bsa == pytest.approx(hed_bsa, rel=1e-12)
    assert t.weight_source == ("FDA reference" if weight is None else "given")


def test_dose_per_kg_is_accepted() -> None:
    t = translate_dose("rat", cells_per_kg=1e7)
    assert t.cells_per_animal == pytest.approx(1.5e6)
    assert t.hed_cells_per_kg_bsa == pytest.approx(1e7 * 6 / 37)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5e5 cells", (5e5, "animal")),
        ("1 x 10^6 MSCs", (1e6, "animal")),
        ("2.5 × 10^7 cells/kg", (2.5e7, "kg")),
    ],
)
def test_parse_cell_dose(text: str, expected: tuple[float, str]) -> None:
    value, unit = parse_cell_dose(text)
    assert value == pytest.approx(expected[0]) and unit == expected[1]


@pytest.mark.parametrize(
    ("call", "field", "fragment"),
    [
        (lambda: translate_dose("zebrafish", cells=1e5), "species", "no Km factor"),
        (lambda: translate_dose("mouse", cells=0), "cells", "positive"),
        (lambda: translate_dose("mouse", cells=-5e5), "cells", "positive"),
        (lambda: translate_dose("mouse", cells=1e5, weight_kg=0), "weight_kg", "positive"),
        (lambda: parse_cell_dose("5e5"), "dose", "no unit"),
        (lambda: parse_cell_dose("5e5 mg"), "dose", "unit 'mg'"),
    ],
)
def test_bad_input_names_field_and_value(call, field: str, fragment: str) -> None:
    with pytest.raises(DoseTranslationError) as err:
        call()
    assert err.value.field == field
    assert fragment in str(err.value) and repr(err.value.value) in str(err.value)


# --- command line ---------------------------------------------------------------------
app = typer.Typer()
app.add_typer(translate_app, name="translate")
runner = CliRunner()


def test_cli_contract() -> None:
    result = runner.invoke(app, ["translate", "dose", "--cells", "5e5", "--species", "mouse", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["cells_per_kg"] == pytest.approx(2.5e7)
    assert out["hed_cells_per_kg_bsa"] == pytest.approx(2.5e7 * 3 / 37)
    assert out["hed_total_70kg"] == pytest.approx(70 * 2.5e7 * 3 / 37)
    same = runner.invoke(
        app, ["translate", "dose", "--cells", "5e5", "--species", "mouse", "--weight-kg", "0.02", "--json"]
    )
    assert json.loads(same.stdout)["hed_total_70kg"] == out["hed_total_70kg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cells", "5e5", "--species", "axolotl"], "species = 'axolotl'"),
        (["--cells", "-1", "--species", "mouse"], "cells = -1.0: must be a positive number"),
        (["--cells", "lots", "--species", "mouse"], "cells = 'lots': not a number"),
        (["--dose", "5e5", "--species", "mouse"], "dose = '5e5': no unit"),
        (["--cells", "5e5", "--species", "mouse", "--weight-kg", "0"], "weight_kg = 0.0"),
    ],
)
def test_cli_bad_input_exits_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["translate", "dose", *args, "--json"])
    assert result.exit_code == 2  # bad input (mscatlas.cli.output)
    assert message in json.loads(result.stdout)["error"]  # under --json, the error is JSON too
    people = runner.invoke(app, ["translate", "dose", *args])
    assert people.exit_code == 2 and message in " ".join(people.stderr.split())
