"""Opt-in reproducibility check: regenerate the shipped numbers and fail on any difference.

``python -m mscatlas.sim.check_shipped`` (or ``pytest -m regen`` with ``MSCATLAS_REGEN=1``)

1. refits ``sim/data/calibrated.yaml`` from the package's shipped data files with the command
   that made it (:data:`mscatlas.sim.calibrate.SHIPPED_COMMAND`: flat and hierarchical fits,
   every leave-one-study-out refit; tens of minutes) and compares every value with the shipped
   file;
2. where ``Rscript`` is on the path and the repository's ``validation/`` folder is present,
   reruns the metafor reference scripts in a scratch copy and compares the JSON and CSV files
   they write with those under ``tests/data``.

Numbers are compared after rounding to :data:`SIGNIFICANT` significant digits (the optimiser's
last bits differ across BLAS builds; anything a reader could see does not). Exit status 0: all
equal; 1: a difference (each printed with its path); the R step is reported as skipped, never
as passed, when R or the scripts are missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

__all__ = ["SIGNIFICANT", "calibration_differences", "differences", "main", "metafor_differences"]

SIGNIFICANT = 8
R_SCRIPTS = ("metafor_reference.R", "metafor_rma_mv_reference.R")


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT}g}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def differences(fresh: Any, shipped: Any, path: str = "") -> list[str]:
    """Every path at which two parsed documents differ (numbers rounded to SIGNIFICANT digits)."""
    a, b = _round(fresh), _round(shipped)
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                out.append(f"{where}: only in the {'shipped' if key in b else 'regenerated'} file")
            else:
                out.extend(differences(a[key], b[key], where))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: regenerated {a!r}, shipped {b!r}"]


def calibration_differences(*, progress: bool = False) -> list[str]:
    """Refit the shipped calibration from the shipped data and list what differs from the file."""
    from importlib import resources

    from mscatlas.sim.calibrate import (
        SHIPPED_COMMAND,
        SHIPPED_SETTINGS,
        calibrate_knowledge_base,
        shipped_evidence,
    )

    _, fresh = calibrate_knowledge_base(
        shipped_evidence(), **SHIPPED_SETTINGS, progress=progress, command=SHIPPED_COMMAND
    )
    text = resources.files("mscatlas.sim").joinpath("data/calibrated.yaml").read_text(encoding="utf-8")
    return differences(json.loads(json.dumps(fresh)), yaml.safe_load(text), "calibrated.yaml")


def _repository() -> Path | None:
    root = Path(__file__).resolve().parents[3]
    return root if (root / "validation" / R_SCRIPTS[0]).is_file() else None


def metafor_differences(root: Path | None = None) -> list[str] | None:
    """Rerun the metafor reference scripts in a scratch copy; ``None`` when R or they are missing."""
    root = root or _repository()
    rscript = shutil.which("Rscript")
    if root is None or rscript is None:
        return None
    out: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        shutil.copytree(root / "validation", work / "validation")
        (work / "tests" / "data" / "metafor").mkdir(parents=True)
        for script in R_SCRIPTS:
            done = subprocess.run(
                [rscript, f"validation/{script}"], cwd=work, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                out.append(f"{script}: Rscript failed: {done.stderr.strip()[-500:]}")
        made = sorted((work / "tests" / "data").rglob("*"))
        for path in made:
            if not path.is_file():
                continue
            rel = path.relative_to(work)
            committed = root / rel
            if not committed.is_file():
                out.append(f"{rel}: written by R but not committed")
            elif path.suffix == ".json":
                out.extend(
                    differences(json.loads(path.read_text()), json.loads(committed.read_text()), str(rel))
                )
            elif path.read_bytes() != committed.read_bytes():
                out.append(f"{rel}: differs from the committed file")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mscatlas.sim.check_shipped", description=__doc__)
    parser.add_argument("--skip-calibration", action="store_true", help="only the metafor references")
    parser.add_argument("--skip-r", action="store_true", help="only the calibration")
    args = parser.parse_args(argv)
    failed = False
    if not args.skip_calibration:
        found = calibration_differences(progress=sys.stderr.isatty())
        print(f"calibration: {'identical' if not found else f'{len(found)} difference(s)'}")
        for line in found:
            print(f"  {line}")
        failed |= bool(found)
    if not args.skip_r:
        found_r = metafor_differences()
        if found_r is None:
            print("metafor references: skipped (no Rscript or no validation/ folder beside the package)")
        else:
            print(f"metafor references: {'identical' if not found_r else f'{len(found_r)} difference(s)'}")
            for line in found_r:
                print(f"  {line}")
            failed |= bool(found_r)
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover - the command line
    raise SystemExit(main())
