"""Micro-batching: concurrent requests for the same version become one upstream call.

One TF Serving call for 16 texts costs little more than a call for one (the network is tiny, the
per-call overhead is not), so under load coalescing raises throughput and flattens tail latency. A
request waits at most ``max_wait`` for companions, and only while another upstream call is in flight:
with no concurrency it goes out alone at once (waiting then would add ``max_wait`` to every request
and buy nothing; measured by ``make bench``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from contracts.signature import Row, pad
from preprocess_service import logs
from preprocess_service.metrics import Metrics
from preprocess_service.upstream import Upstream


@dataclass
class _Item:
    version: int
    rows: Sequence[Row]
    request_id: str | None = field(default_factory=logs.request_id.get)
    future: asyncio.Future[np.ndarray] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Batcher:
    def __init__(
        self,
        upstream: Upstream,
        metrics: Metrics,
        enabled: bool,
        max_size: int,
        max_wait_s: float,
        max_concurrent_calls: int = 8,
    ) -> None:
        self.upstream = upstream
        self.metrics = metrics
        self.enabled = enabled
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._slots = asyncio.Semaphore(max_concurrent_calls)
        self._worker: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._busy = 0  # upstream calls dispatched by the worker and not finished yet

    async def _call(self, version: int, rows: Sequence[Row]) -> np.ndarray:
        self.metrics.batch_size.observe(len(rows))
        ids, weights = pad(rows)
        return await self.upstream.predict(version, ids, weights)

    async def submit(self, version: int, rows: Sequence[Row]) -> np.ndarray:
        if not self.enabled or len(rows) >= self.max_size:
            return await self._call(version, rows)
        if self._worker is None:
            self._worker = asyncio.create_task(self._run())
        item = _Item(version, rows)
        await self._queue.put(item)
        return await item.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            batch, size = [first], len(first.rows)
            # idle upstream: take only what has already arrived, and go now
            deadline = loop.time() + (self.max_wait_s if self._busy else 0.0)
            while size < self.max_size:
                timeout = deadline - loop.time()
                try:
                    item = (
                        self._queue.get_nowait()
                        if timeout <= 0
                        else await asyncio.wait_for(self._queue.get(), timeout)
                    )
                except (TimeoutError, asyncio.QueueEmpty):
                    break
                batch.append(item)
                size += len(item.rows)
            by_version: dict[int, list[_Item]] = {}
            for item in batch:
                by_version.setdefault(item.version, []).append(item)
            for version, items in by_version.items():
                await self._slots.acquire()
                self._busy += 1
                task = asyncio.create_task(self._dispatch(version, items))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)

    async def _dispatch(self, version: int, items: list[_Item]) -> None:
        # this task was started by the batching worker: name the requests it answers for
        ids = list(dict.fromkeys(i.request_id for i in items if i.request_id))
        logs.request_id.set(",".join(ids[: logs.MAX_FORWARDED_IDS]) or None)
        try:
            rows = [row for item in items for row in item.rows]
            try:
                probs = await self._call(version, rows)
            except Exception as exc:  # every waiter gets the same typed error
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(exc)
                return
            start = 0
            for item in items:
                end = start + len(item.rows)
                if not item.future.done():
                    item.future.set_result(probs[start:end])
                start = end
        finally:
            self._busy -= 1
            self._slots.release()

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)
