"""Prometheus metrics, one registry per app (tests build several apps in one process)."""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client import Histogram as _Histogram

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram(_Histogram):
    """prometheus_client's Histogram, its bucket found by bisection: the sidecar observes five latencies
    per request, and the parent walks the bucket bounds in Python (same buckets, same exposition)."""

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        # the parent handles exemplars, NaN (which it counts in no bucket) and a labelled parent's error
        if exemplar or amount != amount or (self._labelnames and not self._labelvalues):
            super().observe(amount, exemplar)
            return
        self._sum.inc(amount)
        # the first bound >= amount, as the parent's loop finds it; the last bound is +Inf
        self._buckets[bisect_left(self._upper_bounds, amount)].inc(1)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "sidecar_requests_total",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "sidecar_request_duration_seconds",
            "Whole request latency",
            ["route"],
            buckets=_LATENCY,
            registry=r,
        )
        self.step_seconds = Histogram(
            "sidecar_step_duration_seconds",
            "Latency of each pipeline step (preprocess = vectorize, predict = upstream call, postprocess)",
            ["step"],
            buckets=_LATENCY,
            registry=r,
        )
        self.batch_size = Histogram(
            "sidecar_batch_size_texts",
            "Texts per upstream call, after micro-batching",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.in_flight = Gauge("sidecar_in_flight_requests", "Requests being served now", registry=r)
        self.model_version = Gauge(
            "sidecar_model_version", "Model version the sidecar is pinned to", ["model"], registry=r
        )
        self.swaps = Counter(
            "sidecar_model_swaps_total", "Switches to a new model version", ["model"], registry=r
        )
        self.upstream_errors = Counter(
            "sidecar_upstream_errors_total", "Failed calls to TF Serving by kind", ["kind"], registry=r
        )

        # --- model lifecycle: per version and role (stable/canary), shadow agreement, fallback
        self.version_requests = Counter(
            "sidecar_version_requests_total",
            "Classify answers by model version, role (stable/canary) and outcome (ok/error)",
            ["version", "role", "outcome"],
            registry=r,
        )
        self.version_seconds = Histogram(
            "sidecar_version_request_duration_seconds",
            "Latency of one version's answer (the whole classify call) by version and role",
            ["version", "role"],
            buckets=_LATENCY,
            registry=r,
        )
        self.version_predictions = Counter(
            "sidecar_version_predictions_total",
            "Predicted (top) labels by version and role",
            ["version", "role", "label"],
            registry=r,
        )
        self.role_version = Gauge(
            "sidecar_model_role_version", "Version serving each role (0: none)", ["role"], registry=r
        )
        self.canary_weight = Gauge(
            "sidecar_canary_weight_percent",
            "Share of requests the canary answers now (0 after a fallback or in shadow mode)",
            registry=r,
        )
        self.canary_fallbacks = Counter(
            "sidecar_canary_fallbacks_total",
            "Times the canary was stopped automatically, by version and reason (error_rate/p99)",
            ["version", "reason"],
            registry=r,
        )
        self.shadow_compared = Counter(
            "sidecar_shadow_comparisons_total",
            "Shadow copies: texts whose canary label agreed or disagreed with stable's; errors; dropped",
            ["stable_version", "canary_version", "result"],
            registry=r,
        )
        self.shadow_agreement = Gauge(
            "sidecar_shadow_agreement_ratio",
            "Share of shadowed texts where canary and stable agree",
            registry=r,
        )
        self._steps: tuple[Any, Any, Any] | None = None

    def steps(self) -> tuple[Any, Any, Any]:
        """The preprocess, predict and postprocess children of ``step_seconds``, looked up once."""
        if self._steps is None:
            h = self.step_seconds
            self._steps = (h.labels("preprocess"), h.labels("predict"), h.labels("postprocess"))
        return self._steps
