"""The Open Inference Protocol's HTTP/REST binding under ``/v2``.

Health and server metadata are open, like ``/healthz`` (probes and gateways need no key); model
metadata, readiness and inference take the same API key and limits as ``/v1/classify``. Errors are the
protocol's ``{"error": "<message>"}`` (errors.py maps them for every ``/v2`` path)."""

from __future__ import annotations

from itertools import chain
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from contracts import version_state
from preprocess_service.deps import BatcherDep, MetricsDep, RegistryDep, SettingsDep, require_api_key
from preprocess_service.errors import InvalidInput, NotReady
from preprocess_service.lifecycle.deps import ROLE_HEADER, VERSION_HEADER, LifecycleDep
from preprocess_service.lifecycle.routing import Lifecycle
from preprocess_service.oip import binary, core
from preprocess_service.oip.schemas import (
    ErrorResponse,
    InferRequest,
    InferResponse,
    ModelMetadata,
    ServerMetadata,
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": desc}
    for code, desc in (
        (400, "bad request: wrong datatype or shape, missing input, bad parameter, invalid JSON"),
        (401, "missing or wrong API key (only when keys are configured)"),
        (404, "unknown model or version"),
        (413, "request body over the configured limit"),
        (503, "no model version ready, or the model server unreachable"),
        (504, "the model server did not answer within the deadline"),
    )
}

health = APIRouter(prefix="/v2", tags=["open inference protocol"], responses=_ERRORS)
models = APIRouter(
    prefix="/v2/models", tags=["open inference protocol"], dependencies=[Depends(require_api_key)],
    responses=_ERRORS,
)  # fmt: skip


@health.get("/health/live", summary="The server is live")
async def live() -> dict[str, bool]:
    return {"live": True}


async def _ready(registry: RegistryDep) -> None:
    model = registry.current
    if model is None:
        raise NotReady(f"no model version is ready yet: {registry.status}")
    state = await registry.upstream.version_state(model.version)
    if state != version_state.AVAILABLE:
        registry.request_refresh()
        raise NotReady(f"the model server reports version {model.version} {state}")


@health.get("/health/ready", summary="The served version is ready (as /readyz)")
async def ready(registry: RegistryDep) -> dict[str, bool]:
    await _ready(registry)
    return {"ready": True}


@health.get("", response_model=ServerMetadata, summary="Server metadata")
async def server_metadata() -> dict[str, Any]:
    return core.server_metadata()


def _metadata(registry: RegistryDep, name: str, version: str | None) -> dict[str, Any]:
    model = core.served_model(registry, name, version)
    versions = core.served_versions(registry) if version is None else [str(model.version)]
    return {**core.model_metadata(model, versions), "labels": list(model.labels)}


@models.get("/{name}", response_model=ModelMetadata, summary="Model metadata")
async def model_metadata(name: str, registry: RegistryDep) -> dict[str, Any]:
    return _metadata(registry, name, None)


@models.get("/{name}/versions/{version}", response_model=ModelMetadata, summary="Model version metadata")
async def model_version_metadata(name: str, version: str, registry: RegistryDep) -> dict[str, Any]:
    return _metadata(registry, name, version)


@models.get("/{name}/ready", summary="The model is ready")
async def model_ready(name: str, registry: RegistryDep) -> dict[str, Any]:
    core.served_model(registry, name, None)
    await _ready(registry)
    return {"name": name, "ready": True}


@models.get("/{name}/versions/{version}/ready", summary="The model version is ready")
async def model_version_ready(name: str, version: str, registry: RegistryDep) -> dict[str, Any]:
    model = core.served_model(registry, name, version)
    if model is registry.current:
        await _ready(registry)
    else:  # the canary: ready when the model server has it loaded
        state = await registry.upstream.version_state(model.version)
        if state != version_state.AVAILABLE:
            raise NotReady(f"the model server reports version {model.version} {state}")
    return {"name": name, "ready": True}


def _flatten(data: list[Any]) -> list[Any]:
    while data and isinstance(data[0], list):
        data = list(chain.from_iterable(data))
    return data


