"""``/healthz`` while the sidecar serves a flood of maximum-size classify requests (``max_texts`` texts
of ``max_chars`` characters each): the event loop must keep answering the cheap requests while the
large ones are vectorized (preprocess_service/answer.py runs those off the loop)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

import orjson

from devstack import HOST, loadgen

FLOOD_CONCURRENCY = 4


def max_size_body(docs: list[str], texts: int, chars: int) -> bytes:
    """One request of ``texts`` texts of exactly ``chars`` characters, cut from the documents."""
    pool = " ".join(docs)
    while len(pool) < texts * chars:
        pool += " " + pool
    return orjson.dumps({"texts": [pool[i * chars : (i + 1) * chars] for i in range(texts)]})


async def _both(
    port: int, flood: list[bytes], probe: list[bytes], duration_s: float
) -> tuple[loadgen.LoadResult, loadgen.LoadResult]:
    big = loadgen.run_load(HOST, port, flood, FLOOD_CONCURRENCY, duration_s, timeout_s=60.0)
    small = loadgen.run_load(HOST, port, probe, 1, duration_s, timeout_s=60.0)
    b, s = await asyncio.gather(big, small)
    return b, s


def measure(
    loop: asyncio.AbstractEventLoop, port: int, docs: list[str], texts: int, chars: int, duration_s: float
) -> dict[str, Any]:
    body = max_size_body(docs, texts, chars)
    flood = loadgen.build_requests(HOST, port, "/v1/classify", [body])
    probe = [loadgen.http_request("/healthz", b"", method="GET", host=f"{HOST}:{port}")]
    big, small = loop.run_until_complete(_both(port, flood, probe, duration_s))
    return {
        "what": f"GET /healthz (c=1) while {FLOOD_CONCURRENCY} connections send {texts} x {chars} chars",
        "body_bytes": len(body),
        "flood": asdict(big),
        "healthz": asdict(small),
    }
