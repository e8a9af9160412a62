"""The micro-batcher: concurrent requests become one upstream call, each gets its own rows back, and a
request's row-wise post step (the version's calibration) runs once per call on the whole batch."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from preprocess_service.batching import Batcher
from preprocess_service.errors import UpstreamTimeout
from preprocess_service.metrics import Metrics


class EchoUpstream:
    """Answers each padded row with [first id, number of ids], after ``delay_s``."""

    transport = "echo"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls: list[tuple[int, int]] = []  # (version, rows)
        self.fail: Exception | None = None

    async def predict(self, version: int, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        self.calls.append((version, len(ids)))
        await asyncio.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        return np.stack([ids[:, 0].astype(np.float64), (weights > 0).sum(axis=1)], axis=1)


class CountingPost:
    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.batches: list[int] = []

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        self.batches.append(len(probs))
        return probs * self.scale


def rows(*first_ids: int) -> list[tuple[list[int], list[float]]]:
    return [([i, 100 + i], [0.5, 0.5]) for i in first_ids]


def run_async(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))  # type: ignore[arg-type]

    return wrapper


BUSY_ROWS = 8


async def keep_busy(batcher: Batcher, post: CountingPost | None = None) -> asyncio.Task[Any]:
    """A first request of BUSY_ROWS rows that keeps the upstream busy, so the next ones (fewer rows in
    all) wait for companions."""
    first = asyncio.create_task(batcher.submit(1, rows(*range(1, BUSY_ROWS + 1)), post))
    await asyncio.sleep(0.01)
    return first


def make(upstream: EchoUpstream, enabled: bool = True) -> Batcher:
    return Batcher(upstream, Metrics(), enabled=enabled, max_size=32, max_wait_s=0.02)  # type: ignore[arg-type]


@run_async
async def test_concurrent_requests_share_one_call_and_one_post_step() -> None:
    upstream = EchoUpstream(delay_s=0.05)
    batcher = make(upstream)
    post = CountingPost(10.0)
    # a first request keeps the upstream busy, so the next three wait for companions and go together
    first = await keep_busy(batcher, post=post)
    results = await asyncio.gather(
        batcher.submit(1, rows(2, 3), post),
        batcher.submit(1, rows(4), post),
        batcher.submit(1, rows(5), post),
    )
    await first
    assert upstream.calls == [(1, BUSY_ROWS), (1, 4)]
    assert post.batches == [BUSY_ROWS, 4]  # once per call, not once per request
    assert [r[:, 0].tolist() for r in results] == [[20.0, 30.0], [40.0], [50.0]]  # each its own rows
    assert all((r[:, 1] == 20.0).all() for r in results)  # two ids per row, scaled by post
    await batcher.aclose()


@run_async
async def test_requests_with_different_post_steps_or_versions_are_not_mixed() -> None:
    upstream = EchoUpstream(delay_s=0.05)
    batcher = make(upstream)
    a, b = CountingPost(1.0), CountingPost(-1.0)
    first = await keep_busy(batcher, post=a)
    ra, rb, rc = await asyncio.gather(
        batcher.submit(1, rows(2), a), batcher.submit(1, rows(3), b), batcher.submit(2, rows(4), a)
    )
    await first
    assert sorted(upstream.calls[1:]) == [(1, 1), (1, 1), (2, 1)]
    assert (ra[0, 0], rb[0, 0], rc[0, 0]) == (2.0, -3.0, 4.0)
    assert sorted(a.batches) == [1, 1, BUSY_ROWS] and b.batches == [1]
    await batcher.aclose()


@pytest.mark.parametrize("enabled", [True, False])
@run_async
async def test_a_lone_request_gets_its_post_step(enabled: bool) -> None:
    upstream = EchoUpstream()
    batcher = make(upstream, enabled=enabled)
    post = CountingPost(2.0)
    out = await batcher.submit(3, rows(7, 8), post)
    assert out[:, 0].tolist() == [14.0, 16.0] and post.batches == [2]
    plain = await batcher.submit(3, rows(9))
    assert plain[:, 0].tolist() == [9.0]
    await batcher.aclose()


@run_async
async def test_a_failed_call_fails_every_request_in_it_with_the_same_error() -> None:
    upstream = EchoUpstream(delay_s=0.05)
    batcher = make(upstream)
    first = await keep_busy(batcher)
    upstream.fail = UpstreamTimeout("model server timed out")
    results = await asyncio.gather(
        batcher.submit(1, rows(2)), batcher.submit(1, rows(3)), return_exceptions=True
    )
    await asyncio.gather(first, return_exceptions=True)
    assert upstream.calls == [(1, BUSY_ROWS), (1, 2)]
    assert [type(r) for r in results] == [UpstreamTimeout, UpstreamTimeout]
    assert results[0] is results[1]
    await batcher.aclose()


@run_async
async def test_a_waiting_batch_leaves_once_it_holds_as_many_rows_as_the_calls_in_flight() -> None:
    upstream = EchoUpstream(delay_s=0.2)
    batcher = make(upstream)  # waits up to 20 ms for companions
    first = asyncio.create_task(batcher.submit(1, rows(1, 2, 3)))  # alone: the upstream was idle
    await asyncio.sleep(0.005)
    waiting = asyncio.create_task(batcher.submit(1, rows(4, 5)))  # 2 rows, 3 in flight: waits
    await asyncio.sleep(0.005)
    assert upstream.calls == [(1, 3)]
    third = asyncio.create_task(batcher.submit(1, rows(6)))  # 3 rows, as many as in flight: they go
    await asyncio.sleep(0.005)  # well before the 20 ms wait is over
    assert upstream.calls == [(1, 3), (1, 3)]
    # with 6 rows in flight now, a lone row waits for companions until max_wait
    fourth = asyncio.create_task(batcher.submit(1, rows(7)))
    await asyncio.sleep(0.005)
    assert upstream.calls == [(1, 3), (1, 3)]
    await asyncio.sleep(0.03)
    assert upstream.calls == [(1, 3), (1, 3), (1, 1)]
    results = await asyncio.gather(first, waiting, third, fourth)
    assert [r[:, 0].tolist() for r in results] == [[1.0, 2.0, 3.0], [4.0, 5.0], [6.0], [7.0]]
    await batcher.aclose()


@run_async
async def test_calls_in_flight_never_exceed_the_limit_and_waiting_requests_go_when_a_slot_frees() -> None:
    upstream = EchoUpstream(delay_s=0.02)
    in_flight, peak = 0, 0
    predict = upstream.predict

    async def counted(version: int, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.013 * version)  # calls finish at different times
            return await predict(version, ids, weights)
        finally:
            in_flight -= 1

    upstream.predict = counted  # type: ignore[method-assign]
    batcher = Batcher(upstream, Metrics(), enabled=True, max_size=4, max_wait_s=0.001, max_concurrent_calls=2)  # type: ignore[arg-type]
    results = await asyncio.gather(*(batcher.submit(v % 2, rows(i)) for i, v in enumerate(range(40))))
    assert [r[0, 0] for r in results] == [float(i) for i in range(40)]
    assert peak == 2
    assert sum(n for _, n in upstream.calls) == 40 and max(n for _, n in upstream.calls) <= 4
    await batcher.aclose()


@run_async
async def test_aclose_sends_what_is_pending() -> None:
    upstream = EchoUpstream(delay_s=0.05)
    batcher = make(upstream)
    first = await keep_busy(batcher)
    waiting = asyncio.create_task(batcher.submit(1, rows(2)))  # waits 20 ms for companions
    await asyncio.sleep(0)
    await batcher.aclose()
    assert (await first)[0, 0] == 1.0 and (await waiting)[0, 0] == 2.0


@run_async
async def test_groups_left_without_a_call_slot_keep_their_arrival_order() -> None:
    upstream = EchoUpstream(delay_s=0.05)
    batcher = Batcher(
        upstream,  # type: ignore[arg-type]
        Metrics(),
        enabled=True,
        max_size=32,
        max_wait_s=0.005,
        max_concurrent_calls=2,
    )
    first = await keep_busy(batcher)
    # three versions wait together; when they leave only one slot is free, so two go back in line
    results = await asyncio.gather(*(batcher.submit(v, rows(v)) for v in (2, 3, 4)))
    await first
    assert [r[0, 0] for r in results] == [2.0, 3.0, 4.0]
    assert [v for v, _ in upstream.calls] == [1, 2, 3, 4]  # not 4 before 3
    await batcher.aclose()


class RecordingVectorizer:
    """A text's row is [its length, 100 + its length]; records each text and the thread it ran on."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.seen: list[tuple[str, str]] = []
        self.fail_on = fail_on

    def __call__(self, text: str) -> tuple[list[int], list[float]]:
        self.seen.append((text, threading.current_thread().name))
        if text == self.fail_on:
            raise ValueError(f"cannot vectorize {text!r}")
        return [len(text), 100 + len(text)], [0.5, 0.5]


