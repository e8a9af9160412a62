"""What a Python HTTP front costs at the least, measured like the sidecar (the same load generator, the
same documents, concurrency 32, CPU from /proc): the reference for how far the sidecar's CPU per request
can fall while it stays a Python process on this stack (docs/bench.md, "The floor").

Three servers, each in its own process, each answering ``POST /v1/classify`` with a fixed small JSON body:

- ``bare``: an asyncio protocol on uvloop parsing HTTP/1.1 with httptools and the body with orjson: the
  least any Python server on this stack does per request (two socket operations and a parse);
- ``bare_vectorize``: the same, and it vectorizes and pads the document with the sidecar's own code
  (``textvec``): the work the in-process ceiling shares with the sidecar;
- ``uvicorn``: a trivial ASGI app under uvicorn with the sidecar's own protocol class: what the server
  framework adds before any of the sidecar's code runs.

No model server is called: everything past these is the sidecar's own (routing, validation, batching,
the upstream call, metrics, the access log). ``python -m bench.floor [--duration 8] [--out floor.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import orjson

from bench import procstat
from devstack import HOST, free_port, loadgen

KINDS = ("bare", "bare_vectorize", "uvicorn")
_BODY = b'{"predictions":[{"label":"business","score":0.9}],"model_name":"news","model_version":1}'
_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(_BODY)


def _serve_bare(port: int, version_dir: Path | None) -> None:
    import httptools
    import uvloop

    from textvec import Vectorizer, pad

    vec = Vectorizer.load(version_dir / "assets" / "vectorizer.json") if version_dir else None

    class Bare(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass of it
            self.parser = httptools.HttpRequestParser(self)
            self.body: list[bytes] = []

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            doc = orjson.loads(b"".join(self.body))
            self.body.clear()
            if vec is not None:
                pad([vec.transform_one(doc["text"])])
            self.transport.write(_HEAD + _BODY)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Bare, HOST, port)
        await server.serve_forever()

    uvloop.run(main())


def _serve_uvicorn(port: int) -> None:
    import uvicorn

    from preprocess_service.http_protocol import CoalescingHttpToolsProtocol

    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        message = await receive()
        orjson.loads(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": _BODY})

    # as the sidecar runs it (preprocess_service.__main__): uvloop, httptools, no proxy headers
    uvicorn.run(app, host=HOST, port=port, loop="uvloop", http=CoalescingHttpToolsProtocol,
                lifespan="off", access_log=False, log_level="warning", proxy_headers=False)  # fmt: skip


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the floor server exited with {proc.returncode} before listening")
        try:
            socket.create_connection((HOST, port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the floor server did not listen on {port} within {timeout_s}s")


def measure(kind: str, version_dir: Path, docs: list[str], concurrency: int, duration_s: float) -> dict:
    port = free_port()
    args = [sys.executable, "-m", "bench.floor", "--serve", kind, "--port", str(port),
            "--version-dir", str(version_dir)]  # fmt: skip
    proc = subprocess.Popen(args)
    try:
        _wait_port(port, proc)
        bodies = [orjson.dumps({"text": d}) for d in docs]
        requests = loadgen.build_requests(HOST, port, "/v1/classify", bodies)
        loop = loadgen.new_loop()
        try:
            loop.run_until_complete(loadgen.run_load(HOST, port, requests, concurrency, 1.5))
            cpu0 = procstat.cpu_seconds(proc.pid)
            r = loop.run_until_complete(loadgen.run_load(HOST, port, requests, concurrency, duration_s))
            cpu = procstat.cpu_seconds(proc.pid) - cpu0
        finally:
            loop.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    if r.errors:
        raise RuntimeError(f"{kind}: {r.errors} of {r.requests} requests failed (first: {r.first_error})")
    return {
        "kind": kind,
        "concurrency": concurrency,
        "requests": r.requests,
        "throughput_rps": r.throughput_rps,
        "cpu_ms_per_request": round(cpu / max(1, r.requests) * 1000, 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=Path, default=Path("models"))
    p.add_argument("--model-name", default="news")
    p.add_argument("--dataset", default="bbc-news")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--out", type=Path, default=Path("bench/raw/floor.json"))
    p.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)  # the child process' role
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--version-dir", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        if a.serve == "uvicorn":
            _serve_uvicorn(a.port)
        else:
            _serve_bare(a.port, a.version_dir if a.serve == "bare_vectorize" else None)
        return
    from bench.__main__ import _ensure_model, test_documents

    version_dir = _ensure_model(a.models, a.model_name, a.dataset)
    docs = test_documents(version_dir, a.dataset)
    runs = [measure(k, version_dir, docs, a.concurrency, a.duration) for k in KINDS]
    result = {
        "machine": procstat.machine(),
        "loadavg_before": procstat.loadavg(),
        "note": "no model server: each server answers a fixed body; CPU is the server process' own",
        "runs": runs,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    for run in runs:
        print(f"{run['kind']:<16} {run['cpu_ms_per_request']:.4f} ms CPU/request  "
              f"{run['throughput_rps']:>8.0f} req/s  ({run['requests']} requests)")  # fmt: skip
    print(f"written: {a.out}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
