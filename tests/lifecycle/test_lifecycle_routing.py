"""Split, sticky keys, shadow agreement, automatic fallback and broken versions, over a real stand-in
model server and a real sidecar that both read one declared model config (conftest.Lab)."""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx
from lc_support import SLOW_MS, SLOW_VERSION, Lab, classify_bodies, model_info, rollout_is, wait_for
from prometheus_client.parser import text_string_to_metric_families

from contracts.rollout import Fallback
from devstack.loadgen import Load, Result, http_request
from preprocess_service.lifecycle.routing import bucket


def versions(results: list[Result]) -> Counter[int]:
    return Counter(json.loads(r.body)["version"] for r in results if r.status == 200)


def failures(results: list[Result]) -> list[str]:
    return [f"{r.status} {r.error or r.body[:200]!r}" for r in results if r.status != 200]


def load(
    lab: Lab, requests: list[bytes], n: int, concurrency: int = 8, duration_s: float = 180
) -> list[Result]:
    with Load(
        lab.sidecar.ports["http"], requests, concurrency=concurrency, duration_s=duration_s, max_requests=n,
        keep_bodies=True,
    ) as ld:  # fmt: skip
        pass
    return ld.results


def sample(lab: Lab, name: str, **labels: str) -> float:
    text = httpx.get(f"{lab.url}/metrics", timeout=5).text
    total = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def test_split_sends_the_declared_share_and_names_the_version(lab: Lab) -> None:
    lab.publish(2)
    lab.declare(1, 2, weight=10)
    wait_for("canary 2 active", lambda: rollout_is(lab.url, 1, 2, active=True, weight=10))
    r = httpx.post(f"{lab.url}/v1/classify", json={"text": "The match ended in a draw."}, timeout=10)
    assert r.status_code == 200
    assert r.headers["x-model-version"] == str(r.json()["model"]["version"])
    assert r.headers["x-model-role"] == ("canary" if r.json()["model"]["version"] == 2 else "stable")
    reqs = [http_request("/classify", b) for b in classify_bodies()]
    results = load(lab, reqs, 2000)
    assert not failures(results), failures(results)[:5]
    seen = versions(results)
    assert set(seen) == {1, 2} and sum(seen.values()) == 2000, seen
    share = 100 * seen[2] / 2000
    print(f"measured canary share {share:.2f}% of 2000 requests (declared 10%)")
    assert 7 <= share <= 13, f"canary share {share:.1f}% for a declared 10% ({seen})"
    assert sample(lab, "sidecar_version_requests_total", version="2", role="canary", outcome="ok") >= seen[2]
    ro = model_info(lab.url)["rollout"]
    assert {(v["version"], v["role"]) for v in ro["versions"]} >= {(1, "stable"), (2, "canary")}


def test_client_key_keeps_a_client_on_one_version(lab: Lab) -> None:
    lab.publish(2)
    lab.declare(1, 2, weight=10)
    wait_for("canary 2 active", lambda: rollout_is(lab.url, 1, 2, active=True, weight=10))
    keys = [f"client-{i}" for i in range(300)]
    bodies = classify_bodies(len(keys))
    reqs = [http_request("/classify", b, {"X-Client-Key": k}) for k, b in zip(keys, bodies, strict=True)]
    results = load(lab, reqs, 3 * len(keys))
    assert not failures(results), failures(results)[:5]
    by_key: dict[str, set[int]] = {}
    for r in results:
        by_key.setdefault(keys[r.tag], set()).add(json.loads(r.body)["version"])
    assert all(len(v) == 1 for v in by_key.values()), {k: v for k, v in by_key.items() if len(v) > 1}
    canary_keys = {k for k, v in by_key.items() if v == {2}}
    assert canary_keys == {k for k in keys if bucket(k) < 10}
    assert 0 < len(canary_keys) < 0.2 * len(keys)


def test_shadow_returns_stable_and_measures_agreement(lab: Lab) -> None:
    lab.publish(2)
    lab.publish(3, "permuted")
    for canary, agree in ((2, lambda rate: rate == 1.0), (3, lambda rate: rate < 0.6)):
        lab.declare(1, canary, mode="shadow")
        wait_for(
            f"shadow canary {canary}", lambda c=canary: rollout_is(lab.url, 1, c, active=True, mode="shadow")
        )
        reqs = [http_request("/classify", b) for b in classify_bodies()]
        results = load(lab, reqs, 100, concurrency=4)
        assert not failures(results), failures(results)[:5]
        assert versions(results) == {1: 100}, "in shadow mode stable answers every request"
        labels = {"stable_version": "1", "canary_version": str(canary)}

        def compared(lb: dict[str, str] = labels) -> float:
            n = sum(
                sample(lab, "sidecar_shadow_comparisons_total", result=x, **lb) for x in ("agree", "disagree")
            )
            return n if n >= 100 else 0

        shadow_lines = lambda: [  # noqa: E731
            ln for ln in httpx.get(f"{lab.url}/metrics").text.splitlines() if "shadow" in ln or "canary" in ln
        ]
        assert wait_for("100 shadow comparisons", compared, timeout=30, fail=shadow_lines)
        rate = sample(lab, "sidecar_shadow_comparisons_total", result="agree", **labels) / compared()
        assert agree(rate), f"agreement {rate:.2f} with canary {canary}"
    assert model_info(lab.url)["rollout"]["shadow"]["compared"] >= 200


