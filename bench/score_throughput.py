"""Batch scoring throughput next to the in-process ceiling, on the same documents and version.

- ``score``: ``python -m scoring`` on a generated JSON Lines file of ``--rows`` rows
  (the dataset's documents, cycled), end to end: reading, vectorizing, the SavedModel, calibration,
  top-3, writing. Rows per second and peak RSS come from its ``--summary``.
- ``ceiling``: ``bench.inproc`` at one model call per ``--chunk`` documents (vectorize + SavedModel
  only, no reading or writing): what the scorer could reach with free I/O.

``python -m bench.score_throughput --models models --model-name news --dataset bbc-news`` writes
``bench/raw/score_throughput.json`` and prints one line per figure, with the machine and its load."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench import procstat
from contracts.modeldir import version_dirs


def write_rows(docs: list[str], rows: int, path: Path) -> None:
    with path.open("wb") as fh:
        for i in range(rows):
            fh.write(orjson.dumps({"id": str(i), "text": docs[i % len(docs)]}) + b"\n")


def run_scorer(version_dir: Path, src: Path, out: Path, chunk: int) -> dict[str, Any]:
    summary = out.with_suffix(".summary.json")
    cmd = [
        sys.executable, "-m", "scoring", str(src), "--model-dir", str(version_dir.parent),
        "--version", version_dir.name, "--out", str(out), "--chunk-size", str(chunk),
        "--progress-every", "10", "--summary", str(summary),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    result: dict[str, Any] = orjson.loads(summary.read_bytes())
    return result


def run_ceiling(
    version_dir: Path, docs_path: Path, chunk: int, duration_s: float, raw: Path
) -> dict[str, Any]:
    out = raw / "score_ceiling.json"
    cmd = [
        sys.executable, "-m", "bench.inproc", "--version-dir", str(version_dir), "--docs", str(docs_path),
        "--concurrency", str(chunk), "--duration", str(duration_s), "--out", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    run: dict[str, Any] = orjson.loads(out.read_bytes())["runs"][0]
    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.score_throughput")
    p.add_argument("--models", type=Path, default=Path("models"))
    p.add_argument("--model-name", default="news")
    p.add_argument("--dataset", default="bbc-news", help="documents to score (cycled to --rows)")
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--duration", type=float, default=20.0, help="seconds of the ceiling's measurement")
    p.add_argument("--raw", type=Path, default=Path("bench/raw"))
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training.datasets import load_dataset

    versions = version_dirs(args.models / args.model_name)
    if not versions:
        print(f"no version under {args.models / args.model_name}: run `make train` first", file=sys.stderr)
        return 2
    version_dir = versions[max(versions)]
    args.raw.mkdir(parents=True, exist_ok=True)
    docs = load_dataset(args.dataset).texts
    docs_path = args.raw / "score_docs.json"
    docs_path.write_bytes(orjson.dumps(docs))
    src = args.raw / "score_input.jsonl"
    write_rows(docs, args.rows, src)
    started = time.monotonic()
    load_before = procstat.loadavg()
    score = run_scorer(version_dir, src, args.raw / "score_output.jsonl", args.chunk)
    ceiling = run_ceiling(version_dir, docs_path, args.chunk, args.duration, args.raw)
    result = {
        "schema": "textclf-bench-score/1",
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": procstat.machine(),
        "load": {"loadavg_before": load_before, "loadavg_after": procstat.loadavg()},
        "model": {"name": args.model_name, "version": int(version_dir.name), "dataset": args.dataset},
        "rows": args.rows,
        "documents_mean_words": round(sum(len(d.split()) for d in docs) / len(docs), 1),
        "chunk": args.chunk,
        "score": score,
        "ceiling": {
            k: ceiling[k] for k in ("throughput_rps", "vectorize_ms_per_step", "model_call_ms_per_step")
        },
        "score_vs_ceiling": round(score["rows_per_s"] / max(ceiling["throughput_rps"], 1e-9), 3),
        "wall_s": round(time.monotonic() - started, 1),
    }
    (args.raw / "score_throughput.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(
        f"batch scoring: {score['rows_per_s']:,.0f} rows/s over {args.rows:,} rows "
        f"(peak RSS {score['peak_rss_mb']:.0f} MB); in-process ceiling "
        f"{ceiling['throughput_rps']:,.0f} docs/s at {args.chunk} per call; "
        f"ratio {result['score_vs_ceiling']}; load {result['load']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
