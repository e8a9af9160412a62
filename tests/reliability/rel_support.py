"""Helpers of the reliability suite: a bounded load generator speaking raw HTTP/1.1 over asyncio, a TCP
proxy that can delay or drip bytes (a slow model server), process probes from /proc, and the figures
every test reports into out/reliability.json."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.stack import Proc, free_port, start_model_server, start_sidecar, wait_until

HOST = "127.0.0.1"
MODEL = "news"
SERVER_START_S = 120.0

# texts whose answers are checked against each version's own network, offline
PROBES = [
    "The striker scored twice and the team won the cup final after extra time at the stadium.",
    "Shares fell sharply after the bank cut its profit forecast and the market slumped.",
    "The new phone chip runs apps faster and the software update fixes the cloud data bug.",
    "goal match team coach win league season",
]


# outcome codes besides HTTP statuses
REFUSED, RESET, TIMEOUT = -1, -2, -3
OUTCOME_NAMES = {REFUSED: "connection refused", RESET: "connection reset/closed", TIMEOUT: "client timeout"}


@dataclass
class Result:
    t0: float
    t1: float
    status: int  # HTTP status, or REFUSED / RESET / TIMEOUT
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    tag: int = 0  # which request body was sent

    @property
    def latency(self) -> float:
        return self.t1 - self.t0


def http_request(
    path: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", f"Content-Length: {len(body)}"]
    if body:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in header_lines:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = await reader.readexactly(n) if n else b""
    return status, headers, body


class Load:
    """``concurrency`` keep-alive connections sending ``requests`` round-robin until ``duration_s`` or
    ``max_requests`` is reached, whichever first. Each request has a client-side ``timeout_s``: a request
    that takes longer is recorded as TIMEOUT (a hang). Runs on its own event loop in a thread."""

    def __init__(
        self,
        port: int,
        requests: Sequence[bytes],
        *,
        concurrency: int,
        duration_s: float,
        max_requests: int,
        timeout_s: float = 15.0,
        keep_bodies: bool = False,
        retry_pause_s: float = 0.05,
    ) -> None:
        self.port = port
        self.requests = list(requests)
        self.concurrency = concurrency
        self.duration_s = duration_s
        self.max_requests = max_requests
        self.timeout_s = timeout_s
        self.keep_bodies = keep_bodies
        self.retry_pause_s = retry_pause_s
        self.results: list[Result] = []
        self._stop = threading.Event()
        self._sent = 0
        self._thread = threading.Thread(target=self._main, name="loadgen", daemon=True)

    # -- control ---------------------------------------------------------------------------------
    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> list[Result]:
        self._thread.join(timeout if timeout is not None else self.duration_s + self.timeout_s + 10)
        assert not self._thread.is_alive(), "load generator did not stop"
        return self.results

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.stop()
        self.join()  # bounded by duration_s and max_requests

    # -- engine ----------------------------------------------------------------------------------
    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        deadline = time.monotonic() + self.duration_s
        await asyncio.gather(*(self._worker(i, deadline) for i in range(self.concurrency)))

    def _take(self) -> int | None:
        if self._stop.is_set() or self._sent >= self.max_requests:
            return None
        i = self._sent
        self._sent += 1
        return i

    async def _worker(self, wid: int, deadline: float) -> None:
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while time.monotonic() < deadline:
            i = self._take()
            if i is None:
                break
            tag = i % len(self.requests)
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = await asyncio.wait_for(asyncio.open_connection(HOST, self.port), self.timeout_s)
                reader, writer = conn
                writer.write(self.requests[tag])
                await writer.drain()
                status, headers, body = await asyncio.wait_for(read_response(reader), self.timeout_s)
                self.results.append(
                    Result(
                        t0,
                        time.monotonic(),
                        status,
                        body if self.keep_bodies or status >= 300 else b"",
                        headers if status != 200 else {},
                        tag,
                    )
                )
                if headers.get("connection", "").lower() == "close":
                    writer.close()
                    conn = None
                continue
            except TimeoutError:
                outcome = TIMEOUT
            except ConnectionRefusedError:
                outcome = REFUSED
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                outcome = RESET
            self.results.append(Result(t0, time.monotonic(), outcome, tag=tag))
            if conn is not None:
                conn[1].close()
                conn = None
            await asyncio.sleep(self.retry_pause_s)  # bounded: no hot loop while the server is away
        if conn is not None:
            conn[1].close()


def summarize(results: Sequence[Result]) -> dict[str, Any]:
    by_status: dict[str, int] = {}
    for r in results:
        key = OUTCOME_NAMES.get(r.status, str(r.status))
        by_status[key] = by_status.get(key, 0) + 1
    lat = sorted(r.latency for r in results)
    out: dict[str, Any] = {"requests": len(results), "by_status": by_status}
    if lat:
        out["latency_ms"] = {
            "p50": round(1000 * statistics.median(lat), 1),
            "p99": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1),
            "max": round(1000 * lat[-1], 1),
        }
    return out


# -- a TCP proxy standing in for a slow model server ---------------------------------------------------
class SlowProxy:
    """Forwards 127.0.0.1:<port> to a target port. ``delay_s`` holds each request chunk that long before
    forwarding it; ``drip_s`` sends the answer back one byte every ``drip_s`` seconds (a server that
    keeps the connection alive but never finishes). Counts the connections it holds open."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay_s = 0.0
        self.drip_s = 0.0
        self.open_connections = 0
        self.total_connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="slow-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> SlowProxy:
        self._thread.start()
        assert self._ready.wait(10), "proxy did not start"
        return self

    def close(self) -> None:
        async def _close() -> None:
            if self._server is not None:
                self._server.close()
            for t in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                t.cancel()

        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, HOST, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        self.total_connections += 1
        try:
            ur, uw = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            self.open_connections -= 1
            cw.close()
            return

        async def up() -> None:
            while data := await cr.read(65536):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                uw.write(data)
                await uw.drain()
            uw.close()

        async def down() -> None:
            while data := await ur.read(65536):
                if self.drip_s:
                    for i in range(len(data)):
                        cw.write(data[i : i + 1])
                        await cw.drain()
                        await asyncio.sleep(self.drip_s)
                else:
                    cw.write(data)
                    await cw.drain()
            cw.close()

        try:
            tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
            _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self.open_connections -= 1
            for w in (cw, uw):
                with contextlib.suppress(Exception):
                    w.close()


