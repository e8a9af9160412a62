"""``python -m training evaluate``: several seeded stratified splits, mean ± std of the network and of a
logistic-regression reference on the same splits, as a markdown table (a real process, real text)."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import orjson


def test_evaluate_command_reports_mean_and_std_over_splits(tmp_path: Path, small_corpus_csv: Path) -> None:
    md, js = tmp_path / "run.md", tmp_path / "run.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "evaluate",
            "--dataset",
            str(small_corpus_csv),
            "--repeats",
            "2",
            "--epochs",
            "3",
            "--output",
            str(md),
            "--json",
            str(js),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = orjson.loads(js.read_bytes())
    runs = report["runs"]
    assert [r["seed"] for r in runs] == [42, 43]
    for r in runs:
        for key in ("network", "reference"):
            assert 0.0 <= r[key]["macro_f1"] <= 1.0 and 0.2 < r[key]["accuracy"] <= 1.0, r
        assert r["train_cpu_seconds"] > 0 and r["epochs_run"] >= 1
    table = md.read_text(encoding="utf-8")
    assert table in proc.stdout
    acc = [r["network"]["accuracy"] for r in runs]
    expected = f"{statistics.fmean(acc):.4f} ± {statistics.stdev(acc):.4f}"
    assert f"| TF-IDF + Keras network | {expected} |" in table, table
    assert "| TF-IDF + logistic regression |" in table
    assert "load average" in table and report["machine"] in table
    assert report["data_cleaning"]["rows_loaded"] == 200 and report["data_cleaning"]["rows_kept"] <= 200


def test_evaluate_refuses_zero_repeats(small_corpus_csv: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training", "evaluate", "--dataset", str(small_corpus_csv), "--repeats", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "--repeats must be at least 1" in proc.stderr
    assert "Traceback" not in proc.stderr
