"""Fit TF-IDF with scikit-learn, then freeze it into the shared :class:`textvec.Vectorizer`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from textvec import Vectorizer, detect_analyzer
from textvec.vectorizer import DEFAULT_TOKEN_PATTERN


@dataclass(frozen=True)
class FeatureConfig:
    analyzer: str = "auto"  # auto | word | char
    ngram_max: int | None = None  # default: 2 for word, 3 for char
    min_df: int = 2
    max_features: int | None = None  # default: 20,000 for word, 50,000 for char
    sublinear_tf: bool = True

    def resolve(self, texts: Sequence[str]) -> tuple[str, tuple[int, int], int]:
        analyzer = detect_analyzer(texts) if self.analyzer == "auto" else self.analyzer
        ngram_max = self.ngram_max or (3 if analyzer == "char" else 2)
        max_features = self.max_features or (50_000 if analyzer == "char" else 20_000)
        return analyzer, (1, ngram_max), max_features


def make_sklearn(cfg: FeatureConfig, texts: Sequence[str]) -> TfidfVectorizer:
    analyzer, ngram_range, max_features = cfg.resolve(texts)
    return TfidfVectorizer(
        analyzer=analyzer,
        ngram_range=ngram_range,
        min_df=cfg.min_df,
        max_features=max_features,
        sublinear_tf=cfg.sublinear_tf,
        lowercase=True,
        token_pattern=DEFAULT_TOKEN_PATTERN,
        norm="l2",
        smooth_idf=True,
        dtype=np.float64,
    )


def freeze(sk: TfidfVectorizer) -> Vectorizer:
    """The fitted scikit-learn state, in the form the sidecar loads (no pickle)."""
    vocab = sorted(sk.vocabulary_.items(), key=lambda kv: kv[1])
    assert [i for _, i in vocab] == list(range(len(vocab)))
    return Vectorizer(
        analyzer=sk.analyzer,
        ngram_range=tuple(sk.ngram_range),
        vocabulary=tuple(t for t, _ in vocab),
        idf=np.asarray(sk.idf_, dtype=np.float64),
        lowercase=sk.lowercase,
        token_pattern=sk.token_pattern,
        sublinear_tf=sk.sublinear_tf,
    )


def fit(cfg: FeatureConfig, train_texts: Sequence[str]) -> tuple[Vectorizer, TfidfVectorizer]:
    """Fit on the training split only: fitting idf on test texts would leak them."""
    sk = make_sklearn(cfg, train_texts)
    sk.fit(train_texts)
    return freeze(sk), sk
