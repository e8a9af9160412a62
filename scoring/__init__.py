"""Batch scoring: ``python -m scoring INPUT --model-dir DIR --out FILE``.

A package of its own, beside training and the sidecar: it uses the training's dataset readers (which
the sidecar may not import, its image has no training code) and the sidecar's answer code. It runs
from the trainer image (docker/Dockerfile.trainer), which carries both.

Scores a CSV/TSV/JSONL file or a folder of ``.txt`` files offline with the exact artifact a version
serves: its vectorizer, labels and calibration as the sidecar loads them (``registry.load_version``)
and its SavedModel run in-process with TensorFlow (no model server). The answers are the sidecar's
(``postprocess``), so a text gets the same label and calibrated score as from ``/v1/classify``. Needs
the training extra (TensorFlow, the dataset readers) besides the sidecar's."""
