"""The benchmark run end to end with tiny windows, so it cannot rot: every target starts, answers and
is measured, and the result, table and plot are well formed. No timing is asserted (2 shared cores)."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from bench import report
from bench.runner import SIDECARS, TARGETS, BenchSettings, Runner


@pytest.fixture(scope="module")
def smoke_result(
    exported_models: Path, small_corpus_csv: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    with small_corpus_csv.open(encoding="utf-8") as fh:
        docs = [row["text"] for row in csv.DictReader(fh)][:60]
    settings = BenchSettings(
        model_base=exported_models,
        concurrency=(1, 4),
        duration_s=0.4,
        warmup_s=0.1,
        raw_dir=tmp_path_factory.mktemp("bench_raw"),
        mode="smoke",
        ready_timeout_s=240,
        paired_rounds=2,
        paired_concurrency=4,
    )
    return Runner(settings, docs, emit=lambda _line: None).run()


def test_bench_smoke_measures_every_target(smoke_result: dict) -> None:
    assert set(smoke_result["targets"]) == set(TARGETS)
    for name, target in smoke_result["targets"].items():
        assert [r["concurrency"] for r in target["runs"]] == [1, 4], name
        for run in target["runs"]:
            assert run["requests"] > 0 and run["errors"] == 0, (name, run)
            lat = run["latency_ms"]
            assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"], (name, lat)
            assert run["throughput_rps"] > 0
        assert target["peak_rss_mb"] > 0, name


def test_the_ceiling_sizes_tensorflow_pools_as_the_model_server(smoke_result: dict) -> None:
    # by default one thread in each pool (the model server gets the same flags: bench.runner)
    assert smoke_result["settings"]["tf_threads"] == 1
    assert smoke_result["targets"]["inproc"]["tf_threads"] == {"intra_op": 1, "inter_op": 1}


def test_bench_smoke_counts_bytes_cpu_and_labels(smoke_result: dict) -> None:
    targets = smoke_result["targets"]
    n_features = smoke_result["model"]["n_features"]
    for name in TARGETS[1:]:
        for run in targets[name]["runs"]:
            assert run["bytes_to_model_server_per_doc"] > 0, name
            assert run["front_cpu_ms_per_request"] > 0, name
            assert run["model_server_cpu_ms_per_request"] >= 0, name
    # the dense body carries at least one character per feature; the sparse one only the non-zeros
    dense = targets["dense_rest"]["runs"][0]["bytes_to_model_server_per_doc"]
    assert dense > 2 * n_features
    for name in SIDECARS:
        assert targets[name]["runs"][0]["bytes_to_model_server_per_doc"] < dense / 2, name
    assert smoke_result["same_labels_across_targets"] is True


def test_bench_smoke_result_table_and_plot(smoke_result: dict, tmp_path: Path) -> None:
    again = orjson.loads(orjson.dumps(smoke_result))
    assert again["machine"]["cpus_usable"] >= 1 and again["machine"]["python"]
    assert again["load"]["loadavg_before"] and again["load"]["uptime_after"]
    micro = again["vectorize_one_doc"]
    assert micro["us_best"] > 0 and micro["document_words"] > 0
    checks = again["targets_check"]
    assert checks["default_configuration"] == "sidecar_rest_batch"
    for key in (
        "cpu_per_request_c32_vs_inproc",
        "throughput_c32_vs_inproc",
        "throughput_c32_vs_fair_baseline",
        "p99_c32_vs_inproc",
    ):
        assert checks[key]["met"] is None  # no c=32 level in the smoke run: reported as not measured
    for key in (
        "vectorize_speedup_vs_sklearn",
        "payload_vs_dense",
        "sidecar_peak_rss_mb",
        "healthz_p99_ms_during_flood",
    ):
        assert checks[key]["met"] in (True, False) and checks[key]["value"] is not None
    table = report.table(again)
    assert all(f"| {name} | 1 |" in table for name in TARGETS)
    assert "not measured" in report.checks(again)
    png = tmp_path / "plot.png"
    report.plot(again, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_bench_smoke_runs_the_fair_baseline_and_the_flood(smoke_result: dict) -> None:
    """The fair baseline is the same transformer against the model server with its batching on; the
    flood sends maximum-size requests (all answered) while /healthz is probed."""
    fair = smoke_result["targets"]["dense_rest_batch"]
    assert fair["model_server_batching"] and "max_batch_size" in fair["model_server_batching"]
    assert smoke_result["targets"]["dense_rest"]["model_server_batching"] is None
    flood = smoke_result["healthz_during_flood"]
    assert flood["body_bytes"] > 64 * 20_000
    assert flood["flood"]["requests"] > 0 and flood["flood"]["errors"] == 0
    assert flood["healthz"]["requests"] > 0 and flood["healthz"]["errors"] == 0
    sk = smoke_result["sklearn_transform_one_doc"]
    assert sk["us_best"] > 0 and sk["same_weights_as_textvec"] is True


def test_bench_smoke_measures_the_ceiling_and_the_default_back_to_back(smoke_result: dict) -> None:
    paired = smoke_result["paired"]
    assert paired["concurrency"] == 4 and paired["target"] == "sidecar_rest_batch"
    assert len(paired["rounds"]) == 2
    for r in paired["rounds"]:
        side, ceiling = r["sidecar"], r["inproc"]
        assert side["concurrency"] == ceiling["concurrency"] == 4
        assert side["requests"] > 0 and side["errors"] == 0 and ceiling["throughput_rps"] > 0
        assert r["cpu_ratio"] == round(side["front_cpu_ms_per_request"] / ceiling["cpu_ms_per_request"], 3)
        assert r["throughput_ratio"] == round(side["throughput_rps"] / ceiling["throughput_rps"], 3)
        assert r["p99_ratio"] == round(side["latency_ms"]["p99"] / ceiling["latency_ms"]["p99"], 3)
    for key in ("cpu_ratio", "throughput_ratio", "p99_ratio"):
        values = sorted(r[key] for r in paired["rounds"])
        assert paired["median"][key] == round((values[0] + values[1]) / 2, 3)
    # not at c=32, so the targets do not use them (the smoke run has no c=32 level to compare)
    checks = smoke_result["targets_check"]
    assert checks["ratios_to_ceiling_from"] == "the sweep's c=32 windows"
    assert "paired round 2:" in report.checks(smoke_result)


def test_the_ratio_targets_use_the_paired_rounds_at_c32(smoke_result: dict) -> None:
    from bench.runner import evaluate

    result = orjson.loads(orjson.dumps(smoke_result))
    result["paired"]["concurrency"] = 32
    result["paired"]["median"] = {"cpu_ratio": 1.05, "throughput_ratio": 0.4, "p99_ratio": 2.5}
    checks = evaluate(result)
    assert checks["ratios_to_ceiling_from"] == "paired rounds at c=32 (median)"
    assert (
        checks["cpu_per_request_c32_vs_inproc"]["value"],
        checks["cpu_per_request_c32_vs_inproc"]["met"],
    ) == (
        1.05,
        True,
    )
    assert checks["throughput_c32_vs_inproc"]["met"] is False
    assert checks["p99_c32_vs_inproc"]["met"] is False