@run_async
async def test_texts_are_vectorized_together_when_their_batch_departs() -> None:
    upstream = EchoUpstream(delay_s=0.05)
    batcher = make(upstream)
    vec = RecordingVectorizer()
    first = await keep_busy(batcher)
    pending = [
        asyncio.create_task(batcher.submit_texts(1, texts, vec)) for texts in (["a", "bb"], ["ccc"], ["dddd"])
    ]
    await asyncio.sleep(0)  # all three joined the batch, which waits for companions: nothing vectorized
    assert vec.seen == []
    results = await asyncio.gather(*pending)
    await first
    main = threading.main_thread().name
    assert vec.seen == [("a", main), ("bb", main), ("ccc", main), ("dddd", main)]  # in arrival order
    assert upstream.calls == [(1, BUSY_ROWS), (1, 4)]  # one call for the three requests
    assert [probs[:, 0].tolist() for probs, _, _ in results] == [[1.0, 2.0], [3.0], [4.0]]
    assert [rows for _, rows, _ in results] == [
        [([1, 101], [0.5, 0.5]), ([2, 102], [0.5, 0.5])],
        [([3, 103], [0.5, 0.5])],
        [([4, 104], [0.5, 0.5])],
    ]
    assert all(seconds > 0 for _, _, seconds in results)
    await batcher.aclose()


