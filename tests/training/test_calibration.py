"""Calibration: temperature scaling and the abstain threshold, fitted at training and stored with the
version (the calibration contract)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from textvec import Vectorizer, modeldir
from textvec.calibration import (
    CALIBRATION,
    Calibration,
    CalibrationError,
    apply_temperature,
    load_calibration,
)
from training import calibration


def _overconfident(n: int, true_t: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); reported probabilities softmax(true_t * z): over-confident."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, size=(n, 5))
    p_true = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(5, p=row) for row in p_true])
    reported = np.exp(true_t * z) / np.exp(true_t * z).sum(1, keepdims=True)
    return reported, y


def test_temperature_recovers_the_miscalibration_and_lowers_ece() -> None:
    probs, y = _overconfident(6000, true_t=2.5)
    t = calibration.fit_temperature(probs, y)
    assert 2.2 < t < 2.8, t
    after = apply_temperature(probs, t)
    assert calibration.ece(after, y) < calibration.ece(probs, y) / 3
    assert (after.argmax(1) == probs.argmax(1)).all()  # scaling never changes the predicted class


def test_temperature_equals_scaling_the_logits() -> None:
    logits = np.random.default_rng(1).normal(size=(50, 4))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scaled = np.exp(logits / 1.7) / np.exp(logits / 1.7).sum(1, keepdims=True)
    np.testing.assert_allclose(apply_temperature(probs, 1.7), scaled, rtol=1e-9)


def test_threshold_reaches_target_precision_on_the_data_it_was_chosen_on() -> None:
    probs, y = _overconfident(3000, true_t=1.0, seed=3)
    t = calibration.choose_threshold(probs, y, 0.95)
    assert t is not None and 0 < t < 1
    rep = calibration.coverage_report(probs, y, t)
    assert rep["accuracy_answered"] >= 0.95 and 0 < rep["coverage"] < 1
    # a lower threshold would answer more texts at a precision below the target
    looser = calibration.coverage_report(probs, y, t - 0.05)
    assert looser["coverage"] > rep["coverage"]


def test_threshold_is_none_when_everything_is_right_and_one_when_nothing_is() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert calibration.choose_threshold(probs, np.array([0, 1, 0]), 0.99) is None
    assert calibration.choose_threshold(probs, np.array([1, 0, 1]), 0.99) == 1.0


def test_ece_of_a_perfectly_calibrated_toy_is_zero_and_of_a_liar_is_large() -> None:
    probs = np.array([[1.0, 0.0]] * 10)
    assert calibration.ece(probs, np.zeros(10, dtype=int)) == 0.0
    assert calibration.ece(probs, np.array([0] * 5 + [1] * 5)) == pytest.approx(0.5)


def test_missing_file_means_uncalibrated(tmp_path: Path) -> None:
    cal = load_calibration(tmp_path)
    assert cal.temperature == 1.0 and cal.abstain_threshold is None


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"format": "other", "temperature": 1}', "unknown calibration format"),
        (b'{"format": "textclf-calibration/1"}', "'temperature' is missing"),
        (b'{"format": "textclf-calibration/1", "temperature": -1}', "temperature must be"),
        (b'{"format": "textclf-calibration/1", "temperature": "2"}', "temperature must be"),
        (b'{"format": "textclf-calibration/1", "temperature": true}', "temperature must be a number"),
        (
            b'{"format": "textclf-calibration/1", "temperature": 1, "abstain_threshold": 1.5}',
            "abstain_threshold",
        ),
    ],
)
def test_malformed_file_is_rejected_with_its_reason(tmp_path: Path, content: bytes, fragment: str) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / CALIBRATION).write_bytes(content)
    with pytest.raises(CalibrationError, match=fragment) as info:
        load_calibration(tmp_path)
    assert "calibration.json" in str(info.value)


def test_file_for_another_vectorizer_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / CALIBRATION).write_bytes(Calibration(2.0, vectorizer_fingerprint="sha256:abc").to_json())
    assert load_calibration(tmp_path).temperature == 2.0
    with pytest.raises(CalibrationError, match="another vectorizer"):
        load_calibration(tmp_path, fingerprint="sha256:def")


def test_exported_version_carries_calibration_metrics_and_diagram(exported_models: Path) -> None:
    version = exported_models / "news" / "1"
    vec = Vectorizer.load(version / modeldir.VECTORIZER)
    cal = load_calibration(version, vec.fingerprint)
    assert cal.vectorizer_fingerprint == vec.fingerprint and cal.target_precision == 0.99
    doc = orjson.loads((version / CALIBRATION).read_bytes())
    assert doc["fitted_on"].startswith("validation split")
    m = orjson.loads((version / modeldir.METRICS).read_bytes())["calibration"]
    assert m["temperature"] == cal.temperature and m["ece_bins"] == 15
    assert 0 <= m["test_ece_after"] <= 1 and 0 <= m["test_ece_before"] <= 1
    assert m["abstain"]["threshold"] == cal.abstain_threshold
    assert 0 <= m["abstain"]["coverage"] <= 1
    png = (version / "assets.extra" / "reliability_diagram.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
