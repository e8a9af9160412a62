"""``POST /v1/classify`` answered in the HTTP protocol itself, without the ASGI request cycle.

The fast path (:mod:`preprocess_service.fastpath`) skips FastAPI's machinery, but a request it answers
still goes through uvicorn's request cycle (a scope, an ``asyncio.Event``, ``receive`` and ``send``
coroutines and their message dicts, the header checks of ``send``) and through
:class:`~preprocess_service.middleware.RequestContext`'s wrappers of ``receive`` and ``send``: skipping
them cut the sidecar's CPU against the model server's by 7% under load (docs/bench.md, change 20). Here
:class:`~preprocess_service.http_protocol.SidecarHttpProtocol` hands a plain request (HTTP/1.1, a
``Content-Length`` body of at most :data:`MAX_BODY` bytes, no ``Expect``, nothing pipelined before
it) to :class:`Lane` once its body is complete, and the lane writes the whole response in one write.

The same functions decide and answer as on the fast path (:meth:`FastClassify.check`,
:meth:`FastClassify.respond`), and the same :class:`RequestContext` counts and logs the request, so the
answers, metrics and access log lines are the same. Anything the fast path would pass to the route, the
lane passes to the app through an ordinary uvicorn request cycle with the body it has read: the same
answer as without the lane. An unexpected error is answered by the app's server-error handler, through
that cycle, and logged and the connection closed as uvicorn does.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle

from preprocess_service import logs
from preprocess_service.fastpath import PATH, ROUTE, FastClassify
from preprocess_service.middleware import RequestContext, request_id_for

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

    from preprocess_service.front import SidecarAPI
    from preprocess_service.http_protocol import SidecarHttpProtocol

# a larger body goes the ordinary way: uvicorn pauses reading above 64 KiB until the app reads, and
# such a request (over ~60,000 characters of text) costs far more than the cycle the lane saves
MAX_BODY = 65_536
RAW_PATH = PATH.encode()


class _NoEvent:
    """What uvicorn's protocol sets when a lane request's body grows or its client leaves: nothing
    waits on it (the lane starts once the body is complete)."""

    __slots__ = ()

    def set(self) -> None:
        return None


_NO_EVENT = _NoEvent()


class LaneCycle:
    """One request on the lane, in the place of uvicorn's ``RequestResponseCycle`` on the protocol: the
    attributes the protocol reads and writes (``body``, ``disconnected``, ``keep_alive``,
    ``response_complete``, ``message_event``) mean what they mean there."""

    __slots__ = (
        "body",
        "disconnected",
        "keep_alive",
        "lane",
        "message_event",
        "proto",
        "response_complete",
        "scope",
    )

    def __init__(self, lane: Lane, proto: SidecarHttpProtocol, scope: Scope, keep_alive: bool) -> None:
        self.lane = lane
        self.proto = proto
        self.scope = scope
        self.keep_alive = keep_alive
        self.body = bytearray()
        self.disconnected = False
        self.response_complete = False
        self.message_event = _NO_EVENT

    async def send(self, status: int, headers: list[tuple[bytes, bytes]], content: bytes) -> None:
        """:meth:`write`, once the transport has room: as uvicorn's ``send``, a client that does not read
        its answers holds the next one back (and, its request cycle unfinished, stops being read from)."""
        flow = self.proto.flow
        if flow.write_paused and not self.disconnected:
            await flow.drain()
        self.write(status, headers, content)

    def write(self, status: int, headers: list[tuple[bytes, bytes]], content: bytes) -> None:
        """The response in one write, as uvicorn's ``send`` would have written it; then what uvicorn
        does when a response is complete (close unless kept alive, start the next pipelined request or
        arm the keep-alive timer)."""
        proto = self.proto
        if not self.disconnected:
            parts = [STATUS_LINE[status]]
            for name, value in proto.server_state.default_headers:
                parts += (name, b": ", value, b"\r\n")
            for name, value in headers:
                parts += (name, b": ", value, b"\r\n")
            if not self.keep_alive:
                parts.append(b"connection: close\r\n")
            parts += (b"\r\n", content)
            proto.transport.write(b"".join(parts))
        self.response_complete = True
        if not self.disconnected:
            if not self.keep_alive:
                proto.transport.close()
            proto.on_response_complete()

    def asgi_cycle(self) -> RequestResponseCycle:
        """An ordinary uvicorn cycle for this request, its body complete, in this one's place."""
        proto = self.proto
        cycle = RequestResponseCycle(
            scope=self.scope,  # type: ignore[arg-type]
            transport=proto.transport,
            flow=proto.flow,
            logger=proto.logger,
            access_logger=proto.access_logger,
            access_log=proto.access_log,
            default_headers=proto.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=self.keep_alive,
            on_response=proto.on_response_complete,
        )
        cycle.body = self.body
        cycle.more_body = False
        cycle.disconnected = self.disconnected
        cycle.message_event.set()
        if proto.cycle is self:  # (a pipelined request may have taken the protocol's place meanwhile)
            proto.cycle = cycle
        return cycle


class Lane:
    """The lane of one app: the fast path's checks and answers, the request context's bookkeeping."""

    def __init__(self, api: SidecarAPI, context: RequestContext, fast: FastClassify) -> None:
        self.api = api
        self.context = context
        self.fast = fast

    def takes(self, content_length: int) -> bool:
        return content_length <= MAX_BODY and content_length <= self.context.max_body

    async def run(self, cycle: LaneCycle) -> None:
        """Answer the request whose body ``cycle`` holds (uvicorn's task for it: see the protocol)."""
        scope = cycle.scope
        raw: list[tuple[bytes, bytes]] = scope["headers"]
        # the first of a repeated header, as Starlette reads it (and the fast path)
        checked = self.fast.check(dict(reversed(raw)), bytes(cycle.body))
        if checked is None:  # the route's answer, through the app as without the lane
            await cycle.asgi_cycle().run_asgi(self.api)  # type: ignore[arg-type]
            return
        context = self.context
        started = time.perf_counter()
        rid = request_id_for(dict(raw).get(b"x-request-id"))  # the last one, as RequestContext reads it
        state: dict[str, Any] = scope["state"]
        state["request_id"] = rid
        state["n_texts"] = len(checked.texts)
        scope["route"] = ROUTE
        status = 500
        context.metrics.in_flight.inc()
        token = logs.request_id.set(rid)
        try:
            try:
                status, response_headers, content = await self.fast.respond(checked, rid)
            except Exception as exc:
                await cycle.asgi_cycle().run_asgi(_ServerError(self.api, exc, rid))  # type: ignore[arg-type]
                return
            response_headers.append((b"x-request-id", rid.encode()))
            await cycle.send(status, response_headers, content)
        finally:
            context.metrics.in_flight.dec()
            context.observe(scope, status, started, state)
            logs.request_id.reset(token)


class _ServerError:
    """An ASGI app that answers ``exc`` with the app's server-error handler (the request id in its
    header, as :class:`RequestContext` adds it) and raises it again, for uvicorn's cycle to log it and
    close the connection as it does for any app that fails after starting its response."""

    def __init__(self, api: SidecarAPI, exc: Exception, rid: str) -> None:
        self.api, self.exc, self.rid = api, exc, rid

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid_header = (b"x-request-id", self.rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        await self.api.unexpected(self.exc, scope, receive, send_with_id)
        raise self.exc
