"""A sliding window of answers (time, ok, latency) for the fallback's error rate and p99.

Every answer of the last ``seconds`` is kept (the p99 is exact), so the window holds as many entries as
the sidecar answers in that time: 60 s at 1,300 requests/s is 78,000. They are kept as two flat arrays
of doubles (16 bytes an answer) rather than a deque of tuples (about 120 bytes: the tuple and two float
objects), which had made the sidecar's RSS grow by ~10 MB over the first minute of the reliability
suite's soak. An error is stored as a negative latency (the p99 is over successful answers only)."""

from __future__ import annotations

import math
import time
from array import array

_COMPACT_AT = 4096  # drop the trimmed head once it is this long and at least half the arrays


class Window:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._times = array("d")
        self._latencies = array("d")  # seconds; -1.0 for an error
        self._head = 0  # entries before it are out of the window
        self._errors = 0

    def _trim(self, now: float) -> None:
        cutoff = now - self.seconds
        times, head = self._times, self._head
        while head < len(times) and times[head] < cutoff:
            self._errors -= self._latencies[head] < 0
            head += 1
        if head >= _COMPACT_AT and head * 2 >= len(times):
            del self._times[:head]
            del self._latencies[:head]
            head = 0
        self._head = head

    def add(self, ok: bool, latency_s: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._times.append(now)
        self._latencies.append(max(latency_s, 0.0) if ok else -1.0)
        self._errors += not ok
        self._trim(now)

    def stats(self, now: float | None = None) -> tuple[int, float, float]:
        """(answers, error rate, p99 latency in ms) over the window; p99 over successful answers."""
        self._trim(time.monotonic() if now is None else now)
        n = len(self._times) - self._head
        if not n:
            return 0, 0.0, 0.0
        lat = sorted(x for x in self._latencies[self._head :] if x >= 0)
        p99 = lat[min(len(lat) - 1, math.ceil(0.99 * len(lat)) - 1)] * 1000 if lat else 0.0
        return n, self._errors / n, p99