@pytest.mark.parametrize("enabled", [True, False])
@run_async
async def test_texts_over_the_inline_limit_are_vectorized_on_the_vectorizing_thread(enabled: bool) -> None:
    upstream = EchoUpstream()
    batcher = Batcher(upstream, Metrics(), enabled=enabled, max_size=32, max_wait_s=0.02, inline_chars=10)  # type: ignore[arg-type]
    vec = RecordingVectorizer()
    small, _, _ = await batcher.submit_texts(1, ["abc", "defg"], vec)
    large, _, _ = await batcher.submit_texts(1, ["x" * 6, "y" * 6], vec)
    threads = [thread for _, thread in vec.seen]
    assert threads[:2] == [threading.main_thread().name] * 2
    # a lone request with batching off vectorizes inline: only a batch moves it off the loop
    if enabled:
        assert all(t.startswith("vectorize") for t in threads[2:]), threads
    assert (small[:, 0].tolist(), large[:, 0].tolist()) == ([3.0, 4.0], [6.0, 6.0])
    await batcher.aclose()


@run_async
async def test_a_text_that_fails_to_vectorize_fails_its_batch_and_the_next_batch_is_served() -> None:
    upstream = EchoUpstream(delay_s=0.02)
    batcher = make(upstream)
    vec = RecordingVectorizer(fail_on="bad")
    first = await keep_busy(batcher)
    results = await asyncio.gather(
        batcher.submit_texts(1, ["ok"], vec), batcher.submit_texts(1, ["bad"], vec), return_exceptions=True
    )
    await first
    assert [type(r) for r in results] == [ValueError, ValueError] and results[0] is results[1]
    assert upstream.calls == [(1, BUSY_ROWS)]  # the failed batch never reached the model server
    probs, _, _ = await batcher.submit_texts(1, ["fine"], vec)
    assert probs[:, 0].tolist() == [4.0]
    await batcher.aclose()
