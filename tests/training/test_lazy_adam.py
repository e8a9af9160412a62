"""``--optimizer lazy-adam``: Adam on the first-layer rows a batch uses, and only those."""

from __future__ import annotations

import keras
import numpy as np

from contracts.signature import TOKEN_IDS, TOKEN_WEIGHTS
from training.model import TrainConfig, build_model

N_FEATURES = 12


def _model(optimizer: str) -> keras.Model:
    keras.utils.set_random_seed(3)
    cfg = TrainConfig(hidden=4, batch_size=2, learning_rate=0.01, dropout=0.0, optimizer=optimizer)
    return build_model(N_FEATURES, 2, cfg)


def _step(model: keras.Model, ids: list[list[int]], weights: list[list[float]], y: list[int]) -> np.ndarray:
    x = {TOKEN_IDS: np.asarray(ids, np.int64), TOKEN_WEIGHTS: np.asarray(weights, np.float32)}
    model.train_on_batch(x, np.asarray(y))
    return np.asarray(model.get_layer("dense_hidden").kernel).copy()


def test_lazy_adam_moves_only_the_rows_a_batch_uses() -> None:
    lazy, dense = _model("lazy-adam"), _model("adam")
    start = np.asarray(lazy.get_layer("dense_hidden").kernel).copy()
    np.testing.assert_array_equal(start, np.asarray(dense.get_layer("dense_hidden").kernel))
    # term 2 appears in both rows (its gradient rows must be summed); term 0 with weight 0 is padding
    batch1 = ([[1, 2, 0], [2, 5, 0]], [[0.6, 0.8, 0.0], [0.5, 0.5, 0.0]], [0, 1])
    after_lazy, after_dense = _step(lazy, *batch1), _step(dense, *batch1)
    used = [1, 2, 5]
    # Adam's first step moves every weight with a non-zero gradient by the learning rate
    # (m / sqrt(v) = g / |g| after bias correction); the summed gradient of term 2 included. Keras'
    # own Adam squares term 2's two gradient rows separately, so it moves that row by less.
    moved = np.abs(after_lazy - start)
    assert np.all((moved[used] < 1e-7) | (np.abs(moved[used] - 0.01) < 1e-5)), moved[used]
    assert (moved[2] > 0.009).sum() >= 1, moved[2]
    np.testing.assert_allclose(after_lazy[[1, 5]], after_dense[[1, 5]], rtol=1e-5, atol=1e-7)
    unused = [i for i in range(N_FEATURES) if i not in used]
    np.testing.assert_array_equal(after_lazy[unused], start[unused])

    batch2 = ([[7, 0], [8, 0]], [[1.0, 0.0], [1.0, 0.0]], [1, 0])
    lazy2, dense2 = _step(lazy, *batch2), _step(dense, *batch2)
    # second step: dense Adam keeps moving rows 1, 2, 5 on their momentum, lazy Adam leaves them alone
    np.testing.assert_array_equal(lazy2[used], after_lazy[used])
    assert not np.allclose(dense2[used], after_dense[used])
    assert not np.allclose(lazy2[[7, 8]], after_lazy[[7, 8]])
    np.testing.assert_allclose(lazy2[[7, 8]], dense2[[7, 8]], rtol=1e-4, atol=1e-6)


def test_resolved_patience_by_corpus_size() -> None:
    assert TrainConfig().resolved(12_000).patience == 1
    assert TrainConfig().resolved(1_500).patience == 3
    assert TrainConfig(patience=5).resolved(12_000).patience == 5
