"""Vectorizing a large request runs on the vectorizing thread, a small one inline on the event loop's
(the bench's flood measurement shows what that buys /healthz)."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

from preprocess_service import answer


class _RecordingVectorizer:
    def __init__(self) -> None:
        self.threads: list[str] = []

    def transform_one(self, text: str) -> tuple[list[int], list[float]]:
        self.threads.append(threading.current_thread().name)
        return [len(text) % 7], [1.0]


def _model(vec: _RecordingVectorizer) -> Any:
    return SimpleNamespace(vectorizer=vec)


def test_large_requests_are_vectorized_off_the_event_loop() -> None:
    vec = _RecordingVectorizer()

    async def go() -> tuple[list[Any], list[Any]]:
        small = await answer.preprocess_off_loop(_model(vec), ["a" * 100, "b" * 100], offload_chars=1000)
        large = await answer.preprocess_off_loop(_model(vec), ["a" * 800, "b" * 800], offload_chars=1000)
        return small, large

    small, large = asyncio.run(go())
    main = threading.main_thread().name
    assert vec.threads[:2] == [main, main]
    assert all(t.startswith("vectorize") for t in vec.threads[2:]) and len(vec.threads) == 4
    assert small == [([100 % 7], [1.0])] * 2
    assert [r[0] for r in large] == [[800 % 7], [800 % 7]]
