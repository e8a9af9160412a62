"""TF Serving's REST API as a bare ASGI app (run by uvicorn): no framework between the socket and the
handlers. Predictions run in a thread pool (TensorFlow releases the GIL while it computes), so the
event loop keeps accepting requests. Paths, methods and errors follow http_rest_api_handler.cc."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures import Executor
from typing import Any

import orjson

from local_model_server import metrics as metrics_mod
from local_model_server import protocol, tensors
from local_model_server.core import ServerCore
from local_model_server.errors import Code, ServingError, invalid

_V1 = re.compile(r"(?i)/v1/.*")
_PREDICT = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)"
)
_STATUS = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?"
)
_JSON_HEADERS = [(b"content-type", b"application/json")]


def request_id(scope: dict[str, Any]) -> str:
    """The caller's request id (the sidecar forwards its own), to find one request in both logs."""
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            return str(value.decode("latin-1"))[:1024]
    return "-"


def _version(text: str | None) -> int | None:
    if not text:
        return None
    try:
        value = int(text)
    except ValueError as exc:
        raise invalid(f"Failed to convert version: {text} to numeric.") from exc
    if value > 2**63 - 1:
        raise invalid(f"Failed to convert version: {text} to numeric.")
    return value


def _error_body(exc: ServingError) -> bytes:
    return orjson.dumps({"error": exc.message})


class RestApp:
    def __init__(
        self,
        manager: ServerCore,
        metrics: metrics_mod.Metrics,
        executor: Executor,
        max_body_bytes: int = 1 << 30,
        metrics_path: str | None = metrics_mod.PATH,
        timeout_s: float | None = None,
    ) -> None:
        self.manager = manager
        self.metrics = metrics
        self.executor = executor
        self.max_body_bytes = max_body_bytes
        self.metrics_path = metrics_path  # None: monitoring disabled by --monitoring_config_file
        self.timeout_s = timeout_s  # --rest_api_timeout_in_ms

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        path: str = scope["path"]
        if self.metrics_path is not None and path == self.metrics_path:
            if method != "GET":
                await self._send(send, 405, b"", [(b"content-type", b"text/plain")])
                return
            page = await asyncio.get_running_loop().run_in_executor(self.executor, self.metrics.render)
            await self._send(send, 200, page, [(b"content-type", metrics_mod.CONTENT_TYPE.encode())])
            return
        if not _V1.fullmatch(path):
            await self._send(send, 404, b"Not Found", [(b"content-type", b"text/plain")])
            return
        started = time.perf_counter()
        api, model_name = "unknown", ""
        try:
            if method == "POST" and (m := _PREDICT.fullmatch(path)):
                model_name, version_s, label, verb = m.group(1), m.group(2), m.group(3), m.group(4).lower()
                api = verb
                if verb != "predict":
                    raise ServingError(
                        Code.UNIMPLEMENTED,
                        f"{verb} is not implemented by local_model_server "
                        "(the project's models are served with predict)",
                    )
                version = _version(version_s)
                body = await self._read_body(receive)
                loop = asyncio.get_running_loop()
                work = loop.run_in_executor(self.executor, self._predict, model_name, version, label, body)
                try:
                    payload = await asyncio.wait_for(work, self.timeout_s)
                except TimeoutError as exc:
                    raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline exceeded") from exc
            elif method == "GET" and (m := _STATUS.fullmatch(path)):
                model_name, version_s, label, sub = m.group(1) or "", m.group(2), m.group(3), m.group(4)
                version = _version(version_s)
                if not model_name:
                    raise invalid("Missing model name in request.")
                if sub and sub.lower() == "metadata":
                    api = "get_model_metadata"
                    doc = protocol.model_metadata_json(self.manager, model_name, version, label)
                else:
                    api = "get_model_status"
                    doc = protocol.model_status_json(self.manager, model_name, version, label)
                payload = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
            else:
                raise invalid(f"Malformed request: {method} {path}")
        except ServingError as exc:
            self.metrics.observe(model_name, api, "REST", exc.code.name, time.perf_counter() - started)
            if api == "predict":
                protocol.log_predict(model_name, exc.code.name, request_id(scope), exc.message)
            await self._send(send, exc.http_status, _error_body(exc), _JSON_HEADERS)
            return
        self.metrics.observe(model_name, api, "REST", "OK", time.perf_counter() - started)
        if api == "predict" and protocol.log.isEnabledFor(logging.DEBUG):
            protocol.log_predict(model_name, "OK", request_id(scope))
        await self._send(send, 200, payload, _JSON_HEADERS)

    def _predict(self, name: str, version: int | None, label: str | None, body: bytes) -> bytes:
        if not body:
            raise invalid("JSON Parse error: The document is empty")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise invalid(f"JSON Parse error: {exc}") from exc
        if not isinstance(doc, dict):
            raise invalid(f"JSON Value: {body[:200].decode('utf-8', 'replace')} Is not object")
        sig_name = doc.get("signature_name", "")
        if not isinstance(sig_name, str):
            raise invalid(
                f"JSON Value: {body[:200].decode('utf-8', 'replace')} not formatted correctly. "
                "'signature_name' key must be a string value."
            )
        with self.manager.handle(name, version, label) as servable:
            sig = servable.signature(sig_name, rest=True)
            inputs, fmt = tensors.parse_predict(doc, sig.inputs)
            t0 = time.perf_counter()
            outputs = servable.run(sig, inputs)
            self.metrics.observe_runtime(name, "predict", "REST", time.perf_counter() - t0)
        return tensors.format_predict(outputs, fmt)

    async def _read_body(self, receive: Any) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ServingError(Code.CANCELLED, "client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise ServingError(
                    Code.RESOURCE_EXHAUSTED, f"request body larger than {self.max_body_bytes} bytes"
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
