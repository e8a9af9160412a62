"""``python -m training evaluate``: the model's quality averaged over several stratified splits.

One split's accuracy moves by a point or more with the seed on a corpus of short reviews, so a bar
checked on one split says little about a change of features. This trains the network on ``repeats``
splits (seeds ``seed``, ``seed+1``, ...), and on each also fits a TF-IDF logistic regression on the
same features and split, as a reference: the network should at least match it."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from contracts.signature import Row
from training.cleaning import clean, describe
from training.datasets import check_trainable, load_dataset
from training.features import FeatureConfig, fit_rows
from training.pipeline import split

REFERENCE_C = (1.0, 10.0, 100.0)  # the reference's regularisation, chosen on the validation split


@dataclass(frozen=True)
class RepeatConfig:
    dataset: str
    repeats: int = 5
    seed: int = 42
    test_size: float = 0.2
    val_size: float = 0.1
    text_column: str = "text"
    label_column: str = "label"
    features: FeatureConfig = field(default_factory=FeatureConfig)
    train: Any = None  # training.model.TrainConfig; its seed is replaced by each split's


def _csr(rows: Sequence[Row], n_features: int) -> sparse.csr_matrix:
    indptr = np.cumsum([0, *(len(r[0]) for r in rows)])
    ids = np.fromiter((i for r in rows for i in r[0]), dtype=np.int64, count=int(indptr[-1]))
    w = np.fromiter((x for r in rows for x in r[1]), dtype=np.float64, count=int(indptr[-1]))
    return sparse.csr_matrix((w, ids, indptr), shape=(len(rows), n_features))


def _scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
    }


def reference(rows: dict[str, list[Row]], ys: dict[str, np.ndarray], n_features: int) -> dict[str, Any]:
    """Logistic regression on the same TF-IDF rows, its C picked by validation accuracy."""
    x = {k: _csr(v, n_features) for k, v in rows.items()}
    best: tuple[float, float, Any] | None = None
    for c in REFERENCE_C:
        clf = LogisticRegression(C=c, max_iter=2000).fit(x["train"], ys["train"])
        val = float((clf.predict(x["validation"]) == ys["validation"]).mean())
        if best is None or val > best[0]:
            best = (val, c, clf)
    assert best is not None
    return {**_scores(ys["test"], best[2].predict(x["test"])), "C": best[1]}


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_repeats(
    cfg: RepeatConfig,
    emit: Callable[[str], None] = print,
    on_split: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every split's figures; ``on_split`` gets the report so far after each split (a long run on a
    busy machine leaves a record of the splits it finished)."""
    from training import model as net

    base = cfg.train or net.TrainConfig()
    ds = clean(load_dataset(cfg.dataset, cfg.text_column, cfg.label_column))
    emit(f"dataset {ds.name}: {describe(ds.stats)}")
    check_trainable(ds)
    labels = sorted(set(ds.labels))
    load_before = os.getloadavg()
    runs: list[dict[str, Any]] = []
    for i in range(cfg.repeats):
        seed = cfg.seed + i
        parts = split(ds, labels, cfg.test_size, cfg.val_size, seed)
        tcfg = replace(base, seed=seed).resolved(len(parts["train"].texts))
        net.make_deterministic(seed)
        t0, c0 = time.perf_counter(), _cpu_seconds()
        vec, rows = fit_rows(cfg.features, {k: v.texts for k, v in parts.items()})
        features_s = time.perf_counter() - t0
        model = net.build_model(vec.n_features, len(labels), tcfg)
        t1, c1 = time.perf_counter(), _cpu_seconds()
        history = net.train(
            model,
            rows["train"],
            parts["train"].y,
            rows["validation"],
            parts["validation"].y,
            tcfg,
            lambda _: None,
        )
        train_s, train_cpu = time.perf_counter() - t1, _cpu_seconds() - c1
        probs = net.predict_proba(model, rows["test"])
        ys = {k: v.y for k, v in parts.items()}
        run: dict[str, Any] = {
            "seed": seed,
            "network": _scores(ys["test"], probs.argmax(1)),
            "reference": reference(rows, ys, vec.n_features),
            "n_features": vec.n_features,
            "epochs_run": len(history.get("loss", [])),
            "features_seconds": round(features_s, 1),
            "train_seconds": round(train_s, 1),
            "train_cpu_seconds": round(train_cpu, 1),
            "split_cpu_seconds": round(_cpu_seconds() - c0, 1),  # features, training, reference
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
        emit(
            f"split {i + 1}/{cfg.repeats} (seed {seed}): network accuracy {run['network']['accuracy']:.4f} "
            f"macro-F1 {run['network']['macro_f1']:.4f}; reference {run['reference']['accuracy']:.4f} / "
            f"{run['reference']['macro_f1']:.4f} (C={run['reference']['C']}); trained in {train_s:.1f}s "
            f"({train_cpu:.1f}s CPU, {run['epochs_run']} epochs, load {run['load_average_1m']})"
        )
        runs.append(run)
        report = _report(cfg, ds, labels, runs, vec, tcfg, load_before)
        if on_split is not None:
            on_split(report)
    return report


def _report(
    cfg: RepeatConfig,
    ds: Any,
    labels: list[str],
    runs: list[dict[str, Any]],
    vec: Any,
    tcfg: Any,
    load_before: tuple[float, float, float],
) -> dict[str, Any]:
    return {
        "dataset": ds.name,
        "data_cleaning": ds.stats,
        "labels": labels,
        "runs": runs,
        "features": {
            "analyzer": vec.analyzer,
            "ngram_range": list(vec.ngram_range),
            "segmenter": vec.segmenter,
        },
        "train": asdict(tcfg),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": _machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "repeats_requested": cfg.repeats,
    }


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}"


