"""Classification: ``POST /v1/classify`` and the original ``POST /classify``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import APIRouter, Depends, Request, Response

from preprocess_service import answer, response_json
from preprocess_service.batching import Batcher
from preprocess_service.config import Settings
from preprocess_service.deps import BatcherDep, MetricsDep, ModelDep, SettingsDep, require_api_key
from preprocess_service.errors import InvalidInput
from preprocess_service.lifecycle.deps import ROLE_HEADER, VERSION_HEADER, LifecycleDep, answer_routed
from preprocess_service.lifecycle.routing import Call, Lifecycle
from preprocess_service.metrics import Metrics
from preprocess_service.postprocess import Answer, Options
from preprocess_service.registry import ModelVersion
from preprocess_service.schemas import (
    ERRORS,
    ClassifyRequest,
    ClassifyResponse,
    LegacyClassifyRequest,
    LegacyClassifyResponse,
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


def check_options(body: ClassifyRequest, n_texts: int, model: ModelVersion, explain_max_texts: int) -> None:
    n_labels = len(model.labels)
    if body.top_k is not None and body.top_k > n_labels:
        raise InvalidInput(f"top_k is {body.top_k} but the model has only {n_labels} labels")
    if body.explain and n_texts > explain_max_texts:
        raise InvalidInput(
            f"explain is limited to {explain_max_texts} texts per request (each costs one model row per "
            f"term); this request has {n_texts}: split it, or ask without explain"
        )


def classifier(
    texts: Sequence[str], opts: Options, batcher: Batcher, metrics: Metrics, settings: Settings
) -> Call:
    """The classify step for whichever version the rollout picks, with the settings' explanation and
    abstention options (shared by /v1/classify and the Open Inference Protocol)."""

    async def call(m: ModelVersion) -> list[Answer]:
        return await answer.classify(
            m,
            texts,
            opts,
            batcher,
            metrics,
            explain_max_terms=settings.explain_max_terms,
            unknown_label=settings.abstain_label,
        )

    return call


def _log_texts(settings: Settings, request_id: str | None, texts: Sequence[str]) -> None:
    if settings.log_request_text:
        log.info("request texts", extra={"request_id": request_id, "texts": list(texts)})


def check_request(body: ClassifyRequest, model: ModelVersion, settings: Settings) -> list[str]:
    """The request's texts, once within the limits and with options the model can honour."""
    texts = body.items
    check_limits(texts, settings.max_texts, settings.max_chars)
    check_options(body, len(texts), model, settings.explain_max_texts)
    return texts


async def answer_request(
    body: ClassifyRequest,
    texts: Sequence[str],
    model: ModelVersion,
    *,
    settings: Settings,
    batcher: Batcher,
    metrics: Metrics,
    lifecycle: Lifecycle,
    client_key: str | None,
    request_id: str | None,
) -> tuple[bytes, dict[str, str]]:
    """``/v1/classify`` for checked texts (:func:`check_request`): the response's JSON and the headers
    naming the version (and rollout role) that answered. Shared by the route and
    :mod:`preprocess_service.fastpath`."""
    _log_texts(settings, request_id, texts)
    opts = Options(body.return_probabilities, body.top_k, body.min_confidence, body.explain)
    # model lifecycle: stable or canary answers
    answers, model, role = await lifecycle.run(
        lifecycle.plan(model, client_key), classifier(texts, opts, batcher, metrics, settings)
    )
    # the body written straight from the answers (response_json.py: the same bytes as the models')
    content = response_json.classify_response(model.name, model.version, answers)
    return content, {VERSION_HEADER: str(model.version), ROLE_HEADER: role}


@router.post("/v1/classify", response_model=ClassifyResponse, summary="Classify one text or a batch")
async def classify(
    body: ClassifyRequest,
    request: Request,
    model: ModelDep,
    batcher: BatcherDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    lifecycle: LifecycleDep,
) -> Response:
    # Requests that the fast path (preprocess_service.fastpath) passes on come here: those with an
    # error to report, and any the fast path does not take. The answer is the same either way.
    texts = check_request(body, model, settings)
    request.state.n_texts = len(texts)
    content, headers = await answer_request(
        body,
        texts,
        model,
        settings=settings,
        batcher=batcher,
        metrics=metrics,
        lifecycle=lifecycle,
        client_key=request.headers.get(settings.client_key_header),
        request_id=request.state.request_id,
    )
    return Response(content, media_type="application/json", headers=headers)


@router.post(
    "/classify", response_model=LegacyClassifyResponse, summary="The original endpoint (compatibility)"
)
async def classify_legacy(
    body: LegacyClassifyRequest,
    request: Request,
    response: Response,
    model: ModelDep,
    batcher: BatcherDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    lifecycle: LifecycleDep,
) -> LegacyClassifyResponse:
    check_limits([body.text], 1, settings.max_chars)
    _log_texts(settings, request.state.request_id, [body.text])
    request.state.n_texts = 1
    # model lifecycle: stable or canary answers (the response names which)
    (a,), model = await answer_routed(
        lifecycle,
        request,
        response,
        model,
        lambda m: answer.classify(m, [body.text], Options(), batcher, metrics),
    )
    # clients of the original Flask service expect a label string every time: the top class is given
    # even when abstaining
    return LegacyClassifyResponse(
        prediction=a.top_label,
        label=a.top_label,
        score=a.score,
        abstained=a.abstained,
        model=model.name,
        version=model.version,
    )
