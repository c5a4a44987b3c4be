"""Benchmark (not a test): ODE protocol simulations per second on the vectorised ensemble path.

One protocol simulation = a 72 h direct co-culture at MSC:cancer 1:1 (treated arm) plus its
control arm, for one parameter set. Parameter sets are log-normal perturbations (CV 0.3, seed 0)
of the bone-marrow / solid defaults. Integrator: fixed-step RK4, dt = 0.25 h, states kept at
0, 24, 48 and 72 h. Peak memory is the tracemalloc peak of a second, untimed run (NumPy reports its buffers to
tracemalloc) and the process's maximum resident set size.

Run: ``python benchmarks/bench_sim_ode.py [--sizes 1000 10000 100000] [--dt 0.25]``
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc

import numpy as np

from mscatlas.sim import lognormal_ensemble, rk4
from mscatlas.sim.build import cell_params, product
from mscatlas.sim.model import initial_state
from mscatlas.sim.protocol import simulate


def bench(n: int, dt: float) -> dict[str, float]:
    base = cell_params(product("bone_marrow"), "solid")
    times = np.array([0.0, 24.0, 48.0, 72.0])

    def one_run() -> tuple[object, object]:
        ens = lognormal_ensemble(base, n, seed=0)
        treated = rk4(ens, initial_state(ens, 5e4, 5e4), times, dt=dt)
        control = rk4(ens, initial_state(ens, 5e4, 0.0), times, dt=dt)
        return ens, (treated, control)

    start = time.perf_counter()
    ens, (treated, control) = one_run()
    elapsed = time.perf_counter() - start
    inhibition = 100.0 * (1.0 - treated.viable[-1] / control.viable[-1])
    # Memory in a second pass: tracemalloc slows NumPy allocation, so it stays out of the timing.
    tracemalloc.start()
    one_run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # accuracy check of the fixed step against LSODA on a few members
    errors = []
    for i in range(min(n, 3)):
        member = ens.with_(**{k: np.asarray(getattr(ens, k))[..., i] for k in ens.__dataclass_fields__})
        exact = simulate(member, initial_state(member, 5e4, 5e4), times)
        errors.append(abs(treated.viable[-1, i] / exact[:3, -1].sum() - 1.0))
    return {
        "n": n,
        "seconds": elapsed,
        "sims_per_second": n / elapsed,
        "peak_mib": peak / 2**20,
        "median_inhibition": float(np.median(inhibition)),
        "max_rel_error_vs_lsoda": max(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--dt", type=float, default=0.25)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, dt = {args.dt} h, 72 h protocol, 2 arms")
    print(
        f"{'ensemble':>9} {'seconds':>8} {'sims/s':>10} {'peak MiB':>9} "
        f"{'median inh %':>13} {'err vs LSODA':>13}"
    )
    for n in args.sizes:
        r = bench(n, args.dt)
        print(
            f"{r['n']:>9} {r['seconds']:>8.2f} {r['sims_per_second']:>10.0f} {r['peak_mib']:>9.1f} "
            f"{r['median_inhibition']:>13.2f} {r['max_rel_error_vs_lsoda']:>13.1e}"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"max resident set size of the process: {rss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
