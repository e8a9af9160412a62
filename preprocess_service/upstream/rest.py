"""TF Serving's REST API through one pooled keep-alive client, columnar (``inputs``) JSON via orjson.

httpx's timeout bounds each connect, read and write separately, so a server that trickles its answer a
byte at a time would never trip it: every call also runs under ``asyncio.timeout``, a deadline for the
whole exchange."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import orjson

from contracts import version_state
from contracts.signature import PROBABILITIES, SIGNATURE, TOKEN_IDS, TOKEN_WEIGHTS
from preprocess_service import logs
from preprocess_service.errors import NotReady, UpstreamError, UpstreamTimeout, VersionUnavailable

# what a request on a connection the server has just closed raises
_STALE_CONNECTION = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


class RestUpstream:
    transport = "rest"

    def __init__(self, base_url: str, model_name: str, timeout_s: float) -> None:
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._url = f"{base_url}/v1/models/{model_name}"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=60),
        )

    async def predict(self, version: int, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        body = orjson.dumps(
            {"signature_name": SIGNATURE, "inputs": {TOKEN_IDS: ids, TOKEN_WEIGHTS: weights}},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        url = f"{self._url}/versions/{version}:predict"
        try:
            async with asyncio.timeout(self.timeout_s):
                try:
                    resp = await self._client.post(url, content=body, headers=_headers())
                except _STALE_CONNECTION:
                    # A pooled keep-alive connection the server closed while idle fails the moment it
                    # is reused (the server's idle timeout raced ours). Predict has no side effect, so
                    # it is sent once more, on a fresh connection, inside the same deadline.
                    resp = await self._client.post(url, content=body, headers=_headers())
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise UpstreamTimeout(f"TF Serving did not answer within {self.timeout_s}s") from exc
        except httpx.TransportError as exc:
            raise NotReady(f"TF Serving is unreachable: {type(exc).__name__}") from exc
        if resp.status_code == 200:
            outputs = orjson.loads(resp.content)["outputs"]
            probs = outputs[PROBABILITIES] if isinstance(outputs, dict) else outputs
            return np.asarray(probs, dtype=np.float32)
        message = _error_message(resp)
        if resp.status_code in (404, 503):
            raise VersionUnavailable(f"TF Serving cannot serve version {version} now: {message}")
        raise UpstreamError(f"TF Serving refused the request ({resp.status_code}): {message}")

    async def version_state(self, version: int) -> str:
        deadline = min(self.timeout_s, 2.0)
        try:
            async with asyncio.timeout(deadline):
                resp = await self._client.get(f"{self._url}/versions/{version}", timeout=deadline)
        except (httpx.HTTPError, TimeoutError):
            return version_state.UNREACHABLE
        if resp.status_code != 200:
            return version_state.UNKNOWN
        return version_state.states(orjson.loads(resp.content)).get(version, version_state.UNKNOWN)

    async def aclose(self) -> None:
        await self._client.aclose()


def _headers() -> dict[str, str]:
    rid = logs.request_id.get()
    headers = {"content-type": "application/json"}
    return headers | {logs.REQUEST_ID_HEADER: rid} if rid else headers


def _error_message(resp: httpx.Response) -> str:
    try:
        return str(orjson.loads(resp.content).get("error", resp.text))[:300]
    except (orjson.JSONDecodeError, AttributeError):
        return resp.text[:300]
