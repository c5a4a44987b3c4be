"""The dose parser on the review's own wordings, on nonsense, and on generated ratios."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mscatlas.kb.dose import CMDilution, Dose, DoseParseError, parse_dose, parse_duration


def ratios(dose: Dose) -> list[tuple[float, float]]:
    return [(r.msc, r.cancer) for r in dose.ratios]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:6 (SC:CC)", [(1, 6)]),
        ("[0:1, 1:1, 5:1 and 10:1 (SC:CC)]", [(0, 1), (1, 1), (5, 1), (10, 1)]),
        ("[0:1, 1:1, 2:1, 5:1 (SC:CC)]", [(0, 1), (1, 1), (2, 1), (5, 1)]),
        ("Co-culture of K562 and MSCs at 10:1 ratio for 7 days", [(1, 10)]),
        ("1:6 (hUCMSC: MDA231)", [(1, 6)]),
        ("Co-culture of MSC-CC at different ratio (1:1, 1:5, 1:100)", [(1, 1), (1, 5), (1, 100)]),
        (
            "48 hours culture of MSC-CC at different ratio (1:20, 1:10, 1:5, 1:2)",
            [(1, 20), (1, 10), (1, 5), (1, 2)],
        ),
        ("Co-culture of SCC-25 cells with human BM-MSCs at 1:1 ratio", [(1, 1)]),
        ("3:1 (CC:MSC)", [(1, 3)]),
    ],
)
def test_review_ratio_wordings_come_out_msc_first(text: str, expected: list[tuple[float, float]]) -> None:
    assert ratios(parse_dose(text)) == expected


def test_cancer_named_first_flips_the_order_and_reads_thousands() -> None:
    dose = parse_dose("Co-culture of 5.000 K562 cells /well with human UC-MSCs at 1:1, 1:5, 1:10 and 1:100")
    assert ratios(dose) == [(1, 1), (5, 1), (10, 1), (100, 1)]
    assert dose.cancer_cells_per_well == [5000]


def test_conditioned_medium_forms() -> None:
    assert parse_dose("0, 10 or 20% CM").cm_percent == [0, 10, 20]
    dilutions = parse_dose("CM (1:1 and 1:20)").cm_dilutions
    assert dilutions == [CMDilution(cm=1, medium=1), CMDilution(cm=1, medium=20)]
    assert dilutions[0].percent == 50
    assert dilutions[1].percent == pytest.approx(100 / 21)
    assert parse_dose("Condition media obtained from 1×10^6 MSCs").conditioning_cells == 1e6


def test_cells_and_vesicles() -> None:
    assert parse_dose("xenograft model; 0.5×10^6 cells per injection").cells_per_injection == [5e5]
    assert parse_dose("5×10^6 cells per injection").cells_per_injection == [5e6]
    assert parse_dose("MSCs (2×10^4 cells/well)").msc_cells_per_well == [2e4]
    amount = parse_dose("exosomes at 50 µg/mL").ev_amounts[0]
    assert (amount.value, amount.unit) == (50, "µg/mL")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("-1:2 (SC:CC)", "negative"),
        ("0:0 (SC:CC)", "0:0"),
        ("1:2", "cannot tell"),
        ("co-culture at 1:5 and 1:10", "cannot tell"),
        ("3:0 (SC:CC)", "no cancer cells"),
        ("120% CM", "above 100"),
        ("some cells", "no dose"),
        ("", "empty"),
    ],
)
def test_nonsense_is_rejected_with_a_reason(text: str, problem: str) -> None:
    with pytest.raises(DoseParseError, match=problem):
        parse_dose(text)


def test_symmetric_ratio_needs_no_order() -> None:
    assert ratios(parse_dose("1:1")) == [(1, 1)]


def test_structured_dose_accepts_the_wording_as_a_string() -> None:
    assert Dose.model_validate("1:6 (SC:CC)").ratios[0].cancer == 6


def test_log_ratio() -> None:
    dose = parse_dose("[0:1, 10:1 (SC:CC)]")
    assert dose.ratios[0].log10_msc_per_cancer is None
    assert dose.ratios[1].log10_msc_per_cancer == pytest.approx(1.0)


def test_durations() -> None:
    assert parse_duration("24-96 hours").hours == [24, 96]
    assert parse_duration("for 3 days").hours == [72]
    assert parse_duration("24, 48, 72 hours incubation").hours == [24, 48, 72]
    with pytest.raises(DoseParseError):
        parse_duration("overnight")


parts = st.integers(min_value=0, max_value=10_000)


@given(
    msc=parts,
    cancer=parts,
    marker=st.sampled_from(["(SC:CC)", "(MSC:CC)", "MSC:cancer", "(CC:SC)", "cancer:MSC"]),
)
def test_any_marked_ratio_parses_to_msc_first_or_is_rejected(msc: int, cancer: int, marker: str) -> None:
    cancer_first = marker in ("(CC:SC)", "cancer:MSC")
    left, right = (cancer, msc) if cancer_first else (msc, cancer)
    text = f"{left}:{right} {marker}"
    if cancer == 0:
        with pytest.raises(DoseParseError):
            parse_dose(text)
        return
    dose = parse_dose(text)
    assert ratios(dose) == [(msc, cancer)]
    assert dose.ratios[0].msc_per_cancer == pytest.approx(msc / cancer)


@given(a=st.integers(1, 1000), b=st.integers(1, 1000))
def test_unmarked_asymmetric_ratio_is_refused(a: int, b: int) -> None:
    if a == b:
        assert ratios(parse_dose(f"{a}:{b}")) == [(a, b)]
    else:
        with pytest.raises(DoseParseError, match="cannot tell"):
            parse_dose(f"{a}:{b}")


@given(values=st.lists(st.integers(0, 100), min_size=1, max_size=4))
def test_percent_lists(values: list[int]) -> None:
    text = ", ".join(str(v) for v in values) + "% CM"
    assert parse_dose(text).cm_percent == values


@given(mantissa=st.floats(0.1, 9.9).map(lambda x: round(x, 1)), exponent=st.integers(3, 9))
def test_scientific_cell_counts(mantissa: float, exponent: int) -> None:
    dose = parse_dose(f"{mantissa}×10^{exponent} cells per injection")
    assert math.isclose(dose.cells_per_injection[0], mantissa * 10**exponent, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("1.5 x 10^9 particles/mL", 1.5e9, "particles/mL"),
        ("EVs (1.5e9 particles)", 1.5e9, "particles"),
        ("2×10^10 particles", 2e10, "particles"),
        ("exosomes at 50 µg/mL", 50.0, "µg/mL"),
    ],
)
def test_ev_amounts_in_scientific_form(text: str, value: float, unit: str) -> None:
    (amount,) = parse_dose(text).ev_amounts
    assert amount.value == pytest.approx(value) and amount.unit == unit


def test_no_dose_error_names_the_accepted_forms() -> None:
    with pytest.raises(DoseParseError) as err:
        parse_dose("10 to 1")
    assert "1:6 (SC:CC)" in str(err.value) and "50% CM" in str(err.value)


@pytest.mark.parametrize(
    ("form", "shown"),
    [
        ("1:10 MSC:cancer", "MSC:cancer 1:10"),
        ("1:6 (SC:CC)", "MSC:cancer 1:6"),
        ("K562 and MSCs at 10:1", "MSC:cancer 1:10"),
        ("50% CM", "CM 50%"),
        ("CM:medium 1:1", "CM:medium 1:1 (50%)"),
        ("1x10^6 cells per injection", "1×10^6 cells/injection"),
        ("50 µg/mL EVs", "EV 50 µg/mL"),
    ],
)
def test_every_named_form_parses(form: str, shown: str) -> None:
    from mscatlas.kb.dose import ACCEPTED_FORMS

    assert f"'{form}'" in ACCEPTED_FORMS or form == "1:10 MSC:cancer"
    assert parse_dose(form).describe() == shown


@pytest.mark.parametrize(
    ("text", "per_cancer"),
    [("1:10", 0.1), ("0.1", 0.1), ("1 : 6", 1 / 6), ("10", 10.0), ("K562 and MSCs at 10:1", 0.1)],
)
def test_parse_ratio_takes_ratios_and_numbers(text: str, per_cancer: float) -> None:
    from mscatlas.kb.dose import parse_ratio

    assert parse_ratio(text) == pytest.approx(per_cancer, rel=1e-12)


@pytest.mark.parametrize("text", ["0", "1:0", "abc", "10 to 1", "1:2, 1:3"])
def test_parse_ratio_refuses_with_the_forms(text: str) -> None:
    from mscatlas.kb.dose import parse_ratio

    with pytest.raises(DoseParseError) as err:
        parse_ratio(text)
    assert "MSC" in str(err.value) and text in str(err.value)
