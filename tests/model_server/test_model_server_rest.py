"""TF Serving's REST API, as the stand-in (or a real TF Serving, see conftest) answers it."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from lms_support import Target

pytestmark = pytest.mark.timeout(120)


def _rows(sample: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"token_ids": i.tolist(), "token_weights": w.tolist()}
        for i, w in zip(sample["ids"], sample["weights"], strict=True)
    ]


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return str(body["error"])


def test_rest_model_status_lists_versions(rest: httpx.Client, target: Target) -> None:
    r = rest.get(f"/v1/models/{target.model_name}")
    assert r.status_code == 200
    statuses = {v["version"]: v for v in r.json()["model_version_status"]}
    for v in ("1", "2"):
        assert statuses[v]["state"] == "AVAILABLE"
        assert statuses[v]["status"] == {"error_code": "OK", "error_message": ""}


def test_rest_model_status_one_version(rest: httpx.Client, target: Target) -> None:
    r = rest.get(f"/v1/models/{target.model_name}/versions/1")
    assert r.status_code == 200
    assert r.json() == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


def test_rest_model_status_unknown_model_and_version(rest: httpx.Client, target: Target) -> None:
    assert "Could not find any versions of model nosuchmodel" in _error(
        rest.get("/v1/models/nosuchmodel"), 404
    )
    msg = _error(rest.get(f"/v1/models/{target.model_name}/versions/999999"), 404)
    assert f"Could not find version 999999 of model {target.model_name}" in msg


@pytest.mark.parametrize("path", ["/metadata", "/versions/1/metadata"])
def test_rest_metadata_signature_def(rest: httpx.Client, target: Target, path: str) -> None:
    r = rest.get(f"/v1/models/{target.model_name}{path}")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["model_spec"]["name"] == target.model_name
    assert doc["model_spec"]["signature_name"] == ""
    assert doc["model_spec"]["version"] == (
        "1"
        if "versions" in path
        else str(max(v for v, st in target.status().items() if st["state"] == "AVAILABLE"))
    )
    sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    assert sig["inputs"]["token_ids"]["dtype"] == "DT_INT64"
    assert sig["inputs"]["token_weights"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in sig["inputs"]["token_ids"]["tensor_shape"]["dim"]] == ["-1", "-1"]
    assert set(sig["outputs"]) == {"probabilities", "class_ids", "labels"}
    assert sig["outputs"]["labels"]["dtype"] == "DT_STRING"


def test_rest_metadata_unknown_version(rest: httpx.Client, target: Target) -> None:
    msg = _error(rest.get(f"/v1/models/{target.model_name}/versions/999999/metadata"), 404)
    assert "Servable not found for request: Specific(" in msg


def test_rest_predict_row_format(rest: httpx.Client, target: Target, sample: dict[str, Any]) -> None:
    r = rest.post(f"/v1/models/{target.model_name}/versions/1:predict", json={"instances": _rows(sample)})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    exp = sample["expected"]
    assert len(preds) == 2
    for i, p in enumerate(preds):
        assert set(p) == {"probabilities", "class_ids", "labels"}
        np.testing.assert_allclose(p["probabilities"], exp["probabilities"][i], rtol=1e-5, atol=1e-6)
        assert p["class_ids"] == int(exp["class_ids"][i])
        assert p["labels"] == exp["labels"][i].decode()
        assert p["labels"] == sample["labels"][p["class_ids"]]


def test_rest_predict_columnar_format(rest: httpx.Client, target: Target, sample: dict[str, Any]) -> None:
    body = {
        "signature_name": "serving_default",
        "inputs": {"token_ids": sample["ids"].tolist(), "token_weights": sample["weights"].tolist()},
    }
    r = rest.post(f"/v1/models/{target.model_name}/versions/1:predict", json=body)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"]
    exp = sample["expected"]
    np.testing.assert_allclose(out["probabilities"], exp["probabilities"], rtol=1e-5, atol=1e-6)
    assert out["class_ids"] == exp["class_ids"].tolist()
    assert out["labels"] == [x.decode() for x in exp["labels"]]


def test_rest_predict_latest_version(rest: httpx.Client, target: Target, sample: dict[str, Any]) -> None:
    r = rest.post(f"/v1/models/{target.model_name}:predict", json={"instances": _rows(sample)[:1]})
    assert r.status_code == 200, r.text
    (pred,) = r.json()["predictions"]
    assert abs(sum(pred["probabilities"]) - 1.0) < 1e-4
    assert pred["class_ids"] == int(np.argmax(pred["probabilities"]))


def test_rest_predict_unknown_model_404(rest: httpx.Client, sample: dict[str, Any]) -> None:
    msg = _error(rest.post("/v1/models/nosuchmodel:predict", json={"instances": _rows(sample)}), 404)
    assert "Servable not found for request: Latest(nosuchmodel)" in msg


def test_rest_predict_unknown_version_404(rest: httpx.Client, target: Target, sample: dict[str, Any]) -> None:
    r = rest.post(
        f"/v1/models/{target.model_name}/versions/999999:predict", json={"instances": _rows(sample)}
    )
    assert "Servable not found for request: Specific(" in _error(r, 404)


def test_rest_predict_bad_json_400(rest: httpx.Client, target: Target) -> None:
    r = rest.post(
        f"/v1/models/{target.model_name}:predict",
        content=b'{"instances": [',
        headers={"content-type": "application/json"},
    )
    assert "JSON Parse error" in _error(r, 400)
    r = rest.post(f"/v1/models/{target.model_name}:predict", content=b"")
    assert "JSON Parse error" in _error(r, 400)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"instances": [{"token_ids": [1.5], "token_weights": [0.5]}]}, "is not of expected type: int64"),
        ({"instances": [{"token_ids": ["a"], "token_weights": [0.5]}]}, "is not of expected type: int64"),
        # past int64 (numpy makes it uint64), and a mix that makes numpy choose object
        ({"instances": [{"token_ids": [2**63], "token_weights": [0.5]}]}, "is not of expected type: int64"),
        (
            {"instances": [{"token_ids": [-1, 2**63], "token_weights": [0.5, 0.5]}]},
            "is not of expected type: int64",
        ),
        ({"instances": [{"token_ids": [1], "token_weights": ["x"]}]}, "is not of expected type: float"),
        # past float32's range, either sign, beside values in range
        (
            {"instances": [{"token_ids": [1, 2], "token_weights": [0.5, 1e39]}]},
            "to float without loss of precision",
        ),
        (
            {"instances": [{"token_ids": [1, 2], "token_weights": [-4e38, 0.5]}]},
            "to float without loss of precision",
        ),
        ({"instances": [{"token_ids": [1]}]}, "must only have keys"),
        (
            {"instances": [{"token_ids": [1], "token_weights": [1.0], "extra": [1]}]},
            "does not have named input",
        ),
        ({"instances": [[1, 2]]}, "expecting list of objects"),
        ({"instances": []}, "No values in 'instances' array"),
        ({"inputs": {"token_ids": [[1]]}}, "Missing named input: token_weights"),
        ({"inputs": {"token_ids": [[1]], "token_weights": [[1.0]]}, "instances": []}, "only one of"),
        ({"something": 1}, "Missing 'inputs' or 'instances' key"),
        ({"signature_name": 7, "instances": []}, "'signature_name' key must be a string value"),
    ],
)
def test_rest_predict_invalid_request_400(rest: httpx.Client, target: Target, body: Any, needle: str) -> None:
    msg = _error(rest.post(f"/v1/models/{target.model_name}:predict", json=body), 400)
    assert needle in msg


def test_rest_predict_wrong_rank_400(rest: httpx.Client, target: Target) -> None:
    # Columnar 1-D tensors where the signature wants [batch, k].
    r = rest.post(
        f"/v1/models/{target.model_name}:predict",
        json={"inputs": {"token_ids": [1, 2], "token_weights": [0.5, 0.5]}},
    )
    _error(r, 400)


def test_rest_predict_ragged_instances_400(rest: httpx.Client, target: Target) -> None:
    body = {
        "instances": [
            {"token_ids": [1, 2], "token_weights": [0.5, 0.5]},
            {"token_ids": [1], "token_weights": [0.5]},
        ]
    }
    assert "Expecting shape" in _error(rest.post(f"/v1/models/{target.model_name}:predict", json=body), 400)


def test_rest_predict_token_id_out_of_range_400(rest: httpx.Client, target: Target) -> None:
    body = {"instances": [{"token_ids": [10**9], "token_weights": [1.0]}]}
    msg = _error(rest.post(f"/v1/models/{target.model_name}:predict", json=body), 400)
    assert "is not in [0," in msg


def test_rest_predict_unknown_signature_400(
    rest: httpx.Client, target: Target, sample: dict[str, Any]
) -> None:
    body = {"signature_name": "nope", "instances": _rows(sample)}
    msg = _error(rest.post(f"/v1/models/{target.model_name}:predict", json=body), 400)
    assert 'Serving signature name: "nope" not found in signature def' in msg


def test_rest_malformed_path_400(rest: httpx.Client, target: Target) -> None:
    assert "Malformed request: GET /v1/nothing/here" in _error(rest.get("/v1/nothing/here"), 400)
    assert "Malformed request" in _error(rest.put(f"/v1/models/{target.model_name}:predict", json={}), 400)


def test_rest_keeps_an_idle_keep_alive_connection_open(target: Target) -> None:
    """A pooling client (the sidecar keeps idle connections 60 s) reuses a connection after a pause. Had the
    server closed it after a few seconds (uvicorn's default is 5 s), a request sent as it closes fails with
    a read error: under load in `make e2e-pods` one in ~9,000 did."""
    import socket
    import time
    from urllib.parse import urlsplit

    url = urlsplit(target.rest_url)
    request = (
        f"GET /v1/models/{target.model_name} HTTP/1.1\r\n"
        f"Host: {url.hostname}\r\nConnection: keep-alive\r\n\r\n"
    ).encode()

    def exchange(sock: socket.socket) -> bytes:
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the keep-alive connection"
            head += chunk
        headers, _, body = head.partition(b"\r\n\r\n")
        length = int(
            next(h.split(b":")[1] for h in headers.split(b"\r\n") if h.lower().startswith(b"content-length"))
        )
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection mid-answer"
            body += chunk
        return headers

    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        assert exchange(sock).startswith(b"HTTP/1.1 200")
        time.sleep(7)  # past uvicorn's default idle timeout
        assert exchange(sock).startswith(b"HTTP/1.1 200")
