"""The pieces under the process tests: the text-format reader/writer against TF Serving's own parser,
the rollout file's validation, the sliding window, sticky buckets, and the p99 fallback."""

from __future__ import annotations

import asyncio
import math
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from contracts.rollout import Fallback, Rollout, RolloutError, declared, parse, with_roles
from preprocess_service.lifecycle.routing import CANARY, STABLE, Lifecycle, bucket
from preprocess_service.lifecycle.window import SLOTS, SUB_BINS, Window, bin_upper, latency_bin
from preprocess_service.metrics import Metrics

CONFIG = """# a comment
model_config_list {
  config {
    name: 'news'
    base_path: "/models/news"
    model_platform: "tensorflow"
    model_version_policy { latest { num_versions: 2 } }
    version_labels { key: "old" value: 3 }
  }
  config { name: "other" base_path: "/models/other" model_platform: "tensorflow" }
}
"""


def test_rewrite_keeps_other_models_and_parses_with_tf_serving(tmp_path: Path) -> None:
    from local_model_server.model_config import VersionPolicy, read_model_config

    text = with_roles(CONFIG, "news", 4, 5, previous=3)
    (tmp_path / "models.config").write_text(text)
    cfg = read_model_config(tmp_path / "models.config").model_config_list.config
    assert [c.name for c in cfg] == ["news", "other"]
    assert VersionPolicy.of(cfg[0]).versions == {3, 4, 5}
    assert dict(cfg[0].version_labels) == {"old": 3, "stable": 4, "canary": 5, "previous": 3}
    decl = declared(text, "news")
    assert decl is not None and (decl.stable, decl.canary, decl.previous) == (4, 5, 3)
    assert declared(text, "missing") is None
    assert declared(CONFIG, "other") == declared(with_roles(CONFIG, "news", 1, None), "other")


@pytest.mark.parametrize("bad", ["model_config_list {", "model_config_list { config { name }", "a: b }"])
def test_malformed_config_is_refused(bad: str) -> None:
    with pytest.raises(RolloutError):
        parse(bad) if "}" not in bad[-1:] else declared(bad, "news")


@pytest.mark.parametrize(
    "doc",
    [
        '{"canary": {"mode": "mirror"}}',
        '{"canary": {"weight": 120}}',
        "[1]",
        "{",
        '{"fallback": {"max_error_rate": 2}}',
    ],
)
def test_bad_rollout_files_are_refused(doc: str) -> None:
    with pytest.raises(RolloutError):
        Rollout.from_json(doc)


def test_rollout_round_trip() -> None:
    ro = Rollout("shadow", 12.5, Fallback(30, 5, 0.1, 250))
    assert Rollout.from_json(ro.to_json()) == ro
    assert Rollout.from_json(b"") == Rollout()


def _exact_p99_ms(latencies: list[float]) -> float:
    good = sorted(latencies)
    return good[min(len(good) - 1, math.ceil(0.99 * len(good)) - 1)] * 1000 if good else 0.0


def test_window_error_rate_and_p99_forget_old_answers() -> None:
    w = Window(10)
    for i in range(99):
        w.add(True, 0.01, now=100 + i * 0.01)
    w.add(True, 2.0, now=101)
    # nearest rank: 1 slow answer in 100 is not the p99; the p99 is its bin's upper edge (<= 1/64 above)
    assert 10 <= w.stats(now=101)[2] <= 10 * (1 + 1 / SUB_BINS)
    w.add(True, 2.0, now=101)
    w.add(False, 0.0, now=101)
    n, err, p99 = w.stats(now=101)
    assert n == 102 and err == pytest.approx(1 / 102) and 2000 <= p99 <= 2000 * (1 + 1 / SUB_BINS)
    assert w.stats(now=200) == (0, 0.0, 0.0)


def test_window_equals_a_plain_list_through_many_slots() -> None:
    """Against every answer kept in a list: the same answers in the window (a slot of seconds/60 leaves
    once it ended `seconds` ago), the exact count and error rate, the p99 within its bin."""
    rng = random.Random(7)
    w, ref = Window(5), []
    slot = 5 / SLOTS
    now = 0.0
    for i in range(30_000):  # ~6 answers per simulated second: several windows
        now += rng.uniform(0, 0.33)
        ok, lat = rng.random() > 0.05, rng.choice([0.0, rng.uniform(0.001, 0.2), rng.uniform(1e-6, 50)])
        w.add(ok, lat, now=now)
        ref.append((now, ok, lat))
        if i % 997 == 0:
            oldest = math.floor((now - 5) / slot)
            live = [(ok_, lat_) for t, ok_, lat_ in ref if math.floor(t / slot) >= oldest]
            exact = _exact_p99_ms([lat_ for ok_, lat_ in live if ok_])
            n, err, p99 = w.stats(now=now)
            assert n == len(live) and err == pytest.approx(sum(not ok_ for ok_, _ in live) / len(live))
            assert exact <= p99 <= exact * (1 + 1 / SUB_BINS), (exact, p99)
    assert w.size() <= 3 * SLOTS * SUB_BINS


