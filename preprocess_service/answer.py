"""One classify request as three timed steps (``sidecar_step_duration_seconds``), KServe-transformer
style: preprocess (texts -> sparse rows, plus occluded variants when explaining), predict (all rows in
one batched upstream call to the pinned version, whose probabilities the batcher calibrates once per
batch), postprocess (abstain, top-k, explain).

Vectorizing is CPU work on the event loop's thread: ~0.3 ms for a 400-word text, but ~0.2 s for a
request of 64 texts of 20,000 characters, which would stall every other request (health checks
included) that long. Above ``OFFLOAD_CHARS`` characters it runs on one dedicated worker thread
instead: the loop keeps serving while the GIL switches between them (every 5 ms at most), and one
thread, not a pool, so large requests queue behind each other rather than multiply the GIL's
contenders. Smaller requests without an explanation hand their texts to the batcher instead, which
vectorizes a batch's texts together when it departs (batching.py: the vocabulary stays in cache)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from contracts.signature import Row
from preprocess_service import explain
from preprocess_service.batching import Batcher, vectorizing_thread
from preprocess_service.metrics import Metrics
from preprocess_service.postprocess import Answer, Options, answer_row
from preprocess_service.registry import ModelVersion

# below this many characters a request is vectorized inline: the thread hand-off (~0.1 ms on a busy
# machine) would cost more than it saves
OFFLOAD_CHARS = 20_000


def preprocess(model: ModelVersion, texts: Sequence[str]) -> list[Row]:
    """Texts -> sparse rows with the pinned version's own vectorizer (one vectorizer, two users)."""
    return [model.vectorizer.transform_one(t) for t in texts]


async def preprocess_off_loop(model: ModelVersion, texts: Sequence[str], offload_chars: int) -> list[Row]:
    """:func:`preprocess`, on the vectorizing thread when the texts are long together."""
    if sum(map(len, texts)) <= offload_chars:
        return preprocess(model, texts)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(vectorizing_thread(), preprocess, model, texts)


def occlusions(rows: Sequence[Row], max_terms: int) -> list[explain.Occlusion]:
    return [explain.occlude(row, max_terms) for row in rows]


def postprocess(
    model: ModelVersion,
    rows: Sequence[Row],
    cal: np.ndarray,
    occl: list[explain.Occlusion] | None,
    opts: Options,
    unknown_label: str | None,
) -> list[Answer]:
    """``cal``: the calibrated probabilities (:func:`classify` has the batcher calibrate the batch)."""
    n = len(rows)
    answers = [answer_row(model, cal[i], opts, unknown_label) for i in range(n)]
    if occl is None:
        return answers
    start = n
    out = []
    for i, (a, o) in enumerate(zip(answers, occl, strict=True)):
        variants = cal[start : start + len(o.rows)]
        start += len(o.rows)
        cls = int(cal[i].argmax())
        terms = explain.contributions(cal[i], variants, cls, o, rows[i], model.vectorizer.vocabulary)
        out.append(replace(a, explanation=terms))
    return out


async def classify(
    model: ModelVersion,
    texts: Sequence[str],
    opts: Options,
    batcher: Batcher,
    metrics: Metrics,
    *,
    explain_max_terms: int = 16,
    unknown_label: str | None = None,
    offload_chars: int = OFFLOAD_CHARS,
) -> list[Answer]:
    t0 = time.perf_counter()
    occl = None
    if opts.explain or sum(map(len, texts)) > offload_chars:
        rows = await preprocess_off_loop(model, texts, offload_chars)
        occl = occlusions(rows, explain_max_terms) if opts.explain else None
        batch = list(rows) + [v for o in occl for v in o.rows] if occl else rows
        t1 = time.perf_counter()
        probs = await batcher.submit(model.version, batch, model.calibration.apply)
        t2 = time.perf_counter()
        pre_s, pred_s = t1 - t0, t2 - t1
    else:
        # vectorized by the batch, with its other texts (batching.py): the preprocess step is this
        # request's own share of that, predict the rest of the wait
        probs, rows, pre_s = await batcher.submit_texts(
            model.version, texts, model.vectorizer.transform_one, model.calibration.apply
        )
        t2 = time.perf_counter()
        pred_s = t2 - t0 - pre_s
    result = postprocess(model, rows, probs, occl, opts, unknown_label)
    t3 = time.perf_counter()
    pre, pred, post = metrics.steps()
    pre.observe(pre_s)
    pred.observe(pred_s)
    post.observe(t3 - t2)
    return result
