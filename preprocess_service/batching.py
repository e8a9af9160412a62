"""Micro-batching: concurrent requests for the same version become one upstream call.

One TF Serving call for 16 texts costs little more than a call for one (the network is tiny, the
per-call overhead is not), so under load coalescing raises throughput and flattens tail latency. A
request waits at most ``max_wait`` for companions, and only while another upstream call is in flight:
with no concurrency it goes out alone at once (waiting then would add ``max_wait`` to every request
and buy nothing; measured by ``make bench``). A waiting batch also leaves as soon as it holds as many
rows as the calls in flight: under steady load two batches then alternate, one with the model server
while the next one is prepared here, instead of all the requests in flight going out in one call and
coming back together, with each process idle while the other works (docs/bench.md, change 22).

A request may hand over a row-wise ``post`` step (the version's calibration): it runs once on the
whole batch's probabilities rather than once per request, since numpy's per-call cost on a few rows is
most of its cost (docs/bench.md, change 11).

No queue and no worker task: a request joins a pending list, and the first one of a batch schedules the
batch's departure on the event loop (at once when the model server is idle, after ``max_wait`` when
not), so a request costs a list append and a future, not a queue hand-off and a timeout task.

A request may also hand over its texts and the version's vectorizer instead of rows
(:meth:`Batcher.submit_texts`): the batch then vectorizes all its texts when it departs, one after the
other in one loop, as the in-process ceiling does. Vectorizing looks up every token in the vocabulary's
tables, and between two requests the rest of the sidecar's work pushes those tables out of the CPU's
caches: a document vectorized right after another costs about half what it costs alone (docs/bench.md,
change 18). A batch with more than ``inline_chars`` characters to vectorize does it on the vectorizing
thread, so the event loop is never held for long."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from contracts.signature import Row, pad
from preprocess_service import logs
from preprocess_service.metrics import Metrics
from preprocess_service.upstream import Upstream

Post = Callable[[np.ndarray], np.ndarray]  # row-wise: rows' results do not depend on each other
Vectorize = Callable[[str], Row]  # the pinned version's vectorizer (Vectorizer.transform_one)

# a batch with more characters than this to vectorize does it on the vectorizing thread: ~2-5 ms of the
# event loop's time at most (400-word documents vectorize at 30-50 characters per microsecond)
INLINE_CHARS = 100_000


@cache
def vectorizing_thread() -> ThreadPoolExecutor:
    """The one thread large vectorizing work runs on: one, not a pool, so that large requests queue
    behind each other rather than multiply the GIL's contenders."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="vectorize")


@dataclass
class _Item:
    version: int
    rows: Sequence[Row]  # a text item's: empty until its batch vectorizes it
    n: int  # how many rows it adds to the batch
    post: Post | None = None
    texts: Sequence[str] | None = None  # vectorized with ``vectorize`` when the batch departs
    vectorize: Vectorize | None = None
    vectorize_s: float = 0.0  # the time its own texts took
    request_id: str | None = field(default_factory=logs.request_id.get)
    future: asyncio.Future[np.ndarray] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _vectorize_items(items: Sequence[_Item]) -> None:
    """Every text item's rows, back to back (the vocabulary stays in cache from one text to the next)."""
    clock = time.perf_counter
    for item in items:
        t0 = clock()
        vectorize = item.vectorize
        assert item.texts is not None and vectorize is not None
        item.rows = [vectorize(t) for t in item.texts]
        item.vectorize_s = clock() - t0


