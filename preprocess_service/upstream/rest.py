"""TF Serving's REST API through one pool of keep-alive connections (``http1.Http1Client``), columnar
(``inputs``) JSON via orjson.

Every call runs under ``asyncio.timeout``: a deadline for the whole exchange, connecting included, so a
server that trickles its answer a byte at a time still trips it."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson

from contracts import version_state
from contracts.signature import PROBABILITIES, SIGNATURE, TOKEN_IDS, TOKEN_WEIGHTS
from preprocess_service import logs
from preprocess_service.errors import NotReady, UpstreamError, UpstreamTimeout, VersionUnavailable
from preprocess_service.upstream.http1 import Http1Client, Response, TransportError


class RestUpstream:
    transport = "rest"

    def __init__(self, base_url: str, model_name: str, timeout_s: float) -> None:
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._path = f"/v1/models/{model_name}"
        self._client = Http1Client(base_url, max_connections=64, keepalive_s=60)

    async def predict(self, version: int, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        body = orjson.dumps(
            {"signature_name": SIGNATURE, "inputs": {TOKEN_IDS: ids, TOKEN_WEIGHTS: weights}},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        path = f"{self._path}/versions/{version}:predict"
        try:
            # a reused keep-alive connection the server closed while idle is retried once, on a fresh
            # connection, inside the same deadline (predict has no side effect): Http1Client.request
            async with asyncio.timeout(self.timeout_s):
                resp = await self._client.request("POST", path, body, _headers())
        except TimeoutError as exc:
            raise UpstreamTimeout(f"TF Serving did not answer within {self.timeout_s}s") from exc
        except TransportError as exc:
            raise NotReady(f"TF Serving is unreachable: {exc}") from exc
        if resp.status == 200:
            outputs = orjson.loads(resp.body)["outputs"]
            probs = outputs[PROBABILITIES] if isinstance(outputs, dict) else outputs
            return np.asarray(probs, dtype=np.float32)
        message = _error_message(resp)
        if resp.status in (404, 503):
            raise VersionUnavailable(f"TF Serving cannot serve version {version} now: {message}")
        raise UpstreamError(f"TF Serving refused the request ({resp.status}): {message}")

    async def version_state(self, version: int) -> str:
        try:
            async with asyncio.timeout(min(self.timeout_s, 2.0)):
                resp = await self._client.request("GET", f"{self._path}/versions/{version}")
        except (TransportError, TimeoutError):
            return version_state.UNREACHABLE
        if resp.status != 200:
            return version_state.UNKNOWN
        return version_state.states(orjson.loads(resp.body)).get(version, version_state.UNKNOWN)

    async def aclose(self) -> None:
        await self._client.aclose()


_JSON = ("Content-Type", "application/json")


def _headers() -> tuple[tuple[str, str], ...]:
    rid = logs.request_id.get()
    return (_JSON, (logs.REQUEST_ID_HEADER, rid)) if rid else (_JSON,)


def _error_message(resp: Response) -> str:
    try:
        return str(orjson.loads(resp.body).get("error", resp.text))[:300]
    except (orjson.JSONDecodeError, AttributeError):
        return resp.text[:300]
