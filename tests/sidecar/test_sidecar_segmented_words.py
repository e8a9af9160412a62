"""A Chinese model with the char+words analyzer, served end to end over real processes (local model
server and sidecar from devstack): the sidecar segments words exactly as training did, so its
calibrated probabilities equal the trained network's on training's own rows."""

from __future__ import annotations

import csv
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from devstack import Proc, start_model_server, start_sidecar, wait_http
from textvec import Vectorizer, modeldir
from textvec.calibration import load_calibration
from training.cleaning import clean
from training.datasets import load_chinese_reviews
from training.model import TrainConfig, predict_proba
from training.pipeline import RunConfig, RunResult, run

TEXTS = ["这本书非常好看，强烈推荐！", "质量很差，物流太慢了，不会再买", "酒店位置不错，但是房间有点小"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunResult, Proc]]:
    ds = clean(load_chinese_reviews())
    root = tmp_path_factory.mktemp("zh")
    taken: dict[str, int] = {}
    with (root / "reviews.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for text, label in zip(ds.texts, ds.labels, strict=True):
            if taken.get(label, 0) < 300:
                taken[label] = taken.get(label, 0) + 1
                w.writerow([text, label])
    cfg = RunConfig(
        dataset=str(root / "reviews.csv"),
        model_name="reviews",
        out=root / "models",
        train=TrainConfig(epochs=3),
    )
    result = run(cfg, emit=lambda _l: None)
    server = start_model_server(root / "models" / "reviews", "reviews", root)
    sidecar = start_sidecar(root / "models", "reviews", server, root)
    try:
        wait_http(sidecar, "/readyz")
        yield result, sidecar
    finally:
        sidecar.stop()
        server.stop()


def test_sidecar_probabilities_equal_training_rows_through_the_network(
    served: tuple[RunResult, Proc],
) -> None:
    result, sidecar = served
    vec = Vectorizer.load(result.version_dir / modeldir.VECTORIZER)
    assert vec.analyzer == "char+words" and vec.segmenter and vec.segmenter.startswith("jieba ")
    r = httpx.post(
        sidecar.url() + "/v1/classify", json={"texts": TEXTS, "return_probabilities": True}, timeout=30
    )
    assert r.status_code == 200, r.text
    labels = sorted(result.metrics["test"]["per_class"])
    got = np.array([[p["probabilities"][lbl] for lbl in labels] for p in r.json()["predictions"]])
    # the trained network in this process, on the rows of the version's vectorizer as training computes
    # them: any difference in how the sidecar process cuts words would change its probabilities
    rows = [vec.transform_terms(vec.terms(t)) for t in TEXTS]
    assert all(any(" " in vec.vocabulary[i] for i in ids) for ids, _ in rows), "no word bigram in a row"
    cal = load_calibration(result.version_dir)
    want = cal.apply(predict_proba(result.model, rows))
    np.testing.assert_allclose(got, want, atol=1e-5)
