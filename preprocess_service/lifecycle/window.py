"""A sliding window of answers (ok or not, latency) for the fallback's error rate and p99, in memory that
does not grow with the request rate.

The window is cut into ``SLOTS`` slots of ``seconds / SLOTS`` each; a slot counts its answers, its errors
and its successful answers' latencies in log-spaced bins (``SUB_BINS`` per power of two, so a bin is at
most 1/64 = 1.6% wide relative to its values). The p99 is the upper edge of the bin holding the
nearest-rank 99th percentile: never below the exact p99 and at most 1.6% above it. The window covers
the answers of the last ``seconds``, give or take the current slot (1/60 of it): a slot leaves the window
once it ended ``seconds`` ago.

Why not every answer: the window held every answer of the last 60 s (16 bytes each), so the sidecar's
memory grew with its request rate, 6 MB at 6,500 requests/s plus the arrays' slack, and the reliability
suite's soak saw the sidecar's RSS rise 15% over its minute on a fast machine. Now a window holds at most
``SLOTS`` slots of at most a few hundred bins, whatever the rate. Counts and the error rate are exact."""

from __future__ import annotations

import math
import time
from collections import deque

SLOTS = 60
SUB_BINS = 64  # bins per power of two: a bin's width over its lower edge is at most 1/64
_ZERO = -(1 << 30)  # the bin of a zero latency (its upper edge is 0)


def latency_bin(seconds: float) -> int:
    """The bin of a latency >= 0: ordered as the latencies are."""
    if seconds <= 0.0:
        return _ZERO
    mantissa, exponent = math.frexp(seconds)  # seconds = mantissa * 2**exponent, 0.5 <= mantissa < 1
    return exponent * SUB_BINS + int((mantissa - 0.5) * 2 * SUB_BINS)


def bin_upper(b: int) -> float:
    """The upper edge of bin ``b``, in seconds: every latency in it is at most this."""
    if b == _ZERO:
        return 0.0
    exponent, sub = divmod(b, SUB_BINS)
    return math.ldexp(0.5 + (sub + 1) / (2 * SUB_BINS), exponent)


class _Slot:
    __slots__ = ("bins", "errors", "index", "n")

    def __init__(self, index: int) -> None:
        self.index = index
        self.n = 0
        self.errors = 0
        self.bins: dict[int, int] = {}


class Window:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._slot_s = seconds / SLOTS
        self._slots: deque[_Slot] = deque()
        self._bins: dict[int, int] = {}  # the live slots' bins added up
        self._n = 0
        self._errors = 0

    def _trim(self, now: float) -> None:
        # slot k covers [k, k + 1) slot widths; it leaves once its end is `seconds` old
        oldest = math.floor((now - self.seconds) / self._slot_s)
        slots, total = self._slots, self._bins
        while slots and slots[0].index < oldest:
            gone = slots.popleft()
            self._n -= gone.n
            self._errors -= gone.errors
            for b, count in gone.bins.items():
                left = total[b] - count
                if left:
                    total[b] = left
                else:
                    del total[b]

    def add(self, ok: bool, latency_s: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        index = math.floor(now / self._slot_s)
        slots = self._slots
        # a later slot starts here; a clock that went back counts in the newest slot
        if not slots or slots[-1].index < index:
            slots.append(_Slot(index))
            self._trim(now)
        slot = slots[-1]
        slot.n += 1
        self._n += 1
        if ok:
            b = latency_bin(latency_s)
            slot.bins[b] = slot.bins.get(b, 0) + 1
            self._bins[b] = self._bins.get(b, 0) + 1
        else:
            slot.errors += 1
            self._errors += 1

    def stats(self, now: float | None = None) -> tuple[int, float, float]:
        """(answers, error rate, p99 latency in ms) over the window; p99 over successful answers, as the
        upper edge of its bin (at most 1.6% above the exact value, never below it)."""
        self._trim(time.monotonic() if now is None else now)
        n = self._n
        if not n:
            return 0, 0.0, 0.0
        good = n - self._errors
        p99 = 0.0
        if good:
            rank = math.ceil(0.99 * good)  # nearest rank, as sorted(latencies)[rank - 1]
            seen = 0
            for b in sorted(self._bins):
                seen += self._bins[b]
                if seen >= rank:
                    p99 = bin_upper(b) * 1000
                    break
        return n, self._errors / n, p99

    def size(self) -> int:
        """Slots and bins held: what the window's memory grows with (bounded, whatever the rate)."""
        return len(self._slots) + sum(len(s.bins) for s in self._slots) + len(self._bins)
