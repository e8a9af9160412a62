"""The lane (preprocess_service.fastlane) answers ``POST /v1/classify`` in the HTTP protocol exactly as
the ASGI path does, over real sockets.

Two real uvicorn servers run the sidecar's protocol over the same model: one with the lane (the
default), one with ``SIDECAR_FAST_LANE=false``. Each exchange below goes to both as raw bytes; the
status line, the body (request ids aside) and every header but ``date`` and ``x-request-id`` must be
equal, and the lane must have written the answers it should have (else this would compare the ASGI
path with itself)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn

from preprocess_service import fastlane
from preprocess_service.config import Settings
from preprocess_service.errors import UpstreamTimeout
from preprocess_service.front import SidecarAPI
from preprocess_service.http_protocol import SidecarHttpProtocol
from preprocess_service.main import create_app
from tests.sidecar.doubles import SavedModelUpstream

SPORT = "The striker scored twice and the team won the cup final after extra time at the stadium."
MONEY = "Shares fell after the bank cut its profit forecast for the year."


class Server:
    def __init__(self, app: SidecarAPI, port: int, srv: uvicorn.Server, thread: threading.Thread) -> None:
        self.app, self.port, self.srv, self.thread = app, port, srv, thread

    @property
    def upstream(self) -> SavedModelUpstream:
        return self.app.state.upstream  # type: ignore[no-any-return]


@contextmanager
def serve(model_base: Path, lane: bool) -> Iterator[Server]:
    settings = Settings(  # type: ignore[call-arg]
        model_base_path=model_base, model_name="news", version_poll_s=0.1, fast_lane=lane
    )
    app = create_app(settings, upstream=SavedModelUpstream(model_base / "news"))
    assert (app.lane is not None) == lane
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=SidecarHttpProtocol,
        log_config=None,
        loop="uvloop",
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (srv.started and app.state.registry.current is not None):
        assert thread.is_alive() and time.monotonic() < deadline, "the sidecar did not start"
        time.sleep(0.02)
    try:
        yield Server(app, port, srv, thread)
    finally:
        srv.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, exported_models: Path
) -> Iterator[tuple[Server, Server]]:
    base = tmp_path_factory.mktemp("lane")
    shutil.copytree(exported_models / "news" / "1", base / "news" / "1")
    with serve(base, True) as lane, serve(base, False) as plain:
        yield lane, plain


@pytest.fixture
def written(servers: tuple[Server, Server], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The status of each answer the lane wrote itself."""
    seen: list[int] = []
    write = fastlane.LaneCycle.write

    def spy(self: fastlane.LaneCycle, status: int, *args: Any) -> None:
        seen.append(status)
        write(self, status, *args)

    monkeypatch.setattr(fastlane.LaneCycle, "write", spy)
    for s in servers:
        s.upstream.fail = None
        s.upstream.delay_s = 0.0
    return seen


