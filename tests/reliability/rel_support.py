"""Helpers of the reliability suite: the texts it sends, a TCP proxy that can delay or drip bytes (a slow
model server), and process probes from /proc. The processes and the load generator are devstack's,
handed on here under the names the tests use."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from devstack import HOST, Proc, Stack, free_port, server_states, wait_available
from devstack.loadgen import REFUSED, RESET, TIMEOUT, Load, Result, http_request, read_response, summarize

MODEL = "news"

# texts whose answers are checked against each version's own network, offline
PROBES = [
    "The striker scored twice and the team won the cup final after extra time at the stadium.",
    "Shares fell sharply after the bank cut its profit forecast and the market slumped.",
    "The new phone chip runs apps faster and the software update fixes the cloud data bug.",
    "goal match team coach win league season",
]


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


def classify_body(i: int = 0, probabilities: bool = True) -> bytes:
    return json.dumps({"text": PROBES[i % len(PROBES)], "return_probabilities": probabilities}).encode()


__all__ = [
    "HOST",
    "REFUSED",
    "RESET",
    "TIMEOUT",
    "Load",
    "Proc",
    "Result",
    "Stack",
    "free_port",
    "http_request",
    "read_response",
    "server_states",
    "summarize",
    "wait_available",
]
