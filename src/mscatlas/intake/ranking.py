"""Priority order for screening by active learning, as small swappable parts (after ASReview).

- features: TF-IDF of title + abstract (word 1-2 grams, sublinear tf);
- classifier: logistic regression with balanced class weights (relevant records are rare),
  or complement naive Bayes; chosen by name;
- query: most likely relevant first.

The model is refitted from the decisions every time a ranking is asked for, so it follows
the decisions as they arrive. Before there is at least one relevant and one irrelevant
decision there is nothing to learn from: the order is then by the number of inclusion terms a
record contains, ties broken by a seeded shuffle. Everything random takes the seed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CLASSIFIERS", "INCLUSION_TERMS", "Ranker", "inclusion_pattern", "term_score"]

CLASSIFIERS = ("logistic", "nb")
# Terms of the eligibility criteria (docs/protocol.md): MSCs or their products, and cancer.
INCLUSION_TERMS = (
    "mesenchymal",
    "stromal",
    "MSC",
    "MSCs",
    "stem cell",
    "stem cells",
    "exosome",
    "exosomes",
    "extracellular vesicle",
    "extracellular vesicles",
    "conditioned medium",
    "secretome",
    "cancer",
    "tumour",
    "tumor",
    "tumours",
    "tumors",
    "carcinoma",
    "glioma",
    "glioblastoma",
    "leukemia",
    "leukaemia",
    "lymphoma",
    "myeloma",
    "melanoma",
    "sarcoma",
    "metastasis",
    "xenograft",
)


def inclusion_pattern(terms: Sequence[str] = INCLUSION_TERMS) -> re.Pattern[str]:
    """A regex matching any inclusion term as a whole word (longest first)."""
    ordered = sorted(set(terms), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(t) for t in ordered) + r")\b", re.IGNORECASE)


def term_score(text: str, pattern: re.Pattern[str] | None = None) -> int:
    return len((pattern or inclusion_pattern()).findall(text))


@dataclass
class Ranker:
    """Fit on labelled texts, score the rest. ``labels``: 1 relevant, 0 irrelevant."""

    classifier: str = "logistic"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier: {self.classifier!r}; choose one of {', '.join(CLASSIFIERS)}")

    def features(self, texts: Sequence[str]) -> np.ndarray:
        from sklearn.feature_extraction.text import TfidfVectorizer  # imported on use: it is slow to load

        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=50000, stop_words="english"
        )
        return vectorizer.fit_transform(texts)  # type: ignore[return-value]

    def scores(self, matrix, labelled: np.ndarray, labels: np.ndarray) -> np.ndarray | None:  # type: ignore[no-untyped-def]
        """Probability of relevance for every row, or None when both classes are not yet present."""
        if labelled.size == 0 or len(set(labels.tolist())) < 2:
            return None
        from sklearn.linear_model import LogisticRegression
        from sklearn.naive_bayes import ComplementNB

        if self.classifier == "logistic":
            model = LogisticRegression(
                C=10.0, class_weight="balanced", max_iter=1000, random_state=self.seed, solver="liblinear"
            )
        else:
            model = ComplementNB(alpha=0.5)
        model.fit(matrix[labelled], labels)
        return model.predict_proba(matrix)[:, 1]

    def order(self, texts: Sequence[str], labels: dict[int, int]) -> tuple[list[int], np.ndarray | None]:
        """Indices of the unlabelled texts, most likely relevant first, and the scores used."""
        unlabelled = np.array([i for i in range(len(texts)) if i not in labels], dtype=int)
        if unlabelled.size == 0:
            return [], None
        rng = np.random.default_rng(self.seed)
        tiebreak = rng.permutation(len(texts))
        scores: np.ndarray | None = None
        if labels:
            matrix = self.features(texts)
            known = np.array(sorted(labels), dtype=int)
            scores = self.scores(matrix, known, np.array([labels[i] for i in known]))
        if scores is None:
            pattern = inclusion_pattern()
            prior = np.array([term_score(texts[i], pattern) for i in unlabelled], dtype=float)
            keys = (tiebreak[unlabelled], -prior)
        else:
            keys = (tiebreak[unlabelled], -scores[unlabelled])
        ranked = unlabelled[np.lexsort(keys)]
        return ranked.tolist(), scores
