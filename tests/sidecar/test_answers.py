"""Answers a user can act on: calibrated scores, abstaining, top-k, explanations, the original key."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from preprocess_service.config import Settings
from preprocess_service.explain import occlude
from preprocess_service.main import create_app
from tests.sidecar.doubles import SavedModelUpstream
from textvec import Vectorizer, modeldir, pad
from textvec.calibration import CALIBRATION, Calibration, apply_temperature, load_calibration

SPORT = "The striker scored twice and the team won the cup final after extra time at the stadium."
MONEY = "Shares fell as the bank cut its profit forecast and investors sold."
LABELS = ["business", "entertainment", "politics", "sports", "tech"]


@pytest.fixture
def model_base(tmp_path: Path, exported_models: Path) -> Path:
    shutil.copytree(exported_models / "news" / "1", tmp_path / "news" / "1")
    return tmp_path


@pytest.fixture
def upstream(model_base: Path) -> SavedModelUpstream:
    return SavedModelUpstream(model_base / "news")


def _client(base: Path, upstream: SavedModelUpstream, **overrides: object) -> TestClient:
    settings = Settings(model_base_path=base, model_name="news", version_poll_s=0.1, **overrides)  # type: ignore[arg-type]
    return TestClient(create_app(settings, upstream=upstream))


@pytest.fixture
def client(model_base: Path, upstream: SavedModelUpstream) -> Iterator[TestClient]:
    with _client(model_base, upstream) as c:
        yield c


def _set_calibration(version: Path, cal: Calibration) -> None:
    fp = Vectorizer.load(version / modeldir.VECTORIZER).fingerprint
    (version / CALIBRATION).write_bytes(
        Calibration(cal.temperature, cal.abstain_threshold, cal.target_precision, fp).to_json()
    )


def _raw_probs(model_base: Path, upstream: SavedModelUpstream, texts: list[str]) -> np.ndarray:
    vec = Vectorizer.load(model_base / "news" / "1" / modeldir.VECTORIZER)
    ids, weights = vec.transform(texts)
    return asyncio.run(upstream.predict(1, ids, weights))


# --- calibration ------------------------------------------------------------------------------------
def test_scores_are_the_versions_calibrated_probabilities(
    model_base: Path, upstream: SavedModelUpstream
) -> None:
    _set_calibration(model_base / "news" / "1", Calibration(temperature=2.5))
    raw = _raw_probs(model_base, upstream, [SPORT])
    with _client(model_base, upstream) as c:
        r = c.post("/v1/classify", json={"text": SPORT, "return_probabilities": True})
        info = c.get("/v1/model").json()
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    expected = apply_temperature(raw, 2.5)[0]
    assert pred["score"] == pytest.approx(expected.max(), abs=1e-6)
    assert [pred["probabilities"][lbl] for lbl in LABELS] == pytest.approx(expected.tolist(), abs=1e-6)
    assert pred["score"] < raw.max()  # T > 1 softens: the raw score was more sure than it had reason to be
    assert info["calibration"]["temperature"] == 2.5


def test_version_without_calibration_file_serves_uncalibrated(
    model_base: Path, upstream: SavedModelUpstream
) -> None:
    (model_base / "news" / "1" / CALIBRATION).unlink()
    raw = _raw_probs(model_base, upstream, [SPORT])
    with _client(model_base, upstream) as c:
        pred = c.post("/v1/classify", json={"text": SPORT}).json()["predictions"][0]
        info = c.get("/v1/model").json()
    assert pred["score"] == pytest.approx(float(raw.max()), abs=1e-6) and pred["abstained"] is False
    assert info["calibration"] == {"temperature": 1.0, "abstain_threshold": None, "target_precision": None}


def test_version_with_malformed_calibration_is_not_served(
    model_base: Path, upstream: SavedModelUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    bad = model_base / "news" / "2"
    shutil.copytree(model_base / "news" / "1", bad)
    (bad / CALIBRATION).write_bytes(b'{"format": "textclf-calibration/1", "temperature": 0}')
    with _client(model_base, upstream) as c:
        assert c.get("/v1/model").json()["version"] == 1  # the good version keeps serving
    assert any(
        "calibration.json" in r.getMessage() and "temperature" in r.getMessage() for r in caplog.records
    )


# --- abstain ----------------------------------------------------------------------------------------
def test_below_threshold_abstains_without_label(model_base: Path, upstream: SavedModelUpstream) -> None:
    _set_calibration(model_base / "news" / "1", Calibration(1.0, abstain_threshold=0.999999))
    with _client(model_base, upstream) as c:
        pred = c.post("/v1/classify", json={"text": SPORT}).json()["predictions"][0]
        assert pred["abstained"] is True and pred["label"] is None and 0 < pred["score"] < 0.999999
        # a request may lower the bar for itself
        pred = c.post("/v1/classify", json={"text": SPORT, "min_confidence": 0.0}).json()["predictions"][0]
        assert pred["abstained"] is False and pred["label"] == "sports"
        # the original endpoint still names a label, and says it is unsure
        legacy = c.post("/classify", json={"text": SPORT}).json()
        assert legacy["prediction"] == legacy["label"] == "sports" and legacy["abstained"] is True


def test_configured_unknown_label_replaces_null(model_base: Path, upstream: SavedModelUpstream) -> None:
    with _client(model_base, upstream, abstain_label="unknown") as c:
        pred = c.post("/v1/classify", json={"text": SPORT, "min_confidence": 1.0}).json()["predictions"][0]
    assert pred == {**pred, "label": "unknown", "abstained": True}


def test_min_confidence_raises_the_bar_per_request(client: TestClient) -> None:
    preds = client.post("/v1/classify", json={"texts": [SPORT, MONEY], "min_confidence": 1.0}).json()
    assert all(p["abstained"] and p["label"] is None for p in preds["predictions"])


# --- top-k ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 5])
def test_top_k_is_sorted_and_always_k_long(client: TestClient, k: int) -> None:
    r = client.post(
        "/v1/classify",
        json={"texts": [SPORT, MONEY, "zzqx"], "top_k": k, "return_probabilities": True},
    )
    assert r.status_code == 200, r.text
    for pred in r.json()["predictions"]:
        top = pred["top_k"]
        assert len(top) == k and set(top[0]) == {"label", "score"}
        scores = [t["score"] for t in top]
        assert scores == sorted(scores, reverse=True)
        assert top[0]["score"] == pytest.approx(pred["score"])
        for t in top:
            assert pred["probabilities"][t["label"]] == pytest.approx(t["score"])
        assert len({t["label"] for t in top}) == k


# --- explanations -----------------------------------------------------------------------------------
def test_explanation_is_exact_occlusion_in_one_model_call(
    model_base: Path, upstream: SavedModelUpstream
) -> None:
    with _client(model_base, upstream, explain_max_terms=12) as c:
        before = len(upstream.calls)
        r = c.post("/v1/classify", json={"text": SPORT, "explain": True})
        assert r.status_code == 200, r.text
        calls = upstream.calls[before:]
    pred = r.json()["predictions"][0]
    vec = Vectorizer.load(model_base / "news" / "1" / modeldir.VECTORIZER)
    row = vec.transform_one(SPORT)
    n_terms = min(12, len(row[0]))
    assert len(calls) == 1 and calls[0][1][0] == 1 + n_terms  # the text and its variants, one call
    expl = pred["explanation"]
    assert expl["label"] == pred["label"] == "sports" and expl["method"] == "occlusion"
    terms = expl["terms"]
    assert len(terms) == n_terms
    contribs = [t["contribution"] for t in terms]
    assert contribs == sorted(contribs, reverse=True)
    # recompute one contribution by hand: drop the term from the text's row, re-normalise, predict
    term = terms[0]["term"]
    tid = vec.vocabulary.index(term)
    ids = [i for i in row[0] if i != tid]
    w = np.array([wt for i, wt in zip(*row, strict=True) if i != tid])
    t = load_calibration(model_base / "news" / "1").temperature
    ids_a, w_a = pad([row, (ids, (w / np.linalg.norm(w)).tolist())])
    probs = apply_temperature(asyncio.run(upstream.predict(1, ids_a, w_a)), t)
    k = LABELS.index("sports")
    assert terms[0]["contribution"] == pytest.approx(probs[0, k] - probs[1, k], abs=1e-5)
    assert terms[0]["weight"] == pytest.approx(row[1][row[0].index(tid)], abs=1e-6)


def test_occlusion_variants_match_the_vectorizer_without_the_term() -> None:
    """Removing a term from a row and re-normalising equals vectorizing with that term out of the
    vocabulary: the variants are what the model would see had the term not been there."""
    from training.features import FeatureConfig, fit

    texts = [SPORT, MONEY, "The cup final was won by the home team.", "Investors cut their forecast."]
    vec, _ = fit(FeatureConfig(analyzer="word", min_df=1), texts)
    row = vec.transform_one(SPORT)
    occ = occlude(row, max_terms=5)
    assert len(occ.rows) == 5
    weight = dict(zip(*row, strict=True))
    assert sorted((weight[t] for t in occ.term_ids), reverse=True) == sorted(row[1], reverse=True)[:5]
    for tid, (ids, weights) in zip(occ.term_ids, occ.rows, strict=True):
        reduced = Vectorizer(
            analyzer=vec.analyzer,
            ngram_range=vec.ngram_range,
            vocabulary=tuple(t if i != tid else "\x00gone" for i, t in enumerate(vec.vocabulary)),
            idf=vec.idf,
        )
        exp_ids, exp_w = reduced.transform_one(SPORT)
        assert ids == exp_ids
        np.testing.assert_allclose(weights, exp_w, rtol=1e-9)


def test_explain_limits_and_bad_options_are_422_with_messages(
    model_base: Path, upstream: SavedModelUpstream
) -> None:
    with _client(model_base, upstream, explain_max_texts=2) as c:
        cases = [
            ({"text": SPORT, "top_k": 0}, "top_k"),
            ({"text": SPORT, "top_k": 6}, "top_k is 6 but the model has only 5 labels"),
            ({"text": SPORT, "min_confidence": 1.5}, "min_confidence"),
            ({"text": SPORT, "min_confidence": -0.1}, "min_confidence"),
            ({"texts": [SPORT, MONEY, SPORT], "explain": True}, "explain is limited to 2 texts"),
        ]
        for payload, fragment in cases:
            r = c.post("/v1/classify", json=payload)
            assert r.status_code == 422, (payload, r.text)
            assert fragment in r.json()["error"]["message"], r.json()
        assert c.post("/v1/classify", json={"texts": [SPORT, MONEY], "explain": True}).status_code == 200


# --- compatibility with the original Flask service, and OpenAPI ---------------------------------------------
def test_seed_endpoint_returns_prediction_key(client: TestClient) -> None:
    body = client.post("/classify", json={"text": MONEY}).json()
    assert body["prediction"] == body["label"] == "business"


def test_openapi_documents_new_fields_with_examples(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    req = schemas["ClassifyRequest"]["properties"]
    for name in ("top_k", "min_confidence", "explain"):
        assert req[name]["description"], name
    assert req["top_k"]["examples"] == [3] and req["min_confidence"]["examples"] == [0.8]
    assert any("explain" in ex for ex in schemas["ClassifyRequest"]["examples"])
    pred = schemas["Prediction"]["properties"]
    for name in ("abstained", "top_k", "explanation"):
        assert pred[name]["description"], name
    assert schemas["TermContribution"]["properties"]["contribution"]["examples"]
    assert schemas["LegacyClassifyResponse"]["properties"]["prediction"]["examples"] == ["sports"]


def test_occlusion_of_tiny_rows() -> None:
    assert occlude(([], []), 16).rows == []
    one = occlude(([7], [1.0]), 16)
    assert one.term_ids == [7] and one.rows == [([], [])]
    two = occlude(([3, 9], [0.6, 0.8]), 1)  # only the heaviest term is occluded
    assert two.term_ids == [9] and two.rows[0][0] == [3] and two.rows[0][1] == pytest.approx([1.0])