def _parse(body: bytes, header_length: str | None) -> tuple[InferRequest, list[core.Tensor]]:
    head, rest = binary.split(body, header_length)
    try:
        req = InferRequest.model_validate(orjson.loads(head))
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("the request body is not valid JSON") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidInput(f"{loc or 'body'}: {first.get('msg', 'invalid')}") from exc
    tensors, offset = [], 0
    for t in req.inputs:
        size = (t.parameters or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(rest):
                raise InvalidInput(f"input '{t.name}': binary_data_size {size!r} does not fit the body")
            data = binary.decode(rest[offset : offset + size], t.datatype, f"input '{t.name}'")
            offset += size
        elif t.data is None:
            raise InvalidInput(f"input '{t.name}' has neither data nor binary_data_size")
        else:
            data = _flatten(t.data)
        tensors.append(core.Tensor(t.name, t.datatype, t.shape, data))
    return req, tensors


async def _infer(
    request: Request, name: str, version: str | None, registry: RegistryDep, batcher: BatcherDep,
    metrics: MetricsDep, settings: SettingsDep, lifecycle: Lifecycle,
) -> Response:  # fmt: skip
    model = core.served_model(registry, name, version)
    req, tensors = _parse(await request.body(), request.headers.get(binary.HEADER))
    request.state.n_texts = len(tensors[0].data) if tensors else 0
    params = req.parameters or {}
    wanted = [o.name for o in req.outputs or []]
    if version is None:  # routed like /v1/classify: stable, or the canary for its share
        key = request.headers.get(settings.client_key_header)
        result = await core.infer(
            model, tensors, params, wanted, batcher, metrics, settings, lifecycle=lifecycle, client_key=key
        )
    else:
        role = core.role_of(registry, model)
        result = await core.infer(model, tensors, params, wanted, batcher, metrics, settings, role=role)
    model = result.model
    names = {VERSION_HEADER: str(model.version), ROLE_HEADER: result.role}
    out_params = {o.name: o.parameters or {} for o in req.outputs or []}
    default_binary = bool(params.get("binary_data_output", False))
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for o in result.outputs:
        doc: dict[str, Any] = {"name": o.name, "datatype": o.datatype, "shape": o.shape}
        if out_params.get(o.name, {}).get("binary_data", default_binary):
            blob = binary.encode(o.datatype, o.data)
            blobs.append(blob)
            doc["parameters"] = {"binary_data_size": len(blob)}
        elif o.datatype == "BYTES":
            doc["data"] = [b.decode("utf-8") for b in o.data]
        else:
            doc["data"] = o.data.reshape(-1).tolist()
        outputs.append(doc)
    body: dict[str, Any] = {"model_name": model.name, "model_version": str(model.version), "outputs": outputs}
    if req.id is not None:
        body["id"] = req.id
    head = orjson.dumps(body)
    if not blobs:
        return Response(head, media_type="application/json", headers=names)
    return Response(
        head + b"".join(blobs),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(head)), **names},
    )


# the body is read raw (JSON, or JSON plus binary tensors), so its schema is declared by hand
_INFER_BODY: dict[str, Any] = {
    "requestBody": {"content": {"application/json": {"schema": InferRequest.model_json_schema()}}}
}


@models.post(
    "/{name}/infer",
    summary="Classify texts (BYTES [N] in; label, score, probabilities out)",
    response_model=InferResponse,
    openapi_extra=_INFER_BODY,
)
async def infer(
    request: Request, name: str, registry: RegistryDep, batcher: BatcherDep, metrics: MetricsDep,
    settings: SettingsDep, lifecycle: LifecycleDep,
) -> Response:  # fmt: skip
    return await _infer(request, name, None, registry, batcher, metrics, settings, lifecycle)


@models.post(
    "/{name}/versions/{version}/infer",
    summary="Classify texts with this version",
    response_model=InferResponse,
    openapi_extra=_INFER_BODY,
)
async def infer_version(
    request: Request, name: str, version: str, registry: RegistryDep, batcher: BatcherDep,
    metrics: MetricsDep, settings: SettingsDep, lifecycle: LifecycleDep,
) -> Response:  # fmt: skip
    return await _infer(request, name, version, registry, batcher, metrics, settings, lifecycle)
