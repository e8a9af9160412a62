"""Load -> clean -> split -> fit TF-IDF -> train -> evaluate -> export, as one call."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from textvec.calibration import CALIBRATION
from training.cleaning import clean, describe
from training.datasets import Dataset, check_trainable, load_dataset
from training.features import FeatureConfig, fit_rows


@dataclass(frozen=True)
class RunConfig:
    dataset: str
    model_name: str
    out: Path
    version: int | None = None
    text_column: str = "text"
    label_column: str = "label"
    test_size: float = 0.2
    val_size: float = 0.1
    # abstain threshold: the lowest confidence at which validation answers reach this precision
    target_precision: float | None = 0.99
    features: FeatureConfig = field(default_factory=FeatureConfig)
    train: Any = None  # training.model.TrainConfig (imported lazily: TensorFlow is slow to import)


@dataclass
class Split:
    texts: list[str]
    y: np.ndarray


@dataclass
class RunResult:
    version_dir: Path
    metrics: dict[str, Any]
    model: Any  # the trained keras.Model, for callers that compare it with the export
    test_texts: list[str]


def split(ds: Dataset, labels: list[str], test_size: float, val_size: float, seed: int) -> dict[str, Split]:
    """Stratified train/validation/test split of an already de-duplicated dataset."""
    y = np.asarray([labels.index(lbl) for lbl in ds.labels], dtype=np.int64)
    idx = np.arange(len(ds))
    rest, test = train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
    train, val = train_test_split(
        rest, test_size=val_size / (1 - test_size), stratify=y[rest], random_state=seed
    )
    return {
        name: Split([ds.texts[i] for i in part], y[part])
        for name, part in (("train", train), ("validation", val), ("test", test))
    }


def run(cfg: RunConfig, emit: Callable[[str], None] = print) -> RunResult:
    from training import calibration, export
    from training import model as net
    from training.evaluate import evaluate, plot_confusion, plot_history

    tcfg = cfg.train or net.TrainConfig()
    started = time.perf_counter()
    raw = load_dataset(cfg.dataset, cfg.text_column, cfg.label_column)
    ds = clean(raw)
    emit(f"dataset {ds.name}: {describe(ds.stats)}")
    check_trainable(ds)
    labels = sorted(set(ds.labels))
    parts = split(ds, labels, cfg.test_size, cfg.val_size, tcfg.seed)
    emit("split: " + ", ".join(f"{k} {len(v.texts)}" for k, v in parts.items()))

    net.make_deterministic(tcfg.seed)
    t0 = time.perf_counter()
    vec, rows = fit_rows(cfg.features, {k: v.texts for k, v in parts.items()})
    emit(
        f"features: {vec.analyzer} {vec.ngram_range[0]}-{vec.ngram_range[1]}-grams"
        + (
            f" (words {vec.word_ngram_range[0]}-{vec.word_ngram_range[1]}-grams, {vec.segmenter})"
            if vec.word_ngram_range
            else ""
        )
        + f", {vec.n_features} terms, "
        f"fitted in {time.perf_counter() - t0:.1f}s"
    )

    tcfg = tcfg.resolved(len(parts["train"].texts))
    keras_model = net.build_model(vec.n_features, len(labels), tcfg)
    emit(
        f"training: Dense({tcfg.hidden}, relu) -> softmax({len(labels)}), up to {tcfg.epochs} epochs, "
        f"batch {tcfg.batch_size}, {tcfg.optimizer} learning rate {tcfg.learning_rate:g}, "
        f"dropout {tcfg.dropout:g}, patience {tcfg.patience}"
    )
    t0, cpu0 = time.perf_counter(), time.process_time()
    history = net.train(
        keras_model, rows["train"], parts["train"].y, rows["validation"], parts["validation"].y, tcfg, emit
    )
    train_seconds = time.perf_counter() - t0
    # CPU time (user + system, all threads) moves less than wall time on a shared machine
    train_cpu_seconds = time.process_time() - cpu0

    probs = net.predict_proba(keras_model, rows["test"])
    report = evaluate(parts["test"].y, probs, labels)
    val_probs = net.predict_proba(keras_model, rows["validation"])
    cal = calibration.fit(val_probs, parts["validation"].y, cfg.target_precision)
    cal = replace(cal, vectorizer_fingerprint=vec.fingerprint)
    cal_report = calibration.report(cal, probs, parts["test"].y, len(parts["validation"].y))
    emit(
        f"calibration: temperature {cal.temperature:.3f}, test ECE {cal_report['test_ece_before']:.4f} -> "
        f"{cal_report['test_ece_after']:.4f}; abstain below {cal.abstain_threshold} "
        f"(test coverage {cal_report['abstain']['coverage']:.3f}, "
        f"accuracy answered {cal_report['abstain']['accuracy_answered']})"
    )
    metrics: dict[str, Any] = {
        "dataset": ds.name,
        "test": report,
        "validation_accuracy": float((val_probs.argmax(1) == parts["validation"].y).mean()),
        "calibration": cal_report,
        "data_cleaning": ds.stats,
        "split_sizes": {k: len(v.texts) for k, v in parts.items()},
        "features": {
            "analyzer": vec.analyzer,
            "ngram_range": list(vec.ngram_range),
            "n_features": vec.n_features,
            **{k: v for k, v in asdict(cfg.features).items() if k != "analyzer"},
        },
        "training": {
            **asdict(tcfg),
            "epochs_run": len(history.get("loss", [])),
            "seconds": round(train_seconds, 2),
            "cpu_seconds": round(train_cpu_seconds, 2),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "history": history,
        },
        "machine": {
            "python": platform.python_version(),
            "processor": platform.machine(),
            "system": platform.system(),
        },
    }
    with tempfile.TemporaryDirectory() as plots:
        title = f"{cfg.model_name} ({ds.name})"
        files = [
            plot_confusion(report, Path(plots) / "confusion_matrix.png", f"{title}: test confusion matrix"),
            plot_history(history, Path(plots) / "training_curve.png", f"{title}: training"),
            calibration.plot_reliability(
                probs, parts["test"].y, cal, Path(plots) / "reliability_diagram.png", f"{title}: reliability"
            ),
        ]
        version_dir = export.export_version(
            model=keras_model,
            vectorizer=vec,
            labels=labels,
            out=cfg.out,
            model_name=cfg.model_name,
            metrics=metrics,
            sample_texts=parts["validation"].texts[:8],
            extra_files=files,
            version=cfg.version,
            asset_files={CALIBRATION: cal.to_json(fitted_on=cal_report["fitted_on"])},
        )
    metrics["total_seconds"] = round(time.perf_counter() - started, 2)
    emit(
        f"done: test accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}, "
        f"trained in {train_seconds:.1f}s "
        f"({train_cpu_seconds:.1f}s CPU, load average {os.getloadavg()[0]:.1f}); "
        f"version written to {version_dir}"
    )
    return RunResult(version_dir, metrics, keras_model, parts["test"].texts)
