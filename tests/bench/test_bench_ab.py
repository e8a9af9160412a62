"""bench.ab: arms parsed from the command line, per-round ratios to the first arm, and a real run of two
sidecar configurations in front of one model server (tiny windows; no timing is asserted)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench import ab
from bench.runner import BenchSettings


def test_arms_parse_names_and_settings() -> None:
    assert ab.parse_arm("base=") == ("base", {})
    assert ab.parse_arm("x=batch_max_wait_ms:0.75/batch_max_size:16") == (
        "x",
        {"batch_max_wait_ms": "0.75", "batch_max_size": "16"},
    )
    for bad in ("noequals", "=a:1", "x=a", "x=:1"):
        with pytest.raises(ValueError):
            ab.parse_arm(bad)


def test_ratios_are_taken_within_each_round() -> None:
    def figures(rps: float, cpu: float) -> dict[str, float]:
        return {"throughput_rps": rps, "p99_ms": 10.0, "sidecar_cpu_ms": cpu, "model_server_cpu_ms": 0.3}

    # the machine halves its speed between rounds; b stays 10% faster than a in each round
    rounds = [
        {"a": figures(1000, 0.2), "b": figures(1100, 0.18)},
        {"a": figures(500, 0.4), "b": figures(550, 0.36)},
        {"a": figures(800, 0.25), "b": figures(880, 0.225)},
    ]
    s = ab.summarize(rounds)
    assert s["b"]["over_a"]["throughput_rps"] == pytest.approx(1.1)
    assert s["b"]["over_a"]["sidecar_cpu_ms"] == pytest.approx(0.9)
    assert s["a"]["over_a"]["throughput_rps"] == 1.0
    assert s["b"]["median"]["throughput_rps"] == 880  # raw medians mix rounds: not the comparison


def test_two_arms_are_measured_in_front_of_one_model_server(
    exported_models: Path, small_corpus_csv: Path, tmp_path: Path
) -> None:
    with small_corpus_csv.open(encoding="utf-8") as fh:
        docs = [row["text"] for row in csv.DictReader(fh)][:40]
    settings = BenchSettings(
        model_base=exported_models, duration_s=0.4, warmup_s=0.1, raw_dir=tmp_path, ready_timeout_s=240
    )
    arms = {"on": {}, "off": {"batch_enabled": "false"}}
    rounds = ab.measure(settings, docs, arms, rounds=2, concurrency=4, emit=lambda _line: None)
    assert len(rounds) == 2
    for row in rounds:
        assert list(row) == ["on", "off"]
        for figures in row.values():
            assert figures["throughput_rps"] > 0 and figures["p99_ms"] > 0
            assert figures["sidecar_cpu_ms"] > 0 and figures["model_server_cpu_ms"] > 0
    summary = ab.summarize(rounds)
    assert summary["off"]["over_on"]["throughput_rps"] > 0
