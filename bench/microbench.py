"""Vectorizing one document, alone: the per-request CPU floor of the sidecar's preprocessing."""

from __future__ import annotations

import statistics
import time
from typing import Any

from textvec import Vectorizer


def vectorize_one(
    vec: Vectorizer, docs: list[str], words: int = 400, rounds: int = 30, calls: int = 100
) -> dict[str, Any]:
    """Microseconds per ``transform_one`` call on the document whose length is nearest ``words`` words
    (best and median of ``rounds`` short timed loops: on shared cores the best short loop is the one
    least disturbed by other processes), the CPU time per call, and the mean over all ``docs`` once."""
    doc = min(docs, key=lambda d: abs(len(d.split()) - words))
    for _ in range(50):
        vec.transform_one(doc)
    per_call, cpu_per_call = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.thread_time()
        for _ in range(calls):
            vec.transform_one(doc)
        per_call.append((time.perf_counter() - t0) / calls * 1e6)
        cpu_per_call.append((time.thread_time() - c0) / calls * 1e6)
    t0 = time.perf_counter()
    for d in docs:
        vec.transform_one(d)
    all_docs = (time.perf_counter() - t0) / len(docs) * 1e6
    ids, _ = vec.transform_one(doc)
    # the pure-Python fallback (installations without textvec's C extension), same document, fewer rounds
    python_per_call = []
    for _ in range(max(1, rounds // 3)):
        t0 = time.perf_counter()
        for _ in range(calls // 2 or 1):
            vec.transform_one_python(doc)
        python_per_call.append((time.perf_counter() - t0) / (calls // 2 or 1) * 1e6)
    return {
        "compiled": vec.compiled,
        "python_us_best": round(min(python_per_call), 1),
        "document_words": len(doc.split()),
        "document_nonzeros": len(ids),
        "us_best": round(min(per_call), 1),
        "us_median": round(statistics.median(per_call), 1),
        "cpu_us_median": round(statistics.median(cpu_per_call), 1),
        "us_mean_over_test_docs": round(all_docs, 1),
        "test_docs_mean_words": round(sum(len(d.split()) for d in docs) / len(docs), 1),
        "rounds": rounds,
        "calls_per_round": calls,
    }


def sklearn_vectorizer(vec: Vectorizer) -> Any:
    """scikit-learn's ``TfidfVectorizer`` in the fitted state ``vec`` was frozen from (same vocabulary,
    idf, analyzer settings): what a service would call without textvec."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    sk = TfidfVectorizer(
        analyzer=vec.analyzer,
        ngram_range=vec.ngram_range,
        lowercase=vec.lowercase,
        token_pattern=vec.token_pattern,
        sublinear_tf=vec.sublinear_tf,
        vocabulary={t: i for i, t in enumerate(vec.vocabulary)},
        norm="l2",
    )
    sk.idf_ = vec.idf
    return sk


def sklearn_one(
    vec: Vectorizer, docs: list[str], words: int = 400, rounds: int = 10, calls: int = 20
) -> dict:
    """``TfidfVectorizer.transform([doc])`` on the same document as :func:`vectorize_one`, timed the
    same way, and the check that both give the same weights."""
    import numpy as np

    sk = sklearn_vectorizer(vec)
    doc = min(docs, key=lambda d: abs(len(d.split()) - words))
    row = sk.transform([doc])
    ids, weights = vec.transform_one(doc)
    same = list(row.indices[np.argsort(row.indices)]) == ids and bool(
        np.allclose(row.data[np.argsort(row.indices)], weights, atol=1e-6)
    )
    for _ in range(5):
        sk.transform([doc])
    per_call = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            sk.transform([doc])
        per_call.append((time.perf_counter() - t0) / calls * 1e6)
    return {
        "document_words": len(doc.split()),
        "us_best": round(min(per_call), 1),
        "us_median": round(statistics.median(per_call), 1),
        "same_weights_as_textvec": same,
        "rounds": rounds,
        "calls_per_round": calls,
    }
