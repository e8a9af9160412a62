"""Fit TF-IDF with scikit-learn, then freeze it into the shared :class:`textvec.Vectorizer`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from contracts.signature import Row
from textvec import Vectorizer, detect_analyzer, segment
from textvec.vectorizer import DEFAULT_TOKEN_PATTERN


@dataclass(frozen=True)
class FeatureConfig:
    # auto | word | char | char+words; auto: word n-grams for spaced scripts, character n-grams plus
    # segmented words for Chinese and Japanese
    analyzer: str = "auto"
    ngram_max: int | None = None  # default: 2 for word, 3 for char and char+words
    min_df: int = 2
    max_features: int | None = None  # default: 20,000 for word, 50,000 for char, 80,000 for char+words
    sublinear_tf: bool = True
    word_ngram_max: int = 2  # char+words only: the largest n-gram of segmented words

    def resolve(self, texts: Sequence[str]) -> tuple[str, tuple[int, int], int]:
        analyzer = self.analyzer
        if analyzer == "auto":
            analyzer = "char+words" if detect_analyzer(texts) == "char" else "word"
        ngram_max = self.ngram_max or (2 if analyzer == "word" else 3)
        max_features = self.max_features or {"word": 20_000, "char": 50_000}.get(analyzer, 80_000)
        return analyzer, (1, ngram_max), max_features


def _template(cfg: FeatureConfig, resolved: tuple[str, tuple[int, int], int]) -> Vectorizer:
    """An empty vectorizer with the resolved analysis settings: its ``terms`` is the analyzer that
    scikit-learn fits with, so the fitted vocabulary is made of exactly the terms serving will see."""
    analyzer, ngram_range, _ = resolved
    words = analyzer == "char+words"
    return Vectorizer(
        analyzer=analyzer,  # type: ignore[arg-type]
        ngram_range=ngram_range,
        vocabulary=(),
        idf=np.zeros(0),
        lowercase=True,
        token_pattern=DEFAULT_TOKEN_PATTERN,
        sublinear_tf=cfg.sublinear_tf,
        word_ngram_range=(1, cfg.word_ngram_max) if words else None,
        segmenter=segment.version() if words else None,
    )


def _identity(terms: list[str]) -> list[str]:
    return terms


def make_sklearn(
    cfg: FeatureConfig,
    texts: Sequence[str],
    analyzer: Callable[[Any], list[str]] | None = None,
    resolved: tuple[str, tuple[int, int], int] | None = None,
) -> TfidfVectorizer:
    """scikit-learn's vectorizer with the resolved settings; ``analyzer`` replaces the analysis
    (``_identity`` when the texts are given as their already analysed terms)."""
    resolved = resolved or cfg.resolve(texts)
    name, ngram_range, max_features = resolved
    sk_analyzer: str | Callable[[Any], list[str]] = name
    if analyzer is not None:
        sk_analyzer = analyzer
    elif name == "char+words":
        sk_analyzer = _template(cfg, resolved).terms  # lower-cases itself, as the frozen one will
    return TfidfVectorizer(
        analyzer=sk_analyzer,
        # a callable analyzer makes its own n-grams (scikit-learn warns when given a range it ignores)
        ngram_range=ngram_range if isinstance(sk_analyzer, str) else (1, 1),
        min_df=cfg.min_df,
        max_features=max_features,
        sublinear_tf=cfg.sublinear_tf,
        lowercase=True,
        token_pattern=DEFAULT_TOKEN_PATTERN,
        norm="l2",
        smooth_idf=True,
        dtype=np.float64,
    )


def freeze(sk: TfidfVectorizer, template: Vectorizer | None = None) -> Vectorizer:
    """The fitted scikit-learn state, in the form the sidecar loads (no pickle). ``template`` gives
    the analysis settings when scikit-learn was fitted through a callable analyzer."""
    vocab = sorted(sk.vocabulary_.items(), key=lambda kv: kv[1])
    assert [i for _, i in vocab] == list(range(len(vocab)))
    if template is None:
        template = getattr(sk.analyzer, "__self__", None)  # the Vectorizer whose terms it used
    return Vectorizer(
        analyzer=template.analyzer if template else sk.analyzer,
        ngram_range=template.ngram_range if template else tuple(sk.ngram_range),
        vocabulary=tuple(t for t, _ in vocab),
        idf=np.asarray(sk.idf_, dtype=np.float64),
        lowercase=sk.lowercase,
        token_pattern=sk.token_pattern,
        sublinear_tf=sk.sublinear_tf,
        word_ngram_range=template.word_ngram_range if template else None,
        segmenter=template.segmenter if template else None,
    )


def fit(cfg: FeatureConfig, train_texts: Sequence[str]) -> tuple[Vectorizer, TfidfVectorizer]:
    """Fit on the training split only: fitting idf on test texts would leak them."""
    sk = make_sklearn(cfg, train_texts)
    sk.fit(train_texts)
    return freeze(sk), sk


def fit_rows(cfg: FeatureConfig, parts: dict[str, Sequence[str]]) -> tuple[Vectorizer, dict[str, list[Row]]]:
    """Fit on ``parts["train"]`` and transform every part, analysing each text once: the shared
    analyzer (``Vectorizer.terms``, which equals scikit-learn's for word and char n-grams) runs here,
    scikit-learn only counts. Word segmentation is the slow step, and would otherwise run twice."""
    resolved = cfg.resolve(parts["train"])
    template = _template(cfg, resolved)
    train_terms = [template.terms(t) for t in parts["train"]]
    sk = make_sklearn(cfg, parts["train"], analyzer=_identity, resolved=resolved)
    sk.fit(train_terms)
    vec = freeze(sk, template)
    rows = {"train": [vec.transform_terms(t) for t in train_terms]}
    del train_terms
    for name, texts in parts.items():
        if name != "train":
            rows[name] = [vec.transform_one(t) for t in texts]
    return vec, rows
