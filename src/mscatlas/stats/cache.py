"""Model fits and leave-one-study-out results, kept by a digest of their content.

The moderator model's fit takes a fraction of a second and its leave-one-study-out check
refits it once per study; the CLI (``synthesize``, ``predict``), the web app (synthesis page
and API), the report and the field model all ask for the same results. Every one of them goes
through :func:`mscatlas.stats.moderators.fit_design` and
:func:`~mscatlas.stats.moderators.leave_one_study_out`, which look here first with a SHA-256
digest of everything the result depends on (item ids, grouped design, counts, seed, number of
draws), so one process computes each result once whoever asks.

Written here rather than with ``functools.lru_cache``: the inputs (lists of items, NumPy
arrays) are not hashable, and a fit holds a random generator that its ``predict`` advances, so
a cached fit is handed out as a copy whose generator restarts from the state it had when the
fit was made (the same numbers as a fresh fit, whatever earlier callers drew).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from mscatlas.stats.moderators import ModeratorFit, Validation

__all__ = ["MAX_ENTRIES", "clear", "digest", "fit", "info", "validation"]

MAX_ENTRIES = 64  # results kept (least recently used dropped first); a fit at 10^5 items is ~50 MB
T = TypeVar("T")

_lock = threading.Lock()
_entries: OrderedDict[str, Any] = OrderedDict()
_counts = {"hits": 0, "misses": 0}


def _feed(h: Any, part: Any) -> None:
    if isinstance(part, np.ndarray):
        h.update(f"ndarray{part.dtype.str}{part.shape}".encode())
        h.update(np.ascontiguousarray(part).tobytes())
    elif isinstance(part, (list, tuple)) and part and all(isinstance(p, str) for p in part):
        h.update(f"strs{len(part)}".encode())
        h.update("\x1f".join(part).encode())
    else:
        h.update(json.dumps(part, sort_keys=True, default=repr).encode())
    h.update(b"\x1e")


def digest(*parts: Any) -> str:
    """SHA-256 of the parts in order: arrays by dtype, shape and bytes; lists of strings joined;
    anything else as JSON (``repr`` for what JSON cannot write)."""
    h = hashlib.sha256()
    for part in parts:
        _feed(h, part)
    return h.hexdigest()


def _get_or_compute(key: str, compute: Callable[[], T]) -> T:
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
            _counts["hits"] += 1
            return _entries[key]  # type: ignore[no-any-return]
        _counts["misses"] += 1
    value = compute()  # outside the lock: two threads may compute one key once each, never wrong
    with _lock:
        _entries[key] = value
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return value


def fit(key: str, compute: Callable[[], ModeratorFit]) -> ModeratorFit:
    """The fit of ``key``: computed once, then a copy with the generator as it was after fitting."""

    def fresh() -> tuple[ModeratorFit, dict[str, Any]]:
        value = compute()
        return value, value.rng.bit_generator.state

    stored, state = _get_or_compute(key, fresh)
    rng = np.random.Generator(type(stored.rng.bit_generator)())
    rng.bit_generator.state = state
    return dataclasses.replace(stored, rng=rng)


def validation(key: str, compute: Callable[[], Validation]) -> Validation:
    """The leave-one-study-out result of ``key`` (immutable), computed once."""
    return _get_or_compute(key, compute)


def clear() -> None:
    """Forget every result (tests that time or count computations start from here)."""
    with _lock:
        _entries.clear()
        _counts.update(hits=0, misses=0)


def info() -> dict[str, int]:
    """Entries kept, hits and misses since the last :func:`clear`."""
    with _lock:
        return {"entries": len(_entries), **_counts}
