"""A small HTTP/1.1 client for TF Serving's REST API: a pool of keep-alive connections, one request
at a time on each, responses parsed by httptools (uvicorn's parser, already installed with it).

Why not httpx: on this path it cost about 1.1 ms of CPU per call whatever the body's size (and 1.5 ms
with a 150 KB predict body), against 0.02-0.16 ms for a request written straight to an asyncio
transport and parsed by httptools (docs/bench.md, change 10). Every predict call pays it, and at low
load a call carries a single request.

What it does not do, because TF Serving's REST API needs none of it: redirects, cookies, proxies,
compression, ``Expect: 100-continue``, or pipelining. Deadlines are the caller's (``asyncio.timeout``
around the whole exchange); a connection whose exchange was cancelled is closed, never reused."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools


class TransportError(Exception):
    """The exchange failed below HTTP: no connection, a reset or closed one, or a malformed answer."""


class ConnectionClosed(TransportError):
    """The server closed the connection before the whole answer arrived. ``before_answer``: not a byte
    of it had arrived (on a reused keep-alive connection, the server most likely closed it while idle)."""

    def __init__(self, message: str, before_answer: bool) -> None:
        super().__init__(message)
        self.before_answer = before_answer


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Connection(asyncio.Protocol):
    """One keep-alive connection; the parser callbacks fill the answer of the one request in flight."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._body: list[bytes] = []
        self._answered = False  # a byte of the current answer has arrived
        self.closed = False
        self.reusable = True
        self.idle_since = time.monotonic()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection's state is unknown
            return
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"malformed answer from the model server: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(
            ConnectionClosed(f"the model server closed the connection ({exc or 'EOF'})", not self._answered)
        )

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.reusable = self._parser.should_keep_alive()
        waiter, self._waiter = self._waiter, None
        response = Response(self._parser.get_status_code(), b"".join(self._body))
        self._body = []
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        self.reusable = False
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def exchange(self, request: bytes) -> Response:
        assert self._transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._answered = False
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.close()


class Http1Client:
    """Requests to one origin (``http://host:port``, or ``https://``) over pooled keep-alive connections.

    At most ``max_connections`` exchanges at once (more wait for a connection); an idle connection is
    dropped after ``keepalive_s``."""

    def __init__(self, base_url: str, max_connections: int = 64, keepalive_s: float = 60.0) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.prefix = url.path.rstrip("/")
        self._ssl = ssl.create_default_context() if url.scheme == "https" else None
        default_port = (url.scheme == "https" and self.port == 443) or (
            url.scheme == "http" and self.port == 80
        )
        # an IPv6 literal keeps its brackets in Host (RFC 9110 7.2), as it had them in the URL
        name = f"[{url.hostname}]" if ":" in url.hostname else url.hostname.encode("idna").decode("ascii")
        self._host_header = (name if default_port else f"{name}:{self.port}").encode("ascii")
        self._keepalive_s = keepalive_s
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    def _request_bytes(
        self, method: str, path: str, body: bytes, headers: Iterable[tuple[str, str]]
    ) -> bytes:
        lines = [f"{method} {self.prefix}{path} HTTP/1.1".encode("ascii"), b"Host: " + self._host_header]
        for k, v in headers:
            if "\r" in v or "\n" in v or "\r" in k or "\n" in k:
                raise ValueError(f"a line break in the header {k!r}")  # would split the request
            lines.append(f"{k}: {v}".encode("latin-1"))
        if body or method == "POST":
            lines.append(b"Content-Length: %d" % len(body))
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, self.host, self.port, ssl=self._ssl)
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self._open.add(conn)
        return conn

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recently used: least likely to have been closed
            if not conn.closed and conn.reusable and now - conn.idle_since < self._keepalive_s:
                return conn
            self._discard(conn)
        return None

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open.discard(conn)

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()
    ) -> Response:
        """One exchange. A reused connection that the server had closed while idle is retried once on a
        fresh one (only when not a byte of the answer had arrived: the request was not processed to an
        answer, and the model server's calls have no side effect)."""
        request = self._request_bytes(method, path, body, headers)
        async with self._slots:
            conn = self._take_idle()
            reused = conn is not None
            while True:  # at most twice: a retry is on a fresh connection, which is never retried
                if conn is None:
                    conn = await self._connect()
                try:
                    response = await conn.exchange(request)
                except ConnectionClosed as exc:
                    self._discard(conn)
                    if reused and exc.before_answer:
                        conn, reused = None, False
                        continue
                    raise
                except BaseException:  # cancelled (a deadline), or a malformed answer: state unknown
                    self._discard(conn)
                    raise
                if conn.reusable and not conn.closed:
                    conn.idle_since = time.monotonic()
                    self._idle.append(conn)
                else:
                    self._discard(conn)
                return response

    async def aclose(self) -> None:
        for conn in list(self._open):
            self._discard(conn)
        self._idle.clear()
