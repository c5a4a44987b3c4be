"""Opt-in: the shipped calibration and the metafor references regenerate to the same numbers.

Run with ``MSCATLAS_REGEN=1 pytest -m regen tests/test_sim_regen.py`` (tens of minutes), or
``python -m mscatlas.sim.check_shipped``. Skipped otherwise, so the default suite stays quick.
"""

from __future__ import annotations

import os

import pytest

from mscatlas.sim.check_shipped import calibration_differences, differences, metafor_differences

pytestmark = pytest.mark.regen
run = pytest.mark.skipif(os.environ.get("MSCATLAS_REGEN") != "1", reason="set MSCATLAS_REGEN=1 to regenerate")


def test_differences_finds_every_changed_value() -> None:
    """The comparison itself (cheap, always runs): rounding hides only the last bits."""
    a = {"x": 1.0, "y": [1, 2.0, {"z": "a"}], "w": 3}
    assert differences(a, a) == []
    assert differences({**a, "x": 1.0 + 1e-12}, a) == []
    assert differences({**a, "x": 1.001}, a) == ["x: regenerated 1.001, shipped 1.0"]
    assert differences({"y": [1, 2.0, {"z": "b"}]}, {"y": [1, 2.0, {"z": "a"}]}) == [
        "y[2].z: regenerated 'b', shipped 'a'"
    ]
    assert differences({"x": 1.0}, {"x": 1.0, "v": 2}) == ["v: only in the shipped file"]


@run
def test_shipped_calibration_regenerates() -> None:
    assert calibration_differences() == []


@run
def test_metafor_references_regenerate() -> None:
    found = metafor_differences()
    if found is None:
        pytest.skip("Rscript or the validation/ scripts are not available")
    assert found == []
