"""The report and start-up rows of the scale benchmark (issue 14, goals 3-4).

Run: python benchmarks/bench_scale_report.py [--sizes 1000,10000,100000] [--startup-only]

- Report rows join ``benchmarks/bench_scale.py``'s table (appended to its ``ROWS``): for each
  size, ``report (cold)`` builds the HTML report of the synthetic dataset with an empty
  model cache, ``report (cached fits)`` builds it again in the same process (the moderator fit
  and its leave-one-study-out check come from :mod:`mscatlas.stats.cache`).
- Start-up rows do not depend on n and are printed as their own table: the import time of
  ``mscatlas.cli`` (``python -X importtime``, cumulative microseconds of the module), and wall
  time end to end of ``mscatlas --help`` and of ``mscatlas meta`` (REML) beside
  ``Rscript -e 'metafor::rma(...)'`` on the same CSV for k = 20, 100, 1000 (median of 3 runs;
  R is skipped when ``Rscript`` or metafor is missing).

A measurement, not a test: compare runs made side by side on one machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_scale
from bench_scale import ROWS, Context, Row

from mscatlas.kb.models import Dataset
from mscatlas.report import build_report
from mscatlas.stats import cache

CLI = [sys.executable, "-c", "from mscatlas.cli import main; main()"]


def _report_dataset(ctx: Context) -> Dataset:
    # bench_scale's copies are named '<id>~<k>', which the store refuses (the report's PRISMA
    # section loads the dataset into a store): '.c<k>' keeps them valid.
    if "report_dataset" not in ctx.extra:
        items = [e.model_copy(update={"id": e.id.replace("~", ".c")}) for e in ctx.dataset.evidence]
        ctx.extra["report_dataset"] = Dataset.model_construct(
            studies=ctx.dataset.studies, evidence=items, trials=ctx.dataset.trials
        )
    return ctx.extra["report_dataset"]


def row_report_cold(ctx: Context) -> float:
    dataset = _report_dataset(ctx)
    cache.clear()
    start = time.perf_counter()
    build_report(dataset, tempfile.mkdtemp())
    return time.perf_counter() - start


def row_report_cached(ctx: Context) -> float:
    dataset = _report_dataset(ctx)
    start = time.perf_counter()
    build_report(dataset, tempfile.mkdtemp())
    return time.perf_counter() - start


REPORT_ROWS = [
    Row("report (cold)", "s", row_report_cold),
    Row("report (cached fits)", "s", row_report_cached),
]


def import_time_s(module: str = "mscatlas.cli") -> float:
    """Cumulative import time of ``module`` in a fresh interpreter (python -X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1e6
    raise RuntimeError(f"no import time line for {module}")


def run_import_time_s(args: list[str], runs: int = 3) -> float:
    """Import time of everything ``mscatlas ARGS`` imports while it runs (python -X importtime,
    the top-level modules' cumulative times summed), the least of ``runs`` runs."""
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "from mscatlas.cli import main; main()", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        total = 0
        for line in done.stderr.splitlines():
            parts = line.split("|")
            top_level = len(parts) == 3 and parts[2].startswith(" ") and not parts[2].startswith("  ")
            if line.startswith("import time:") and top_level and parts[1].strip().isdigit():
                total += int(parts[1])
        times.append(total / 1e6)
    return min(times)


def _median_wall(command: list[str], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def meta_csv(k: int, seed: int = 20240501) -> Path:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.2, size=k)
    yi = rng.normal(0.3, np.sqrt(0.05 + vi))
    path = Path(tempfile.mkdtemp()) / f"meta_{k}.csv"
    path.write_text("yi,vi\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(yi, vi, strict=True)))
    return path


def _has_metafor() -> bool:
    if shutil.which("Rscript") is None:
        return False
    done = subprocess.run(["Rscript", "-e", "library(metafor)"], capture_output=True, check=False)
    return done.returncode == 0


def startup_rows(ks: tuple[int, ...] = (20, 100, 1000)) -> list[tuple[str, float | None]]:
    rows: list[tuple[str, float | None]] = [
        ("import mscatlas.cli (s)", import_time_s()),
        ("mscatlas --help end to end (s)", _median_wall([*CLI, "--help"])),
        ("imports of mscatlas --help (s)", run_import_time_s(["--help"])),
        (
            "imports of mscatlas meta k=20 (s)",
            run_import_time_s(["meta", str(meta_csv(20)), "--measure", "GEN"]),
        ),
    ]
    metafor = _has_metafor()
    for k in ks:
        path = meta_csv(k)
        ours = _median_wall([*CLI, "meta", str(path), "--measure", "GEN", "--method", "REML"])
        theirs = None
        if metafor:
            code = (
                "suppressMessages(library(metafor)); "
                f"d <- read.csv('{path}'); print(rma(yi, vi, data=d, method='REML'))"
            )
            theirs = _median_wall(["Rscript", "-e", code])
        rows += [(f"mscatlas meta k={k} (s)", ours), (f"Rscript metafor::rma k={k} (s)", theirs)]
        if theirs:
            rows.append((f"  mscatlas / Rscript k={k}", ours / theirs))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--startup-only", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="no start-up rows")
    parser.add_argument("--cold-only", action="store_true", help="no 'report (cached fits)' row")
    args = parser.parse_args()
    if not args.report_only:
        for name, value in startup_rows():
            print(f"{name:<36}{'n/a' if value is None else format(value, '.3g'):>10}")
    if args.startup_only:
        return
    del ROWS[:]  # the report rows only (run bench_scale.py for the store rows)
    ROWS.extend(REPORT_ROWS[:1] if args.cold_only else REPORT_ROWS)
    sizes = [int(s) for s in args.sizes.split(",")]
    bench_scale.print_table("sqlite", sizes, bench_scale.run(sizes, "sqlite", None))


ROWS.extend(REPORT_ROWS)  # importing this module adds the report rows to bench_scale's table

if __name__ == "__main__":
    main()
