"""Batch scoring from the command line on a real exported version: formats, bad rows with file:line,
the rows-in = written + rejected account, --fail-fast, and the answers' shape."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scoring.cli import main

SPORT = "The striker scored twice and the team won the cup final after extra time at the stadium."
BUSINESS = "Shares fell as the bank cut its profit forecast for the year and investors sold."


@pytest.fixture(scope="module")
def model_dir(exported_models: Path) -> Path:
    return exported_models / "news"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_jsonl_in_process_with_progress_and_account(model_dir: Path, tmp_path: Path) -> None:
    """A real process, as a Job runs it: stderr carries progress and the final account."""
    src = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"id": "a", "text": SPORT}),
        json.dumps({"id": "b", "text": BUSINESS}),
        "{not json",
        json.dumps({"id": "c", "text": "   "}),
        json.dumps({"id": "d", "body": SPORT}),
        "",
        json.dumps({"text": SPORT}),
    ]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    r = subprocess.run(
        [sys.executable, "-m", "scoring", str(src), "--model-dir", str(model_dir),
         "--out", str(out), "--top-k", "2", "--chunk-size", "2", "--progress-every", "0",
         "--summary", str(tmp_path / "summary.json")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = read_jsonl(out)
    assert [(x["id"], x["label"]) for x in rows] == [("a", "sports"), ("b", "business"), ("7", "sports")]
    first = rows[0]
    assert first["version"] == 1 and first["model"] == "news" and 0 < first["score"] <= 1
    assert [t["label"] for t in first["top_k"]][:1] == ["sports"] and len(first["top_k"]) == 2
    assert f"{src}:3: not valid JSON" in r.stderr
    assert f"{src}:4: empty text" in r.stderr
    assert f"{src}:5: no field 'text'" in r.stderr
    assert "rows in 6 = written 3 + rejected 3" in r.stderr
    assert "rows/s, rss" in r.stderr  # progress lines
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rows_in"] == 6 and summary["written"] == 3 and summary["completed"] is True
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_csv_in_csv_out_with_ids(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "other"])
        w.writerows([["x1", SPORT, "1"], ["x2", "", "2"], ["x3", BUSINESS, "3"], ["x4"]])
    out = tmp_path / "out.csv"
    assert main([str(src), "--model-dir", str(model_dir), "--out", str(out)]) == 0
    with out.open(encoding="utf-8", newline="") as fh:
        got = list(csv.DictReader(fh))
    assert [(g["id"], g["label"], g["version"]) for g in got] == [
        ("x1", "sports", "1"),
        ("x3", "business", "1"),
    ]
    assert len(json.loads(got[0]["top_k"])) == 3
    err = capsys.readouterr().err
    assert f"{src}:3: empty text" in err and f"{src}:5: 1 columns, the header has 3" in err
    assert "rows in 4 = written 2 + rejected 2" in err


def test_not_utf8_row_is_rejected_alone(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.tsv"
    src.write_bytes(b"text\n" + SPORT.encode() + b"\ncaf\xe9 au lait\n" + BUSINESS.encode() + b"\n")
    out = tmp_path / "out.jsonl"
    assert main([str(src), "--model-dir", str(model_dir), "--out", str(out)]) == 0
    assert [r["id"] for r in read_jsonl(out)] == ["2", "4"]
    err = capsys.readouterr().err
    assert f"{src}:3: bytes that are not UTF-8" in err and "rows in 3 = written 2 + rejected 1" in err


def test_folder_input(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.txt").write_text(SPORT, encoding="utf-8")
    (tmp_path / "docs" / "sub" / "b.txt").write_text(BUSINESS, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main([str(tmp_path / "docs"), "--model-dir", str(model_dir), "--out", str(out)]) == 0
    assert [(r["id"], r["label"]) for r in read_jsonl(out)] == [
        ("a.txt", "sports"),
        ("sub/b.txt", "business"),
    ]


def test_fail_fast_stops_at_first_bad_row(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"text": t}) for t in [SPORT, "", BUSINESS]) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    rc = main(
        [str(src), "--model-dir", str(model_dir), "--out", str(out), "--fail-fast", "--chunk-size", "1"]
    )
    assert rc == 2 and not out.exists()
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl.partial")] == ["1"]
    err = capsys.readouterr().err
    assert f"{src}:2: empty text" in err and "rows in 2 = written 1 + rejected 1" in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--version", "9"], "no version 9"),
        (["--text-column", "body"], "header has no column 'body'"),
    ],
)
def test_bad_setup_exits_2_with_a_message(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    src = tmp_path / "in.csv"
    src.write_text(f"text\n{SPORT}\n", encoding="utf-8")
    assert main([str(src), "--model-dir", str(model_dir), "--out", str(tmp_path / "o.jsonl"), *args]) == 2
    assert words in capsys.readouterr().err


def test_calls_are_cut_by_cells_without_changing_answers(model_dir: Path) -> None:
    """Long texts are scored in calls of bounded size (rows x longest row); the cut changes no number."""
    from scoring.model import Scorer, split_by_cells

    rows: list[tuple[list[int], list[float]]] = [([1] * n, [0.1] * n) for n in (3, 5, 40, 2, 1, 0)]
    parts = split_by_cells(rows, 40)
    assert [len(p) for p in parts] == [2, 1, 3] and [r for p in parts for r in p] == rows
    assert all(len(p) * max(max(len(r[0]), 1) for r in p) <= 40 for p in parts[:1] + parts[2:])
    texts = [SPORT * 20, BUSINESS, SPORT, BUSINESS * 30, "The minister spoke in parliament."]
    whole = Scorer(model_dir / "1").probabilities(texts)
    cut = Scorer(model_dir / "1", max_cells=64).probabilities(texts)
    assert whole.shape == cut.shape == (5, 5)
    assert abs(whole - cut).max() <= 1e-6
