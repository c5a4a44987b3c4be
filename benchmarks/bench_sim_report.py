"""The report's homing snapshot (report/sim_section.py): how long the small seeded spatial run
behind the report's in silico figure takes. Moved here from tests/test_sim_report.py, where a
wall-clock assertion made the test depend on the machine (issue 15 point 18).

Run: python benchmarks/bench_sim_report.py [--repeat 3]

A measurement, not a test: compare runs made side by side on one machine.
"""

from __future__ import annotations

import argparse

from _timing import median_seconds

from mscatlas.report.sim_section import HOMING_DAYS, homing_snapshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="Runs to take the median of.")
    args = parser.parse_args(argv)
    homing_snapshot(seed=0)  # first call: imports and any one-off set-up
    seconds = median_seconds(lambda: homing_snapshot(seed=0), args.repeat)
    days = f"{HOMING_DAYS:g} simulated days"
    print(f"homing snapshot ({days}, seed 0): median {seconds:.2f} s of {args.repeat} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
