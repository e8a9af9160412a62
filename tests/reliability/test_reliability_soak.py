"""Sustained load: 60 s at concurrency 64 against the real sidecar and model server, after a warm-up.
No errors, and the sidecar's RSS grows by at most 10% from the end of the warm-up to the end of the run."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from rel_support import PROBES, Load, Proc, Stack, http_request, proc_stats, summarize

CONCURRENCY = 64
WARMUP_S = 10.0
DURATION_S = 60.0
MAX_REQUESTS = 2_000_000  # a bound that the duration reaches first on this machine


def _bodies() -> list[bytes]:
    out = [http_request("/v1/classify", json.dumps({"text": t}).encode()) for t in PROBES]
    out.append(
        http_request("/v1/classify", json.dumps({"texts": PROBES, "return_probabilities": True}).encode())
    )
    out.append(http_request("/classify", json.dumps({"text": PROBES[1]}).encode()))
    return out


def test_soak_60s_concurrency_64_no_errors_rss_bounded(
    shared: tuple[Stack, Proc, Proc], figures: dict[str, Any]
) -> None:
    _stack, _server, sidecar = shared
    pid, port = sidecar.popen.pid, sidecar.ports["http"]
    with Load(
        port, _bodies(), concurrency=CONCURRENCY, duration_s=WARMUP_S, max_requests=MAX_REQUESTS
    ) as warm:
        pass
    start = proc_stats(pid)
    samples: list[dict[str, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(5):
            samples.append(proc_stats(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    with Load(
        port,
        _bodies(),
        concurrency=CONCURRENCY,
        duration_s=DURATION_S,
        max_requests=MAX_REQUESTS,
        timeout_s=30,
    ) as soak:
        pass
    elapsed = time.monotonic() - t0
    stop.set()
    sampler.join(10)
    end = proc_stats(pid)
    results = soak.results
    bad = [r for r in results if r.status != 200]
    peak = max([s["rss_kib"] for s in samples] + [end["rss_kib"]])
    growth = end["rss_kib"] / start["rss_kib"] - 1
    figures["requests"] += len(results) + len(warm.results)
    figures["failures"] += len(bad) + sum(1 for r in warm.results if r.status != 200)
    figures["details"] = {
        "concurrency": CONCURRENCY,
        "duration_s": round(elapsed, 1),
        "requests_per_s": round(len(results) / elapsed, 1),
        "rss_mib_after_warmup": round(start["rss_kib"] / 1024, 1),
        "rss_mib_end": round(end["rss_kib"] / 1024, 1),
        "rss_mib_peak": round(peak / 1024, 1),
        "rss_growth_pct": round(100 * growth, 2),
        "threads_end": end["threads"],
        "fds_end": end["fds"],
        **summarize(results),
    }
    assert elapsed >= DURATION_S - 1, f"the load stopped early ({elapsed:.1f}s): raise MAX_REQUESTS"
    assert all(r.status == 200 for r in warm.results), summarize(warm.results)
    assert not bad, summarize(bad)
    assert len(results) > 1000, summarize(results)
    assert growth <= 0.10, f"RSS grew {100 * growth:.1f}% ({start} -> {end}; samples {samples})"
    assert end["threads"] <= start["threads"] + 2 and end["fds"] <= start["fds"] + CONCURRENCY + 8
