"""Shared text -> sparse TF-IDF transform (contract 3) and model-directory layout (contract 1).

Depends on numpy and orjson only, so the sidecar can import it without TensorFlow or scikit-learn."""

from textvec.language import detect_analyzer
from textvec.modeldir import ModelDirError, load_labels, next_version, version_dirs
from textvec.vectorizer import Vectorizer, VectorizerError, pad

__all__ = [
    "ModelDirError",
    "Vectorizer",
    "VectorizerError",
    "detect_analyzer",
    "load_labels",
    "next_version",
    "pad",
    "version_dirs",
]
