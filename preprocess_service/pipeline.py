"""The three steps of a request, as small functions each timed by ``sidecar_step_duration_seconds``:
preprocess (text -> sparse rows, with the pinned version's vectorizer), predict (rows -> probabilities,
through the micro-batcher and TF Serving), postprocess (probabilities -> labels)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from contracts.signature import Row
from preprocess_service.batching import Batcher
from preprocess_service.metrics import Metrics
from preprocess_service.registry import ModelVersion
from preprocess_service.schemas import Prediction


def preprocess(model: ModelVersion, texts: Sequence[str]) -> list[Row]:
    return [model.vectorizer.transform_one(t) for t in texts]


def postprocess(model: ModelVersion, probs: np.ndarray, with_probabilities: bool) -> list[Prediction]:
    out = []
    for row in probs:
        best = int(row.argmax())
        full = (
            {label: float(p) for label, p in zip(model.labels, row, strict=True)}
            if with_probabilities
            else None
        )
        out.append(Prediction(label=model.labels[best], score=float(row[best]), probabilities=full))
    return out


async def classify(
    model: ModelVersion, texts: Sequence[str], with_probabilities: bool, batcher: Batcher, metrics: Metrics
) -> list[Prediction]:
    t0 = time.perf_counter()
    rows = preprocess(model, texts)
    t1 = time.perf_counter()
    probs = await batcher.submit(model.version, rows)
    t2 = time.perf_counter()
    result = postprocess(model, probs, with_probabilities)
    t3 = time.perf_counter()
    step = metrics.step_seconds
    step.labels("preprocess").observe(t1 - t0)
    step.labels("predict").observe(t2 - t1)
    step.labels("postprocess").observe(t3 - t2)
    return result
