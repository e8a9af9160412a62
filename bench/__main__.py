"""``python -m bench run`` (what ``make bench`` runs) and ``python -m bench table [results.json]``.

``run`` trains the model first if ``<models>/<name>`` has no version (through the training CLI), takes
the held-out test split of that version's dataset as the documents, measures every target, then writes
the result JSON, the plot and prints the table. ``--smoke`` is the same path with tiny durations and two
concurrency levels, written under bench/raw/ so the recorded run is never overwritten by it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import orjson

from bench import report
from bench.runner import TARGETS, BenchSettings, Runner
from textvec import version_dirs


def test_documents(version_dir: Path, dataset: str) -> list[str]:
    """The test split the version was evaluated on: same loader, cleaning and seeded split as training."""
    from training.cleaning import clean
    from training.datasets import load_dataset
    from training.pipeline import split

    metrics = orjson.loads((version_dir / "assets.extra" / "metrics.json").read_bytes())
    seed = int(metrics.get("training", {}).get("seed", 42))
    ds = clean(load_dataset(dataset))
    parts = split(ds, sorted(set(ds.labels)), 0.2, 0.1, seed)
    expected = metrics.get("split_sizes", {}).get("test")
    if expected is not None and expected != len(parts["test"].texts):
        raise SystemExit(
            f"the test split of {dataset} has {len(parts['test'].texts)} documents but {version_dir} was "
            f"evaluated on {expected}: pass the dataset it was trained on (--dataset), or, if it was trained "
            f"by an older release whose cleaning or split differed, train a new version first "
            f"(make train DATASET={dataset} MODEL_NAME={version_dir.parent.name} "
            f"MODELS={version_dir.parent.parent})"
        )
    return parts["test"].texts


def _ensure_model(models: Path, name: str, dataset: str) -> Path:
    found = version_dirs(models / name)
    if not found:
        print(f"no model under {models / name}: training {dataset} first", flush=True)
        cmd = [sys.executable, "-m", "training", "train", "--dataset", dataset, "--model-name", name,
               "--out", str(models)]  # fmt: skip
        subprocess.run(cmd, check=True)
        found = version_dirs(models / name)
    return found[max(found)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    sub = p.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the benchmark")
    run.add_argument("--models", type=Path, default=Path("models"))
    run.add_argument("--model-name", default="news")
    run.add_argument("--dataset", default="bbc-news")
    run.add_argument("--smoke", action="store_true", help="seconds, not minutes; writes under --raw")
    run.add_argument("--concurrency", default=None, help="comma list (default 1,8,32,128; smoke 1,4)")
    run.add_argument("--duration", type=float, default=None, help="measured seconds per level")
    run.add_argument("--warmup", type=float, default=None, help="unrecorded seconds before each level")
    run.add_argument("--targets", default=",".join(TARGETS))
    run.add_argument("--no-flood", action="store_true", help="skip /healthz under maximum-size requests")
    run.add_argument("--raw", type=Path, default=Path("bench/raw"), help="logs and scratch (git-ignored)")
    run.add_argument(
        "--pairs",
        type=int,
        default=None,
        help="rounds of the ceiling and the default configuration back to back at c=32, for the ratio "
        "targets (default 3; smoke: 1 at its highest level; 0: the sweep's windows instead)",
    )
    run.add_argument(
        "--tf-threads",
        type=int,
        default=1,
        help="TensorFlow's intra- and inter-op threads in the model server and the ceiling alike "
        "(default 1; 0: TensorFlow's own choice, one per core)",
    )
    run.add_argument("--out", type=Path, default=None, help="default bench/results.json (smoke: under --raw)")
    run.add_argument("--plot", type=Path, default=None, help="default bench/results.png (smoke: under --raw)")
    bod = sub.add_parser("bodies", help="write the request bodies for the wrk cross-check (wrk_classify.lua)")
    bod.add_argument("--models", type=Path, default=Path("models"))
    bod.add_argument("--model-name", default="news")
    bod.add_argument("--dataset", default="bbc-news")
    bod.add_argument("--out", type=Path, default=Path("bench/raw/bodies.jsonl"))
    tab = sub.add_parser("table", help="print the table of a result file")
    tab.add_argument("path", type=Path, nargs="?", default=Path("bench/results.json"))
    args = p.parse_args(argv)

    if args.cmd == "bodies":
        docs = test_documents(_ensure_model(args.models, args.model_name, args.dataset), args.dataset)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(b"".join(orjson.dumps({"text": d}) + b"\n" for d in docs))
        print(f"wrote {len(docs)} bodies to {args.out}")
        return 0
    if args.cmd == "table":
        result = orjson.loads(args.path.read_bytes())
        print(report.table(result))
        print(report.checks(result))
        return 0

    smoke = args.smoke
    levels = args.concurrency or ("1,4" if smoke else "1,8,32,128")
    settings = BenchSettings(
        model_base=args.models,
        model_name=args.model_name,
        concurrency=tuple(int(c) for c in levels.split(",")),
        duration_s=args.duration if args.duration is not None else (0.6 if smoke else 8.0),
        warmup_s=args.warmup if args.warmup is not None else (0.2 if smoke else 1.5),
        targets=tuple(t for t in args.targets.split(",") if t),
        raw_dir=args.raw,
        mode="smoke" if smoke else "full",
        flood=not args.no_flood,
        paired_rounds=args.pairs if args.pairs is not None else (1 if smoke else 3),
        paired_concurrency=max(int(c) for c in levels.split(",")) if smoke else 32,
        tf_threads=args.tf_threads,
    )
    unknown = set(settings.targets) - set(TARGETS)
    if unknown:
        p.error(f"unknown targets {sorted(unknown)}; known: {', '.join(TARGETS)}")
    out = args.out or (args.raw / "smoke.json" if smoke else Path("bench/results.json"))
    png = args.plot or (args.raw / "smoke.png" if smoke else Path("bench/results.png"))
    version_dir = _ensure_model(args.models, args.model_name, args.dataset)
    docs = test_documents(version_dir, args.dataset)
    print(f"{len(docs)} test documents of {args.dataset}, model {version_dir}", flush=True)
    result = Runner(settings, docs, emit=lambda line: print(line, flush=True)).run()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    report.plot(result, png)
    print()
    print(report.table(result))
    print(report.checks(result))
    print(f"\nwrote {out} and {png} in {result['wall_s']} s; {result['load']['uptime_after']}")
    failed = report.missed(result)
    if failed and not smoke:  # the smoke run checks the path, not timings
        print(f"make bench: targets missed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
