"""The REST binding of the Open Inference Protocol, checked with a stock client (tritonclient[http])
against real processes, and its error cases with plain HTTP (the protocol's ``{"error": ...}``)."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from preprocess_service.config import Settings
from tests.oip.conftest import BUSINESS, SPORT, OipStack, auth


@pytest.fixture
def client(oip_stack: OipStack) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=oip_stack.http_url, network_timeout=30.0)


def text_input(texts: list[str], binary: bool = True) -> triton.InferInput:
    t = triton.InferInput("text", [len(texts)], "BYTES")
    t.set_data_from_numpy(np.array([s.encode() for s in texts], dtype=np.object_), binary_data=binary)
    return t


def test_health_and_server_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "text-classifier-sidecar" and "binary_tensor_data" in meta["extensions"]


def test_model_ready_per_model_and_version(client: triton.InferenceServerClient) -> None:
    assert client.is_model_ready("news", headers=auth())
    assert client.is_model_ready("news", "1", headers=auth())
    assert not client.is_model_ready("news", "2", headers=auth())
    assert not client.is_model_ready("spam", headers=auth())


def test_model_metadata(client: triton.InferenceServerClient) -> None:
    meta = client.get_model_metadata("news", headers=auth())
    assert meta["name"] == "news" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    outputs = {o["name"]: o for o in meta["outputs"]}
    assert outputs["label"]["datatype"] == "BYTES"
    assert outputs["probabilities"] == {"name": "probabilities", "datatype": "FP32", "shape": [-1, 5]}
    assert client.get_model_metadata("news", "1", headers=auth()) == meta
    assert sorted(meta["labels"]) == ["business", "entertainment", "politics", "sports", "tech"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_bytes_matches_v1_classify(
    client: triton.InferenceServerClient, oip_stack: OipStack, binary: bool
) -> None:
    texts = [SPORT, BUSINESS]
    outputs = [
        triton.InferRequestedOutput(n, binary_data=binary) for n in ("label", "score", "probabilities")
    ]
    res = client.infer("news", [text_input(texts, binary)], outputs=outputs, headers=auth(), request_id="r-1")
    assert res.get_response()["model_version"] == "1" and res.get_response()["id"] == "r-1"
    labels = res.as_numpy("label")
    probs = res.as_numpy("probabilities")
    assert [b.decode() if isinstance(b, bytes) else b for b in labels] == ["sports", "business"]
    assert probs.shape == (2, 5) and probs.dtype == np.float32
    online = httpx.post(
        oip_stack.sidecar.url() + "/v1/classify",
        json={"texts": texts, "return_probabilities": True},
        headers=auth(),
        timeout=30,
    ).json()
    meta = client.get_model_metadata("news", headers=auth())
    for row, score, pred in zip(probs, res.as_numpy("score"), online["predictions"], strict=True):
        expected = [pred["probabilities"][label] for label in meta["labels"]]
        np.testing.assert_allclose(row, expected, atol=1e-6)
        assert abs(float(score) - pred["score"]) < 1e-6


def test_infer_default_outputs_and_versioned_path(client: triton.InferenceServerClient) -> None:
    res = client.infer("news", [text_input([SPORT])], model_version="1", headers=auth())
    names = {o["name"] for o in res.get_response()["outputs"]}
    assert names == {"label", "score", "probabilities"}
    assert res.as_numpy("label")[0] == b"sports"


def test_infer_parameters_top_k_and_explain(client: triton.InferenceServerClient) -> None:
    res = client.infer(
        "news", [text_input([SPORT])], headers=auth(), parameters={"top_k": 3, "explain": True}
    )
    top_labels, top_scores = res.as_numpy("top_k_labels"), res.as_numpy("top_k_scores")
    assert top_labels.shape == (1, 3) and top_scores.shape == (1, 3)
    assert top_labels[0, 0] == b"sports" and list(top_scores[0]) == sorted(top_scores[0], reverse=True)
    explanation = json.loads(res.as_numpy("explanation")[0])
    assert explanation["label"] == "sports" and explanation["terms"]


def expect_error(call: object, status: str, words: str) -> None:
    with pytest.raises(InferenceServerException) as err:
        call()  # type: ignore[operator]
    assert err.value.status() == status, err.value
    assert words in err.value.message(), err.value.message()


def test_client_sees_protocol_errors(client: triton.InferenceServerClient) -> None:
    expect_error(lambda: client.infer("spam", [text_input([SPORT])], headers=auth()), "404", "unknown model")
    expect_error(
        lambda: client.infer("news", [text_input([SPORT])], model_version="7", headers=auth()),
        "404",
        "version",
    )
    wrong_type = triton.InferInput("text", [1], "FP32")
    wrong_type.set_data_from_numpy(np.array([1.0], dtype=np.float32))
    expect_error(lambda: client.infer("news", [wrong_type], headers=auth()), "400", "expects BYTES")
    wrong_shape = triton.InferInput("text", [1, 2], "BYTES")
    wrong_shape.set_data_from_numpy(np.array([[b"a b", b"c d"]], dtype=np.object_))
    expect_error(lambda: client.infer("news", [wrong_shape], headers=auth()), "400", "shape [1, 2]")
    other = triton.InferInput("texts", [1], "BYTES")
    other.set_data_from_numpy(np.array([SPORT.encode()], dtype=np.object_))
    expect_error(lambda: client.infer("news", [other], headers=auth()), "400", "missing input 'text'")
    expect_error(lambda: client.infer("news", [text_input([SPORT])]), "401", "API key")
    expect_error(lambda: client.infer("news", [text_input([SPORT] * 9)], headers=auth()), "400", "limit is 8")


def post(
    oip_stack: OipStack, path: str, body: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(oip_stack.sidecar.url() + path, content=data, headers=headers or auth(), timeout=30)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"inputs": []}, 400, "missing input 'text'"),
        (
            {"inputs": [{"name": "text", "shape": [1], "datatype": "INT64", "data": [3]}]},
            400,
            "expects BYTES",
        ),
        ({"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a"]}]}, 400, "1 element"),
        ({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [" "]}]}, 400, "empty"),
        ({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [5]}]}, 400, "not a string"),
        (
            {
                "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}],
                "parameters": {"top_k": 99},
            },
            400,
            "top_k",
        ),
        (
            {
                "inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x"]}],
                "outputs": [{"name": "logits"}],
            },
            400,
            "unknown output 'logits'",
        ),
        ({"inputs": "text"}, 400, "inputs"),
        (b"{not json", 400, "not valid JSON"),
    ],
)
def test_error_shape_and_status(oip_stack: OipStack, body: object, status: int, words: str) -> None:
    r = post(oip_stack, "/v2/models/news/infer", body)
    assert r.status_code == status, r.text
    doc = r.json()
    assert list(doc) == ["error"] and isinstance(doc["error"], str) and words in doc["error"], doc


def test_rest_errors_outside_infer(oip_stack: OipStack) -> None:
    url = oip_stack.sidecar.url()
    r = httpx.get(url + "/v2/models/spam", headers=auth(), timeout=10)
    assert r.status_code == 404 and "unknown model" in r.json()["error"]
    r = httpx.get(url + "/v2/models/news", timeout=10)
    assert r.status_code == 401 and isinstance(r.json()["error"], str)
    r = httpx.get(url + "/v2/nowhere", timeout=10)
    assert r.status_code == 404 and isinstance(r.json()["error"], str)
    over = Settings.model_fields["max_body_bytes"].default + 1
    big = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["x" * over]}]}
    r = post(oip_stack, "/v2/models/news/infer", big)
    assert r.status_code == 413 and isinstance(r.json()["error"], str)
    # the process keeps serving after every one of them
    assert httpx.get(url + "/v2/health/ready", timeout=10).status_code == 200
