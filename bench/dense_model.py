"""The baseline's model: the SAME trained weights as a version directory, exported with the dense
input signature the usual transformer pattern needs (``x`` float32 [batch, n_features]).

``python -m bench.dense_model <sparse version dir> <dense base>`` writes ``<dense base>/<version>/``.
Only the benchmark uses this; the product exports the sparse serving signature."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf


class DenseServing(tf.Module):
    """relu(x @ kernel + bias) then softmax: Dense(128, relu) -> Dense(n, softmax) on a dense vector."""

    def __init__(self, k1: tf.Tensor, b1: tf.Tensor, k2: tf.Tensor, b2: tf.Tensor) -> None:
        super().__init__()
        self.k1, self.b1 = tf.Variable(k1, name="hidden_kernel"), tf.Variable(b1, name="hidden_bias")
        self.k2, self.b2 = tf.Variable(k2, name="output_kernel"), tf.Variable(b2, name="output_bias")

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        hidden = tf.nn.relu(tf.matmul(x, self.k1) + self.b1)
        return {"probabilities": tf.nn.softmax(tf.matmul(hidden, self.k2) + self.b2, axis=-1)}


def export_dense(sparse_version_dir: Path, dense_base: Path) -> Path:
    """Copy the weights of ``sparse_version_dir`` into ``dense_base/<same version>`` (replacing it)."""
    src = tf.saved_model.load(str(sparse_version_dir))
    hidden, output = src.layers
    # keras' Dense keeps its kernel as ``_kernel``; the project's SparseDense as ``kernel``
    k1, k2 = (layer.kernel if hasattr(layer, "kernel") else layer._kernel for layer in (hidden, output))
    n_features = int(k1.shape[0])
    module = DenseServing(k1, hidden.bias, k2, output.bias)
    target = dense_base / sparse_version_dir.name
    tmp = dense_base / f".tmp-{sparse_version_dir.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    dense_base.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve})
    # The same vectorizer and labels travel with it, as they would in a user's model directory.
    shutil.copytree(sparse_version_dir / "assets", tmp / "assets", dirs_exist_ok=True)
    # Equal weights, equal numbers: check one random sparse row both ways before anyone benchmarks it.
    ids = tf.constant([[3, 17, n_features - 1]], tf.int64)
    w = tf.constant([[0.5, 0.25, 0.8]], tf.float32)
    sparse = src.signatures["serving_default"](token_ids=ids, token_weights=w)["probabilities"]
    x = tf.scatter_nd(tf.constant([[0, 3], [0, 17], [0, n_features - 1]]), w[0], [1, n_features])
    dense = module.serve(x)["probabilities"]
    diff = float(tf.reduce_max(tf.abs(sparse - dense)))
    if diff > 1e-5:
        raise SystemExit(f"dense export disagrees with the sparse model by {diff}")
    os.rename(tmp, target)
    return target


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.dense_model")
    p.add_argument("sparse_version_dir", type=Path)
    p.add_argument("dense_base", type=Path)
    args = p.parse_args()
    print(export_dense(args.sparse_version_dir, args.dense_base))


if __name__ == "__main__":
    main()
