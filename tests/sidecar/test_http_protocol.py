"""The sidecar's uvicorn protocol: what is written during one loop turn leaves as one write, in order,
and a real uvicorn server with it answers keep-alive, streamed, large and closing responses intact."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from preprocess_service.http_protocol import CoalescingHttpToolsProtocol, CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1234)}.get(name, default)


def turn(body: Any) -> RecordingTransport:
    """Runs ``body(transport)`` in one loop callback, then lets the loop turn twice."""
    recorded = RecordingTransport()

    async def main() -> None:
        t = CoalescingTransport(recorded, asyncio.get_running_loop())  # type: ignore[arg-type]
        body(t)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(main())
    return recorded


def test_writes_in_one_turn_leave_as_one_write_in_order() -> None:
    def body(t: CoalescingTransport) -> None:
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        t.write(bytearray(b"hel"))
        t.writelines([b"l", memoryview(b"o")])

    rec = turn(body)
    assert rec.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"]


def test_close_writes_what_is_held_first_and_abort_drops_it() -> None:
    def closing(t: CoalescingTransport) -> None:
        t.write(b"last words")
        t.close()

    rec = turn(closing)
    assert rec.writes == [b"last words"] and rec.closed

    def aborting(t: CoalescingTransport) -> None:
        t.write(b"never sent")
        t.abort()

    rec = turn(aborting)
    assert rec.writes == [] and rec.aborted


def test_a_transport_closed_before_the_turn_ends_is_not_written_to() -> None:
    def body(t: CoalescingTransport) -> None:
        t.write(b"answer")
        rec_ref.closed = True  # the client went away within the turn

    rec_ref = RecordingTransport()

    async def main() -> None:
        t = CoalescingTransport(rec_ref, asyncio.get_running_loop())  # type: ignore[arg-type]
        body(t)
        await asyncio.sleep(0)

    asyncio.run(main())  # no RuntimeError from writing to a closed transport
    assert rec_ref.writes == []


def test_other_attributes_are_the_transports() -> None:
    rec = RecordingTransport()
    t = CoalescingTransport(rec, asyncio.new_event_loop())  # type: ignore[arg-type]
    assert t.get_extra_info("peername") == ("127.0.0.1", 1234)
    assert t.is_closing() is False
    t._loop.close()


BIG = b"x" * 1_000_000


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})
        return
    body = BIG if path == "/big" else b'{"ok":true}'
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=CoalescingHttpToolsProtocol, log_config=None, loop="uvloop"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield port
    srv.should_exit = True
    thread.join(10)


def read_response(f: Any) -> tuple[bytes, dict[bytes, bytes], bytes]:
    status = f.readline()
    headers: dict[bytes, bytes] = {}
    while (line := f.readline()) != b"\r\n":
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        return status, headers, f.read(int(headers[b"content-length"]))
    body = b""
    while (size := int(f.readline().strip(), 16)) > 0:
        body += f.read(size)
        f.readline()
    f.readline()
    return status, headers, body


def test_a_real_server_answers_keep_alive_streamed_large_and_closing_requests(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=10) as s, s.makefile("rb") as f:
        for path in ("/a", "/big", "/stream", "/b"):
            s.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
            status, headers, body = read_response(f)
            assert status.startswith(b"HTTP/1.1 200"), (path, status)
            expected = {"/big": BIG, "/stream": b"one,two,three"}.get(path, b'{"ok":true}')
            assert body == expected, path
        s.sendall(b"GET /c HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        status, headers, body = read_response(f)
        assert body == b'{"ok":true}' and headers.get(b"connection") == b"close"
        assert f.read() == b""  # and the server closed the connection after the answer
