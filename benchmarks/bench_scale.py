"""The store and the web at 10^3-10^5 evidence items (issue 14, goals 1-2): one run, one table.

Run: python benchmarks/bench_scale.py [--sizes 1000,10000,100000] [--postgres URL] [--json]
     (quick: --sizes 1000,10000; PostgreSQL also from MSCATLAS_BENCH_POSTGRES_URL)

For each size n the script builds a synthetic dataset of n evidence items from copies of the
shipped items (new ids ``<id>.x<k>``; studies and trials as shipped), opens a new store seeded
with the shipped data and times:

- ``load``: ``Store.load`` of the n items into it (wall time, one call);
- ``api msc_source limit=10``: ``GET /api/evidence?msc_source=...&limit=10`` (median of warm
  requests; the first request is reported apart as ``api first request``);
- ``api p95 limit=50``: p95 over 20 requests of mixed filters with a page size of 50;
- ``GET /evidence``: the explorer page, default page size (median of warm requests);
- ``export json peak RSS``: ``mscatlas export --format json`` in a subprocess, its peak
  resident memory (the child's VmHWM; Linux); ``release peak RSS``: the same for
  ``mscatlas release``.

Requests go through the app in process (FastAPI's TestClient): the times are the app's and the
store's, without a network. Each row is a function in ``ROWS``; another benchmark adds its rows
(``report``, start-up) by appending ``Row(name, unit, function)`` to it. Ratios are to the
smallest size. A measurement, not a test: compare runs made side by side on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from mscatlas.kb.models import Dataset
from mscatlas.kb.shipped import shipped_dataset
from mscatlas.kb.store import Store
from mscatlas.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SEED = 1
MIXED_FILTERS = [  # the p95 row draws from these (every filter kind, alone and combined)
    {"msc_source": "umbilical_cord"},
    {"msc_source": "bone_marrow", "setting": "in_vivo"},
    {"direction": "promotes"},
    {"cancer_class": "hematological"},
    {"delivery": "conditioned_medium", "direction": "inhibits"},
    {"endpoint": "proliferation", "sort": "cancer_type", "order": "desc"},
    {"q": "glioma"},
    {"curation_status": "accepted", "sort": "reference"},
    {"msc_source": "adipose_tissue", "offset": 500},
    {},
]


@dataclass
class Context:
    """One size's store and client, shared by the rows."""

    n: int
    url: str
    dataset: Dataset
    rng: random.Random
    store: Store | None = None
    client: TestClient | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    name: str
    unit: str  # "s", "ms" or "MB"
    measure: Callable[[Context], float]


def synthetic_dataset(n: int) -> Dataset:
    """n evidence items: the shipped items, then copies of them with new ids, cycling."""
    shipped = shipped_dataset()
    items = []
    k = 0
    while len(items) < n:
        for item in shipped.evidence:
            if len(items) == n:
                break
            items.append(item.model_copy(update={"id": f"{item.id}.x{k}"}))
        k += 1
    return Dataset.model_construct(studies=shipped.studies, evidence=items, trials=shipped.trials)


def _fresh_url(backend: str, postgres: str | None) -> str:
    if backend == "postgresql":
        assert postgres
        engine = create_engine(postgres)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        return postgres
    return f"sqlite:///{Path(tempfile.mkdtemp()) / 'scale.sqlite'}"


def _timed(step: Callable[[], Any]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def _get(ctx: Context, path: str, params: dict[str, Any] | None = None) -> float:
    assert ctx.client is not None
    start = time.perf_counter()
    response = ctx.client.get(path, params=params)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"{path} {params}: HTTP {response.status_code} {response.text[:200]}")
    return elapsed


def row_load(ctx: Context) -> float:
    ctx.store = Store.open(ctx.url)
    seconds = _timed(lambda: ctx.store.load(ctx.dataset, changed_by="bench", reason="bench"))
    ctx.client = TestClient(create_app(ctx.store, secret_key="bench"))
    return seconds


def row_api_first(ctx: Context) -> float:
    return _get(ctx, "/api/evidence", {"msc_source": "umbilical_cord", "limit": 10})


def row_api_filter(ctx: Context) -> float:
    return statistics.median(
        _get(ctx, "/api/evidence", {"msc_source": "umbilical_cord", "limit": 10}) for _ in range(5)
    )


