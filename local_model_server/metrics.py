"""Prometheus metrics, served on the REST port at TF Serving's path /monitoring/prometheus/metrics.

TF Serving names its request metrics ``:tensorflow:serving:request_count`` and
``:tensorflow:serving:request_latency`` (microseconds). Here they are the snake_case equivalents,
with the unit in the name as this project's metrics are: ``tensorflow_serving_request_count_total``
and ``tensorflow_serving_request_latency_seconds``."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

PATH = "/monitoring/prometheus/metrics"
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
)
_STATES = ("START", "LOADING", "AVAILABLE", "UNLOADING", "END")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        labels = ["model_name", "api", "entrypoint", "status"]
        self.request_count = Counter(
            "tensorflow_serving_request_count",
            "Requests handled, by model, API (predict, get_model_status, get_model_metadata), "
            "entrypoint (REST or GRPC) and status (OK or the canonical error code)",
            labels,
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "tensorflow_serving_request_latency_seconds",
            "Time from request received to response ready, by model, API, entrypoint and status",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.runtime_latency = Histogram(
            "tensorflow_serving_runtime_latency_seconds",
            "Time spent running the model (the signature function) per predict request",
            ["model_name", "api", "entrypoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.load_attempts = Counter(
            "tensorflow_serving_model_load_attempt_count",
            "Model version load attempts, by model and status (OK or the error code)",
            ["model_name", "status"],
            registry=self.registry,
        )
        self.version_state = Gauge(
            "tensorflow_serving_model_version_state",
            "1 for the state each known model version is in (START, LOADING, AVAILABLE, UNLOADING, END)",
            ["model_name", "version", "state"],
            registry=self.registry,
        )

    def observe(self, model_name: str, api: str, entrypoint: str, status: str, seconds: float) -> None:
        self.request_count.labels(model_name, api, entrypoint, status).inc()
        self.request_latency.labels(model_name, api, entrypoint, status).observe(seconds)

    def on_state(self, model_name: str, version: int, state: str) -> None:
        for s in _STATES:
            self.version_state.labels(model_name, str(version), s).set(1.0 if s == state else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
