"""``Annotated`` dependencies (``app.dependency_overrides`` can replace them).

They are ``async def`` on purpose although none awaits: FastAPI runs a plain ``def`` dependency in its
thread pool, which cost every classify request six thread hand-offs (and, on a busy 2-core machine,
milliseconds of waiting for those threads to be scheduled). Keep them free of blocking work."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated

from fastapi import Depends, Request

from preprocess_service.api_keys import ApiKeys
from preprocess_service.batching import Batcher
from preprocess_service.config import Settings
from preprocess_service.errors import NotReady, Unauthorized
from preprocess_service.metrics import Metrics
from preprocess_service.registry import ModelVersion, Registry


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


async def get_batcher(request: Request) -> Batcher:
    batcher: Batcher = request.app.state.batcher
    return batcher


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def current_model(registry: Annotated[Registry, Depends(get_registry)]) -> ModelVersion:
    """The pinned version, read once per request (the snapshot that request uses throughout)."""
    model = registry.current
    if model is None:
        raise NotReady(f"no model version is ready yet: {registry.status}")
    return model


def presented_key(header: str) -> bytes:
    """The key in ``Bearer <key>``, or the password of HTTP Basic credentials: a browser on the try-it
    page asks for the key with its own Basic prompt and then sends it with every request it makes."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer":
        return token.strip().encode()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(token.strip(), validate=True).partition(b":")[2]
        except (binascii.Error, ValueError):
            return b""
    return b""


def authorized(api_keys: ApiKeys, header: str) -> bool:
    """Whether the ``Authorization`` header carries a current key (always, when no key is configured)."""
    keys = api_keys.current()
    if not keys:
        return True
    presented = presented_key(header)
    ok = False
    for key in keys:  # compare against every key, so timing says nothing about which one nearly matched
        ok |= hmac.compare_digest(presented, key.encode())
    return ok


async def require_api_key(request: Request) -> None:
    api_keys: ApiKeys = request.app.state.api_keys
    if not authorized(api_keys, request.headers.get("authorization", "")):
        raise Unauthorized("a valid API key is required: send 'Authorization: Bearer <key>'")


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
BatcherDep = Annotated[Batcher, Depends(get_batcher)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ModelDep = Annotated[ModelVersion, Depends(current_model)]
