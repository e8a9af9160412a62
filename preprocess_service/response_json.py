"""``/v1/classify``'s response body, written by orjson from the answers' plain values.

The response models (:class:`~preprocess_service.schemas.ClassifyResponse`) document the schema and
stay the route's ``response_model``; building them per request, even unvalidated, and serialising them
with pydantic-core cost ~12 us for a one-text answer against ~1.5 us for the same bytes from plain
dicts and lists (docs/bench.md, change 15). ``tests/sidecar/test_response_json.py`` holds the bytes
equal to the validated models' JSON: field order, null for a missing option, non-finite floats as null
(orjson's rule and pydantic's default), the same float and string encoding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from preprocess_service.postprocess import Answer


def _prediction(a: Answer) -> dict[str, Any]:
    # the keys in Prediction's field order
    return {
        "label": a.label,
        "score": a.score,
        "abstained": a.abstained,
        "probabilities": a.probabilities,
        "top_k": [{"label": lbl, "score": s} for lbl, s in a.top_k] if a.top_k is not None else None,
        "explanation": (
            {
                "label": a.top_label,
                "method": "occlusion",
                "terms": [
                    {"term": t.term, "contribution": t.contribution, "weight": t.weight}
                    for t in a.explanation
                ],
            }
            if a.explanation is not None
            else None
        ),
    }


def classify_response(name: str, version: int, answers: Sequence[Answer]) -> bytes:
    """The JSON of ``ClassifyResponse(model=ModelRef(name, version), predictions=[...])``."""
    return orjson.dumps(
        {"model": {"name": name, "version": version}, "predictions": [_prediction(a) for a in answers]}
    )
