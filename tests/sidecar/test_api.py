"""The sidecar's HTTP API with FastAPI's TestClient: the sidecar API contract, limits, error mapping."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from preprocess_service.config import Settings
from preprocess_service.errors import NotReady, UpstreamTimeout
from preprocess_service.main import create_app
from tests.sidecar.doubles import SavedModelUpstream

SPORT = "The striker scored twice and the team won the cup final after extra time at the stadium."


@pytest.fixture
def model_base(tmp_path: Path, exported_models: Path) -> Path:
    shutil.copytree(exported_models / "news" / "1", tmp_path / "news" / "1")
    return tmp_path


def make_client(base: Path, upstream: SavedModelUpstream, **overrides: object) -> TestClient:
    settings = Settings(model_base_path=base, model_name="news", version_poll_s=0.1, **overrides)  # type: ignore[arg-type]
    return TestClient(create_app(settings, upstream=upstream))


@pytest.fixture
def upstream(model_base: Path) -> SavedModelUpstream:
    return SavedModelUpstream(model_base / "news")


@pytest.fixture
def client(model_base: Path, upstream: SavedModelUpstream) -> Iterator[TestClient]:
    with make_client(model_base, upstream) as c:
        yield c


def test_classify_single_text_returns_label_and_version(client: TestClient) -> None:
    r = client.post("/v1/classify", json={"text": SPORT})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == {"name": "news", "version": 1}
    (pred,) = body["predictions"]
    assert pred["label"] == "sports" and 0 < pred["score"] <= 1 and pred["probabilities"] is None
    assert r.headers["x-request-id"]


def test_classify_batch_with_probabilities(client: TestClient) -> None:
    r = client.post(
        "/v1/classify",
        json={
            "texts": [SPORT, "Shares fell as the bank cut its profit forecast."],
            "return_probabilities": True,
        },
    )
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["label"] for p in preds] == ["sports", "business"]
    for p in preds:
        assert set(p["probabilities"]) == {"business", "entertainment", "politics", "sports", "tech"}
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-4


def test_legacy_classify_keeps_seed_shape(client: TestClient) -> None:
    r = client.post("/classify", json={"text": SPORT})
    assert r.status_code == 200
    assert r.json()["label"] == "sports" and r.json()["version"] == 1


def test_model_info_reports_fingerprint_and_metrics(client: TestClient) -> None:
    body = client.get("/v1/model").json()
    assert body["version"] == 1 and body["vectorizer_fingerprint"].startswith("sha256:")
    assert body["labels"][0] == "business" and body["metrics"]["accuracy"] > 0.5


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"text": ""}, "empty"),
        ({"text": "   \n"}, "empty"),
        ({"text": 42}, "text"),
        ({"texts": []}, "texts"),
        ({"texts": ["ok", 3]}, "texts.1"),
        ({}, "exactly one"),
        ({"text": "a", "texts": ["b"]}, "exactly one"),
        ({"text": "a", "unknown": 1}, "unknown"),
        ({"text": "a\x00b"}, "NUL"),
        ({"text": "x" * 20_001}, "characters"),
        ({"texts": ["x"] * 65}, "65 texts"),
    ],
)
def test_bad_input_is_422_with_message(client: TestClient, payload: dict[str, object], fragment: str) -> None:
    r = client.post("/v1/classify", json=payload)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_input" and fragment in err["message"] and err["request_id"]


def test_invalid_json_is_422(client: TestClient) -> None:
    r = client.post("/v1/classify", content=b'{"text": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]["message"]


BODY_LIMIT: int = Settings.model_fields["max_body_bytes"].default


def test_body_over_limit_is_413_before_reading(client: TestClient) -> None:
    over = b"x" * (BODY_LIMIT + 1)
    r = client.post("/v1/classify", content=over, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_a_request_at_the_text_limits_is_answered_under_the_default_body_limit(client: TestClient) -> None:
    # the largest request the text limits admit, in UTF-8 with 3-byte characters (CJK), is answered, not
    # refused for its size (until 2026-11-30 the default 1 MiB refused even an ASCII one)
    fields = Settings.model_fields
    texts = ["\u4e2d" * int(fields["max_chars"].default)] * int(fields["max_texts"].default)
    body = json.dumps({"texts": texts}, ensure_ascii=False).encode()
    assert len(body) > 3_000_000
    r = client.post("/v1/classify", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["predictions"]) == len(texts)


def test_chunked_body_over_limit_is_413(client: TestClient) -> None:
    def gen() -> Iterator[bytes]:
        for _ in range(BODY_LIMIT // 65536 + 2):
            yield b"x" * 65536

    r = client.post("/v1/classify", content=gen(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_upstream_unreachable_is_503_with_retry_after(
    client: TestClient, upstream: SavedModelUpstream
) -> None:
    upstream.fail = NotReady("TF Serving is unreachable: ConnectError")
    r = client.post("/v1/classify", json={"text": SPORT})
    assert r.status_code == 503 and r.headers["retry-after"]
    assert r.json()["error"]["code"] == "not_ready"
    assert client.get("/readyz").status_code == 503
    upstream.fail = None
    assert client.post("/v1/classify", json={"text": SPORT}).status_code == 200


def test_upstream_deadline_is_504(client: TestClient, upstream: SavedModelUpstream) -> None:
    upstream.fail = UpstreamTimeout("TF Serving did not answer within 5.0s")
    r = client.post("/v1/classify", json={"text": SPORT})
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"


def test_not_ready_until_tf_serving_reports_available(model_base: Path, upstream: SavedModelUpstream) -> None:
    upstream.default_state = "LOADING"
    with make_client(model_base, upstream) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and "LOADING" in r.json()["detail"]
        assert c.post("/v1/classify", json={"text": SPORT}).status_code == 503
        upstream.default_state = "AVAILABLE"
        deadline = time.monotonic() + 5
        while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get("/readyz").json() == {"status": "ready", "model": "news", "version": 1, "detail": None}


def test_new_version_switches_only_when_available(model_base: Path, upstream: SavedModelUpstream) -> None:
    with make_client(model_base, upstream) as c:
        upstream.states[2] = "LOADING"
        shutil.copytree(model_base / "news" / "1", model_base / "news" / "2")
        time.sleep(0.5)
        assert c.post("/v1/classify", json={"text": SPORT}).json()["model"]["version"] == 1
        upstream.states[2] = "AVAILABLE"
        deadline = time.monotonic() + 5
        while c.get("/v1/model").json()["version"] != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.post("/v1/classify", json={"text": SPORT}).json()["model"]["version"] == 2
        assert upstream.calls[-1][0] == 2


def test_corrupt_version_is_skipped_and_good_one_keeps_serving(
    model_base: Path, upstream: SavedModelUpstream
) -> None:
    with make_client(model_base, upstream) as c:
        bad = model_base / "news" / "3"
        shutil.copytree(model_base / "news" / "1", bad)
        (bad / "assets" / "vectorizer.json").write_text("{not json", encoding="utf-8")
        time.sleep(0.5)
        r = c.post("/v1/classify", json={"text": SPORT})
        assert r.status_code == 200 and r.json()["model"]["version"] == 1


def test_api_key_required_when_configured(model_base: Path, upstream: SavedModelUpstream) -> None:
    with make_client(model_base, upstream, api_keys="k1,s3cret") as c:
        assert c.post("/v1/classify", json={"text": SPORT}).status_code == 401
        bad = c.post("/v1/classify", json={"text": SPORT}, headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
        ok = c.post("/v1/classify", json={"text": SPORT}, headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/metrics").status_code == 200


def test_metrics_expose_steps_batches_and_version(client: TestClient) -> None:
    client.post("/v1/classify", json={"text": SPORT})
    text = client.get("/metrics").text
    for name in (
        'sidecar_requests_total{method="POST",route="/v1/classify",status="200"}',
        'sidecar_step_duration_seconds_count{step="preprocess"}',
        "sidecar_batch_size_texts_count",
        'sidecar_model_version{model="news"} 1.0',
        "sidecar_in_flight_requests",
    ):
        assert name in text, name


def test_request_id_is_taken_from_header(client: TestClient) -> None:
    r = client.post("/v1/classify", json={"text": SPORT}, headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


def test_openapi_documents_errors_and_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/classify"]["post"]
    assert {"413", "422", "503", "504"} <= set(op["responses"])
    assert "ClassifyRequest" in spec["components"]["schemas"]


def test_unknown_route_is_404_in_error_shape(client: TestClient) -> None:
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_grpc_transport_without_grpc_extra_explains_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from preprocess_service.upstream import make_upstream

    monkeypatch.delitem(sys.modules, "preprocess_service.upstream.grpc_client", raising=False)
    # as if tensorflow-serving-api were absent, even when an earlier test imported it in this process
    for name in [m for m in sys.modules if m.split(".")[0] == "tensorflow_serving"] + ["tensorflow_serving"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(RuntimeError, match=r"SIDECAR_TRANSPORT=grpc needs the grpc extra"):
        make_upstream(Settings(transport="grpc"))
