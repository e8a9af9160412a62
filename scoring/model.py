"""A version's SavedModel in-process, with the served version's vectorizer, labels and calibration."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from contracts.modeldir import ModelDirError, version_dirs
from contracts.signature import PROBABILITIES, SIGNATURE, TOKEN_IDS, TOKEN_WEIGHTS, pad
from preprocess_service.postprocess import Answer, Options, answer_row, calibrate
from preprocess_service.registry import ModelVersion, load_version


def version_path(model_dir: Path, version: int | None) -> Path:
    """``model_dir/<version>``, or the newest version directory when none is named."""
    dirs = version_dirs(model_dir)
    if not dirs:
        raise ModelDirError(f"{model_dir}: no version directories (expected {model_dir}/<version>/)")
    if version is None:
        return dirs[max(dirs)]
    if version not in dirs:
        raise ModelDirError(
            f"{model_dir}: no version {version} (versions: {', '.join(map(str, sorted(dirs)))})"
        )
    return dirs[version]


class Scorer:
    def __init__(self, path: Path, name: str | None = None) -> None:
        import tensorflow as tf  # here, not at import: --help and argument errors stay fast

        self.model: ModelVersion = load_version(name or path.parent.name, path)
        self._fn = tf.saved_model.load(str(path)).signatures[SIGNATURE]
        self._tf = tf

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Raw (uncalibrated) probabilities, as the model server would return them."""
        ids, weights = pad(self.model.vectorizer.transform_one(t) for t in texts)
        out = self._fn(**{TOKEN_IDS: self._tf.constant(ids), TOKEN_WEIGHTS: self._tf.constant(weights)})
        return np.asarray(out[PROBABILITIES])

    def answers(self, texts: Sequence[str], opts: Options, unknown_label: str | None = None) -> list[Answer]:
        cal = calibrate(self.model, self.probabilities(texts))
        return [answer_row(self.model, cal[i], opts, unknown_label) for i in range(len(texts))]
