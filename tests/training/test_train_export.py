"""Training end to end on real text: the export obeys the model directory layout and the serving
signature, and predicts like Keras."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from contracts import modeldir
from tests.reference import predict_exported
from textvec import Vectorizer, load_labels, version_dirs
from training.export import ExportError, export_version
from training.model import TrainConfig, predict_proba
from training.pipeline import RunConfig, RunResult, run


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, small_corpus_csv: Path) -> RunResult:
    out = tmp_path_factory.mktemp("export")
    return run(
        RunConfig(dataset=str(small_corpus_csv), model_name="news", out=out, train=TrainConfig(epochs=3)),
        emit=lambda _l: None,
    )


def test_export_layout_follows_contract_1(trained: RunResult) -> None:
    v = trained.version_dir
    assert v.name == "1" and v.parent.name == "news"
    for rel in (
        "saved_model.pb",
        "variables",
        "assets/vectorizer.json",
        "assets/labels.json",
        "assets.extra/tf_serving_warmup_requests",
        "assets.extra/metrics.json",
        "assets.extra/confusion_matrix.png",
        "assets.extra/training_curve.png",
    ):
        assert (v / rel).exists(), rel
    assert not [p for p in v.parent.iterdir() if p.name.startswith(".tmp")]
    assert load_labels(v) == ["business", "entertainment", "politics", "sports", "tech"]
    metrics = orjson.loads((v / "assets.extra/metrics.json").read_bytes())
    assert metrics["vectorizer_fingerprint"] == Vectorizer.load(v / modeldir.VECTORIZER).fingerprint
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= metrics["test"].keys()
    assert "duplicates_removed" in metrics["data_cleaning"]
    assert (v / "assets.extra/confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_signature_follows_contract_2(trained: RunResult) -> None:
    sig = tf.saved_model.load(str(trained.version_dir)).signatures["serving_default"]
    inputs = sig.structured_input_signature[1]
    assert inputs["token_ids"].dtype == tf.int64 and inputs["token_ids"].shape.as_list() == [None, None]
    assert inputs["token_weights"].dtype == tf.float32 and inputs["token_weights"].shape.as_list() == [
        None,
        None,
    ]
    outs = sig.structured_outputs
    assert outs["probabilities"].dtype == tf.float32 and outs["probabilities"].shape.as_list() == [None, 5]
    assert outs["class_ids"].dtype == tf.int64 and outs["labels"].dtype == tf.string


def test_saved_model_predicts_like_keras_on_test_split(trained: RunResult) -> None:
    vec = Vectorizer.load(trained.version_dir / modeldir.VECTORIZER)
    rows = [vec.transform_one(t) for t in trained.test_texts]
    keras_probs = predict_proba(trained.model, rows)
    ids, weights = vec.transform(trained.test_texts)
    out = predict_exported(trained.version_dir, ids, weights)
    np.testing.assert_allclose(out["probabilities"], keras_probs, atol=1e-5)
    np.testing.assert_array_equal(out["class_ids"], keras_probs.argmax(1))
    labels = load_labels(trained.version_dir)
    assert [b.decode() for b in out["labels"]] == [labels[i] for i in keras_probs.argmax(1)]


def test_warmup_records_are_prediction_logs(trained: RunResult) -> None:
    records = list(
        tf.data.TFRecordDataset(str(trained.version_dir / "assets.extra/tf_serving_warmup_requests"))
    )
    assert records
    for raw in records:
        log = prediction_log_pb2.PredictionLog.FromString(raw.numpy())
        req = log.predict_log.request
        assert req.model_spec.name == "news" and req.model_spec.signature_name == "serving_default"
        assert set(req.inputs) == {"token_ids", "token_weights"}


def _export_again(trained: RunResult, version: int | None) -> Path:
    return export_version(
        model=trained.model,
        vectorizer=Vectorizer.load(trained.version_dir / modeldir.VECTORIZER),
        labels=load_labels(trained.version_dir),
        out=trained.version_dir.parent.parent,
        model_name="news",
        metrics={},
        sample_texts=["x"],
        version=version,
    )


def test_export_refuses_to_overwrite_a_version(trained: RunResult) -> None:
    with pytest.raises(ExportError, match="already exists"):
        _export_again(trained, version=1)
    assert sorted(version_dirs(trained.version_dir.parent)) == [1]


def test_next_export_gets_next_version(trained: RunResult) -> None:
    assert _export_again(trained, version=None).name == "2"


def test_same_seed_gives_same_metrics(tmp_path: Path, small_corpus_csv: Path) -> None:
    cfgs = [
        RunConfig(
            dataset=str(small_corpus_csv),
            model_name="m",
            out=tmp_path / str(i),
            train=TrainConfig(epochs=2, seed=7),
        )
        for i in range(2)
    ]
    a, b = (run(c, emit=lambda _l: None).metrics for c in cfgs)
    assert a["test"] == b["test"]
    assert a["training"]["history"] == b["training"]["history"]


def test_cli_help_explains_usage() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "training", "train", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--dataset" in out and "bbc-news" in out and "examples:" in out


def test_cli_bad_data_exits_2_with_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nonly,a\n", encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "train",
            "--dataset",
            str(bad),
            "--model-name",
            "x",
            "--out",
            str(tmp_path / "m"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "only one label" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_version_file_names_the_published_version(tmp_path: Path, small_corpus_csv: Path) -> None:
    """The training Job hands the version it published to the evaluation gate through this file."""
    out, vfile = tmp_path / "m", tmp_path / "handoff" / "version"
    vfile.parent.mkdir()
    (out / "news" / "1").mkdir(parents=True)  # taken: train picks the next free number
    proc = subprocess.run(
        [sys.executable, "-m", "training", "train", "--dataset", str(small_corpus_csv),
         "--model-name", "news", "--out", str(out), "--epochs", "1", "--version-file", str(vfile)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert vfile.read_text() == "2\n"
    assert (out / "news" / "2" / "saved_model.pb").is_file()
