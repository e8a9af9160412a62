"""Request-time helpers: the lifecycle dependency and the routed classify call."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from preprocess_service.lifecycle.routing import Call, Lifecycle
from preprocess_service.postprocess import Answer
from preprocess_service.registry import ModelVersion

VERSION_HEADER = "X-Model-Version"
ROLE_HEADER = "X-Model-Role"


async def get_lifecycle(request: Request) -> Lifecycle:
    lc: Lifecycle = request.app.state.lifecycle
    return lc


LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]


async def answer_routed(
    lc: Lifecycle, request: Request, response: Response, stable: ModelVersion, call: Call
) -> tuple[list[Answer], ModelVersion]:
    """Run ``call`` on the version the rollout picks for this request; the response names it."""
    key = request.headers.get(request.app.state.settings.client_key_header)
    answers, model, role = await lc.run(lc.plan(stable, key), call)
    response.headers[VERSION_HEADER] = str(model.version)
    response.headers[ROLE_HEADER] = role
    return answers, model
