"""Prometheus metrics, served on the REST port at TF Serving's path /monitoring/prometheus/metrics.

Two sets of names. TF Serving's own, so dashboards and alerts written for it work unchanged:
``:tensorflow:serving:request_count`` (counter; model_name, status), ``:tensorflow:serving:request_latency``
and ``:tensorflow:serving:runtime_latency`` (histograms in microseconds; model_name, API, entrypoint).
And snake_case equivalents with the unit in the name, as this project's metrics are:
``tensorflow_serving_request_count_total``, ``tensorflow_serving_request_latency_seconds``, ...
The path is TF Serving's default, or the ``prometheus_config.path`` of --monitoring_config_file."""

from __future__ import annotations

import threading

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
# TF Serving's latency buckets: exponential, 10us x 1.8^i, 33 of them (then +Inf).
_TFS_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(_TFS_BUCKETS_US) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, micros: float) -> None:
        i = next((i for i, b in enumerate(_TFS_BUCKETS_US) if micros <= b), len(_TFS_BUCKETS_US))
        self.counts[i] += 1
        self.total += micros
        self.n += 1


class TFServingNames:
    """The request metrics under TF Serving's names, exposed as tensorflow_model_server does (a counter
    without the ``_total`` suffix, latency histograms in microseconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: dict[tuple[str, str], float] = {}
        self._request: dict[tuple[str, str, str], _Histogram] = {}
        self._runtime: dict[tuple[str, str, str], _Histogram] = {}

    def request(self, model: str, api: str, entrypoint: str, status: str, seconds: float) -> None:
        with self._lock:
            self._count[(model, status)] = self._count.get((model, status), 0) + 1
            self._request.setdefault((model, api, entrypoint), _Histogram()).observe(seconds * 1e6)

    def runtime(self, model: str, api: str, runtime: str, seconds: float) -> None:
        with self._lock:
            self._runtime.setdefault((model, api, runtime), _Histogram()).observe(seconds * 1e6)

    def text(self) -> bytes:
        """Prometheus text format, written out here: prometheus_client would name the counter
        ``..._total``, and TF Serving's name has no suffix."""
        lines: list[str] = []
        with self._lock:
            name = ":tensorflow:serving:request_count"
            lines += [f"# HELP {name} The total number of requests.", f"# TYPE {name} counter"]
            for (model, status), v in sorted(self._count.items()):
                lines.append(f"{name}{_labels(model_name=model, status=status)} {v}")
            self._histograms(
                lines,
                ":tensorflow:serving:request_latency",
                "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
                ("model_name", "API", "entrypoint"),
                self._request,
            )
            self._histograms(
                lines,
                ":tensorflow:serving:runtime_latency",
                "Distribution of wall time (in microseconds) for Tensorflow runtime.",
                ("model_name", "API", "runtime"),
                self._runtime,
            )
        return ("\n".join(lines) + "\n").encode()

    @staticmethod
    def _histograms(
        lines: list[str],
        name: str,
        doc: str,
        keys: tuple[str, str, str],
        data: dict[tuple[str, str, str], _Histogram],
    ) -> None:
        lines += [f"# HELP {name} {doc}", f"# TYPE {name} histogram"]
        for values, h in sorted(data.items()):
            labels = dict(zip(keys, values, strict=True))
            cumulative = 0
            for bound, c in zip([*_TFS_BUCKETS_US, float("inf")], h.counts, strict=True):
                cumulative += c
                le = "+Inf" if bound == float("inf") else f"{bound:.6g}"
                lines.append(f"{name}_bucket{_labels(**labels, le=le)} {cumulative}")
            lines.append(f"{name}_sum{_labels(**labels)} {h.total}")
            lines.append(f"{name}_count{_labels(**labels)} {h.n}")


def _labels(**labels: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tfs = TFServingNames()
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
        self.batches = Counter(
            "tensorflow_serving_batches",
            "Batches run by server-side batching (--enable_batching), by model",
            ["model_name"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "tensorflow_serving_batch_size_rows",
            "Rows per batch run by server-side batching, padding included",
            ["model_name"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
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
        self.tfs.request(model_name, api, entrypoint, status, seconds)

    def observe_runtime(self, model_name: str, api: str, entrypoint: str, seconds: float) -> None:
        self.runtime_latency.labels(model_name, api, entrypoint).observe(seconds)
        self.tfs.runtime(model_name, api, "TF1", seconds)

    def on_batch(self, model_name: str, rows: int) -> None:
        self.batches.labels(model_name).inc()
        self.batch_size.labels(model_name).observe(rows)

    def on_state(self, model_name: str, version: int, state: str) -> None:
        for s in _STATES:
            self.version_state.labels(model_name, str(version), s).set(1.0 if s == state else 0.0)

    def render(self) -> bytes:
        return self.tfs.text() + generate_latest(self.registry)
