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


def test_model_server_flags_are_split_from_sidecar_settings() -> None:
    _, settings = ab.parse_arm(
        "x=batch_max_size:16/--tensorflow_intra_op_parallelism:1/--tensorflow_inter_op_parallelism:2"
    )
    sidecar, flags = ab.split_settings(settings)
    assert sidecar == {"batch_max_size": "16"}
    # sorted, so two arms that name the same flags in another order share one model server
    assert flags == ("--tensorflow_inter_op_parallelism=2", "--tensorflow_intra_op_parallelism=1")
    assert ab.split_settings({}) == ({}, ())


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


def test_arms_are_measured_in_front_of_their_model_servers(
    exported_models: Path, small_corpus_csv: Path, tmp_path: Path
) -> None:
    with small_corpus_csv.open(encoding="utf-8") as fh:
        docs = [row["text"] for row in csv.DictReader(fh)][:40]
    settings = BenchSettings(
        model_base=exported_models, duration_s=0.4, warmup_s=0.1, raw_dir=tmp_path, ready_timeout_s=240
    )
    # "on" and "off" share one model server; "one_thread" gets its own, started with the flag
    arms = {
        "on": {},
        "off": {"batch_enabled": "false"},
        "one_thread": {"--tensorflow_intra_op_parallelism": "1"},
    }
    lines: list[str] = []
    rounds = ab.measure(settings, docs, arms, rounds=2, concurrency=4, emit=lines.append)
    assert len(rounds) == 2
    started = [line for line in lines if line.startswith("model server ")]
    assert len(started) == 2, lines
    assert started[0].endswith(": defaults")
    assert started[1].endswith(": --tensorflow_intra_op_parallelism=1")
    for row in rounds:
        assert list(row) == ["on", "off", "one_thread"]
        for figures in row.values():
            assert figures["throughput_rps"] > 0 and figures["p99_ms"] > 0
            assert figures["sidecar_cpu_ms"] > 0 and figures["model_server_cpu_ms"] > 0
    summary = ab.summarize(rounds)
    assert summary["off"]["over_on"]["throughput_rps"] > 0
