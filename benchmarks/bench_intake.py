"""Intake timings on 10^5 synthetic records: import (with deduplication, one transaction),
deduplication alone, and one active-learning ranking.

Run: python benchmarks/bench_intake.py [--n 100000] [--seed 1]
The records are generated from a seed: titles drawn from a small vocabulary, years 1990-2025,
one author each; 5% repeat an earlier record's DOI, 5% repeat its title with a spelling or
punctuation change (same year and author). These are measurements, not tests: compare runs made
side by side on one machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mscatlas.intake.citation import Citation
from mscatlas.intake.dedup import DedupIndex
from mscatlas.intake.ranking import Ranker
from mscatlas.intake.store import IntakeStore
from mscatlas.kb.store import Store

WORDS = [
    "mesenchymal",
    "stem",
    "stromal",
    "cells",
    "tumour",
    "tumor",
    "growth",
    "breast",
    "gastric",
    "lung",
    "colon",
    "glioma",
    "leukaemia",
    "exosomes",
    "conditioned",
    "medium",
    "umbilical",
    "cord",
    "bone",
    "marrow",
    "adipose",
    "placenta",
    "apoptosis",
    "migration",
    "invasion",
    "proliferation",
    "xenograft",
    "mice",
    "rats",
    "inhibit",
    "promote",
    "signalling",
    "pathway",
    "expression",
    "microRNA",
    "therapy",
    "delivery",
    "homing",
    "engineered",
    "TRAIL",
    "interferon",
    "cytokine",
    "hypoxia",
    "spheroid",
]
SURNAMES = [
    "Li",
    "Wang",
    "Zhang",
    "Chen",
    "Liu",
    "Smith",
    "Müller",
    "García",
    "Kim",
    "Nguyen",
    "Rossi",
    "Sato",
    "Kowalski",
    "Ødegård",
    "Silva",
]


def synthetic(n: int, seed: int) -> tuple[list[Citation], int]:
    """``n`` records of which about 10% duplicate an earlier one; returns them and that number."""
    rng = np.random.default_rng(seed)
    records: list[Citation] = []
    duplicates = 0
    for i in range(n):
        roll = rng.random()
        if i > 100 and roll < 0.05:
            original = records[int(rng.integers(0, i))]
            records.append(Citation(title=original.title.upper(), doi=original.doi, year=original.year))
            duplicates += 1
            continue
        if i > 100 and roll < 0.10:
            original = records[int(rng.integers(0, i))]
            variant = original.title.replace("tumour", "tumor").rstrip(".") + "."
            records.append(Citation(title=variant, year=original.year, authors=list(original.authors)))
            duplicates += 1
            continue
        title = " ".join(rng.choice(WORDS, size=int(rng.integers(8, 16)))) + f" {i}"
        records.append(
            Citation(
                title=title.capitalize(),
                abstract=" ".join(rng.choice(WORDS, size=60)),
                authors=[f"{rng.choice(SURNAMES)} {chr(65 + int(rng.integers(0, 26)))}"],
                year=int(rng.integers(1990, 2026)),
                doi=f"10.5555/bench.{seed}.{i}",
                pmid=f"{30000000 + i}",
            )
        )
    return records, duplicates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    records, expected = synthetic(args.n, args.seed)

    start = time.perf_counter()
    index = DedupIndex()
    found = 0
    for k, record in enumerate(records):
        if index.match(record) is None:
            index.add(f"c{k}", record)
        else:
            found += 1
    dedup_s = time.perf_counter() - start

    tmp = Path(tempfile.mkdtemp())
    store = Store.open(f"sqlite:///{tmp / 'bench.sqlite'}", seed=False)
    intake = IntakeStore(store)
    start = time.perf_counter()
    result = intake.import_citations(records, source="benchmark")
    import_s = time.perf_counter() - start

    candidates = intake.candidates()
    texts = [f"{c.title} {c.abstract or ''}" for c in candidates]
    rng = np.random.default_rng(args.seed)
    labelled = rng.choice(len(texts), size=200, replace=False)
    labels = {int(i): int(j % 2) for j, i in enumerate(labelled)}
    start = time.perf_counter()
    order, _ = Ranker(seed=args.seed).order(texts, labels)
    rank_s = time.perf_counter() - start
    store.close()

    print(f"records: {args.n} ({expected} generated as duplicates)")
    print(f"dedup (in memory): {dedup_s:7.2f} s  duplicates found: {found}")
    print(
        f"import (store, dedup, one transaction): {import_s:7.2f} s  imported {result.imported}, "
        f"duplicates {len(result.duplicates)}"
    )
    print(f"ranking (TF-IDF + logistic regression, 200 labels, {len(order)} ranked): {rank_s:7.2f} s")


if __name__ == "__main__":
    main()
