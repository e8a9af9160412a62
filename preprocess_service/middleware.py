"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request): request id, body-size
limit enforced before the body is read whole, in-flight gauge, per-route metrics and the access log."""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from preprocess_service import logs
from preprocess_service.errors import PayloadTooLarge, error_response
from preprocess_service.metrics import Metrics

log = logging.getLogger("preprocess_service.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET = {"/healthz", "/readyz", "/metrics"}


def request_id_for(given: bytes | None) -> str:
    """The client's ``X-Request-ID`` when it is a sane one, else 32 random hex digits (uuid4().hex's
    shape at a third of its cost)."""
    if given is not None:
        rid = given.decode("latin-1")
        if _REQUEST_ID.match(rid):
            return rid
    return os.urandom(16).hex()


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` as soon as a streamed body passes the limit. An HTTPException because
    FastAPI turns any other exception raised while reading the body into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over the {limit}-byte limit")


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        # the labelled children of the per-route metrics, looked up once per (route, method, status):
        # prometheus_client's labels() takes a lock and builds a key on every call
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        rid = request_id_for(headers.get(b"x-request-id"))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        started = time.perf_counter()
        status = {"code": 0}  # 0 until the app starts a response
        rid_header = (b"x-request-id", rid.encode())

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._reject(scope, receive, send_wrapper, rid, int(declared))
            self.observe(scope, 413, started, state)
            return

        seen = 0

        async def receive_limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        self.metrics.in_flight.inc()
        rid_token = logs.request_id.set(rid)
        try:
            await self.app(scope, receive_limited, send_wrapper)
        except BodyTooLarge:  # escaped the app before any response started
            if status["code"] == 0:
                await self._reject(scope, receive, send_wrapper, rid, seen)
        finally:
            self.metrics.in_flight.dec()
            self.observe(scope, status["code"] or 500, started, state)
            logs.request_id.reset(rid_token)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, rid: str, size: int) -> None:
        too_large = PayloadTooLarge(f"request body over {self.max_body} bytes (got {size}+)")
        await error_response(too_large, rid, scope.get("path", ""))(scope, receive, send)

    def observe(self, scope: Scope, status: int, started: float, state: dict[str, Any]) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        path = getattr(route, "path", None) or ("unmatched" if status == 404 else scope.get("path", ""))
        key = (path, scope.get("method", ""), str(status))
        children = self._children.get(key)
        if children is None:
            children = (self.metrics.requests.labels(*key), self.metrics.request_seconds.labels(path))
            if len(self._children) < 1024:  # routes x methods x statuses: small, but bounded anyway
                self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)
        if path not in _QUIET or status >= 400:
            # log.info("request", extra=...)'s line, written directly while logging is as configured
            logs.access(
                log,
                "request",
                {
                    "request_id": state.get("request_id"),
                    "method": scope.get("method"),
                    "path": path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "texts": state.get("n_texts"),
                },
            )
