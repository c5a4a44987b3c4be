"""Fits per second of the meta-analysis engine (REML) beside statsmodels' combine_effects.

Not a test. Run:  python benchmarks/bench_meta.py  (statsmodels is optional: `pip install
statsmodels`; without it only mscatlas is timed).

Data: k studies simulated with a seed (true effect 0.3, τ² = 0.05, sampling variances drawn
uniformly in [0.01, 0.2]). statsmodels offers no REML; its closest estimator is the iterated
Paule–Mandel one (method_re="iterated"), timed here, with DerSimonian–Laird (method_re="dl")
beside it. The estimates are printed so that the comparison is seen to be like for like
(mscatlas PM must equal statsmodels' iterated estimate).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from mscatlas.stats import rma


def simulate(k: int, seed: int = 20240501) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.2, size=k)
    yi = rng.normal(0.3, np.sqrt(0.05 + vi))
    return yi, vi


def rate(fn: Callable[[], object], min_seconds: float = 1.0) -> float:
    """Calls per second, timed over at least ``min_seconds``."""
    fn()  # warm up
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return n / elapsed


def main() -> None:
    try:
        from statsmodels.stats.meta_analysis import combine_effects
    except ImportError:  # pragma: no cover - optional dependency
        combine_effects = None
    print(f"{'k':>5}  {'engine':<40} {'fits/s':>10}  {'estimate':>10}  {'tau2':>10}")
    for k in (20, 1000):
        yi, vi = simulate(k)
        rows: list[tuple[str, Callable[[], object], float, float]] = []
        for method in ("REML", "PM", "DL"):
            res = rma(yi, vi, method=method)
            rows.append(
                (
                    f"mscatlas rma(method={method!r})",
                    lambda m=method, y=yi, v=vi: rma(y, v, method=m),
                    res.estimate,
                    res.tau2,
                )
            )
        if combine_effects is not None:
            for method_re in ("iterated", "dl"):
                r = combine_effects(yi, vi, method_re=method_re)
                rows.append(
                    (
                        f"statsmodels combine_effects({method_re!r})",
                        lambda m=method_re, y=yi, v=vi: combine_effects(y, v, method_re=m),
                        float(r.mean_effect_re),
                        float(r.tau2),
                    )
                )
        for name, fn, est, tau2 in rows:
            print(f"{k:>5}  {name:<40} {rate(fn):>10.0f}  {est:>10.6f}  {tau2:>10.6f}")


if __name__ == "__main__":
    main()
