"""Shared text -> sparse TF-IDF transform: one vectorizer, fitted by training, applied by the sidecar.

Depends on numpy and orjson only, so the sidecar can import it without TensorFlow or scikit-learn.
The model directory's layout and the padding of rows are contracts, in ``contracts``; their names are
handed on here for the callers that import them from textvec."""

from contracts import modeldir
from contracts.modeldir import ModelDirError, load_labels, next_version, version_dirs
from contracts.signature import pad
from textvec.language import detect_analyzer
from textvec.vectorizer import Vectorizer, VectorizerError

__all__ = [
    "ModelDirError",
    "Vectorizer",
    "VectorizerError",
    "detect_analyzer",
    "load_labels",
    "modeldir",
    "next_version",
    "pad",
    "version_dirs",
]
