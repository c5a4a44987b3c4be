"""Load on the web server: p50/p95 latency and error rate of 200 concurrent requests.

Run: python benchmarks/bench_load.py [--workers 4] [--requests 200] [--rounds 3]
     [--postgres postgresql+psycopg://user@host/db]   (or MSCATLAS_BENCH_POSTGRES_URL)

For each store (SQLite, and PostgreSQL when a URL is given) and each worker count (1 and N),
the script fills a fresh store from the shipped dataset, starts `mscatlas serve --workers W`
in a subprocess, and sends ``--requests`` requests at once, a third each to the evidence
explorer page (filtered), the record API (one item with its study and history) and the
filtered evidence API, ``--rounds`` times. Every request's latency is timed on the client;
a response other than 200 (or no response in 60 s) counts as an error. This is a
measurement, not a test: compare runs made side by side on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from mscatlas.kb.store import Store

ENDPOINTS = {
    "explorer": "/evidence?direction=inhibits&setting=in_vitro",
    "record_api": "/api/evidence/{id}",
    "filtered_api": "/api/evidence?msc_source=umbilical_cord&setting=in_vivo",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fresh_store(url: str) -> list[str]:
    """Fill an empty store at ``url`` from the shipped dataset; returns the evidence ids."""
    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    store = Store.open(url)
    ids = [e.id for e in store.query_evidence()]
    store.close()
    return ids


def _start(url: str, workers: int, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from mscatlas.cli import main; main()", "serve"]
    command += ["--db", url, "--port", str(port), "--workers", str(workers)]
    env = {**os.environ, "MSCATLAS_SECRET_KEY": "benchmark"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/evidence?limit=1", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not start within 60 s")


async def _burst(port: int, ids: list[str], n: int, rng: random.Random) -> list[tuple[str, float, bool]]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:

        async def one(kind: str) -> tuple[str, float, bool]:
            path = ENDPOINTS[kind].format(id=rng.choice(ids))
            started = time.perf_counter()
            try:
                ok = (await client.get(path)).status_code == 200
            except httpx.HTTPError:
                ok = False
            return kind, time.perf_counter() - started, ok

        kinds = [list(ENDPOINTS)[i % len(ENDPOINTS)] for i in range(n)]
        return list(await asyncio.gather(*(one(k) for k in kinds)))


def _summary(samples: list[tuple[str, float, bool]]) -> dict[str, float]:
    times = sorted(t for _, t, _ in samples)
    return {
        "n": len(samples),
        "p50_s": statistics.median(times),
        "p95_s": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
        "error_rate": sum(not ok for _, _, ok in samples) / len(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=4, help="N of the N-worker runs")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("MSCATLAS_BENCH_POSTGRES_URL"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(1)
    stores = {"sqlite": f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.sqlite'}"}
    if args.postgres:
        stores["postgresql"] = args.postgres
    else:
        print("no PostgreSQL URL (--postgres): SQLite only", file=sys.stderr)
    results = []
    for backend, url in stores.items():
        ids = _fresh_store(url)
        for workers in (1, args.workers):
            port = _free_port()
            server = _start(url, workers, port)
            try:
                asyncio.run(_burst(port, ids, 20, rng))  # warm up each worker's caches
                samples: list[tuple[str, float, bool]] = []
                for _ in range(args.rounds):
                    samples += asyncio.run(_burst(port, ids, args.requests, rng))
            finally:
                server.terminate()
                server.wait(30)
            row = {"store": backend, "workers": workers, **_summary(samples)}
            row["by_endpoint"] = {k: _summary([s for s in samples if s[0] == k]) for k in ENDPOINTS}
            results.append(row)
            print(
                f"{backend:10} workers={workers:<2} requests={row['n']:<4} p50={row['p50_s'] * 1000:8.0f} ms "
                f"p95={row['p95_s'] * 1000:8.0f} ms errors={100 * row['error_rate']:.1f}%",
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