def row_api_p95(ctx: Context) -> float:
    times = sorted(
        _get(ctx, "/api/evidence", {**ctx.rng.choice(MIXED_FILTERS), "limit": 50}) for _ in range(20)
    )
    return times[round(0.95 * (len(times) - 1))]


def row_explorer(ctx: Context) -> float:
    return statistics.median(_get(ctx, "/evidence") for _ in range(3))


def row_explorer_p95(ctx: Context) -> float:
    times = sorted(_get(ctx, "/evidence", {**ctx.rng.choice(MIXED_FILTERS), "limit": 50}) for _ in range(20))
    return times[round(0.95 * (len(times) - 1))]


# The child reports its own peak (VmHWM of /proc/self/status belongs to the process image after
# exec): ru_maxrss of RUSAGE_CHILDREN would also count the pages a forked child shares with this
# process before exec, i.e. the benchmark's own memory.
EXPORT_CHILD = """
import os
from mscatlas.cli import main
try:
    main()
finally:
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM")).split()[1]
    with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        out.write(peak)
"""


def _child_peak_mb(args: list[str]) -> float:
    """Peak RSS (MB) of ``mscatlas ARGS`` run in a child process."""
    peak = Path(tempfile.mkdtemp()) / "peak.txt"
    env = {**os.environ, "BENCH_PEAK_FILE": str(peak)}
    command = [sys.executable, "-c", EXPORT_CHILD, *args]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return int(peak.read_text()) / 1024


def row_export_memory(ctx: Context) -> float:
    """Peak RSS (MB) of ``mscatlas export --format json``."""
    out = Path(tempfile.mkdtemp()) / "export.json"
    peak = _child_peak_mb(["export", "--format", "json", "--db", ctx.url, "--out", str(out)])
    ctx.extra["export_bytes"] = out.stat().st_size
    return peak


def row_release_memory(ctx: Context) -> float:
    """Peak RSS (MB) of ``mscatlas release`` (JSON, three TSVs and the manifest)."""
    return _child_peak_mb(["release", "--db", ctx.url, "--out", str(Path(tempfile.mkdtemp()) / "release")])


# The hook: rows run in this order for each size; append Row(...) to add one (load comes first).
ROWS: list[Row] = [
    Row("load into a new store", "s", row_load),
    Row("api first request", "ms", row_api_first),
    Row("api msc_source limit=10", "ms", row_api_filter),
    Row("api p95 mixed limit=50", "ms", row_api_p95),
    Row("GET /evidence", "ms", row_explorer),
    Row("explorer p95 mixed limit=50", "ms", row_explorer_p95),
    Row("export json peak RSS", "MB", row_export_memory),
    Row("release peak RSS", "MB", row_release_memory),
]


def run(sizes: list[int], backend: str, postgres: str | None) -> dict[str, dict[int, float]]:
    table: dict[str, dict[int, float]] = {row.name: {} for row in ROWS}
    for n in sizes:
        ctx = Context(n, _fresh_url(backend, postgres), synthetic_dataset(n), random.Random(SEED))
        for row in ROWS:
            value = row.measure(ctx)
            table[row.name][n] = value * 1000 if row.unit == "ms" else value
            print(f"  {backend} n={n} {row.name}: {table[row.name][n]:.3g} {row.unit}", file=sys.stderr)
        if ctx.store is not None:
            ctx.store.close()
    return table


def print_table(backend: str, sizes: list[int], table: dict[str, dict[int, float]]) -> None:
    units = {row.name: row.unit for row in ROWS}
    head = f"{backend:<30}" + "".join(f"{n:>12,}" for n in sizes)
    if len(sizes) > 1:
        head += "".join(f"{'x' + format(n, ','):>12}" for n in sizes[1:])
    print(head)
    for name, values in table.items():
        line = f"{name + ' (' + units[name] + ')':<30}" + "".join(f"{values[n]:>12.4g}" for n in sizes)
        base = values[sizes[0]]
        line += "".join(f"{values[n] / base:>12.2f}" for n in sizes[1:]) if base else ""
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated evidence counts")
    parser.add_argument("--postgres", default=os.environ.get("MSCATLAS_BENCH_POSTGRES_URL"))
    parser.add_argument("--json", action="store_true", help="print the table as JSON too")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    results = {}
    for backend in backends:
        results[backend] = run(sizes, backend, args.postgres)
        print_table(backend, sizes, results[backend])
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
