"""A sliding window of answers (time, ok, latency) for the fallback's error rate and p99."""

from __future__ import annotations

import math
import time
from collections import deque


class Window:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._items: deque[tuple[float, bool, float]] = deque()
        self._errors = 0

    def _trim(self, now: float) -> None:
        while self._items and self._items[0][0] < now - self.seconds:
            _, ok, _ = self._items.popleft()
            self._errors -= not ok

    def add(self, ok: bool, latency_s: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._items.append((now, ok, latency_s))
        self._errors += not ok
        self._trim(now)

    def stats(self, now: float | None = None) -> tuple[int, float, float]:
        """(answers, error rate, p99 latency in ms) over the window; p99 over successful answers."""
        self._trim(time.monotonic() if now is None else now)
        n = len(self._items)
        if not n:
            return 0, 0.0, 0.0
        lat = sorted(lat for _, ok, lat in self._items if ok)
        p99 = lat[min(len(lat) - 1, math.ceil(0.99 * len(lat)) - 1)] * 1000 if lat else 0.0
        return n, self._errors / n, p99
