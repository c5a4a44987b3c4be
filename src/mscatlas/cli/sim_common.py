"""Options and helpers shared by the `mscatlas sim` command modules.

``sim.py`` (in vitro protocols and the xenograft), ``sim_replay.py`` (calibration and replay of
the knowledge base) and ``sim_abm.py`` (the spatial model) read the same options and name the
parameters they simulate with in the same way.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mscatlas.cli.output import bad_input
from mscatlas.kb.enums import CancerClass, MscSource
from mscatlas.sim.build import PAYLOADS

if TYPE_CHECKING:
    from mscatlas.sim.calibration import Calibration

__all__ = [
    "AssumedOption",
    "CalibrationOption",
    "CellsOption",
    "ClassOption",
    "DbOption",
    "EngineeringOption",
    "GrowthModelName",
    "HoursOption",
    "Payload",
    "PayloadOption",
    "RouteName",
    "SchedulerOption",
    "SourceOption",
    "WorkersOption",
    "calibration_in_use",
    "with_validation",
]

Payload = StrEnum("Payload", {p: p for p in PAYLOADS})  # type: ignore[misc]


class GrowthModelName(StrEnum):
    gompertz = "gompertz"
    logistic = "logistic"


class RouteName(StrEnum):
    intravenous = "intravenous"
    intratumoral = "intratumoral"
    co_injection = "co_injection"


SourceOption = Annotated[MscSource, typer.Option("--msc-source", help="MSC tissue source.")]
ClassOption = Annotated[CancerClass, typer.Option("--cancer-class", help="Cancer class.")]
HoursOption = Annotated[float, typer.Option("--hours", min=0.1, help="Exposure time in hours.")]
CellsOption = Annotated[
    float | None,
    typer.Option("--cancer-cells", min=1.0, help="Cancer cells per well (default: class default)."),
]
EngineeringOption = Annotated[
    list[str] | None,
    typer.Option(
        "--engineering",
        help="Engineering of the product, KIND or KIND:DETAIL (e.g. cytokine_activation, "
        "gene_modified:TRAIL); repeatable.",
    ),
]
PayloadOption = Annotated[
    list[Payload] | None, typer.Option("--payload", help="Payload carried; repeatable.")
]
AssumedOption = Annotated[
    bool,
    typer.Option("--assumed", help="Use parameters.yaml as is, without the calibrated shared factors."),
]
CalibrationOption = Annotated[
    str | None,
    typer.Option(
        "--calibration",
        help="Calibration file written by `mscatlas sim calibrate` (default: the shipped one).",
    ),
]
SchedulerOption = Annotated[
    str,
    typer.Option(
        "--scheduler",
        help="Dask: threads (local cluster, default), processes, synchronous, or a scheduler ADDRESS.",
    ),
]
WorkersOption = Annotated[int | None, typer.Option("--workers", min=1, help="Local Dask workers.")]

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (default: the user store).")]


def calibration_in_use(assumed: bool, path: str | None) -> tuple[Calibration | None, dict[str, Any]]:
    """The shared factors to simulate with, and how the output names them."""
    from mscatlas.sim.calibration import default_calibration, load_calibration

    if assumed:
        if path is not None:
            bad_input("--assumed and --calibration exclude each other")
        return None, {"parameters": "assumed", "calibration": None}
    if path is None:
        calibration, why_not = default_calibration()
        if calibration is None:
            return None, {"parameters": "assumed", "calibration": None, "note": why_not}
    else:
        try:
            calibration = load_calibration(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            bad_input(f"cannot read calibration file '{path}': {exc}")
        if calibration is None:
            bad_input(f"no calibration in '{path}'")
    stamp = calibration.provenance.get("stamp", "calibrated")
    return calibration, {"parameters": "calibrated", "calibration": stamp}


def with_validation(used: dict[str, Any]) -> dict[str, Any]:
    """``used`` with the out-of-sample validation of its parameters (shown on every output)."""
    from mscatlas.sim.calibration import out_of_sample

    return {**used, "validation": out_of_sample(used["parameters"])}
