"""The sidecar app's own CPU per ``/v1/classify`` request, with no socket and no model server: the ASGI app
built by ``create_app`` is called directly by 32 concurrent in-process clients, and the model server is
a stand-in that answers at once. What is left is the app's own Python: the request context, the fast
path, validation, batching, the answers, metrics and the access log (set up as the sidecar's entry point
sets it up, its stream ``/dev/null``).

``--no-vectorize`` replaces the vectorizer with a constant row, leaving only the per-request machinery.
Under ``valgrind --tool=callgrind`` two runs with different ``--requests`` give instructions per request
by difference (startup cancels out), which repeat exactly, unlike CPU seconds on a shared machine:
``python -m bench.app_cost [--requests 4000] [--no-vectorize] [--models models] [--model-name news]``"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from contracts import version_state

CONCURRENCY = 32


class InstantUpstream:
    """Answers every row with the same probabilities, on the loop's next turn."""

    transport = "rest"

    def __init__(self, n_labels: int) -> None:
        self.n_labels = n_labels

    async def predict(self, version: int, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        await asyncio.sleep(0)
        probs = np.full((ids.shape[0], self.n_labels), 0.5 / max(1, self.n_labels - 1), dtype=np.float32)
        probs[:, 0] = 0.5
        return probs

    async def version_state(self, version: int) -> str:
        return version_state.AVAILABLE

    async def aclose(self) -> None:
        return None


def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/classify",
        "raw_path": b"/v1/classify",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "state": {},
    }


async def _one(app: Any, body: bytes) -> None:
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError("unreachable")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(body), receive, send)
    if sent[0]["status"] != 200:
        raise RuntimeError(f"the app answered {sent[0]['status']}: {sent[-1].get('body', b'')!r}")


async def _drive(app: Any, bodies: list[bytes], n: int) -> int:
    done = 0

    async def client(k: int) -> None:
        nonlocal done
        i = k
        while done < n:
            await _one(app, bodies[i % len(bodies)])
            i += CONCURRENCY
            done += 1

    await asyncio.gather(*(client(k) for k in range(CONCURRENCY)))
    return done


async def measure(models: Path, name: str, docs: list[str], n: int, vectorize: bool) -> dict[str, Any]:
    from preprocess_service import logs
    from preprocess_service.config import Settings
    from preprocess_service.main import create_app

    # the access log as the entry point configures it (logs.configure: one handler on stdout), written
    # to /dev/null: its formatting and write are measured, and the result line stays readable
    stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 - open while the process runs
    try:
        logs.configure("info")
    finally:
        sys.stdout = stdout

    labels = orjson.loads(next((models / name).glob("*/assets/labels.json")).read_bytes())
    settings = Settings(model_base_path=models, model_name=name)
    app = create_app(settings, upstream=InstantUpstream(len(labels)))
    async with app.router.lifespan_context(app):
        while app.state.registry.current is None:
            await asyncio.sleep(0.05)
        if not vectorize:
            vec = app.state.registry.current.vectorizer
            row = vec.transform_one("one constant row")
            object.__setattr__(vec, "transform_one", lambda _text: row)
        bodies = [orjson.dumps({"text": d}) for d in docs]
        await _drive(app, bodies, n)  # warm-up: the same number of requests
        t0 = time.process_time()
        done = await _drive(app, bodies, n)
        cpu = time.process_time() - t0
    return {"requests": done, "vectorize": vectorize, "cpu_ms_per_request": round(cpu / done * 1000, 4)}


def main() -> None:
    import uvloop

    from bench.__main__ import _ensure_model, test_documents

    p = argparse.ArgumentParser(prog="python -m bench.app_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=Path, default=Path("models"))
    p.add_argument("--model-name", default="news")
    p.add_argument("--dataset", default="bbc-news")
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--no-vectorize", action="store_true")
    a = p.parse_args()
    docs = test_documents(_ensure_model(a.models, a.model_name, a.dataset), a.dataset)
    result = uvloop.run(measure(a.models, a.model_name, docs, a.requests, not a.no_vectorize))
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
