"""The REST transport's own HTTP/1.1 client (``upstream/http1.py``) through ``RestUpstream``, against a
raw asyncio server whose every answer the test scripts: keep-alive reuse, chunked answers, ``Connection:
close``, a keep-alive connection the server closed while idle, malformed answers, a refused port, a
server that trickles its answer past the deadline, and errors mapped to the sidecar's typed errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pytest
import uvloop

from contracts import version_state
from devstack import free_port
from preprocess_service import logs
from preprocess_service.errors import NotReady, UpstreamError, UpstreamTimeout, VersionUnavailable
from preprocess_service.upstream.http1 import Http1Client
from preprocess_service.upstream.rest import RestUpstream

PROBS = [[0.25, 0.75], [0.5, 0.5]]
EXPECTED = np.asarray(PROBS, dtype=np.float32)
OK_BODY = orjson.dumps({"outputs": {"probabilities": PROBS}})


def answer(body: bytes, status: str = "200 OK", extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
        status.encode(),
        len(body),
    )
    return head + extra + b"\r\n" + body


@dataclass
class Request:
    head: bytes
    body: bytes
    connection: int  # which accepted connection (1, 2, ...) carried it

    @property
    def line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode()

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == name.lower().encode():
                return v.strip().decode()
        return None


@dataclass
class Server:
    """Answers each request with ``reply(request, writer)`` (default: 200 with PROBS)."""

    port: int = 0
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    reply: Callable[[Request, asyncio.StreamWriter], object] | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                req = Request(head, b"", conn)
                length = int(req.header("content-length") or 0)
                req.body = await reader.readexactly(length) if length else b""
                self.requests.append(req)
                result = (self.reply or (lambda r, w: w.write(answer(OK_BODY))))(req, writer)
                if asyncio.iscoroutine(result):
                    await result
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


Scenario = Callable[[Server], Coroutine[Any, Any, None]]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Scenario], Server]:
    """Runs a scenario against a fresh server, on asyncio's loop and on uvloop's (the sidecar's)."""

    def go(scenario: Scenario) -> Server:
        s = Server(port=free_port())

        async def main() -> None:
            srv = await asyncio.start_server(s.handle, "127.0.0.1", s.port)
            async with srv:
                await scenario(s)

        if request.param == "uvloop":
            uvloop.run(main())
        else:
            asyncio.run(main())
        return s

    return go


def upstream(server: Server, timeout_s: float = 2.0) -> RestUpstream:
    return RestUpstream(f"http://127.0.0.1:{server.port}", "news", timeout_s)


IDS = np.array([[3, 7, 0], [1, 2, 5]], dtype=np.int64)
WEIGHTS = np.array([[0.6, 0.8, 0.0], [0.5, 0.5, 0.7071]], dtype=np.float32)


def test_predict_sends_the_columnar_body_and_reuses_one_connection(run: Callable[[Scenario], Server]) -> None:
    async def scenario(server: Server) -> None:
        up = upstream(server)
        token = logs.request_id.set("req-1")
        try:
            for _ in range(3):
                probs = await up.predict(4, IDS, WEIGHTS)
                np.testing.assert_array_equal(probs, EXPECTED)
        finally:
            logs.request_id.reset(token)
            await up.aclose()
        assert server.connections == 1, "keep-alive: one connection for three calls"
        req = server.requests[0]
        assert req.line == "POST /v1/models/news/versions/4:predict HTTP/1.1"
        assert req.header("host") == f"127.0.0.1:{server.port}"
        assert req.header("content-type") == "application/json"
        assert req.header("x-request-id") == "req-1"
        doc = orjson.loads(req.body)
        assert doc["signature_name"] == "serving_default"
        assert doc["inputs"]["token_ids"] == IDS.tolist()
        np.testing.assert_allclose(doc["inputs"]["token_weights"], WEIGHTS, rtol=1e-6)

    run(scenario)


def test_chunked_answer_is_decoded(run: Callable[[Scenario], Server]) -> None:
    async def scenario(server: Server) -> None:
        def chunked(req: Request, w: asyncio.StreamWriter) -> None:
            half = len(OK_BODY) // 2
            parts = [OK_BODY[:half], OK_BODY[half:]]
            w.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            for p in parts:
                w.write(b"%x\r\n%s\r\n" % (len(p), p))
            w.write(b"0\r\n\r\n")

        server.reply = chunked
        up = upstream(server)
        try:
            for _ in range(2):
                np.testing.assert_array_equal(await up.predict(1, IDS, WEIGHTS), EXPECTED)
        finally:
            await up.aclose()
        assert server.connections == 1

    run(scenario)


def test_connection_close_answer_is_not_reused(run: Callable[[Scenario], Server]) -> None:
    async def scenario(server: Server) -> None:
        server.reply = lambda r, w: w.write(answer(OK_BODY, extra=b"Connection: close\r\n"))
        up = upstream(server)
        try:
            for _ in range(3):
                await up.predict(1, IDS, WEIGHTS)
        finally:
            await up.aclose()
        assert server.connections == 3

    run(scenario)


def test_keepalive_connection_closed_while_idle_is_replaced(run: Callable[[Scenario], Server]) -> None:
    """The server answers, then closes the connection without saying so (its idle timeout): the pool
    sees the close and the next call opens a fresh connection."""

    async def scenario(server: Server) -> None:

        async def answer_then_close(req: Request, w: asyncio.StreamWriter) -> None:
            w.write(answer(OK_BODY))
            await w.drain()
            w.close()

        server.reply = answer_then_close
        up = upstream(server)
        try:
            for _ in range(4):
                await up.predict(1, IDS, WEIGHTS)
                await asyncio.sleep(0.05)  # the close reaches the client while the connection is idle
        finally:
            await up.aclose()
        assert server.connections == 4 and len(server.requests) == 4

    run(scenario)


def test_reused_connection_dropped_without_an_answer_is_retried_once(
    run: Callable[[Scenario], Server],
) -> None:
    """The server drops a kept-alive connection just as the next request arrives (its idle timeout
    racing ours): that request is sent once more on a fresh connection. A fresh connection dropped
    the same way is not retried."""

    async def scenario(server: Server) -> None:
        def first_only(req: Request, w: asyncio.StreamWriter) -> None:
            if sum(r.connection == req.connection for r in server.requests) == 1:
                w.write(answer(OK_BODY))
            else:
                w.transport.abort()

        server.reply = first_only
        up = upstream(server)
        try:
            for _ in range(3):
                np.testing.assert_array_equal(await up.predict(1, IDS, WEIGHTS), EXPECTED)
        finally:
            await up.aclose()
        assert [r.connection for r in server.requests] == [1, 1, 2, 2, 3]

        server.requests.clear()
        server.reply = lambda r, w: w.transport.abort()
        up = upstream(server)
        try:
            with pytest.raises(NotReady, match="closed the connection"):
                await up.predict(1, IDS, WEIGHTS)
        finally:
            await up.aclose()
        assert len(server.requests) == 1, "a fresh connection's failure is not retried"

    run(scenario)


def test_connection_dropped_mid_answer_is_not_retried(run: Callable[[Scenario], Server]) -> None:
    """Part of an answer arrived: the request may have been processed, and it is not sent again."""

    async def scenario(server: Server) -> None:

        async def half_then_close(req: Request, w: asyncio.StreamWriter) -> None:
            w.write(answer(OK_BODY)[:-5])
            await w.drain()
            w.transport.abort()

        server.reply = half_then_close
        up = upstream(server)
        try:
            with pytest.raises(NotReady, match="TF Serving is unreachable: the model server closed"):
                await up.predict(1, IDS, WEIGHTS)
        finally:
            await up.aclose()
        assert len(server.requests) == 1

    run(scenario)


def test_malformed_answer_is_not_ready_and_the_connection_dropped(run: Callable[[Scenario], Server]) -> None:
    async def scenario(server: Server) -> None:
        replies = iter([b"HTTP/1.1 abc\r\n\r\n", answer(OK_BODY)])
        server.reply = lambda r, w: w.write(next(replies))
        up = upstream(server)
        try:
            with pytest.raises(NotReady, match="malformed answer"):
                await up.predict(1, IDS, WEIGHTS)
            np.testing.assert_array_equal(await up.predict(1, IDS, WEIGHTS), EXPECTED)
        finally:
            await up.aclose()
        assert server.connections == 2

    run(scenario)


def test_refused_port_is_not_ready(run: Callable[[Scenario], Server]) -> None:
    async def scenario(server: Server) -> None:
        up = RestUpstream(f"http://127.0.0.1:{free_port()}", "news", 2.0)
        try:
            with pytest.raises(NotReady, match="TF Serving is unreachable: cannot connect"):
                await up.predict(1, IDS, WEIGHTS)
            assert await up.version_state(1) == version_state.UNREACHABLE
        finally:
            await up.aclose()

    run(scenario)


def test_trickled_answer_times_out_at_the_deadline_and_is_not_reused(
    run: Callable[[Scenario], Server],
) -> None:
    async def scenario(server: Server) -> None:
        async def trickle(req: Request, w: asyncio.StreamWriter) -> None:
            if len(server.requests) > 1:
                w.write(answer(OK_BODY))
                return
            body = answer(OK_BODY)
            for i in range(len(body)):
                w.write(body[i : i + 1])
                await w.drain()
                await asyncio.sleep(0.05)

        server.reply = trickle
        up = upstream(server, timeout_s=0.5)
        loop = asyncio.get_running_loop()
        try:
            t0 = loop.time()
            with pytest.raises(UpstreamTimeout, match=r"did not answer within 0\.5s"):
                await up.predict(1, IDS, WEIGHTS)
            assert 0.45 <= loop.time() - t0 < 1.5
            # the timed-out connection is closed, never reused for the next call
            np.testing.assert_array_equal(await up.predict(1, IDS, WEIGHTS), EXPECTED)
        finally:
            await up.aclose()
        assert [r.connection for r in server.requests] == [1, 2]

    run(scenario)


@pytest.mark.parametrize(
    ("status", "error", "match"),
    [
        ("404 Not Found", VersionUnavailable, r"cannot serve version 1 now: Servable not found"),
        ("503 Service Unavailable", VersionUnavailable, r"cannot serve version 1 now: Servable not found"),
        ("400 Bad Request", UpstreamError, r"refused the request \(400\): Servable not found"),
    ],
)
def test_error_answers_map_to_typed_errors(
    run: Callable[[Scenario], Server], status: str, error: type[Exception], match: str
) -> None:
    async def scenario(server: Server) -> None:
        server.reply = lambda r, w: w.write(answer(b'{"error": "Servable not found"}', status))
        up = upstream(server)
        try:
            with pytest.raises(error, match=match):
                await up.predict(1, IDS, WEIGHTS)
        finally:
            await up.aclose()

    run(scenario)


def test_version_state_reads_the_status_answer(run: Callable[[Scenario], Server]) -> None:
    async def scenario(server: Server) -> None:
        status = {"model_version_status": [{"version": "3", "state": "AVAILABLE", "status": {}}]}
        server.reply = lambda r, w: w.write(answer(orjson.dumps(status)))
        up = upstream(server)
        try:
            assert await up.version_state(3) == "AVAILABLE"
            assert await up.version_state(4) == version_state.UNKNOWN
        finally:
            await up.aclose()
        assert server.requests[0].line == "GET /v1/models/news/versions/3 HTTP/1.1"
        assert server.requests[0].header("content-length") is None

    run(scenario)


def test_header_with_a_line_break_is_refused(run: Callable[[Scenario], Server]) -> None:
    async def scenario(server: Server) -> None:
        client = Http1Client(f"http://127.0.0.1:{server.port}")
        try:
            with pytest.raises(ValueError, match="line break"):
                await client.request("GET", "/", headers=[("x-request-id", "a\r\nInjected: 1")])
        finally:
            await client.aclose()
        assert server.requests == []

    run(scenario)


def test_at_most_max_connections_at_once(run: Callable[[Scenario], Server]) -> None:
    async def scenario(server: Server) -> None:
        async def slow(req: Request, w: asyncio.StreamWriter) -> None:
            await asyncio.sleep(0.1)
            w.write(answer(OK_BODY))

        server.reply = slow
        client = Http1Client(f"http://127.0.0.1:{server.port}", max_connections=3)
        try:
            answers = await asyncio.gather(*(client.request("GET", "/x") for _ in range(9)))
        finally:
            await client.aclose()
        assert [a.status for a in answers] == [200] * 9
        assert server.connections == 3, "nine calls over three reused connections"

    run(scenario)


def test_idle_connection_expires_after_keepalive(run: Callable[[Scenario], Server]) -> None:
    async def scenario(server: Server) -> None:
        client = Http1Client(f"http://127.0.0.1:{server.port}", keepalive_s=0.2)
        try:
            await client.request("GET", "/a")
            await client.request("GET", "/b")  # within the keep-alive: the same connection
            await asyncio.sleep(0.3)
            await client.request("GET", "/c")  # idle longer than that: a new one
        finally:
            await client.aclose()
        assert [r.connection for r in server.requests] == [1, 1, 2]

    run(scenario)


def test_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="not an http"):
        Http1Client("ftp://example.org")
    c = Http1Client("https://tfs.example.org/prefix/")
    assert (c.host, c.port, c.prefix) == ("tfs.example.org", 443, "/prefix")


@pytest.mark.parametrize(
    ("url", "host", "header"),
    [
        ("http://127.0.0.1:8501", "127.0.0.1", b"127.0.0.1:8501"),
        ("http://[::1]:8501", "::1", b"[::1]:8501"),
        ("http://[fd00::5]", "fd00::5", b"[fd00::5]"),
        ("https://tfs.example.org", "tfs.example.org", b"tfs.example.org"),
        ("http://bücher.example:8080", "bücher.example", b"xn--bcher-kva.example:8080"),
    ],
)
def test_host_header_names_the_server_as_the_url_does(url: str, host: str, header: bytes) -> None:
    c = Http1Client(url)
    assert c.host == host  # what the connection is opened to: an IPv6 literal without brackets
    assert c._request_bytes("GET", "/v1/models/m", b"", ()).split(b"\r\n")[1] == b"Host: " + header
