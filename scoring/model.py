"""A version's SavedModel in-process, with the served version's vectorizer, labels and calibration."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from contracts.modeldir import ModelDirError, version_dirs
from contracts.signature import PROBABILITIES, SIGNATURE, TOKEN_IDS, TOKEN_WEIGHTS, Row, pad
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


# The network's first layer looks up one kernel row per (text, term) cell of the padded batch before it
# sums them, so a call's memory is rows x longest row x hidden units: 1,024 long articles (2,000 terms
# each) would take a gigabyte. Calls are cut to at most this many cells, whatever the texts' lengths
# (padding adds nothing, so the answers do not depend on the cut).
MAX_CELLS = 131_072


def split_by_cells(rows: Sequence[Row], max_cells: int) -> list[list[Row]]:
    """Consecutive runs of rows whose padded size (rows x longest) stays within ``max_cells``; a single
    row longer than that is a run of its own."""
    parts: list[list[Row]] = []
    part: list[Row] = []
    longest = 0
    for row in rows:
        k = max(len(row[0]), 1)
        if part and (len(part) + 1) * max(longest, k) > max_cells:
            parts.append(part)
            part, longest = [], 0
        part.append(row)
        longest = max(longest, k)
    if part:
        parts.append(part)
    return parts


class Scorer:
    def __init__(self, path: Path, name: str | None = None, max_cells: int = MAX_CELLS) -> None:
        import tensorflow as tf  # here, not at import: --help and argument errors stay fast

        self.model: ModelVersion = load_version(name or path.parent.name, path)
        self._fn = tf.saved_model.load(str(path)).signatures[SIGNATURE]
        self._tf = tf
        self.max_cells = max_cells

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Raw (uncalibrated) probabilities, as the model server would return them."""
        rows = [self.model.vectorizer.transform_one(t) for t in texts]
        return np.concatenate([self._call(part) for part in split_by_cells(rows, self.max_cells)])

    def _call(self, rows: Sequence[Row]) -> np.ndarray:
        ids, weights = pad(rows)
        out = self._fn(**{TOKEN_IDS: self._tf.constant(ids), TOKEN_WEIGHTS: self._tf.constant(weights)})
        return np.asarray(out[PROBABILITIES])

    def answers(self, texts: Sequence[str], opts: Options, unknown_label: str | None = None) -> list[Answer]:
        cal = calibrate(self.model, self.probabilities(texts))
        return [answer_row(self.model, cal[i], opts, unknown_label) for i in range(len(texts))]
