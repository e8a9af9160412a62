"""Probes and metrics: always open (no API key), so kubelet and Prometheus need no secret."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from preprocess_service.deps import MetricsDep, RegistryDep
from preprocess_service.errors import JsonResponse
from preprocess_service.schemas import Health, Ready

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Ready,
    responses={503: {"model": Ready}},
    summary="A version is pinned and TF Serving reports it AVAILABLE",
)
async def readyz(registry: RegistryDep) -> Response:
    model = registry.current
    if model is None:
        return JsonResponse(
            Ready(status="not_ready", detail=registry.status).model_dump(), 503, headers={"Retry-After": "2"}
        )
    state = await registry.upstream.version_state(model.version)
    if state != "AVAILABLE":
        registry.request_refresh()
        return JsonResponse(
            Ready(
                status="not_ready",
                model=model.name,
                version=model.version,
                detail=f"TF Serving reports version {model.version} {state}",
            ).model_dump(),
            503,
            headers={"Retry-After": "2"},
        )
    return JsonResponse(Ready(status="ready", model=model.name, version=model.version).model_dump())


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(m: MetricsDep) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
