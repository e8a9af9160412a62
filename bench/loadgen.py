"""A closed-loop HTTP/1.1 load generator: fixed concurrency, bounded duration, keep-alive connections.

Why not httpx or aiohttp: on 2 shared cores the generator competes with what it measures, and a full
client library spends ~150-300 us of CPU per request. This one writes pre-encoded request bytes on
asyncio transports (uvloop when present) and parses only the status line and Content-Length: a few
tens of microseconds per request. Its own CPU per request is measured and reported next to the
results, so the reader can see what it took from the machine.

Each of ``concurrency`` connections sends one request, waits for the whole response, and sends the
next (a closed loop, like wrk). Latency is measured from the write to the last byte of the response.
Warm-up is a separate, unrecorded call of :func:`run_load`."""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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


def build_requests(host: str, port: int, path: str, bodies: Sequence[bytes]) -> list[bytes]:
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    return [(head + f"Content-Length: {len(b)}\r\n\r\n").encode() + b for b in bodies]


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buf[:end]).lower()
        i = head.find(b"content-length:")
        if i < 0:
            self.waiter.set_exception(RuntimeError("response without Content-Length"))
            return
        length = int(head[i + 15 : head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None])
        if len(self.buf) - end - 4 >= length:
            status = int(head[9:12])
            del self.buf[: end + 4 + length]
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection closed: {exc}"))

    async def send(self, data: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def run_load(
    host: str, port: int, requests: Sequence[bytes], concurrency: int, duration_s: float
) -> LoadResult:
    """``concurrency`` connections send requests back to back until ``duration_s`` has passed; every
    request sent is waited for, so counters read before and after cover exactly these requests."""
    loop = asyncio.get_running_loop()
    latencies: list[int] = []
    errors = 0
    first_error = ""
    n = len(requests)
    cpu0 = _cpu()
    t_start = time.perf_counter_ns()
    stop_at = loop.time() + duration_s

    async def worker(k: int) -> None:
        nonlocal errors, first_error
        conn: _Conn | None = None
        i = k * 7919  # each connection walks the documents from a different place
        while loop.time() < stop_at:
            t0 = time.perf_counter_ns()
            try:
                if conn is None or conn.closed:
                    _, conn = await loop.create_connection(_Conn, host, port)
                status = await conn.send(requests[i % n])
            except (OSError, RuntimeError) as exc:  # ConnectionError is an OSError
                status, conn = 0, None
                first_error = first_error or f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.01)
            i += 1
            if status == 200:
                latencies.append(time.perf_counter_ns() - t0)
            else:
                errors += 1
                first_error = first_error or f"HTTP {status}"
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = (time.perf_counter_ns() - t_start) / 1e9
    cpu_used = _cpu() - cpu0
    lat = np.asarray(latencies, dtype=np.float64) / 1e6
    pct = (
        {f"p{p}": round(float(np.percentile(lat, p)), 3) for p in (50, 95, 99)}
        | {"mean": round(float(lat.mean()), 3), "max": round(float(lat.max()), 3)}
        if len(lat)
        else {}
    )
    total = len(latencies) + errors
    return LoadResult(
        concurrency=concurrency,
        requests=total,
        errors=errors,
        elapsed_s=round(elapsed, 3),
        throughput_rps=round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        latency_ms=pct,
        loadgen_cpu_s_per_request=round(cpu_used / max(1, total), 7),
        first_error=first_error,
    )


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()
