"""Batch scoring: ``python -m preprocess_service.score INPUT --model-dir DIR --out FILE``.

Scores a CSV/TSV/JSONL file or a folder of ``.txt`` files offline with the exact artifact a version
serves: its vectorizer, labels and calibration as the sidecar loads them (``registry.load_version``)
and its SavedModel run in-process with TensorFlow (no model server). The answers are the sidecar's
(``postprocess``), so a text gets the same label and calibrated score as from ``/v1/classify``. Needs
the training extra (TensorFlow, the dataset readers) besides the sidecar's."""
