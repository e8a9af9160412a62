"""Write a model version directory exactly per contract 1 and 2, atomically.

TF Serving (and our local stand-in) poll ``<base>/<name>/`` and load any all-digit directory they see;
the version is therefore assembled in a hidden sibling directory and renamed into place in one step,
so a poller never sees half of it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import orjson
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from textvec import Vectorizer, modeldir, next_version

SIGNATURE = "serving_default"


class ExportError(RuntimeError):
    """The version cannot be written (it exists already, or the target is not writable)."""


class _Serving(tf.Module):
    """The serving graph: sparse inputs in, probabilities, class ids and label strings out."""

    def __init__(self, model: keras.Model, labels: Sequence[str]) -> None:
        super().__init__()
        # The layers, not the compiled model: the model also tracks Adam's two slots per weight, which
        # would triple what TF Serving reads and holds in memory, for nothing.
        self.layers = [layer for layer in model.layers if layer.weights]
        self.label_table = tf.constant(list(labels), dtype=tf.string)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.int64, name="token_ids"),
            tf.TensorSpec([None, None], tf.float32, name="token_weights"),
        ]
    )
    def serve(self, token_ids: tf.Tensor, token_weights: tf.Tensor) -> dict[str, tf.Tensor]:
        hidden, output = self.layers
        probs = output(hidden((token_ids, token_weights)))
        class_ids = tf.argmax(probs, axis=-1, output_type=tf.int64)
        return {
            "probabilities": tf.identity(probs, name="probabilities"),
            "class_ids": class_ids,
            "labels": tf.gather(self.label_table, class_ids),
        }


def warmup_records(model_name: str, vec: Vectorizer, sample_texts: Sequence[str]) -> list[bytes]:
    """PredictionLog records TF Serving replays at load time (batch sizes 1 and up to 8), so the first
    real request does not pay graph tracing and memory allocation."""
    records = []
    for size in sorted({1, min(8, len(sample_texts))}):
        ids, weights = vec.transform(list(sample_texts[:size]))
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SIGNATURE)
        )
        request.inputs["token_ids"].CopyFrom(tf.make_tensor_proto(ids, dtype=tf.int64))
        request.inputs["token_weights"].CopyFrom(tf.make_tensor_proto(weights, dtype=tf.float32))
        log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        records.append(log.SerializeToString())
    return records


def export_version(
    *,
    model: keras.Model,
    vectorizer: Vectorizer,
    labels: Sequence[str],
    out: str | Path,
    model_name: str,
    metrics: dict[str, Any],
    sample_texts: Sequence[str],
    extra_files: Sequence[Path] = (),
    version: int | None = None,
    asset_files: Mapping[Path, bytes] | None = None,
) -> Path:
    """Assemble the version in a hidden temporary directory, then rename it to ``<out>/<name>/<v>``."""
    base = Path(out) / model_name
    base.mkdir(parents=True, exist_ok=True)
    version = version if version is not None else next_version(base)
    if version < 1:
        raise ExportError(f"version must be a positive integer, got {version}")
    final = base / str(version)
    if final.exists():
        raise ExportError(f"{final} already exists; versions are immutable, pick another --version")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=base))
    try:
        module = _Serving(model, labels)
        tf.saved_model.save(module, str(tmp), signatures={SIGNATURE: module.serve})
        (tmp / "assets").mkdir(exist_ok=True)
        (tmp / "assets.extra").mkdir(exist_ok=True)
        vectorizer.save(tmp / modeldir.VECTORIZER)
        (tmp / modeldir.LABELS).write_bytes(
            orjson.dumps({"labels": list(labels)}, option=orjson.OPT_INDENT_2)
        )
        doc = dict(
            metrics, model_name=model_name, version=version, vectorizer_fingerprint=vectorizer.fingerprint
        )
        (tmp / modeldir.METRICS).write_bytes(
            orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
        )
        with tf.io.TFRecordWriter(str(tmp / modeldir.WARMUP)) as writer:
            for record in warmup_records(model_name, vectorizer, sample_texts):
                writer.write(record)
        for f in extra_files:
            shutil.copy2(f, tmp / "assets.extra" / f.name)
        for rel, data in (asset_files or {}).items():  # e.g. assets/calibration.json
            (tmp / rel).write_bytes(data)
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; the serving containers run as other users
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_signature(version_dir: str | Path) -> Any:
    """The exported ``serving_default`` function, loaded with TensorFlow's own SavedModel loader."""
    return tf.saved_model.load(str(version_dir)).signatures[SIGNATURE]


def predict_exported(version_dir: str | Path, ids: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    fn = load_signature(version_dir)
    out = fn(token_ids=tf.constant(ids, tf.int64), token_weights=tf.constant(weights, tf.float32))
    return {k: v.numpy() for k, v in out.items()}