# -- process probes ---------------------------------------------------------------------------------
def proc_stats(pid: int) -> dict[str, int]:
    """RSS (KiB), threads and open file descriptors of a live process, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return {
        "rss_kib": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def connect_refused(port: int, timeout: float = 2.0) -> str:
    """Try one TCP connection: 'refused', 'accepted' or 'timeout' (a hang)."""
    with socket.socket() as s:
        s.settimeout(timeout)
        try:
            s.connect((HOST, port))
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "timeout"
        return "accepted"


def poll(cond: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(every)
    return cond()


# -- model versions and processes ---------------------------------------------------------------
def publish(src: Path, base: Path, version: int) -> Path:
    """Contract 1: copy to a hidden name, then rename, so no poller sees half a version."""
    tmp = base / f".tmp-{version}-{uuid.uuid4().hex[:6]}"
    shutil.copytree(src, tmp)
    final = base / str(version)
    os.rename(tmp, final)
    return final


# --- processes ------------------------------------------------------------------------------------
def server_versions(server: Proc) -> dict[int, str]:
    try:
        r = httpx.get(f"{server.url()}/v1/models/{MODEL}", timeout=2)
    except httpx.HTTPError:
        return {}
    if r.status_code != 200:
        return {}
    return {int(v["version"]): v["state"] for v in r.json()["model_version_status"]}


def wait_available(server: Proc, version: int, timeout: float = SERVER_START_S) -> float:
    """Block until the model server reports ``version`` AVAILABLE; returns the monotonic time it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise AssertionError(f"model server exited {server.popen.returncode}:\n{server.log_tail()}")
        if server_versions(server).get(version) == "AVAILABLE":
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"version {version} not AVAILABLE after {timeout}s:\n{server.log_tail()}")


class Stack:
    """A model base directory plus the processes a test starts on it; everything is stopped at teardown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / "models"
        self.model_dir = self.base / MODEL
        self.model_dir.mkdir(parents=True)
        self.logs = root / "logs"
        self.procs: list[Proc] = []

    def publish(self, src: Path, version: int) -> Path:
        return publish(src, self.model_dir, version)

    def server(
        self, grpc_port: int | None = None, rest_port: int | None = None, wait_version: int | None = 1
    ) -> Proc:
        p = start_model_server(
            self.base, MODEL, self.logs, poll_s=0.3, grpc_port=grpc_port, rest_port=rest_port
        )
        self.procs.append(p)
        if wait_version is not None:
            wait_available(p, wait_version)
        return p

    def sidecar(
        self, server: Proc | None, transport: str = "rest", ready: bool = True, **settings: str
    ) -> Proc:
        settings.setdefault("version_poll_s", "0.3")
        p = start_sidecar(self.base, MODEL, server, self.logs, transport=transport, **settings)
        self.procs.append(p)
        if ready:
            wait_until(p, "/readyz", 200, timeout=SERVER_START_S)
        else:
            wait_until(p, "/healthz", 200, timeout=SERVER_START_S)
        return p

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.popen.poll() is None:
                with_kill = p.name.startswith("model_server")
                p.stop(signal.SIGKILL if with_kill else signal.SIGTERM, timeout=25)

    def logs_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log_tail(60)}" for p in self.procs)


def classify_body(i: int = 0, probabilities: bool = True) -> bytes:
    return json.dumps({"text": PROBES[i % len(PROBES)], "return_probabilities": probabilities}).encode()


__all__ = ["Proc", "free_port"]
