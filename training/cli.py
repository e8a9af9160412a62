"""``python -m training train ...``: the command a newcomer runs first."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from training.datasets import BUILTIN, DatasetError
from training.features import FeatureConfig

EPILOG = """\
examples:
  python -m training train --dataset bbc-news --model-name news --out models/
  python -m training train --dataset chinese-reviews --model-name reviews --out models/
  python -m training train --dataset tickets.csv --text-column body --label-column queue \\
      --model-name tickets --out models/
  python -m training train --dataset corpus/ --model-name mine --out models/   # corpus/<label>/*.txt

The version is written to OUT/MODEL_NAME/VERSION/ (next integer unless --version), ready for
TF Serving: SavedModel, assets/vectorizer.json, assets/labels.json, assets/calibration.json
(temperature and abstain threshold), assets.extra/ (metrics.json, reliability diagram,
warmup requests, confusion matrix and training curve PNGs).
"""


def _precision(value: str) -> float | None:
    if value.lower() == "none":
        return None
    p = float(value)
    if not 0 < p <= 1:
        raise argparse.ArgumentTypeError(f"a precision in (0, 1] or 'none', got {value}")
    return p


def _common(t: argparse.ArgumentParser) -> None:
    """The data, features and network options, shared by train and evaluate."""
    d = t.add_argument_group("data")
    d.add_argument(
        "--dataset",
        required=True,
        help=f"built-in ({', '.join(BUILTIN)}), a .csv/.tsv/.jsonl file, or a folder of <label>/*.txt",
    )
    d.add_argument("--text-column", default="text", help="text column/field in CSV/TSV/JSONL (default: text)")
    d.add_argument("--label-column", default="label", help="label column/field (default: label)")
    d.add_argument("--test-size", type=float, default=0.2, help="held-out test share (default: 0.2)")
    d.add_argument(
        "--val-size", type=float, default=0.1, help="validation share for early stopping (default: 0.1)"
    )
    f = t.add_argument_group("features")
    f.add_argument(
        "--analyzer",
        choices=["auto", "word", "char", "char+words"],
        default="auto",
        help="word n-grams, or for Chinese/Japanese character n-grams (char) plus n-grams of words "
        "segmented with jieba (char+words) (default: word, or char+words when detected)",
    )
    f.add_argument("--ngram-max", type=int, help="largest n-gram (default: 2 for word, 3 for char)")
    f.add_argument("--min-df", type=int, default=2, help="ignore terms in fewer documents (default: 2)")
    f.add_argument("--max-features", type=int, help="vocabulary size (default: 20000 word, 50000 char)")
    n = t.add_argument_group("network")
    n.add_argument(
        "--epochs", type=int, default=30, help="maximum epochs; early stopping ends sooner (default: 30)"
    )
    n.add_argument("--batch-size", type=int, help="(default: 256 from 8,192 training rows, else 32)")
    n.add_argument("--hidden", type=int, default=128, help="hidden layer width (default: 128)")
    n.add_argument(
        "--learning-rate",
        type=float,
        help="Adam learning rate (default: 0.001)",
    )
    n.add_argument(
        "--patience",
        type=int,
        help="early-stopping patience in epochs (default: 1 from 8,192 training rows, else 3)",
    )
    n.add_argument(
        "--optimizer",
        choices=["adam", "lazy-adam"],
        default="adam",
        help="lazy-adam updates only the first-layer rows of the terms in a batch: faster on large "
        "vocabularies, slightly less accurate on chinese-reviews (default: adam)",
    )
    n.add_argument(
        "--dropout",
        type=float,
        help="dropout after the hidden layer (default: 0.5 from 8,192 training rows, else 0)",
    )
    n.add_argument("--l2", type=float, default=0.0, help="L2 penalty on the hidden kernel (default: 0)")
    n.add_argument(
        "--seed", type=int, default=42, help="fixes the split, initialisation and shuffling (default: 42)"
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training", description="Train and export a text classifier.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "train",
        help="train a TF-IDF + Keras classifier and export a versioned SavedModel",
        description="Load a labelled dataset, remove duplicates, fit TF-IDF, train the network, "
        "evaluate it on a held-out test split and export a TF Serving model version.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(t)
    t.add_argument(
        "--target-precision",
        type=_precision,
        default=0.99,
        help="abstain below the confidence at which validation answers reach this precision; "
        "'none' never abstains (default: 0.99)",
    )
    o = t.add_argument_group("output")
    o.add_argument("--model-name", required=True, help="model name, as TF Serving will serve it")
    o.add_argument("--out", type=Path, default=Path("models"), help="model base path (default: models/)")
    o.add_argument("--version", type=int, help="version number (default: next free integer)")
    o.add_argument(
        "--version-file",
        type=Path,
        help="write the published version's number here (the training Job hands it to the evaluation gate)",
    )
    e = sub.add_parser(
        "evaluate",
        help="quality averaged over several stratified splits, against a logistic-regression reference",
        description="Clean the dataset, then for each of --repeats stratified splits (seeds --seed, "
        "--seed+1, ...) fit the features, train the network and a TF-IDF logistic regression on the "
        "same split, and print the mean and standard deviation of test accuracy and macro-F1 as a "
        "markdown table. Nothing is exported.",
    )
    _common(e)
    e.add_argument("--repeats", type=int, default=5, help="number of splits (default: 5)")
    e.add_argument("--output", type=Path, help="also write the markdown (with date, machine, load) here")
    e.add_argument("--json", type=Path, help="also write every split's figures as JSON here")
    return p


def _train_config(args: argparse.Namespace) -> Any:
    from training.model import TrainConfig

    return TrainConfig(
        hidden=args.hidden,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        seed=args.seed,
        dropout=args.dropout,
        l2=args.l2,
        optimizer=args.optimizer,
    )


def _features(args: argparse.Namespace) -> FeatureConfig:
    return FeatureConfig(args.analyzer, args.ngram_max, args.min_df, args.max_features)


def _evaluate(args: argparse.Namespace) -> int:
    import orjson

    from training.repeats import RepeatConfig, markdown, run_repeats

    if args.repeats < 1:
        print("error: --repeats must be at least 1", file=sys.stderr)
        return 2
    cfg = RepeatConfig(
        dataset=args.dataset,
        repeats=args.repeats,
        seed=args.seed,
        test_size=args.test_size,
        val_size=args.val_size,
        text_column=args.text_column,
        label_column=args.label_column,
        features=_features(args),
        train=_train_config(args),
    )

    def write(report: dict[str, Any]) -> None:
        if args.output:
            args.output.write_text(markdown(report), encoding="utf-8")
        if args.json:
            args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))

    report = run_repeats(cfg, emit=lambda line: print(line, flush=True), on_split=write)
    print(markdown(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter hides the progress
    from training.export import ExportError
    from training.pipeline import RunConfig, run

    try:
        if args.command == "evaluate":
            return _evaluate(args)
        cfg = RunConfig(
            dataset=args.dataset,
            model_name=args.model_name,
            out=args.out,
            version=args.version,
            text_column=args.text_column,
            label_column=args.label_column,
            test_size=args.test_size,
            val_size=args.val_size,
            target_precision=args.target_precision,
            features=_features(args),
            train=_train_config(args),
        )
        result = run(cfg, emit=lambda line: print(line, flush=True))
        if args.version_file is not None:
            args.version_file.write_text(f"{result.version_dir.name}\n", encoding="utf-8")
    except (DatasetError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
