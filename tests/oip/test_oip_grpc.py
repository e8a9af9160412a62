"""The gRPC binding of the Open Inference Protocol on its own port, checked with a stock client
(tritonclient[grpc]) against real processes: health, metadata, BYTES inference, errors, deadlines."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from tests.oip.conftest import BUSINESS, SPORT, OipStack, auth


@pytest.fixture
def client(oip_stack: OipStack) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(url=oip_stack.grpc_url)
    yield c
    c.close()


def text_input(texts: list[str]) -> triton.InferInput:
    t = triton.InferInput("text", [len(texts)], "BYTES")
    t.set_data_from_numpy(np.array([s.encode() for s in texts], dtype=np.object_))
    return t


def grpc_headers() -> dict[str, str]:
    return {k.lower(): v for k, v in auth().items()}  # gRPC metadata keys are lower case


def test_health_and_server_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata().name == "text-classifier-sidecar"


def test_model_ready_and_metadata(client: triton.InferenceServerClient) -> None:
    h = grpc_headers()
    assert client.is_model_ready("news", headers=h) and client.is_model_ready("news", "1", headers=h)
    assert not client.is_model_ready("news", "2", headers=h) and not client.is_model_ready("spam", headers=h)
    meta = client.get_model_metadata("news", headers=h)
    assert meta.name == "news" and list(meta.versions) == ["1"]
    assert [(i.name, i.datatype, list(i.shape)) for i in meta.inputs] == [("text", "BYTES", [-1])]
    outputs = {o.name: (o.datatype, list(o.shape)) for o in meta.outputs}
    assert outputs["label"] == ("BYTES", [-1]) and outputs["probabilities"] == ("FP32", [-1, 5])


def test_infer_bytes_matches_v1_classify(client: triton.InferenceServerClient, oip_stack: OipStack) -> None:
    texts = [SPORT, BUSINESS]
    res = client.infer("news", [text_input(texts)], headers=grpc_headers(), request_id="g-1")
    assert res.get_response().model_version == "1" and res.get_response().id == "g-1"
    assert list(res.as_numpy("label")) == [b"sports", b"business"]
    probs = res.as_numpy("probabilities")
    assert probs.shape == (2, 5) and probs.dtype == np.float32
    labels = httpx.get(oip_stack.sidecar.url() + "/v2/models/news", headers=auth(), timeout=10).json()[
        "labels"
    ]
    online = httpx.post(
        oip_stack.sidecar.url() + "/v1/classify",
        json={"texts": texts, "return_probabilities": True},
        headers=auth(),
        timeout=30,
    ).json()["predictions"]
    for row, pred in zip(probs, online, strict=True):
        np.testing.assert_allclose(row, [pred["probabilities"][lbl] for lbl in labels], atol=1e-6)


def test_infer_parameters(client: triton.InferenceServerClient) -> None:
    res = client.infer(
        "news",
        [text_input([SPORT])],
        headers=grpc_headers(),
        parameters={"top_k": 2, "explain": True, "min_confidence": "1.0"},  # no double in the proto
    )
    assert res.as_numpy("top_k_labels").shape == (1, 2) and res.as_numpy("top_k_labels")[0, 0] == b"sports"
    assert res.as_numpy("label")[0] == b""  # abstained: no label reaches a confidence of 1.0
    assert json.loads(res.as_numpy("explanation")[0])["label"] == "sports"


def expect_error(call: object, code: grpc.StatusCode, words: str) -> None:
    with pytest.raises(InferenceServerException) as err:
        call()  # type: ignore[operator]
    assert err.value.status() == str(code), err.value
    assert words in err.value.message(), err.value.message()


def test_protocol_errors(client: triton.InferenceServerClient) -> None:
    h = grpc_headers()
    expect_error(
        lambda: client.infer("spam", [text_input([SPORT])], headers=h),
        grpc.StatusCode.NOT_FOUND,
        "unknown model",
    )
    wrong_type = triton.InferInput("text", [1], "FP32")
    wrong_type.set_data_from_numpy(np.array([1.0], dtype=np.float32))
    expect_error(
        lambda: client.infer("news", [wrong_type], headers=h),
        grpc.StatusCode.INVALID_ARGUMENT,
        "expects BYTES",
    )
    wrong_shape = triton.InferInput("text", [1, 2], "BYTES")
    wrong_shape.set_data_from_numpy(np.array([[b"a b", b"c d"]], dtype=np.object_))
    expect_error(
        lambda: client.infer("news", [wrong_shape], headers=h), grpc.StatusCode.INVALID_ARGUMENT, "shape"
    )
    other = triton.InferInput("texts", [1], "BYTES")
    other.set_data_from_numpy(np.array([SPORT.encode()], dtype=np.object_))
    expect_error(
        lambda: client.infer("news", [other], headers=h), grpc.StatusCode.INVALID_ARGUMENT, "missing input"
    )
    expect_error(
        lambda: client.infer("news", [text_input([SPORT])]), grpc.StatusCode.UNAUTHENTICATED, "API key"
    )
    expect_error(
        lambda: client.infer("news", [text_input([SPORT] * 9)], headers=h),
        grpc.StatusCode.INVALID_ARGUMENT,
        "limit is 8",
    )
    # a deadline shorter than any inference can take is honoured, and the server keeps serving
    expect_error(
        lambda: client.infer("news", [text_input([SPORT])], headers=h, client_timeout=0.000001),
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "",
    )
    assert client.infer("news", [text_input([SPORT])], headers=h).as_numpy("label")[0] == b"sports"