def post(body: bytes, headers: str = "", path: str = "/v1/classify", version: str = "1.1") -> bytes:
    return (
        f"POST {path} HTTP/{version}\r\nhost: t\r\ncontent-type: application/json\r\n{headers}"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


Answer = tuple[bytes, dict[bytes, bytes], bytes]


def final_response(f: Any) -> Answer:
    while True:  # past interim answers (100 Continue)
        status = f.readline()
        if not status.startswith(b"HTTP/1.1 1"):
            break
        assert f.readline() == b"\r\n"
    headers: dict[bytes, bytes] = {}
    while (line := f.readline()) != b"\r\n":
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, f.read(int(headers[b"content-length"]))


def exchange(port: int, data: bytes, answers: int = 1) -> tuple[list[Answer], bool]:
    """Send ``data`` at once, read ``answers`` responses; and whether the server closed afterwards."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s, s.makefile("rb") as f:
        s.sendall(data)
        got = [final_response(f) for _ in range(answers)]
        s.settimeout(0.3)
        try:
            closed = f.read(1) == b""
        except TimeoutError:
            closed = False
    return got, closed


def comparable(answer: Answer) -> tuple[bytes, dict[bytes, bytes], Any]:
    status, headers, body = answer
    headers = {k: v for k, v in headers.items() if k not in (b"date", b"x-request-id")}
    assert answer[1][b"x-request-id"]
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return status, headers, body
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        parsed["error"].pop("request_id", None)
    return status, headers, parsed


def both(servers: tuple[Server, Server], data: bytes, answers: int = 1) -> tuple[list[Answer], bool]:
    """The lane server's answers and whether it closed, after checking the plain server's are the same."""
    lane, plain = servers
    got, closed = exchange(lane.port, data, answers)
    want, want_closed = exchange(plain.port, data, answers)
    assert [comparable(a) for a in got] == [comparable(a) for a in want]
    assert closed == want_closed
    return got, closed


WELL_FORMED = [
    {"text": SPORT},
    {"texts": [SPORT, MONEY], "return_probabilities": True},
    {"text": SPORT, "top_k": 3, "min_confidence": 0.99},
    {"text": MONEY, "explain": True},
]


def test_well_formed_requests_on_one_connection_are_answered_by_the_lane(
    servers: tuple[Server, Server], written: list[int]
) -> None:
    data = b"".join(post(orjson.dumps(p)) for p in WELL_FORMED)  # pipelined: one write, four requests
    got, closed = both(servers, data, len(WELL_FORMED))
    assert [a[0] for a in got] == [b"HTTP/1.1 200 OK\r\n"] * len(WELL_FORMED)
    assert [len(orjson.loads(a[2])["predictions"]) for a in got] == [1, 2, 1, 1]
    assert not closed  # kept alive
    # the first is the lane's; the rest arrived while it was in flight and were queued as uvicorn queues
    # pipelined requests, so the lane wrote at least the first and at most all of them
    assert 1 <= len(written) <= len(WELL_FORMED) and set(written) == {200}
    written.clear()
    for p in WELL_FORMED:  # one at a time, on a fresh connection each: all the lane's
        (answer,), _ = both(servers, post(orjson.dumps(p)))
        assert answer[0] == b"HTTP/1.1 200 OK\r\n"
        assert int(answer[1][b"content-length"]) == len(answer[2])
        assert answer[1][b"x-model-version"] == b"1"
    assert written == [200] * len(WELL_FORMED)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (post(b'{"text": "x"'), b"422"),  # not JSON
        (post(b'{"text": "x", "extra": 1}'), b"422"),
        (post(b'{"text": "   "}'), b"422"),
        (post(b'{"text": "x", "top_k": 99}'), b"422"),
        (post(b"null"), b"422"),
        (post(b'{"text": "x"}').replace(b"application/json", b"text/plain"), b"422"),
    ],
)
def test_refused_requests_get_the_apps_answer(
    servers: tuple[Server, Server], written: list[int], data: bytes, status: bytes
) -> None:
    (answer,), closed = both(servers, data)
    assert answer[0].split()[1] == status
    assert written == [] and not closed


@pytest.mark.parametrize(
    "data",
    [
        post(orjson.dumps({"text": SPORT}), path="/v1/classify?debug=1"),
        post(orjson.dumps({"text": SPORT}), headers="expect: 100-continue\r\n"),
        post(orjson.dumps({"text": SPORT}), version="1.0"),
        b"POST /v1/classify HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(orjson.dumps({"text": SPORT}))
        + orjson.dumps({"text": SPORT})
        + b"\r\n0\r\n\r\n",
        post(orjson.dumps({"texts": [SPORT + " " * 18_000] * 4})),  # over the lane's 64 KiB
    ],
    ids=["query", "expect", "http1.0", "chunked", "large"],
)
def test_requests_the_lane_leaves_to_uvicorn_are_answered_the_same(
    servers: tuple[Server, Server], written: list[int], data: bytes
) -> None:
    (answer,), _ = both(servers, data)
    assert answer[0].split()[1] == b"200", answer
    assert written == []


def test_connection_close_and_request_ids(servers: tuple[Server, Server], written: list[int]) -> None:
    data = post(orjson.dumps({"text": SPORT}), headers="connection: close\r\nx-request-id: lane-check-1\r\n")
    (answer,), closed = both(servers, data)
    assert answer[1][b"connection"] == b"close" and closed
    assert answer[1][b"x-request-id"] == b"lane-check-1"
    assert written == [200]


def test_a_model_server_error_is_mapped_as_without_the_lane(
    servers: tuple[Server, Server], written: list[int]
) -> None:
    for s in servers:
        s.upstream.fail = UpstreamTimeout("TF Serving did not answer within 5.0s")
    (answer,), closed = both(servers, post(orjson.dumps({"text": SPORT})))
    assert answer[0].split()[1] == b"504" and not closed
    assert written == [504]


def test_an_unexpected_error_gets_the_server_error_answer_and_the_lane_keeps_serving(
    servers: tuple[Server, Server], written: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    for s in servers:
        s.upstream.fail = RuntimeError("a bug, not a typed error")
    with caplog.at_level("ERROR"):
        (answer,), closed = both(
            servers, post(orjson.dumps({"text": SPORT}), headers="x-request-id: r-500\r\n")
        )
    assert answer[0].split()[1] == b"500" and closed  # closed after, as uvicorn does for a failed app
    assert orjson.loads(answer[2])["error"]["request_id"] == "r-500"
    assert answer[1][b"x-request-id"] == b"r-500"
    assert [r.getMessage() for r in caplog.records].count("Exception in ASGI application\n") == 2
    for s in servers:
        s.upstream.fail = None
    (answer,), _ = both(servers, post(orjson.dumps({"text": SPORT})))
    assert answer[0].split()[1] == b"200"
    assert written == [200]


def test_metrics_and_the_access_log_count_the_lanes_requests(
    servers: tuple[Server, Server], written: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    lane, _ = servers

    def count() -> float:
        ((_, _, body),), _ = exchange(lane.port, b"GET /metrics HTTP/1.1\r\nhost: t\r\n\r\n")
        line = b'sidecar_requests_total{method="POST",route="/v1/classify",status="200"} '
        found = [ln for ln in body.splitlines() if ln.startswith(line)]
        return float(found[0][len(line) :]) if found else 0.0

    before = count()
    with caplog.at_level("INFO", logger="preprocess_service.access"):
        exchange(lane.port, post(orjson.dumps({"texts": [SPORT, MONEY]}), headers="x-request-id: r-log\r\n"))
    assert count() == before + 1
    (record,) = [r for r in caplog.records if getattr(r, "request_id", None) == "r-log"]
    assert (record.path, record.status, record.texts) == ("/v1/classify", 200, 2)  # type: ignore[attr-defined]
    assert written == [200]


def test_a_client_that_leaves_mid_request_does_not_stop_the_lane(
    servers: tuple[Server, Server], written: list[int]
) -> None:
    lane, _ = servers
    lane.upstream.delay_s = 0.3
    with socket.create_connection(("127.0.0.1", lane.port), timeout=10) as s:
        s.sendall(post(orjson.dumps({"text": SPORT})))
        time.sleep(0.05)
    half = post(orjson.dumps({"text": SPORT}))
    with socket.create_connection(("127.0.0.1", lane.port), timeout=10) as s:
        s.sendall(half[:-10])  # the body never completes
    time.sleep(0.5)
    lane.upstream.delay_s = 0.0
    (answer,), _ = exchange(lane.port, post(orjson.dumps({"text": SPORT})))
    assert answer[0].split()[1] == b"200"
    assert written == [200, 200]  # the one that left was answered into the void, not written


def test_a_graceful_shutdown_lets_a_lane_request_finish(tmp_path: Path, exported_models: Path) -> None:
    shutil.copytree(exported_models / "news" / "1", tmp_path / "news" / "1")
    with serve(tmp_path, True) as lane:
        lane.upstream.delay_s = 0.5
        with socket.create_connection(("127.0.0.1", lane.port), timeout=10) as s, s.makefile("rb") as f:
            s.sendall(post(orjson.dumps({"text": SPORT})))
            time.sleep(0.2)
            lane.srv.should_exit = True
            status, headers, body = final_response(f)
            assert status.split()[1] == b"200" and headers[b"connection"] == b"close"
            assert orjson.loads(body)["predictions"]
            assert f.read() == b""
        lane.thread.join(15)
        assert not lane.thread.is_alive()


def test_the_lane_holds_an_answer_back_while_the_client_is_not_reading() -> None:
    """As uvicorn's ``send``: with the transport's buffer over its high-water mark (flow control paused
    writing), the answer waits for it to drain, and so does the request cycle's end."""
    from uvicorn.protocols.http.flow_control import FlowControl

    class Transport:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.written.append(data)

        def pause_reading(self) -> None: ...

        def resume_reading(self) -> None: ...

    class Proto:
        def __init__(self) -> None:
            self.transport = Transport()
            self.flow = FlowControl(self.transport)  # type: ignore[arg-type]
            self.server_state = type("State", (), {"default_headers": []})()
            self.completed = 0

        def on_response_complete(self) -> None:
            self.completed += 1

    async def main() -> None:
        proto = Proto()
        cycle = fastlane.LaneCycle(None, proto, {}, True)  # type: ignore[arg-type]
        proto.flow.pause_writing()
        task = asyncio.create_task(cycle.send(200, [(b"content-length", b"2")], b"{}"))
        await asyncio.sleep(0.05)
        assert proto.transport.written == [] and not cycle.response_complete and proto.completed == 0
        proto.flow.resume_writing()
        await task
        assert proto.transport.written == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
        assert cycle.response_complete and proto.completed == 1

    asyncio.run(main())
