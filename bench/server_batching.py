"""Model-server-side batching, measured: single-row dense predict requests at concurrency 32 straight to
the model server's REST API, with --enable_batching (and the chart's batching parameters) and without.

This is the fair baseline for the sidecar's own micro-batching: the usual transformer sends one row
per request, and TF Serving may batch those rows itself. Both runs serve the same dense export
(bench/dense_model.py) from the stand-in model server, started fresh for each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from devstack import HOST, loadgen, start_model_server, wait_available

CONCURRENCY = 32
# The chart's defaults for tfServing.batching (values.yaml), as a batching_parameters_file.
BATCHING_PARAMETERS = (
    "max_batch_size { value: 32 }\n"
    "batch_timeout_micros { value: 2000 }\n"
    "max_enqueued_batches { value: 100 }\n"
    "num_batch_threads { value: 2 }\n"
    "pad_variable_length_inputs: true\n"
)


def _bodies(n_features: int, rng: np.random.Generator, count: int = 64) -> list[bytes]:
    """One dense TF-IDF-like row per request: ~150 non-zero weights out of n_features."""
    out = []
    for _ in range(count):
        x = np.zeros(n_features, dtype=np.float32)
        x[rng.choice(n_features, size=min(150, n_features), replace=False)] = rng.random(min(150, n_features))
        out.append(orjson.dumps({"instances": [x.round(4).tolist()]}))
    return out


def measure(
    dense_base: Path,
    model_name: str,
    n_features: int,
    log_dir: Path,
    duration_s: float,
    warmup_s: float,
    emit: Callable[[str], None] = print,
) -> dict[str, Any]:
    bodies = _bodies(n_features, np.random.default_rng(7))
    log_dir.mkdir(parents=True, exist_ok=True)
    params = log_dir / "batching.config"
    params.write_text(BATCHING_PARAMETERS)
    out: dict[str, Any] = {
        "what": "single-row dense REST predict to the stand-in model server, concurrency 32",
        "batching_parameters": BATCHING_PARAMETERS,
    }
    loop = loadgen.new_loop()
    for mode, extra in (
        ("off", []),
        ("on", ["--enable_batching=true", f"--batching_parameters_file={params}"]),
    ):
        server = start_model_server(
            dense_base / model_name, model_name, log_dir, *extra,
            poll_s=None, name=f"model_server_batching_{mode}",
        )  # fmt: skip
        rest_port = server.ports["http"]
        try:
            wait_available(server, model_name, timeout=180.0)
            requests = loadgen.build_requests(HOST, rest_port, f"/v1/models/{model_name}:predict", bodies)
            loop.run_until_complete(loadgen.run_load(HOST, rest_port, requests, CONCURRENCY, warmup_s))
            r = loop.run_until_complete(loadgen.run_load(HOST, rest_port, requests, CONCURRENCY, duration_s))
        finally:
            server.stop()
        out[f"batching_{mode}"] = asdict(r)
        lat = r.latency_ms
        emit(
            f"  {'model_server_batch_' + mode:22s} c={CONCURRENCY:<4d} {r.throughput_rps:8.1f} req/s  "
            f"p50 {lat.get('p50', 0):7.2f}  p99 {lat.get('p99', 0):7.2f} ms  errors {r.errors}"
            + (f" ({r.first_error})" if r.errors else "")
        )
    loop.close()
    off, on = out["batching_off"]["throughput_rps"], out["batching_on"]["throughput_rps"]
    out["throughput_on_vs_off"] = round(on / off, 3) if off else None
    return out
