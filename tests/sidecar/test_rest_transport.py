"""The REST transport against a real TCP server that closes a connection the way an idle-timeout does:
the request is read, then the socket is closed with no answer."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson

from preprocess_service.errors import NotReady
from preprocess_service.upstream.rest import RestUpstream

ANSWER = orjson.dumps({"outputs": {"probabilities": [[0.25, 0.75]]}})


async def _serve(drop_first: int) -> tuple[asyncio.Server, list[str]]:
    """A server whose first ``drop_first`` requests are read and then dropped; later ones answered."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the client closed its keep-alive connection
                break
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            seen.append("dropped" if len(seen) < drop_first else "answered")
            if seen[-1] == "dropped":
                writer.close()
                return
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(ANSWER)).encode()
                + b"\r\n\r\n"
                + ANSWER
            )
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, seen


async def _predict(drop_first: int) -> tuple[np.ndarray | Exception, list[str]]:
    server, seen = await _serve(drop_first)
    port = server.sockets[0].getsockname()[1]
    up = RestUpstream(f"http://127.0.0.1:{port}", "news", timeout_s=5.0)
    try:
        ids = np.array([[1, 2]], dtype=np.int64)
        weights = np.array([[0.5, 0.5]], dtype=np.float32)
        try:
            result: np.ndarray | Exception = await up.predict(1, ids, weights)
        except NotReady as exc:
            result = exc
    finally:
        await up.aclose()
        server.close()
        await server.wait_closed()
    return result, seen


def test_a_connection_closed_by_the_server_is_retried_once_on_a_fresh_one() -> None:
    result, seen = asyncio.run(_predict(drop_first=1))
    assert seen == ["dropped", "answered"]
    assert isinstance(result, np.ndarray)
    np.testing.assert_allclose(result, [[0.25, 0.75]])


def test_a_server_that_keeps_dropping_is_unreachable_after_one_retry() -> None:
    result, seen = asyncio.run(_predict(drop_first=5))
    assert seen == ["dropped", "dropped"], "exactly one retry"
    assert isinstance(result, NotReady)
    assert "TF Serving is unreachable" in str(result)


def test_an_answering_server_is_asked_once() -> None:
    result, seen = asyncio.run(_predict(drop_first=0))
    assert seen == ["answered"]
    assert isinstance(result, np.ndarray)