def test_window_memory_does_not_grow_with_the_rate() -> None:
    """The soak's case: thousands of answers a second. What the window holds stays bounded by its slots
    and bins, not by the answers (the list it replaces held every one of the last 60 s)."""
    rng = random.Random(3)
    w = Window(60)
    sizes = []
    for second in range(90):
        for k in range(2_000):  # 2,000 answers a second, latencies 2-40 ms
            w.add(True, rng.uniform(0.002, 0.04), now=second + k / 2_000)
        sizes.append(w.size())
    n, err, p99 = w.stats(now=90)
    assert n == pytest.approx(2_000 * 60, rel=0.02) and err == 0
    assert 39.6 * 0.98 <= p99 <= 40 * (1 + 1 / SUB_BINS)
    # bounded by slots x bins (61 x ~280 here, each bin counted in its slot and the total), flat once full
    assert max(sizes) < 20_000 and max(sizes[61:]) <= 1.05 * max(sizes[:61])


@pytest.mark.parametrize("seconds", [0.0, 1e-7, 0.000_999, 0.001, 0.0123, 0.5, 1.0, 7.3, 3600.0])
def test_latency_bins_are_ordered_and_tight(seconds: float) -> None:
    b = latency_bin(seconds)
    upper = bin_upper(b)
    assert seconds <= upper <= seconds * (1 + 1 / SUB_BINS) or (seconds == 0 and upper == 0)
    assert latency_bin(seconds * 1.05 + 1e-9) > b  # a latency 5% larger never shares the bin


def test_buckets_are_sticky_and_spread() -> None:
    assert bucket("client-1") == bucket("client-1")
    share = sum(bucket(f"k{i}") < 10 for i in range(20_000)) / 20_000
    assert 0.09 < share < 0.11


def test_slow_canary_is_stopped_on_p99_and_stable_answers() -> None:
    stable = SimpleNamespace(version=1)
    canary = SimpleNamespace(version=2)
    source = SimpleNamespace(
        rollout=Rollout("split", 100, Fallback(60, 5, 0.5, 50)),
        revision=1,
        declared=SimpleNamespace(canary=2),
    )
    registry = SimpleNamespace(canary=canary, source=source)
    lc = Lifecycle(registry, Metrics())  # type: ignore[arg-type]

    async def call(m: Any) -> list[Any]:
        await asyncio.sleep(0.08 if m is canary else 0)
        return [SimpleNamespace(top_label=f"v{m.version}")]

    async def main() -> list[tuple[int, str]]:
        out = []
        for i in range(10):
            _, model, role = await lc.run(lc.plan(stable, f"key{i}"), call)  # type: ignore[arg-type]
            out.append((model.version, role))
        return out

    seen = asyncio.run(main())
    assert seen[:5] == [(2, CANARY)] * 5 and seen[5:] == [(1, STABLE)] * 5
    assert lc.fallback_reason is not None and "p99" in lc.fallback_reason
    source.revision = 2  # declared again: the canary gets a fresh window
    assert lc.canary_active()


def test_a_canary_the_declaration_has_moved_past_gets_no_traffic() -> None:
    # the registry still holds canary 2 while the file already declares 3: 2 may be unloaded already
    canary = SimpleNamespace(version=2)
    source = SimpleNamespace(
        rollout=Rollout("split", 100, Fallback()), revision=1, declared=SimpleNamespace(canary=3)
    )
    lc = Lifecycle(SimpleNamespace(canary=canary, source=source), Metrics())  # type: ignore[arg-type]
    assert not lc.canary_active()
    stable = SimpleNamespace(version=1)
    assert lc.plan(stable, None).role == "stable"  # type: ignore[arg-type]
    source.declared = SimpleNamespace(canary=2)
    assert lc.canary_active()
    assert lc.plan(stable, None).role == "canary"  # type: ignore[arg-type]
