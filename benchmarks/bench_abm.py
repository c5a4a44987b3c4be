"""Benchmark (not a test): speed and memory of the spatial agent-based model (mscatlas.sim.abm).

Two parts.

1. Throughput at 10^4, 10^5 and 10^6 cancer cells (plus 10% as many MSCs). The tumour disc is
   seeded at the default density (``initial_fill`` of ``max_cell_density``) and the square
   domain is sized so that the disc covers about half of it; voxels stay 20 µm, so the grid
   grows with the cell count. Each size runs a few whole steps (fields and agents). Reported:
   agent updates per second (living agents x steps / agent time) and voxel updates per second
   (voxels x solved fields x steps / field time), where the field time is measured by timing
   the field solves alone on the same grid and the agent time is the step time minus it.
2. The reference scenario of the issue: ~1,000 cells on a 2,000 µm domain with 10^4 voxels for
   2 simulated days (dt 0.1 h, 480 steps), default parameters, 200 MSCs, seed 0.

Peak memory: the tracemalloc peak of each measured block (NumPy reports its buffers to
tracemalloc; measured in a separate untimed pass) and the process's maximum resident set size.

Throughput is also given as cells x simulated hours per second (living agents x dt / step
time), the unit of the issue and of ``bench_physicell.py``. ``--mechanics`` turns on the
PhysiCell-style potentials (0.1 min Adams-Bashforth substeps); ``--substeps`` sets the field
steps per agent step (``mscatlas.sim.abm.accuracy`` says which step meets which error).

Run: ``python benchmarks/bench_abm.py [--sizes 10000 100000 1000000] [--steps 5] [--mechanics]``
Limit threads for a 2-core figure with e.g. ``OMP_NUM_THREADS=2 taskset -c 0,1 python ...``.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time
import tracemalloc

import numpy as np

from mscatlas.sim.abm import AbmConfig, AbmModel, Mechanics


def _config(n: int, mechanics: bool = False, substeps: int = 1) -> AbmConfig:
    base = AbmConfig.from_parameters()
    density = base.initial_fill * base.max_density * 1e-6  # cells/µm²
    disc_area = n / density
    side = math.sqrt(2.0 * disc_area)  # disc covers about half the square
    return base.with_(
        n_cancer=n,
        n_msc=n // 10,
        domain_size=side,
        mechanics=Mechanics() if mechanics else None,
        field_substeps=substeps,
    )


def throughput(n: int, steps: int, mechanics: bool = False, substeps: int = 1) -> dict[str, float]:
    cfg = _config(n, mechanics, substeps)
    t0 = time.perf_counter()
    model = AbmModel(cfg, seed=0, prime_fields=False)
    setup = time.perf_counter() - t0
    model.step()  # warm-up
    agents = []
    t0 = time.perf_counter()
    for _ in range(steps):
        agents.append(model.agents.count(0) + model.agents.count(1))
        model.step()
    step_time = (time.perf_counter() - t0) / steps
    # the fields alone, same grid, same number of solves per step
    solvers = [model._cxcl_solver, *model._sig_solvers]
    fields = [model.cxcl12, *model.paracrine]
    src = np.ones(model.grid.shape)
    t0 = time.perf_counter()
    for _ in range(steps):
        fields = [s.run(f, substeps, src) for s, f in zip(solvers, fields, strict=True)]
    field_time = (time.perf_counter() - t0) / steps
    agent_time = max(step_time - field_time, 1e-12)
    n_agents = float(np.mean(agents))
    # memory: a fresh model and a few steps, traced
    tracemalloc.start()
    fresh = AbmModel(cfg, seed=0, prime_fields=False)
    for _ in range(2):
        fresh.step()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "cells": n,
        "agents": n_agents,
        "voxels": model.grid.size,
        "fields": len(solvers),
        "setup_s": setup,
        "step_s": step_time,
        "field_s": field_time,
        "agent_updates_per_s": n_agents / agent_time,
        "voxel_updates_per_s": model.grid.size * len(solvers) / field_time,
        "whole_step_agent_updates_per_s": n_agents / step_time,
        "cell_hours_per_s": n_agents * cfg.dt / step_time,
        "seconds_per_sim_hour": step_time / cfg.dt,
        "peak_traced_mib": peak / 2**20,
    }


def scenario() -> dict[str, float]:
    cfg = AbmConfig.from_parameters()  # 1,000 cells, 200 MSCs, 2,000 µm, 20 µm voxels
    t0 = time.perf_counter()
    model = AbmModel(cfg, seed=0)
    result = model.run(48.0)
    elapsed = time.perf_counter() - t0
    tracemalloc.start()
    AbmModel(cfg, seed=0).run(48.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "seconds": elapsed,
        "voxels": model.grid.size,
        "steps": result.steps,
        "cancer_start": int(result.cancer[0]),
        "cancer_end": int(result.cancer[-1]),
        "msc_end": int(result.msc[-1]),
        "homing_end": float(result.homing_fraction[-1]),
        "peak_traced_mib": peak / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--mechanics", action="store_true", help="PhysiCell-style potentials on")
    parser.add_argument("--substeps", type=int, default=1, help="field steps per agent step")
    parser.add_argument("--no-scenario", action="store_true", help="skip the reference scenario")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, cpus {os.cpu_count()}")
    if not args.no_scenario:
        print("\nreference scenario: ~1,000 cells, 2,000 um domain, 1e4 voxels, 2 days (480 steps)")
        s = scenario()
        print(
            f"  {s['seconds']:.2f} s wall; {s['voxels']} voxels; "
            f"cancer {s['cancer_start']} -> {s['cancer_end']}, MSCs left {s['msc_end']}, "
            f"homed {100 * s['homing_end']:.0f}%; peak traced {s['peak_traced_mib']:.1f} MiB"
        )
    print(
        f"\nthroughput (whole steps; agent and field parts separated); mechanics "
        f"{'on' if args.mechanics else 'off'}, {args.substeps} field step(s) per agent step"
    )
    header = (
        f"{'cells':>9} {'agents':>9} {'voxels':>10} {'step s':>8} {'field s':>8} "
        f"{'agent upd/s':>12} {'voxel upd/s':>12} {'cells*h/s':>10} {'s/sim h':>8} {'peak MiB':>9}"
    )
    print(header)
    for n in args.sizes:
        r = throughput(n, args.steps, args.mechanics, args.substeps)
        print(
            f"{r['cells']:>9d} {r['agents']:>9.0f} {r['voxels']:>10d} "
            f"{r['step_s']:>8.3f} {r['field_s']:>8.3f} {r['agent_updates_per_s']:>12.3g} "
            f"{r['voxel_updates_per_s']:>12.3g} {r['cell_hours_per_s']:>10.3g} "
            f"{r['seconds_per_sim_hour']:>8.2f} {r['peak_traced_mib']:>9.0f}",
            flush=True,
        )
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\nprocess max resident set size: {maxrss_kib / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
