"""uvicorn's httptools protocol with each response written to the socket once, not twice.

uvicorn writes a response's status line and headers, then its body, as two ``transport.write`` calls;
uvloop sends each at once, so every response costs two ``send`` system calls and, with Nagle off, two
TCP segments, each delivered to the client through the kernel's whole receive path. Those two writes
were about a sixth of the sidecar's CPU under load (docs/bench.md, change 12). Here the protocol's
transport holds what is written during one turn of the event loop and writes it as one buffer at the
end of that turn: the header block and the body that follows it in the same callback leave together.
Nothing is reordered or held longer than the turn; closing the transport writes what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from preprocess_service.fastlane import PATH, RAW_PATH, Lane, LaneCycle


class CoalescingTransport:
    """A transport whose writes during one loop turn go out as one write at its end."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(data if type(data) is bytes else bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held.clear()
        if not self._transport.is_closing():  # the client left meanwhile: nothing to write to
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held.clear()
        self._transport.abort()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._held))

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading, ...
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``uvicorn.run(..., http=CoalescingHttpToolsProtocol)``: httptools parsing, coalesced writes."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)  # type: ignore[arg-type]


def _content_length(headers: list[tuple[bytes, bytes]]) -> int:
    """The body's declared length; -1 when there is none, more than one, or a transfer coding too."""
    length = -1
    for name, value in headers:
        if name == b"content-length":
            if length >= 0 or not value.isdigit():
                return -1
            length = int(value)
        elif name == b"transfer-encoding":
            return -1
    return length


class SidecarHttpProtocol(CoalescingHttpToolsProtocol):
    """:class:`CoalescingHttpToolsProtocol` that hands a plain ``POST /v1/classify`` to the app's
    :class:`~preprocess_service.fastlane.Lane` (``app.lane``, when the app has one) instead of starting
    an ASGI request cycle for it. Every other request, and every request when the app has no lane, goes
    through uvicorn's protocol unchanged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lane = getattr(self.app, "lane", None)
        # a root path or a concurrency limit changes what uvicorn does with a request: leave it to uvicorn
        usable = isinstance(lane, Lane) and not self.root_path and self.limit_concurrency is None
        self._lane: Lane | None = lane if usable else None

    def on_headers_complete(self) -> None:
        lane, parser, cycle = self._lane, self.parser, self.cycle
        if (
            lane is None
            or self.url != RAW_PATH  # the path exactly: no query, no escapes
            or self.expect_100_continue
            or self.pipeline
            or (cycle is not None and not cycle.response_complete)  # pipelined behind a request
            or parser.get_method() != b"POST"
            or parser.get_http_version() != "1.1"
            or parser.should_upgrade()
        ):
            super().on_headers_complete()
            return
        length = _content_length(self.headers)
        if length < 0 or not lane.takes(length):
            super().on_headers_complete()
            return
        scope = self.scope
        scope["method"] = "POST"
        scope["path"] = PATH
        scope["raw_path"] = RAW_PATH
        scope["query_string"] = b""
        self.cycle = LaneCycle(lane, self, scope, parser.should_keep_alive())  # type: ignore[assignment,arg-type]

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if type(cycle) is LaneCycle:  # at most Lane.takes' bytes: httptools holds the body to its length
            cycle.body += body
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if type(cycle) is LaneCycle:
            task = self.loop.create_task(self._run_lane(cycle))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)  # a graceful shutdown waits for it, as for uvicorn's own
            return
        super().on_message_complete()

    async def _run_lane(self, cycle: LaneCycle) -> None:
        try:
            await cycle.lane.run(cycle)
        except BaseException as exc:  # as uvicorn's cycle does for an app that fails
            self.logger.error("Exception in ASGI application\n", exc_info=exc)
            if not cycle.response_complete:
                cycle.keep_alive = False
                body = b"Internal Server Error"
                cycle.write(
                    500,
                    [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))],
                    body,
                )
            elif not self.transport.is_closing():
                self.transport.close()