class Batcher:
    def __init__(
        self,
        upstream: Upstream,
        metrics: Metrics,
        enabled: bool,
        max_size: int,
        max_wait_s: float,
        max_concurrent_calls: int = 8,
        inline_chars: int = INLINE_CHARS,
    ) -> None:
        self.upstream = upstream
        self.metrics = metrics
        self.enabled = enabled
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.max_calls = max_concurrent_calls
        self.inline_chars = inline_chars
        self._pending: deque[_Item] = deque()
        self._pending_rows = 0
        self._departure: asyncio.Handle | None = None  # the pending batch's scheduled departure
        self._calls: set[asyncio.Task[None]] = set()
        self._busy = 0  # upstream calls dispatched and not finished yet
        self._calling_rows = 0  # rows in those calls

    async def _call(self, version: int, rows: Sequence[Row], post: Post | None) -> np.ndarray:
        self.metrics.batch_size.observe(len(rows))
        ids, weights = pad(rows)
        probs = await self.upstream.predict(version, ids, weights)
        return probs if post is None else post(probs)

    async def submit(self, version: int, rows: Sequence[Row], post: Post | None = None) -> np.ndarray:
        """The model's probabilities for ``rows`` (``post`` applied to them), in their order."""
        if not self.enabled or len(rows) >= self.max_size:
            return await self._call(version, rows, post)
        item = _Item(version, rows, len(rows), post)
        self._join(item)
        return await item.future

    async def submit_texts(
        self, version: int, texts: Sequence[str], vectorize: Vectorize, post: Post | None = None
    ) -> tuple[np.ndarray, list[Row], float]:
        """:meth:`submit` for ``texts``, vectorized with ``vectorize`` when their batch departs, with
        the other requests' texts. Returns the probabilities, the rows and the seconds these texts took
        to vectorize."""
        item = _Item(version, (), len(texts), post, texts, vectorize)
        if not self.enabled or len(texts) >= self.max_size:
            _vectorize_items([item])
            probs = await self._call(version, item.rows, post)
        else:
            self._join(item)
            probs = await item.future
        return probs, list(item.rows), item.vectorize_s

    def _join(self, item: _Item) -> None:
        self._pending.append(item)
        self._pending_rows += item.n
        rows = self._pending_rows
        # while calls are in flight, a batch also leaves once it holds as many rows as they do (half the
        # rows in the batcher): batches then alternate, one with the model server while the next is
        # prepared here, instead of the whole concurrency going and coming back in one (docs/bench.md,
        # change 22)
        if rows >= self.max_size or (self._busy and rows >= self._calling_rows):
            self._depart()
        elif self._departure is None:
            loop = asyncio.get_running_loop()
            # idle upstream: go on the loop's next turn with whatever has arrived by then; busy: wait
            # up to max_wait for companions
            self._departure = (
                loop.call_later(self.max_wait_s, self._depart) if self._busy else loop.call_soon(self._depart)
            )

    def _depart(self) -> None:
        """Send full batches while a call slot is free, then the rest, or schedule the rest to wait for
        companions (calls are in flight now)."""
        if self._departure is not None:
            self._departure.cancel()
            self._departure = None
        while self._pending and self._busy < self.max_calls:
            batch, size = [], 0
            while self._pending and size < self.max_size:
                item = self._pending.popleft()
                batch.append(item)
                size += item.n
            self._pending_rows -= size
            self._dispatch_batch(batch)
            if self._pending_rows < self.max_size:
                break
        if self._pending and self._busy < self.max_calls:
            self._departure = asyncio.get_running_loop().call_later(self.max_wait_s, self._depart)
        # with every slot taken, the rest leaves when a call finishes (_dispatch)

    def _dispatch_batch(self, batch: list[_Item], capped: bool = True) -> None:
        # one call per version and post step (requests for one version share its calibration)
        groups: dict[tuple[int, Post | None], list[_Item]] = {}
        for item in batch:
            groups.setdefault((item.version, item.post), []).append(item)
        back: list[_Item] = []  # groups no call slot is left for, in the order they arrived
        for (version, post), items in groups.items():
            if capped and self._busy >= self.max_calls:
                back.extend(items)
                continue
            self._busy += 1
            self._calling_rows += sum(item.n for item in items)
            task = asyncio.create_task(self._dispatch(version, post, items))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
        # back to the front of the line, ahead of later arrivals, the groups in their own order
        for item in reversed(back):
            self._pending.appendleft(item)
            self._pending_rows += item.n

    async def _dispatch(self, version: int, post: Post | None, items: list[_Item]) -> None:
        # this task serves the requests of a batch: name them
        ids = list(dict.fromkeys(i.request_id for i in items if i.request_id))
        logs.request_id.set(",".join(ids[: logs.MAX_FORWARDED_IDS]) or None)
        try:
            try:
                await self._vectorize(items)
                rows = [row for item in items for row in item.rows]
                probs = await self._call(version, rows, post)
            except Exception as exc:  # every waiter gets the same typed error
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(exc)
                return
            start = 0
            for item in items:
                end = start + item.n
                if not item.future.done():
                    item.future.set_result(probs[start:end])
                start = end
        finally:
            self._busy -= 1
            self._calling_rows -= sum(item.n for item in items)
            if self._pending and self._departure is None:  # requests were waiting for a free slot
                self._depart()

    async def _vectorize(self, items: list[_Item]) -> None:
        texts = [item for item in items if item.texts is not None]
        if not texts:
            return
        if sum(len(t) for item in texts for t in item.texts or ()) <= self.inline_chars:
            _vectorize_items(texts)
            return
        await asyncio.get_running_loop().run_in_executor(vectorizing_thread(), _vectorize_items, texts)

    async def aclose(self) -> None:
        """Send what is still pending (slots or not) and wait for every call in flight."""
        if self._departure is not None:
            self._departure.cancel()
            self._departure = None
        if self._pending:
            batch = list(self._pending)
            self._pending.clear()
            self._pending_rows = 0
            self._dispatch_batch(batch, capped=False)
        if self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)
