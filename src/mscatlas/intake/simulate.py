"""Simulation mode (after ASReview): replay a fully labelled set through the screening loop.

The loop (:func:`screening_log`) is the same ranker a reviewer's ``intake next`` uses: it
starts from a seeded random record until one relevant and one irrelevant record are known
(the prior knowledge ASReview asks a user for), then refits and takes the most likely
relevant record, refitting every ``refit_every`` records (every record for sets of up to
1,000; about 500 refits for larger sets). It writes a log (the labels in screening order);
the metrics (:func:`metrics`) only read logs, so the random order is measured the same way.

- recall curve: relevant found / all relevant, after each record;
- WSS@95: work saved over sampling at 95% recall, (N - n95) / N - 0.05, where n95 is the
  number of records screened when 95% of the relevant ones have been found;
- RRF@10: the share of relevant records found after screening 10% of the records;
- the stopping rule: the first record after which the rule of Callaghan & Müller-Hansen says
  the target recall is reached (checked after every record for sets of up to 2,000, on a grid
  of 2,000 points otherwise), and the recall actually reached there.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mscatlas.intake.citation import IntakeError, IntakeProblem
from mscatlas.intake.ranking import Ranker
from mscatlas.intake.stopping import h0_pvalue

__all__ = ["LabelledSet", "metrics", "read_labelled", "screening_log", "simulate"]

LABEL_COLUMNS = ("label_included", "included", "label")


@dataclass(frozen=True)
class LabelledSet:
    texts: list[str]
    labels: np.ndarray  # 1 relevant, 0 not

    @property
    def n(self) -> int:
        return len(self.texts)


def read_labelled(path: str | Path) -> LabelledSet:
    """A labelled CSV: columns title, abstract, label_included (1/0, yes/no, true/false)."""
    path = Path(path)
    problems: list[IntakeProblem] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise IntakeError(
            [IntakeProblem(str(path), None, None, None, f"cannot read the file: {exc}")]
        ) from exc
    reader = csv.DictReader(text.splitlines())
    header = [h.strip().casefold() for h in reader.fieldnames or []]
    label_column = next((c for c in LABEL_COLUMNS if c in header), None)
    if "title" not in header or label_column is None:
        raise IntakeError(
            [
                IntakeProblem(
                    str(path), None, 1, "label_included", "needs columns title, abstract, label_included"
                )
            ]
        )
    texts, labels = [], []
    for index, row in enumerate(reader, start=1):
        row = {k.strip().casefold(): (v or "") for k, v in row.items() if k}
        raw = row.get(label_column, "").strip().casefold()
        value = {"1": 1, "0": 0, "yes": 1, "no": 0, "true": 1, "false": 0, "1.0": 1, "0.0": 0}.get(raw)
        if value is None:
            problems.append(
                IntakeProblem(
                    str(path), f"record {index}", reader.line_num, label_column, f"not a label: {raw!r}"
                )
            )
            continue
        texts.append(f"{row.get('title', '')} {row.get('abstract', '')}".strip())
        labels.append(value)
    if problems:
        raise IntakeError(problems)
    if not texts or sum(labels) == 0:
        raise IntakeError(
            [IntakeProblem(str(path), None, None, label_column, "needs at least one relevant record")]
        )
    return LabelledSet(texts, np.array(labels, dtype=int))


def screening_log(
    data: LabelledSet, *, seed: int = 0, active: bool = True, classifier: str = "logistic"
) -> np.ndarray:
    """The order (indices) in which the loop screens every record."""
    rng = np.random.default_rng(seed)
    if not active:
        return rng.permutation(data.n)
    ranker = Ranker(classifier=classifier, seed=seed)
    matrix = ranker.features(data.texts)
    order: list[int] = []
    screened = np.zeros(data.n, dtype=bool)
    random_order = iter(rng.permutation(data.n).tolist())
    refit_every = 1 if data.n <= 1000 else max(1, data.n // 500)
    queue: list[int] = []
    while len(order) < data.n:
        found = data.labels[order] if order else np.array([], dtype=int)
        if len(set(found.tolist())) < 2:  # prior knowledge: random records until both classes are seen
            index = next(i for i in random_order if not screened[i])
        else:
            if not queue:
                known = np.array(order)
                scores = ranker.scores(matrix, known, data.labels[known])
                assert scores is not None
                remaining = np.flatnonzero(~screened)
                ranked = remaining[np.argsort(-scores[remaining], kind="stable")]
                queue = ranked[:refit_every].tolist()
            index = queue.pop(0)
        order.append(index)
        screened[index] = True
    return np.array(order)


def metrics(
    labels_in_order: Sequence[int], *, target_recall: float = 0.95, confidence: float = 0.95
) -> dict[str, Any]:
    """WSS@95, RRF@10, the recall curve and the stopping rule's point, from one log."""
    labels = np.asarray(labels_in_order, dtype=int)
    n, relevant = labels.size, int(labels.sum())
    found = np.cumsum(labels)
    recall = found / relevant
    n95 = int(np.argmax(recall >= 0.95)) + 1
    wss95 = (n - n95) / n - 0.05
    at10 = math.ceil(0.10 * n)
    rrf10 = float(found[at10 - 1] / relevant) if at10 else 0.0
    step = 1 if n <= 2000 else math.ceil(n / 2000)
    stopped_at = n
    alpha = 1 - confidence
    for k in range(1, n + 1, step):
        if found[k - 1] > 0 and h0_pvalue(labels[:k], n, target_recall) < alpha:
            stopped_at = k
            break
    points = sorted({1, *range(0, n + 1, max(1, n // 100))[1:], n})
    return {
        "n": n,
        "n_included": relevant,
        "wss95": round(float(wss95), 4),
        "rrf10": round(rrf10, 4),
        "stopped_at": stopped_at,
        "recall_at_stop": round(float(recall[stopped_at - 1]), 4),
        "screened_at_95": n95,
        "recall_curve": [[k, round(float(recall[k - 1]), 4)] for k in points],
    }


def simulate(
    data: LabelledSet, *, seed: int = 0, classifier: str = "logistic", **rule: float
) -> dict[str, Any]:
    """Metrics in active-learning order (top level) and in random order (under ``random``)."""
    active = metrics(data.labels[screening_log(data, seed=seed, classifier=classifier)], **rule)
    random_order = metrics(data.labels[screening_log(data, seed=seed, active=False)], **rule)
    return {**active, "seed": seed, "classifier": classifier, "random": random_order}
