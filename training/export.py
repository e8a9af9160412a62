"""Write a model version directory (its layout and the serving signature, per ``contracts``), atomically.

TF Serving (and our local stand-in) poll ``<base>/<name>/`` and load any all-digit directory they see;
the version is therefore assembled in a hidden sibling directory and published (renamed into place in
one step), so a poller never sees half of it."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import orjson
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from contracts import modeldir
from contracts.signature import CLASS_IDS, LABELS, PROBABILITIES, SIGNATURE, TOKEN_IDS, TOKEN_WEIGHTS
from textvec import Vectorizer


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
            tf.TensorSpec([None, None], tf.int64, name=TOKEN_IDS),
            tf.TensorSpec([None, None], tf.float32, name=TOKEN_WEIGHTS),
        ]
    )
    def serve(self, token_ids: tf.Tensor, token_weights: tf.Tensor) -> dict[str, tf.Tensor]:
        hidden, output = self.layers
        probs = output(hidden((token_ids, token_weights)))
        class_ids = tf.argmax(probs, axis=-1, output_type=tf.int64)
        return {
            PROBABILITIES: tf.identity(probs, name=PROBABILITIES),
            CLASS_IDS: class_ids,
            LABELS: tf.gather(self.label_table, class_ids),
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
        request.inputs[TOKEN_IDS].CopyFrom(tf.make_tensor_proto(ids, dtype=tf.int64))
        request.inputs[TOKEN_WEIGHTS].CopyFrom(tf.make_tensor_proto(weights, dtype=tf.float32))
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
    version = version if version is not None else modeldir.next_version(base)
    if version < 1:
        raise ExportError(f"version must be a positive integer, got {version}")
    final = base / str(version)
    if final.exists():
        raise ExportError(f"{final} already exists; versions are immutable, pick another --version")
    tmp = modeldir.staging_dir(base, version)
    try:
        module = _Serving(model, labels)
        tf.saved_model.save(module, str(tmp), signatures={SIGNATURE: module.serve})
        (tmp / modeldir.ASSETS).mkdir(exist_ok=True)
        (tmp / modeldir.ASSETS_EXTRA).mkdir(exist_ok=True)
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
            shutil.copy2(f, tmp / modeldir.ASSETS_EXTRA / f.name)
        for rel, data in (asset_files or {}).items():  # e.g. assets/calibration.json
            (tmp / rel).write_bytes(data)
        modeldir.publish(tmp, base, version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
