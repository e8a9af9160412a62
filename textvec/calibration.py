"""Calibration of a version's scores: temperature and abstain threshold (``assets/calibration.json``).

Training fits both on the validation split; the sidecar applies them. The file lives here, beside the
vectorizer, because both sides read it and the sidecar must not import training (TensorFlow)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

CALIBRATION = Path("assets") / "calibration.json"
FORMAT = "textclf-calibration/1"


class CalibrationError(ValueError):
    """A calibration.json that cannot be trusted: wrong format, or values out of range."""


@dataclass(frozen=True)
class Calibration:
    """``temperature`` divides the log-probabilities; ``abstain_threshold`` (calibrated confidence of
    the top class) below which the answer is "I don't know", or None for never."""

    temperature: float = 1.0
    abstain_threshold: float | None = None
    target_precision: float | None = None
    vectorizer_fingerprint: str | None = None

    def __post_init__(self) -> None:
        t = self.temperature
        if not (isinstance(t, int | float) and math.isfinite(t) and 0.01 <= t <= 100):
            raise CalibrationError(f"temperature must be a number in [0.01, 100], got {t!r}")
        th = self.abstain_threshold
        if th is not None and not (isinstance(th, int | float) and 0.0 <= th <= 1.0):
            raise CalibrationError(f"abstain_threshold must be null or a number in [0, 1], got {th!r}")
        tp = self.target_precision
        if tp is not None and not (isinstance(tp, int | float) and 0.0 < tp <= 1.0):
            raise CalibrationError(f"target_precision must be null or a number in (0, 1], got {tp!r}")

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """softmax(log p / T), which equals softmax(logits / T) for the network's own logits."""
        return apply_temperature(probs, self.temperature)

    def to_json(self, **extra: Any) -> bytes:
        doc = {
            "format": FORMAT,
            "method": "temperature scaling",
            "temperature": self.temperature,
            "abstain_threshold": self.abstain_threshold,
            "target_precision": self.target_precision,
            "vectorizer_fingerprint": self.vectorizer_fingerprint,
            **extra,
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)

    @classmethod
    def from_json(cls, data: bytes) -> Calibration:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise CalibrationError(f"not valid JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise CalibrationError(f"unknown calibration format (expected {FORMAT!r})")
        if "temperature" not in doc:
            raise CalibrationError("the field 'temperature' is missing")
        fp = doc.get("vectorizer_fingerprint")
        if fp is not None and not isinstance(fp, str):
            raise CalibrationError("vectorizer_fingerprint must be a string")
        for key in ("temperature", "abstain_threshold", "target_precision"):
            if isinstance(doc.get(key), bool):  # bool is an int to Python, never a valid value here
                raise CalibrationError(f"{key} must be a number, got {doc[key]!r}")
        return cls(
            temperature=doc["temperature"],
            abstain_threshold=doc.get("abstain_threshold"),
            target_precision=doc.get("target_precision"),
            vectorizer_fingerprint=fp,
        )


def load_calibration(version_dir: str | Path, fingerprint: str | None = None) -> Calibration:
    """The version's calibration; a version without the file (older ones) serves uncalibrated
    (temperature 1, never abstains). A malformed file, or one fitted for another vectorizer, raises."""
    path = Path(version_dir) / CALIBRATION
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Calibration()
    try:
        cal = Calibration.from_json(data)
    except CalibrationError as exc:
        raise CalibrationError(f"{path}: {exc}") from exc
    if fingerprint and cal.vectorizer_fingerprint and cal.vectorizer_fingerprint != fingerprint:
        raise CalibrationError(f"{path}: fitted for another vectorizer (fingerprint differs)")
    return cal


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if temperature == 1.0:
        return probs
    logits = np.log(np.clip(probs, 1e-30, None)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out
