"""The sidecar's FastAPI app, with its own middleware in front of FastAPI's outer layers, not inside them.

Starlette puts user middleware inside the layers FastAPI adds around every app: the server-error
middleware, the exception-telemetry middleware and the body-limit middleware (FastAPI's own limit,
unset here: :class:`~preprocess_service.middleware.RequestContext` enforces ours). Each is a coroutine
entered, and resumed, for every request, and the server-error layer wraps ``send`` once more: about a
twentieth of the sidecar's CPU per request under load, which the fast path had to pay although it
needs none of them (docs/bench.md, change 17). Here the middleware added with :meth:`add_front` wraps
the whole app, FastAPI's layers included, so a request the fast path answers never enters them, and
any other request passes through them as before.

The order changes one thing, on purpose: the server-error handler's 500 now goes out through
``RequestContext`` too, so it carries the ``x-request-id`` header like every other answer, and its log
line the request id. The fast path, outside the server-error layer now, calls the same handler itself
(:meth:`SidecarAPI.unexpected`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send


class SidecarAPI(FastAPI):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._front: ASGIApp = self._app
        # the HTTP protocol's lane for POST /v1/classify (fastlane.Lane), set by create_app when on
        self.lane: Any = None

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    def add_front(self, middleware: Any, **options: Any) -> Any:
        """``middleware(app, **options)`` around everything added so far (the last added is outermost),
        FastAPI's own layers included; returns it."""
        self._front = middleware(self._front, **options)
        return self._front

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._front(scope, receive, send)

    async def unexpected(self, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``exc`` as the server-error layer would have: the app's handler for ``Exception``
        (its log line and its 500); the caller re-raises it for the server to log, as that layer does."""
        handler = self.exception_handlers.get(Exception) or self.exception_handlers.get(500)
        if handler is None:
            raise exc
        response = await handler(Request(scope, receive), exc)  # type: ignore[misc]
        await response(scope, receive, send)
