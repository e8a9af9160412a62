"""The load generator of the benchmark and the reliability suite: a closed loop of HTTP/1.1 keep-alive
connections, bounded in time and in requests, with a client-side deadline on every request and every
outcome counted (HTTP statuses, refused and reset connections, timeouts).

Why not httpx or aiohttp: on 2 shared cores the generator competes with what it measures, and a full
client library spends ~150-300 us of CPU per request. This one writes pre-encoded request bytes on
asyncio transports (uvloop when present) and parses only the status line and Content-Length (the other
headers only of answers other than 200): a few tens of microseconds per request. Its own CPU per
request is measured and reported next to the results, so the reader can see what it took.

Each of ``concurrency`` connections sends one request, waits for the whole response, and sends the next
(a closed loop, like wrk); the requests are taken round-robin from one list, so ``Result.tag`` says
which was sent. Latency is measured from the write to the last byte of the response. Warm-up is a
separate, unrecorded call."""

from __future__ import annotations

import asyncio
import resource
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# outcomes besides HTTP statuses
REFUSED, RESET, TIMEOUT = -1, -2, -3
OUTCOME_NAMES = {REFUSED: "connection refused", RESET: "connection reset/closed", TIMEOUT: "client timeout"}


@dataclass(slots=True)
class Result:
    t0: float  # time.monotonic() at the write
    t1: float  # at the last byte of the answer, or at the failure
    status: int  # HTTP status, or REFUSED / RESET / TIMEOUT
    body: bytes = b""  # kept for answers other than 2xx, or all of them with keep_bodies
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names; answers other than 200
    tag: int = 0  # which request was sent (its index in the list)
    error: str = ""  # the exception, for REFUSED / RESET / TIMEOUT

    @property
    def latency(self) -> float:
        return self.t1 - self.t0


@dataclass
class LoadResult:
    concurrency: int
    requests: int  # every request sent (all of them completed before run_load returned)
    errors: int
    elapsed_s: float  # from the first send to the last response
    throughput_rps: float
    latency_ms: dict[str, float]
    loadgen_cpu_s_per_request: float
    first_error: str = ""
    by_status: dict[str, int] = field(default_factory=dict)


