"""Classification: ``POST /v1/classify`` and the original ``POST /classify``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import APIRouter, Depends, Request

from preprocess_service import pipeline
from preprocess_service.deps import BatcherDep, MetricsDep, ModelDep, SettingsDep, require_api_key
from preprocess_service.errors import InvalidInput
from preprocess_service.schemas import (
    ERRORS,
    ClassifyRequest,
    ClassifyResponse,
    LegacyClassifyRequest,
    LegacyClassifyResponse,
    ModelRef,
)

router = APIRouter(tags=["classify"], dependencies=[Depends(require_api_key)], responses=ERRORS)
log = logging.getLogger("preprocess_service.requests")


def check_limits(texts: Sequence[str], max_texts: int, max_chars: int) -> None:
    if len(texts) > max_texts:
        raise InvalidInput(f"{len(texts)} texts in one request; the limit is {max_texts}")
    for i, text in enumerate(texts):
        if not text.strip():
            raise InvalidInput(f"text {i} is empty or only whitespace")
        if len(text) > max_chars:
            raise InvalidInput(f"text {i} has {len(text)} characters; the limit is {max_chars}")
        if "\x00" in text:
            raise InvalidInput(f"text {i} contains a NUL character")


def _log_texts(request: Request, settings: SettingsDep, texts: Sequence[str]) -> None:
    if settings.log_request_text:
        log.info("request texts", extra={"request_id": request.state.request_id, "texts": list(texts)})


@router.post("/v1/classify", response_model=ClassifyResponse, summary="Classify one text or a batch")
async def classify(
    body: ClassifyRequest,
    request: Request,
    model: ModelDep,
    batcher: BatcherDep,
    metrics: MetricsDep,
    settings: SettingsDep,
) -> ClassifyResponse:
    texts = body.items
    check_limits(texts, settings.max_texts, settings.max_chars)
    _log_texts(request, settings, texts)
    request.state.n_texts = len(texts)
    preds = await pipeline.classify(model, texts, body.return_probabilities, batcher, metrics)
    return ClassifyResponse(
        model=ModelRef(name=model.name, version=model.version),
        predictions=preds,
    )


@router.post(
    "/classify", response_model=LegacyClassifyResponse, summary="The original endpoint (compatibility)"
)
async def classify_legacy(
    body: LegacyClassifyRequest,
    request: Request,
    model: ModelDep,
    batcher: BatcherDep,
    metrics: MetricsDep,
    settings: SettingsDep,
) -> LegacyClassifyResponse:
    check_limits([body.text], 1, settings.max_chars)
    _log_texts(request, settings, [body.text])
    request.state.n_texts = 1
    (pred,) = await pipeline.classify(model, [body.text], False, batcher, metrics)
    return LegacyClassifyResponse(label=pred.label, score=pred.score, model=model.name, version=model.version)
