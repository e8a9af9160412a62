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
    return {
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
