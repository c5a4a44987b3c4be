"""Simulated trials per second for the BOIN and CRM simulators (and the 3+3 for reference).

Run: python benchmarks/bench_dose_finding.py [--sims 10000] [--repeat 3]
Scenario: 5 doses with true toxicity 0.05, 0.15, 0.30, 0.45, 0.60, target 0.3, 10 cohorts of
3. Prints the median wall time over the repeats and the implied trials per second. A
measurement, not a test: compare runs made side by side on one machine.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from _timing import median_seconds

from mscatlas.trials import (
    CrmModel,
    boin_simulate,
    crm_simulate,
    three_plus_three_exact,
    three_plus_three_simulate,
)

TRUE_TOX = [0.05, 0.15, 0.30, 0.45, 0.60]
SKELETON = (0.06, 0.14, 0.25, 0.38, 0.52)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sims", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sims = args.sims
    empiric = CrmModel(SKELETON, 0.3)
    logistic = CrmModel(SKELETON, 0.3, model="logistic")
    cases: dict[str, Callable[[], object]] = {
        "BOIN": lambda: boin_simulate(TRUE_TOX, 0.3, 3, 10, n_sims=sims, seed=1),
        "CRM (empiric)": lambda: crm_simulate(TRUE_TOX, empiric, 3, 10, n_sims=sims, seed=1),
        "CRM (logistic)": lambda: crm_simulate(TRUE_TOX, logistic, 3, 10, n_sims=sims, seed=1),
        "3+3 (simulated)": lambda: three_plus_three_simulate(TRUE_TOX, 0.3, n_sims=sims, seed=1),
    }
    print(f"{sims} trials, 5 doses, 10 cohorts of 3 (3+3: its own cohorts), median of {args.repeat}")
    for name, step in cases.items():
        seconds = median_seconds(step, args.repeat)
        print(f"{name:<16} {seconds:8.3f} s   {sims / seconds:12,.0f} trials/s")
    exact = median_seconds(lambda: three_plus_three_exact(TRUE_TOX), args.repeat)
    print(f"{'3+3 (exact)':<16} {exact * 1e3:8.3f} ms  (one enumeration, no simulation)")


if __name__ == "__main__":
    main()
