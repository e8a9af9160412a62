"""What the tests hold the product against, computed another way: the exported signature called through
TensorFlow's own SavedModel loader, and scikit-learn's sparse rows in the signature's padded form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from scipy import sparse

from contracts.signature import SIGNATURE, TOKEN_IDS, TOKEN_WEIGHTS, pad


def load_signature(version_dir: str | Path) -> Any:
    """The exported serving signature, loaded with TensorFlow's own SavedModel loader."""
    return tf.saved_model.load(str(version_dir)).signatures[SIGNATURE]


def predict_exported(version_dir: str | Path, ids: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    fn = load_signature(version_dir)
    out = fn(**{TOKEN_IDS: tf.constant(ids, tf.int64), TOKEN_WEIGHTS: tf.constant(weights, tf.float32)})
    return {k: v.numpy() for k, v in out.items()}


def csr_to_padded(x: sparse.csr_array | sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's sparse rows in the signature's padded (ids, weights) form."""
    x = sparse.csr_matrix(x)
    x.sort_indices()
    rows = [
        (x.indices[x.indptr[r] : x.indptr[r + 1]], x.data[x.indptr[r] : x.indptr[r + 1]])
        for r in range(x.shape[0])
    ]
    return pad(rows)
