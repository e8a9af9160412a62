"""``python -m bench.explain_latency``: the cost of ``explain: true`` against plain classify.

One model server (the local stand-in) and one sidecar (REST, micro-batching on, default settings) on
127.0.0.1; the same test-split documents are sent at the same concurrency, first as plain classify
requests, then with ``explain: true`` (each explained text is one upstream call of 1 + M rows). Writes
the two latency summaries and the p99 ratio to ``--out`` and prints one line."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import orjson

from bench.__main__ import _ensure_model, test_documents
from devstack import HOST, loadgen, start_model_server, start_sidecar, wait_http

P99_RATIO_TARGET = 3.0  # explain p99 at most this multiple of plain classify's, at the same concurrency


def measure(
    models: Path,
    name: str,
    docs: list[str],
    concurrency: int,
    duration_s: float,
    log_dir: Path,
    transport: str = "rest",
) -> dict:
    server = start_model_server(models / name, name, log_dir)
    try:
        wait_http(server, f"/v1/models/{name}", timeout=180)
        sidecar = start_sidecar(models, name, server, log_dir, transport=transport)
        try:
            wait_http(sidecar, "/readyz", timeout=180)
            port = sidecar.ports["http"]
            loop = loadgen.new_loop()
            out: dict[str, dict] = {}
            for mode, extra in (("classify", {}), ("explain", {"explain": True})):
                bodies = [orjson.dumps({"text": d, **extra}) for d in docs]
                reqs = loadgen.build_requests(HOST, port, "/v1/classify", bodies)
                loop.run_until_complete(loadgen.run_load(HOST, port, reqs, concurrency, min(2.0, duration_s)))
                r = loop.run_until_complete(loadgen.run_load(HOST, port, reqs, concurrency, duration_s))
                out[mode] = {"requests": r.requests, "errors": r.errors, "throughput_rps": r.throughput_rps,
                             "latency_ms": r.latency_ms, "first_error": r.first_error}  # fmt: skip
        finally:
            sidecar.stop()
    finally:
        server.stop()
    ratio = out["explain"]["latency_ms"].get("p99", 0) / max(
        1e-9, out["classify"]["latency_ms"].get("p99", 0)
    )
    return {
        "what": f"sidecar ({transport}, micro-batching on) + local stand-in model server on 127.0.0.1, "
        "closed-loop load, test-split documents",
        "transport": transport,
        "concurrency": concurrency,
        "duration_s": duration_s,
        **out,
        "p99_ratio_explain_vs_classify": round(ratio, 2),
        "p99_ratio_target": P99_RATIO_TARGET,
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": os.getloadavg(),
            "python": platform.python_version(),
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.explain_latency")
    p.add_argument("--models", type=Path, default=Path("models"))
    p.add_argument("--model-name", default="news")
    p.add_argument("--dataset", default="bbc-news")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--transport", choices=["rest", "grpc"], default="rest")
    p.add_argument("--out", type=Path, default=Path("bench/raw/explain.json"))
    args = p.parse_args(argv)
    version_dir = _ensure_model(args.models, args.model_name, args.dataset)
    docs = test_documents(version_dir, args.dataset)
    result = measure(
        args.models, args.model_name, docs, args.concurrency, args.duration, args.out.parent / "logs"
    )
    result["dataset"] = args.dataset
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    c, e = result["classify"]["latency_ms"], result["explain"]["latency_ms"]
    print(
        f"explain latency ({args.dataset}, {args.transport}, c={args.concurrency}): "
        f"classify p50 {c.get('p50')} p99 {c.get('p99')} ms; "
        f"explain p50 {e.get('p50')} p99 {e.get('p99')} ms; "
        f"p99 ratio {result['p99_ratio_explain_vs_classify']} (target <= {P99_RATIO_TARGET}); "
        f"errors {result['classify']['errors']}/{result['explain']['errors']}",
        flush=True,
    )
    return 0 if result["classify"]["errors"] == 0 and result["explain"]["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
