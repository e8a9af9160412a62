"""Where the sidecar's CPU goes under load: py-spy samples the sidecar (or, with ``--process
model-server``, the model server behind it) while the load generator drives the sidecar, and the samples
are summed by the module of the innermost frame (own time) and by the project's own functions anywhere on
the stack (inclusive time). It also reports the sidecar's CPU over the model server's in the same window:
both move together with this VM's speed, so that ratio tells an A/B of the sidecar's code apart where
CPU seconds alone do not (docs/bench.md, change 18).

``python -m bench.profile [--transport rest] [--concurrency 32] [--duration 8] [--process sidecar]``
(needs ``py-spy``, a dev dependency, and ptrace rights over the process: root, or
``kernel.yama.ptrace_scope=0``). Writes the collapsed stacks and the summary under bench/raw/profile/."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from bench import procstat
from devstack import HOST, loadgen, start_model_server, start_sidecar, wait_available, wait_http

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")
# what an innermost frame is counted as: the first pattern found in its file path
_GROUPS = (
    ("textvec", "textvec/"),
    ("local_model_server", "local_model_server/"),
    ("tensorflow", ("tensorflow/", "keras/")),
    ("preprocess_service", "preprocess_service/"),
    ("contracts", "contracts/"),
    ("numpy", "numpy/"),
    ("fastapi", "fastapi/"),
    ("starlette", "starlette/"),
    ("pydantic", "pydantic"),
    ("uvicorn", "uvicorn/"),
    ("httpx/httpcore/h11/anyio", ("httpx/", "httpcore/", "h11/", "anyio/")),
    ("grpc/protobuf", ("grpc/", "google/protobuf")),
    ("prometheus_client", "prometheus_client/"),
    ("logging/json log", ("logging/", "pythonjsonlogger")),
    ("asyncio/uvloop", ("asyncio/", "uvloop/")),
)


def _group(path: str) -> str:
    for name, pats in _GROUPS:
        if any(p in path for p in ((pats,) if isinstance(pats, str) else pats)):
            return name
    return "other"


def summarize(collapsed: str) -> dict[str, Any]:
    """Own samples by module group, and inclusive samples of each sidecar/textvec function."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [m for f in stack.split(";") if (m := _FRAME.match(f.strip()))]
        if not frames:
            continue
        total += count
        own[_group(frames[-1]["file"])] += count
        seen = set()
        for m in frames:
            if any(d in m["file"] for d in ("preprocess_service/", "textvec/", "local_model_server/")):
                key = f"{Path(m['file']).name}:{m['func']}"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += count
    share = {k: round(v / total, 3) for k, v in own.most_common()} if total else {}
    incl = {k: round(v / total, 3) for k, v in inclusive.most_common(15)} if total else {}
    return {"samples": total, "own_share_by_module": share, "inclusive_share_top": incl}


def run(transport: str, concurrency: int, duration_s: float, models: Path, name: str, docs: list[str],
        out_dir: Path, sample: bool = True, process: str = "sidecar") -> dict[str, Any]:  # fmt: skip
    spy_bin = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy_bin is None and sample:
        raise SystemExit("py-spy is not installed (pip install py-spy): it samples the sidecar")
    out_dir.mkdir(parents=True, exist_ok=True)
    bodies = [orjson.dumps({"text": d}) for d in docs]
    server = start_model_server(models / name, name, out_dir)
    try:
        wait_available(server, name, timeout=180.0, every=0.2)
        sidecar = start_sidecar(models, name, server, out_dir, transport=transport)
        try:
            wait_http(sidecar, "/readyz", timeout=180.0)
            port = sidecar.ports["http"]
            pid = sidecar.popen.pid if process == "sidecar" else server.popen.pid
            requests = loadgen.build_requests(HOST, port, "/v1/classify", bodies)
            loop = loadgen.new_loop()
            loop.run_until_complete(loadgen.run_load(HOST, port, requests, concurrency, 1.5))
            stem = f"{transport}_c{concurrency}" + ("" if process == "sidecar" else f"_{process}")
            raw = out_dir / f"{stem}.collapsed"
            spy = None if not sample or spy_bin is None else subprocess.Popen(
                [spy_bin, "record", "--pid", str(pid), "--format", "raw", "--rate", "250", "--nonblocking",
                 "--duration", str(int(duration_s)), "--output", str(raw)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            # both processes' CPU: in the same window they speed up and slow down together with this
            # VM, so the sidecar's over the model server's cancels most of that drift in an A/B
            cpu0, side0, server0 = (
                procstat.cpu_seconds(p) for p in (pid, sidecar.popen.pid, server.popen.pid)
            )
            r = loop.run_until_complete(loadgen.run_load(HOST, port, requests, concurrency, duration_s))
            cpu = procstat.cpu_seconds(pid) - cpu0
            side_cpu = procstat.cpu_seconds(sidecar.popen.pid) - side0
            server_cpu = procstat.cpu_seconds(server.popen.pid) - server0
            if spy is not None:
                spy.wait(timeout=duration_s + 30)
            loop.close()
        finally:
            sidecar.stop()
    finally:
        server.stop()
    result = {
        "transport": transport,
        "concurrency": concurrency,
        "process": process,
        "throughput_rps": r.throughput_rps,
        "p99_ms": r.latency_ms.get("p99"),
        f"{process.replace('-', '_')}_cpu_ms_per_request": round(cpu / max(1, r.requests) * 1000, 4),
        "sidecar_over_model_server_cpu": round(side_cpu / server_cpu, 3) if server_cpu else None,
        "note": "sampled by py-spy (--nonblocking) while measured: the sampler costs CPU on the same cores"
        if sample
        else "not sampled",
    } | (summarize(raw.read_text()) if sample else {})
    (out_dir / f"{stem}.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return result


def main() -> None:
    from bench.__main__ import _ensure_model, test_documents

    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("--transport", default="rest", choices=("rest", "grpc"))
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--models", type=Path, default=Path("models"))
    p.add_argument("--model-name", default="news")
    p.add_argument("--dataset", default="bbc-news")
    p.add_argument("--out", type=Path, default=Path("bench/raw/profile"))
    p.add_argument("--no-sample", action="store_true", help="measure CPU per request without py-spy")
    p.add_argument(
        "--process", default="sidecar", choices=("sidecar", "model-server"), help="what is sampled"
    )
    a = p.parse_args()
    docs = test_documents(_ensure_model(a.models, a.model_name, a.dataset), a.dataset)
    res = run(
        a.transport,
        a.concurrency,
        a.duration,
        a.models.resolve(),
        a.model_name,
        docs,
        a.out,
        not a.no_sample,
        a.process,
    )
    print(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