def _mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {std:.4f}"


def markdown(report: dict[str, Any]) -> str:
    """The recorded run: provenance, then one table (mean ± standard deviation over the splits)."""
    runs = report["runs"]
    s = report["data_cleaning"]
    seeds = ", ".join(str(r["seed"]) for r in runs)
    lines = [
        f"### {report['dataset']}: {len(runs)} stratified splits (seeds {seeds})"
        + (
            f" (unfinished: {len(runs)} of {report['repeats_requested']} requested)"
            if len(runs) < report.get("repeats_requested", len(runs))
            else ""
        ),
        "",
        f"Recorded {report['date']} on {report['machine']} (shared with other builds; load average "
        f"{' / '.join(map(str, report['load_average_before']))} before, "
        f"{' / '.join(map(str, report['load_average_after']))} after).",
        f"Command: `python -m training evaluate --dataset {report['dataset']} --repeats {len(runs)}`. "
        f"Features: {report['features']['analyzer']} {report['features']['ngram_range']}"
        + (f" with {report['features']['segmenter']}" if report["features"]["segmenter"] else "")
        + f". Cleaning: {s['rows_loaded']} rows, {s['duplicates_removed']} exact and "
        f"{s.get('near_duplicates_removed', 0)} near-duplicates removed, "
        f"{s['conflicting_label_rows_removed'] + s.get('near_conflicting_label_rows_removed', 0)} rows with "
        f"conflicting labels removed, {s['rows_kept']} kept.",
        "",
        "| model | test accuracy (mean ± std) | macro-F1 (mean ± std) | per split accuracy | training time |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, name in (("network", "TF-IDF + Keras network"), ("reference", "TF-IDF + logistic regression")):
        acc = [r[key]["accuracy"] for r in runs]
        f1 = [r[key]["macro_f1"] for r in runs]
        timing = "-"
        if key == "network":
            timing = (
                f"{statistics.fmean(r['train_seconds'] for r in runs):.1f} s wall, "
                f"{statistics.fmean(r['train_cpu_seconds'] for r in runs):.1f} s CPU (mean)"
            )
        per = " ".join(f"{a:.4f}" for a in acc)
        lines.append(f"| {name} | {_mean_std(acc)} | {_mean_std(f1)} | {per} | {timing} |")
    return "\n".join(lines) + "\n"
