"""TensorFlow version compatibility: a model exported here loads and predicts identically under the
TensorFlow that the chart's TF Serving image is built on.

One source of truth: the chart's ``tfServing.image.tag`` (tensorflow/serving X.Y.Z is built on
TensorFlow X.Y.Z). ``requirements/tf-serving-compat.txt`` pins that TensorFlow (and the matching
tensorflow-serving-api) for ``make tf-compat-env``, a separate cached environment; a test here fails
when the tag moves and the pin does not follow. Both model kinds are exported the way ``make train``
writes them (the training pipeline, here on small slices: English word n-grams from bbc-news, Chinese
character n-grams from chinese-reviews), then checked in that environment by tf_compat_check.py."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from lms_support import REPO

pytestmark = pytest.mark.timeout(900)

VALUES = REPO / "helm" / "text-classifier" / "values.yaml"
LOCK = REPO / "requirements" / "tf-serving-compat.txt"
VENV_PY = REPO / ".cache" / "tf-serving-compat" / "bin" / "python"
CHECK = Path(__file__).with_name("tf_compat_check.py")
N_DOCS = 200


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;#]+).*", line.strip())
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def serving_tensorflow_version() -> str:
    """The TensorFlow version of the chart's TF Serving image, from its tag."""
    image = yaml.safe_load(VALUES.read_text())["tfServing"]["image"]
    tag, gpu_tag = str(image["tag"]), str(image["gpuTag"])
    m = re.fullmatch(r"(\d+\.\d+\.\d+)", tag)
    assert m, f"tfServing.image.tag {tag!r} is not a release X.Y.Z: the TensorFlow version cannot be derived"
    assert gpu_tag == f"{tag}-gpu", f"gpuTag {gpu_tag!r} does not match tag {tag!r}"
    return m.group(1)


def test_tf_compat_pin_follows_the_chart_image_tag() -> None:
    version = serving_tensorflow_version()
    pins = _pins()
    assert pins.get("tensorflow") == version, (
        f"the chart runs tensorflow/serving:{version} (TensorFlow {version}) but {LOCK.name} pins "
        f"tensorflow=={pins.get('tensorflow')}: regenerate it for {version} (docs/local_model_server.md)"
    )
    assert pins.get("tensorflow-serving-api") == version, pins.get("tensorflow-serving-api")


def _venv() -> Path:
    if not VENV_PY.exists():
        pytest.fail(f"{VENV_PY} is missing: run `make tf-compat-env` (make test does)", pytrace=False)
    return VENV_PY


def _slice_csv(path: Path, texts: list[str], labels: list[str], per_label: int) -> list[str]:
    """Write the first ``per_label`` rows of each label; return other texts (held out) for checking."""
    taken: dict[str, int] = {}
    rest = []
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for text, label in zip(texts, labels, strict=True):
            if taken.get(label, 0) < per_label:
                taken[label] = taken.get(label, 0) + 1
                w.writerow([text, label])
            else:
                rest.append(text)
    return rest


@pytest.fixture(scope="module")
def models(
    exported_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, list[str]]]:
    """Both model kinds as the training pipeline exports them, with 200 documents each."""
    from training.datasets import load_bbc_news, load_chinese_reviews
    from training.model import TrainConfig
    from training.pipeline import RunConfig, run

    bbc = load_bbc_news()
    out: dict[str, tuple[Path, list[str]]] = {
        "bbc-news": (exported_models / "news" / "1", bbc.texts[-N_DOCS:])
    }
    root = tmp_path_factory.mktemp("tf-compat")
    zh = load_chinese_reviews()
    held_out = _slice_csv(root / "reviews.csv", zh.texts, zh.labels, per_label=150)
    result = run(
        RunConfig(
            dataset=str(root / "reviews.csv"), model_name="reviews", out=root, train=TrainConfig(epochs=3)
        ),
        emit=lambda _line: None,
    )
    assert len(held_out) >= N_DOCS
    out["chinese-reviews"] = (result.version_dir, held_out[:N_DOCS])
    return out


@pytest.mark.parametrize("kind", ["bbc-news", "chinese-reviews"])
def test_tf_compat_model_loads_and_predicts_identically_on_serving_tensorflow(
    kind: str, models: dict[str, tuple[Path, list[str]]], tmp_path: Path
) -> None:
    from tests.reference import predict_exported
    from textvec import Vectorizer

    py = _venv()
    version_dir, texts = models[kind]
    vec = Vectorizer.load(version_dir / "assets" / "vectorizer.json")
    if kind == "chinese-reviews":
        assert vec.analyzer == "char+words", vec.analyzer
    ids, weights = vec.transform(texts)
    ids, weights = np.asarray(ids, dtype=np.int64), np.asarray(weights, dtype=np.float32)
    assert ids.shape[0] == N_DOCS
    here = predict_exported(version_dir, ids, weights)
    np.savez(tmp_path / "inputs.npz", token_ids=ids, token_weights=weights)
    proc = subprocess.run(
        [str(py), str(CHECK), str(version_dir), str(tmp_path / "inputs.npz"), str(tmp_path / "outputs.npz")],
        capture_output=True,
        text=True,
        timeout=600,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["tensorflow"] == serving_tensorflow_version(), report
    assert report["missing_ops"] == [], f"ops not registered in TensorFlow {report['tensorflow']}: {report}"
    assert report["ops"], report
    assert report["warmup_records"] > 0, report
    with np.load(tmp_path / "outputs.npz", allow_pickle=False) as there:
        assert set(there.files) == set(here), (there.files, list(here))
        for key in here:
            if here[key].dtype == object:
                np.testing.assert_array_equal(there[key], here[key].astype("S"), err_msg=key)
            elif here[key].dtype.kind == "f":
                np.testing.assert_allclose(there[key], here[key], rtol=0, atol=1e-6, err_msg=key)
            else:
                np.testing.assert_array_equal(there[key], here[key], err_msg=key)
