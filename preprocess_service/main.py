"""App factory and lifespan: settings, upstream client, registry and batcher are built once per process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from preprocess_service import errors, logs
from preprocess_service.api_keys import ApiKeys
from preprocess_service.batching import Batcher
from preprocess_service.config import Settings, load_settings
from preprocess_service.fastlane import Lane
from preprocess_service.fastpath import FastClassify
from preprocess_service.front import SidecarAPI
from preprocess_service.lifecycle.routing import Lifecycle
from preprocess_service.lifecycle.source import DeclaredSource
from preprocess_service.metrics import Metrics
from preprocess_service.middleware import RequestContext
from preprocess_service.oip import rest as oip_rest
from preprocess_service.registry import Registry
from preprocess_service.routers import classify, docs, health, model, page
from preprocess_service.upstream import Upstream, make_upstream

log = logging.getLogger("preprocess_service")

DESCRIPTION = """\
Turns raw text into the sparse TF-IDF tensors (`token_ids`, `token_weights`) of the model version it is
pinned to, asks TensorFlow Serving for that exact version, and maps probabilities back to labels.
Every response says which model version answered. Errors share one JSON shape: `{"error": {"code",
"message", "request_id"}}`."""


def create_app(
    settings: Settings | None = None, upstream: Upstream | None = None, freeze_after_startup: bool = False
) -> SidecarAPI:
    """``freeze_after_startup`` is for the process entry points: once started (upstream client, hence
    TensorFlow for gRPC, and the first vectorizer loaded), every object that exists is moved out of the
    cyclic garbage collector's way with ``gc.freeze()``. They live as long as the process; without it
    each full (generation 2) collection walks all of FastAPI's, pydantic's (and TensorFlow's) objects,
    a 30-50 ms pause that was most of the p99 latency at concurrency 32 (docs/bench.md). Reference
    counting still frees them as usual. Off by default: tests build many apps in one process."""
    settings = settings or load_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: SidecarAPI) -> AsyncIterator[None]:
        client = upstream or make_upstream(settings)
        # model lifecycle: the declared versions (if configured) and the router over them
        source = DeclaredSource(settings.model_name, settings.model_config_file, settings.rollout_file)
        registry = Registry(settings.model_name, settings.model_dir, client, metrics, source)
        app.state.lifecycle = lifecycle = Lifecycle(registry, metrics)
        batcher = Batcher(
            client,
            metrics,
            settings.batch_enabled,
            settings.batch_max_size,
            settings.batch_max_wait_ms / 1000,
        )
        app.state.registry, app.state.batcher, app.state.upstream = registry, batcher, client
        await registry.refresh()
        if freeze_after_startup:
            gc.collect()
            gc.freeze()
        poller = asyncio.create_task(registry.run(settings.version_poll_s))
        # Open Inference Protocol gRPC: one grpc.aio server in this process and loop, on its own port
        oip_grpc = None
        if settings.oip_grpc_port:
            from preprocess_service.oip import grpc_server  # grpcio and the generated messages only then

            oip_grpc = await grpc_server.start(
                registry, batcher, metrics, settings, app.state.api_keys, lifecycle
            )
        log.info(
            "sidecar started",
            extra={
                "model": settings.model_name,
                "transport": client.transport,
                "model_dir": str(settings.model_dir),
                "status": registry.status,
            },
        )
        try:
            yield
        finally:
            if oip_grpc is not None:  # in-flight calls get the same grace as HTTP requests
                await oip_grpc.stop(settings.shutdown_grace_s)
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await lifecycle.aclose()
            await batcher.aclose()
            await client.aclose()
            log.info("sidecar stopped")

    app = SidecarAPI(
        title="Text classifier sidecar",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served with local assets by routers.docs: the CDN is out of reach in air gaps
        redoc_url=None,
        # The sidecar configures no OpenTelemetry provider (its metrics are Prometheus'), but FastAPI's
        # native telemetry looks for one on every request (~6 us of CPU in environment lookups).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.api_keys = ApiKeys.from_settings(settings)
    errors.install(app)
    for r in (classify.router, model.router, health.router):
        app.include_router(r)
    # Open Inference Protocol (KServe v2), REST binding
    app.include_router(oip_rest.health)
    app.include_router(oip_rest.models)
    if settings.page_enabled:
        app.include_router(page.router)
    docs.install(app)
    # in front of FastAPI's own outer layers (preprocess_service.front); the fast path inside
    # RequestContext: request ids, the body limit, metrics and the access log as for any route
    fast = app.add_front(FastClassify, api=app) if settings.fast_path else None
    context = app.add_front(RequestContext, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    if fast is not None and settings.fast_lane:
        # used by the HTTP protocol of `python -m preprocess_service` (http_protocol.SidecarHttpProtocol)
        app.lane = Lane(app, context, fast)
    return app


def __getattr__(name: str) -> SidecarAPI:
    # `uvicorn preprocess_service.main:app` builds the app on first access, from the environment
    if name == "app":
        logs.configure(load_settings().log_level)
        return create_app(freeze_after_startup=True)
    raise AttributeError(name)