def test_failing_canary_falls_back_without_a_failed_request(lab: Lab) -> None:
    lab.publish(4, "failing")
    fb = Fallback(window_seconds=60, min_requests=10, max_error_rate=0.2, max_p99_ms=0)
    lab.declare(1, 4, weight=50, fallback=fb)
    wait_for("canary 4 active", lambda: rollout_is(lab.url, 1, 4, active=True, weight=50))
    reqs = [http_request("/classify", b) for b in classify_bodies()]
    results = load(lab, reqs, 400)
    assert not failures(results), failures(results)[:5]
    assert set(versions(results)) == {1}, "a failing canary never answers"
    ro = model_info(lab.url)["rollout"]
    assert ro["canary_active"] is False
    assert "error rate" in ro["fallback_reason"] and "version 4" in ro["fallback_reason"]
    assert sample(lab, "sidecar_canary_fallbacks_total", version="4", reason="error_rate") == 1
    # the canary got at most the window's first requests before it was stopped
    assert sample(lab, "sidecar_version_requests_total", version="4", role="canary") < 60
    assert "canary version 4 stopped" in lab.sidecar.log_tail(400)
    # declaring the rollout again (a new revision) gives the canary a fresh start
    lab.declare(1, 4, weight=50, fallback=Fallback(window_seconds=60, min_requests=10, max_error_rate=0.3))
    wait_for("canary 4 active again", lambda: rollout_is(lab.url, 1, 4, active=True))


def test_slow_canary_falls_back_on_p99_without_a_failed_request(lab: Lab) -> None:
    """The canary answers correctly but slowly (the stand-in delays every predict on it by SLOW_MS):
    its p99 over the window crosses max_p99_ms, and stable takes all traffic."""
    lab.publish(SLOW_VERSION)
    limit_ms = SLOW_MS / 2  # far above what stable takes here, far below the slow version's floor
    fb = Fallback(window_seconds=60, min_requests=10, max_error_rate=0.5, max_p99_ms=limit_ms)
    lab.declare(1, SLOW_VERSION, weight=50, fallback=fb)
    wait_for("slow canary active", lambda: rollout_is(lab.url, 1, SLOW_VERSION, active=True, weight=50))
    reqs = [http_request("/classify", b) for b in classify_bodies()]
    results = load(lab, reqs, 400)
    assert not failures(results), failures(results)[:5]
    seen = versions(results)
    assert 0 < seen[SLOW_VERSION] < 60, f"the slow canary answered before it was stopped: {seen}"
    slow = sorted(r.latency for r in results if json.loads(r.body)["version"] == SLOW_VERSION)
    assert slow[0] * 1000 >= SLOW_MS, f"the canary was not slow ({slow[0] * 1000:.0f} ms)"
    tail = [json.loads(r.body)["version"] for r in sorted(results, key=lambda r: r.t0)[-100:]]
    assert set(tail) == {1}, "after the fallback stable answers everything"
    ro = model_info(lab.url)["rollout"]
    assert ro["canary_active"] is False
    reason = ro["fallback_reason"]
    assert f"version {SLOW_VERSION}" in reason and "p99" in reason, reason
    assert f"> {limit_ms:.0f} ms" in reason, reason
    assert sample(lab, "sidecar_canary_fallbacks_total", version=str(SLOW_VERSION), reason="p99") == 1
    assert sample(lab, "sidecar_canary_fallbacks_total", version=str(SLOW_VERSION), reason="error_rate") == 0
    assert sample(lab, "sidecar_canary_weight_percent") == 0
    assert f"canary version {SLOW_VERSION} stopped: p99" in lab.sidecar.log_tail(400)
    print(f"slow canary: {seen[SLOW_VERSION]} of {len(results)} answers before the fallback; {reason}")
    lab.declare(1)
    wait_for("no canary", lambda: rollout_is(lab.url, 1, None))


def test_broken_versions_never_evict_stable(lab: Lab) -> None:
    reqs = [http_request("/classify", b) for b in classify_bodies()]
    with Load(
        lab.sidecar.ports["http"], reqs, concurrency=4, duration_s=60, max_requests=100_000, keep_bodies=True
    ) as ld:
        for v in (5, 6):
            lab.publish(v, "broken")
            lab.declare(1, v, weight=50)  # as a hand edit would: no gate in the way
            wait_for(
                f"broken canary {v} refused",
                lambda v=v: (
                    model_info(lab.url)["rollout"]["canary_version"] == v
                    and not model_info(lab.url)["rollout"]["canary_active"]
                ),
            )
            time.sleep(3)  # TF Serving's failed load of it happens meanwhile
        status = model_info(lab.url)["rollout"]["canary_status"]
        ld.stop()
    results = ld.results
    assert len(results) > 50
    assert not failures(results), failures(results)[:5]
    assert set(versions(results)) == {1}
    assert "6" in status, status
    lab.declare(1)
    wait_for("no canary", lambda: rollout_is(lab.url, 1, None))
