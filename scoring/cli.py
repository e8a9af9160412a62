"""The command line: read records in chunks, score each chunk, write each answer at once.

Memory stays flat whatever the input's size: the reader yields one record at a time, a chunk holds at
most ``--chunk-size`` texts, and every answer is written before the next chunk is read."""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
import time
from pathlib import Path
from typing import IO, Any

import orjson

from contracts.modeldir import ModelDirError
from preprocess_service.postprocess import Options
from scoring.output import CsvWriter, JsonlWriter, Writer, row
from textvec import VectorizerError

EXIT_BAD_INPUT = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m scoring",
        description="Score a CSV/TSV/JSONL file or a folder of .txt files with a model version, offline.",
    )
    p.add_argument("input", type=Path, help="a .csv, .tsv, .jsonl file, or a folder of .txt files")
    p.add_argument("--model-dir", type=Path, required=True, help="<model_base_path>/<model_name>")
    p.add_argument("--version", type=int, default=None, help="version to use (default: the newest)")
    p.add_argument("--out", required=True, help="output file (.jsonl or .csv), or - for standard output")
    p.add_argument("--format", choices=("jsonl", "csv"), default=None, help="default: from --out's suffix")
    p.add_argument("--text-column", default="text", help="column (CSV/TSV) or field (JSONL) of the text")
    p.add_argument("--id-column", default="id", help="column or field of the id (default: the line number)")
    p.add_argument("--top-k", type=int, default=3, help="labels per row in top_k (0: none)")
    p.add_argument(
        "--min-confidence", type=float, default=None, help="abstain threshold (default: the version's)"
    )
    p.add_argument(
        "--unknown-label", default=None, help="label written when the model abstains (default: null)"
    )
    p.add_argument("--chunk-size", type=int, default=1024, help="texts per model call")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first bad row (exit 2)")
    p.add_argument("--progress-every", type=float, default=5.0, help="seconds between progress lines")
    p.add_argument("--max-reported", type=int, default=100, help="bad rows printed (all are counted)")
    p.add_argument("--summary", type=Path, default=None, help="also write the final counts here as JSON")
    args = p.parse_args(argv)
    if args.chunk_size < 1:
        p.error("--chunk-size must be at least 1")
    if args.format is None:
        args.format = "csv" if str(args.out).lower().endswith(".csv") else "jsonl"
    return args


def rss_mb() -> float:
    """Resident memory now (Linux), else the peak so far."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Sink:
    """Where answers go. A file is written as ``<out>.partial`` and renamed to ``out`` only when the
    run completes (:meth:`close` with ``completed``): a reader of ``out`` never sees half a result."""

    def __init__(self, out: str, fmt: str) -> None:
        self.final = None if out == "-" else Path(out)
        self.partial = None if self.final is None else self.final.with_name(self.final.name + ".partial")
        if self.final is not None:
            self.final.parent.mkdir(parents=True, exist_ok=True)
        self.fh: IO[Any]
        self.writer: Writer
        if fmt == "csv":
            text = (
                sys.stdout if self.partial is None else self.partial.open("w", encoding="utf-8", newline="")
            )
            self.fh, self.writer = text, CsvWriter(text)
        else:
            raw = sys.stdout.buffer if self.partial is None else self.partial.open("wb")
            self.fh, self.writer = raw, JsonlWriter(raw)

    def close(self, completed: bool) -> None:
        self.fh.flush()
        if self.partial is None or self.final is None:
            return
        self.fh.close()
        if completed:
            self.partial.replace(self.final)


class Progress:
    def __init__(self, every_s: float, err: IO[str]) -> None:
        self.every, self.err = every_s, err
        self.started = self.last = time.monotonic()
        self.peak_rss = rss_mb()

    def line(self, written: int, rejected: int, final: bool = False) -> None:
        now = time.monotonic()
        self.peak_rss = max(self.peak_rss, rss_mb())
        if not final and now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        print(
            f"scored {written + rejected:,} rows (written {written:,}, rejected {rejected:,}) in "
            f"{elapsed:.1f}s: {written / elapsed:,.0f} rows/s, rss {rss_mb():.0f} MB",
            file=self.err,
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    err = sys.stderr
    # imported after parsing: TensorFlow and the readers are slow to import, --help is not
    from scoring.model import Scorer, version_path
    from training.datasets import DatasetError
    from training.stream import Rejected, iter_records

    try:
        path = version_path(args.model_dir, args.version)
        scorer = Scorer(path, args.model_dir.name)
        records = iter_records(args.input, args.text_column, args.id_column)
    except (ModelDirError, VectorizerError, DatasetError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_BAD_INPUT
    model = scorer.model
    top_k = min(args.top_k, len(model.labels)) or None
    opts = Options(False, top_k, args.min_confidence, False)
    print(f"scoring {args.input} with {model.name} version {model.version} ({path})", file=err, flush=True)
    written = rejected = 0
    progress = Progress(args.progress_every, err)
    failed = False
    sink = Sink(args.out, args.format)
    chunk: list[tuple[str, str]] = []

    def flush() -> None:
        nonlocal written
        answers = scorer.answers([t for _, t in chunk], opts, args.unknown_label)
        for (ident, _), a in zip(chunk, answers, strict=True):
            sink.writer.write(row(ident, a, model.name, model.version))
        written += len(chunk)
        chunk.clear()
        progress.line(written, rejected)

    try:
        for item in records:
            if isinstance(item, Rejected):
                rejected += 1
                if rejected <= args.max_reported or args.fail_fast:
                    print(f"rejected: {item.reason}", file=err, flush=True)
                if args.fail_fast:
                    failed = True
                    break
                continue
            chunk.append((item.id, item.text))
            if len(chunk) >= args.chunk_size:
                flush()
        if chunk and not failed:
            flush()
    except DatasetError as exc:  # a file-level problem found while reading (e.g. an empty CSV)
        print(f"error: {exc}", file=err)
        failed = True
    finally:
        sink.close(completed=not failed)
    if failed and sink.partial is not None:
        print(f"stopped: the {written:,} rows scored so far are in {sink.partial}", file=err)
    progress.line(written, rejected, final=True)
    if rejected > args.max_reported and not args.fail_fast:
        print(f"({rejected - args.max_reported:,} more rejected rows not shown)", file=err)
    total = written + rejected
    print(f"rows in {total:,} = written {written:,} + rejected {rejected:,}", file=err, flush=True)
    if args.summary:
        elapsed = time.monotonic() - progress.started
        args.summary.write_bytes(
            orjson.dumps(
                {
                    "rows_in": total,
                    "written": written,
                    "rejected": rejected,
                    "seconds": elapsed,
                    "rows_per_s": written / max(elapsed, 1e-9),
                    "peak_rss_mb": progress.peak_rss,
                    "model": model.name,
                    "version": model.version,
                    "completed": not failed,
                },
                option=orjson.OPT_INDENT_2,
            )
        )
    return EXIT_BAD_INPUT if failed else 0
