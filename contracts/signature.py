"""The serving signature: sparse rows in (``token_ids`` int64 and ``token_weights`` float32, both
``[batch, k]``, padded with weight 0), ``probabilities``, ``class_ids`` and ``labels`` out."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

SIGNATURE = "serving_default"
TOKEN_IDS, TOKEN_WEIGHTS = "token_ids", "token_weights"
PROBABILITIES, CLASS_IDS, LABELS = "probabilities", "class_ids", "labels"

Row = tuple[list[int], list[float]]  # one text's sparse TF-IDF vector: term ids and their weights


def pad(rows: Iterable[Row]) -> tuple[np.ndarray, np.ndarray]:
    """Stack sparse rows into the padded ``[batch, k]`` int64/float32 pair of the signature; k is the
    longest row (at least 1). Padding is id 0 with weight 0, which adds nothing to the first layer's
    weighted sum, so a row means the same whatever the batch it travels in."""
    rows = list(rows)
    k = max([1, *(len(ids) for ids, _ in rows)])
    ids_out = np.zeros((len(rows), k), dtype=np.int64)
    weights_out = np.zeros((len(rows), k), dtype=np.float32)
    for r, (ids, weights) in enumerate(rows):
        ids_out[r, : len(ids)] = ids
        weights_out[r, : len(weights)] = weights
    return ids_out, weights_out
