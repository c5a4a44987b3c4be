"""Knowledge-base timings on the shipped dataset: validate, seed a store, export, report.

Run: python benchmarks/bench_kb.py [--repeat 5]
Prints the median wall time of each step and the peak Python memory of the whole run. These
are measurements, not tests: compare runs made side by side on one machine.
"""

from __future__ import annotations

import argparse
import tempfile
import tracemalloc
from pathlib import Path

from _timing import median_seconds

from mscatlas.kb.export import export_text
from mscatlas.kb.records import validate_paths
from mscatlas.kb.shipped import shipped_dataset, shipped_files
from mscatlas.kb.store import Store
from mscatlas.report import build_report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    tmp = Path(tempfile.mkdtemp())
    dataset = shipped_dataset()
    counter = iter(range(10**6))

    def seed() -> None:
        store = Store(f"sqlite:///{tmp / f'bench-{next(counter)}.sqlite'}")
        store.load(dataset)
        store.close()

    store = Store(f"sqlite:///{tmp / 'read.sqlite'}")
    store.load(dataset)

    results = {
        "validate shipped files": median_seconds(lambda: validate_paths(shipped_files()), repeat),
        "load into a new SQLite store": median_seconds(seed, repeat),
        "reload unchanged (idempotent)": median_seconds(lambda: store.load(dataset), repeat),
        "read whole store": median_seconds(store.dataset, repeat),
        "export JSON": median_seconds(lambda: export_text(dataset, "json"), repeat),
        "export CSV": median_seconds(lambda: export_text(dataset, "csv"), repeat),
        "build HTML report": median_seconds(lambda: build_report(dataset, tmp / "report"), repeat),
    }
    # Memory in a separate pass: tracing slows the timed steps several-fold.
    tracemalloc.start()
    validate_paths(shipped_files())
    seed()
    build_report(dataset, tmp / "report")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"dataset: {len(dataset.studies)} studies, {len(dataset.evidence)} evidence items, "
        f"{len(dataset.trials)} trials; median of {repeat} runs"
    )
    for name, seconds in results.items():
        print(f"{name:32s} {seconds * 1000:8.1f} ms")
    print(f"{'peak Python memory (validate+load+report)':32s} {peak / 2**20:8.1f} MiB")


if __name__ == "__main__":
    main()