def http_request(
    path: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    host: str = "127.0.0.1",
) -> bytes:
    """One request's bytes, ready to write."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    if body:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def build_requests(host: str, port: int, path: str, bodies: Sequence[bytes]) -> list[bytes]:
    return [http_request(path, b, host=f"{host}:{port}") for b in bodies]


def parse_headers(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return headers


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One answer from a stream (for tests that hold a raw connection themselves)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = parse_headers(head[:-4])
    n = int(headers.get("content-length", "0"))
    body = await reader.readexactly(n) if n else b""
    return status, headers, body


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buf[:end])
        low = head.lower()
        i = low.find(b"content-length:")
        length = (
            int(low[i + 15 : low.find(b"\r\n", i) if low.find(b"\r\n", i) > 0 else None]) if i >= 0 else 0
        )
        if len(self.buf) - end - 4 >= length:
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            if b"\r\nconnection: close" in low:
                self.closed = True  # the server will close it: the next request needs a new one
            self.waiter.set_result((int(head[9:12]), head, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError(f"connection closed: {exc}"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def send(self, data: bytes, timeout_s: float | None) -> tuple[int, bytes, bytes]:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        self.transport.write(data)
        if timeout_s is None:
            return await waiter

        def expire() -> None:
            if not waiter.done():
                waiter.set_exception(TimeoutError("no answer in time"))

        timer = loop.call_later(timeout_s, expire)
        try:
            return await waiter
        finally:
            timer.cancel()


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def drive(
    host: str,
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    duration_s: float,
    *,
    max_requests: int | None = None,
    timeout_s: float | None = None,
    keep_bodies: bool = False,
    retry_pause_s: float = 0.01,
    stop: threading.Event | None = None,
    results: list[Result] | None = None,
) -> list[Result]:
    """Send until ``duration_s`` has passed, ``max_requests`` are sent or ``stop`` is set; every request
    sent is waited for (at most ``timeout_s``), so counters read before and after cover exactly these
    requests. Results are appended to ``results`` as they come (a caller may watch it grow)."""
    loop = asyncio.get_running_loop()
    out: list[Result] = [] if results is None else results
    n = len(requests)
    sent = 0
    stop_at = loop.time() + duration_s

    def take() -> int | None:
        nonlocal sent
        if (stop is not None and stop.is_set()) or (max_requests is not None and sent >= max_requests):
            return None
        sent += 1
        return sent - 1

    async def worker() -> None:
        conn: _Conn | None = None
        while loop.time() < stop_at and (i := take()) is not None:
            tag = i % n
            t0 = time.monotonic()
            try:
                if conn is None or conn.closed:
                    connect = loop.create_connection(_Conn, host, port)
                    _, fresh = await (asyncio.wait_for(connect, timeout_s) if timeout_s else connect)
                    conn = fresh
                status, head, body = await conn.send(requests[tag], timeout_s)
            except (OSError, RuntimeError, TimeoutError) as exc:  # ConnectionError is an OSError
                outcome = (
                    TIMEOUT if isinstance(exc, TimeoutError)
                    else REFUSED if isinstance(exc, ConnectionRefusedError)
                    else RESET
                )  # fmt: skip
                out.append(
                    Result(t0, time.monotonic(), outcome, tag=tag, error=f"{type(exc).__name__}: {exc}")
                )
                if conn is not None:
                    conn.close()
                    conn = None
                await asyncio.sleep(retry_pause_s)  # bounded: no hot loop while the server is away
                continue
            out.append(
                Result(
                    t0, time.monotonic(), status,
                    body if keep_bodies or status >= 300 else b"",
                    parse_headers(head) if status != 200 else {},
                    tag,
                )
            )  # fmt: skip
        if conn is not None:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def count_outcomes(results: Sequence[Result]) -> dict[str, int]:
    """How many of each outcome: HTTP statuses by number, the others by name."""
    by_status: dict[str, int] = {}
    for r in results:
        key = OUTCOME_NAMES.get(r.status, str(r.status))
        by_status[key] = by_status.get(key, 0) + 1
    return by_status


def summarize(results: Sequence[Result]) -> dict[str, Any]:
    """Outcomes and latency (p50, p99, max in ms) of every request, failed ones included."""
    lat = sorted(r.latency for r in results)
    out: dict[str, Any] = {"requests": len(results), "by_status": count_outcomes(results)}
    if lat:
        out["latency_ms"] = {
            "p50": round(1000 * statistics.median(lat), 1),
            "p99": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1),
            "max": round(1000 * lat[-1], 1),
        }
    return out


async def run_load(
    host: str, port: int, requests: Sequence[bytes], concurrency: int, duration_s: float, **options: Any
) -> LoadResult:
    """One measured window of :func:`drive`: throughput and latency of the 200 answers, the rest counted
    as errors, and the generator's own CPU per request."""
    cpu0 = _cpu()
    t_start = time.monotonic()
    results = await drive(host, port, requests, concurrency, duration_s, **options)
    elapsed = time.monotonic() - t_start
    cpu_used = _cpu() - cpu0
    ok = [r for r in results if r.status == 200]
    failed = [r for r in results if r.status != 200]
    lat = np.asarray([r.latency for r in ok], dtype=np.float64) * 1e3
    pct = (
        {f"p{p}": round(float(np.percentile(lat, p)), 3) for p in (50, 95, 99)}
        | {"mean": round(float(lat.mean()), 3), "max": round(float(lat.max()), 3)}
        if len(lat)
        else {}
    )
    first = min(failed, key=lambda r: r.t0, default=None)
    return LoadResult(
        concurrency=concurrency,
        requests=len(results),
        errors=len(failed),
        elapsed_s=round(elapsed, 3),
        throughput_rps=round(len(ok) / elapsed, 1) if elapsed > 0 else 0.0,
        latency_ms=pct,
        loadgen_cpu_s_per_request=round(cpu_used / max(1, len(results)), 7),
        first_error="" if first is None else first.error or f"HTTP {first.status}",
        by_status=count_outcomes(results),
    )


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


class Load:
    """:func:`drive` in the background, on its own event loop in a thread: ``concurrency`` connections
    sending ``requests`` until ``duration_s`` or ``max_requests``, whichever first, each bounded by
    ``timeout_s`` (a longer one is recorded as TIMEOUT: a hang). ``results`` grows as answers come."""

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
        host: str = "127.0.0.1",
    ) -> None:
        self.duration_s = duration_s
        self.timeout_s = timeout_s
        self.results: list[Result] = []
        self._stop = threading.Event()
        self._args = (host, port, list(requests), concurrency, duration_s)
        self._options: dict[str, Any] = {
            "max_requests": max_requests,
            "timeout_s": timeout_s,
            "keep_bodies": keep_bodies,
            "retry_pause_s": retry_pause_s,
            "stop": self._stop,
            "results": self.results,
        }
        self._thread = threading.Thread(target=self._main, name="loadgen", daemon=True)

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

    def _main(self) -> None:
        asyncio.run(drive(*self._args, **self._options))
