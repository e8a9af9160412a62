"""TF Serving's gRPC API through the stubs of tensorflow-serving-api."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import pytest
import tensorflow as tf
from lms_support import Target
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

pytestmark = pytest.mark.timeout(120)


def _request(
    target: Target,
    ids: Any,
    weights: Any,
    version: int | None = None,
    name: str | None = None,
    signature: str = "",
) -> predict_pb2.PredictRequest:
    req = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=name or target.model_name, signature_name=signature)
    )
    if version is not None:
        req.model_spec.version.value = version
    req.inputs["token_ids"].CopyFrom(tf.make_tensor_proto(ids))
    req.inputs["token_weights"].CopyFrom(tf.make_tensor_proto(weights))
    return req


def _code(exc: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return exc.value.code()  # type: ignore[attr-defined,no-any-return]


def test_grpc_predict_matches_exported_model(grpc_stubs: Any, target: Target, sample: dict[str, Any]) -> None:
    predict, _ = grpc_stubs
    resp = predict.Predict(_request(target, sample["ids"], sample["weights"], version=1), timeout=30)
    assert resp.model_spec.name == target.model_name
    assert resp.model_spec.version.value == 1
    assert resp.model_spec.signature_name == "serving_default"
    exp = sample["expected"]
    np.testing.assert_allclose(
        tf.make_ndarray(resp.outputs["probabilities"]), exp["probabilities"], rtol=1e-5, atol=1e-6
    )
    assert tf.make_ndarray(resp.outputs["class_ids"]).tolist() == exp["class_ids"].tolist()
    assert tf.make_ndarray(resp.outputs["labels"]).tolist() == exp["labels"].tolist()


def test_grpc_predict_latest_and_output_filter(
    grpc_stubs: Any, target: Target, sample: dict[str, Any]
) -> None:
    predict, _ = grpc_stubs
    req = _request(target, sample["ids"], sample["weights"])
    req.output_filter.append("class_ids")
    resp = predict.Predict(req, timeout=30)
    assert resp.model_spec.version.value == max(
        v for v, s in target.status().items() if s["state"] == "AVAILABLE"
    )
    assert set(resp.outputs) == {"class_ids"}


def test_grpc_predict_unknown_model_not_found(
    grpc_stubs: Any, target: Target, sample: dict[str, Any]
) -> None:
    predict, _ = grpc_stubs
    with pytest.raises(grpc.RpcError) as exc:
        predict.Predict(_request(target, sample["ids"], sample["weights"], name="nosuchmodel"), timeout=30)
    assert _code(exc) == grpc.StatusCode.NOT_FOUND
    assert "Servable not found for request: Latest(nosuchmodel)" in exc.value.details()  # type: ignore[attr-defined]


def test_grpc_predict_unknown_version_not_found(
    grpc_stubs: Any, target: Target, sample: dict[str, Any]
) -> None:
    predict, _ = grpc_stubs
    with pytest.raises(grpc.RpcError) as exc:
        predict.Predict(_request(target, sample["ids"], sample["weights"], version=999999), timeout=30)
    assert _code(exc) == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("ids", "weights"),
    [
        (np.array([[1.0, 2.0]], np.float32), np.array([[0.5, 0.5]], np.float32)),  # wrong dtype
        (np.array([1, 2], np.int64), np.array([0.5, 0.5], np.float32)),  # wrong rank
        (np.array([[10**9]], np.int64), np.array([[1.0]], np.float32)),  # token id out of range
    ],
    ids=["dtype", "rank", "out_of_range"],
)
def test_grpc_predict_invalid_argument(grpc_stubs: Any, target: Target, ids: Any, weights: Any) -> None:
    predict, _ = grpc_stubs
    with pytest.raises(grpc.RpcError) as exc:
        predict.Predict(_request(target, ids, weights), timeout=30)
    assert _code(exc) == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_predict_missing_input_invalid_argument(grpc_stubs: Any, target: Target) -> None:
    predict, _ = grpc_stubs
    req = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=target.model_name))
    req.inputs["token_ids"].CopyFrom(tf.make_tensor_proto(np.array([[1]], np.int64)))
    with pytest.raises(grpc.RpcError) as exc:
        predict.Predict(req, timeout=30)
    assert _code(exc) == grpc.StatusCode.INVALID_ARGUMENT
    assert "token_weights" in exc.value.details()  # type: ignore[attr-defined]


def test_grpc_predict_unknown_signature_failed_precondition(
    grpc_stubs: Any, target: Target, sample: dict[str, Any]
) -> None:
    predict, _ = grpc_stubs
    with pytest.raises(grpc.RpcError) as exc:
        predict.Predict(_request(target, sample["ids"], sample["weights"], signature="nope"), timeout=30)
    assert _code(exc) == grpc.StatusCode.FAILED_PRECONDITION


def test_grpc_predict_version_label_unknown(grpc_stubs: Any, target: Target, sample: dict[str, Any]) -> None:
    predict, _ = grpc_stubs
    req = _request(target, sample["ids"], sample["weights"])
    req.model_spec.version_label = "stable"
    with pytest.raises(grpc.RpcError) as exc:
        predict.Predict(req, timeout=30)
    assert _code(exc) == grpc.StatusCode.INVALID_ARGUMENT
    assert "Unrecognized servable version label: stable" in exc.value.details()  # type: ignore[attr-defined]


def test_grpc_metadata_signature_def(grpc_stubs: Any, target: Target) -> None:
    predict, _ = grpc_stubs
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    req.model_spec.name = target.model_name
    req.model_spec.version.value = 2
    resp = predict.GetModelMetadata(req, timeout=30)
    assert resp.model_spec.version.value == 2
    sigs = get_model_metadata_pb2.SignatureDefMap()
    assert resp.metadata["signature_def"].Unpack(sigs)
    sig = sigs.signature_def["serving_default"]
    assert sig.method_name == "tensorflow/serving/predict"
    assert sig.inputs["token_ids"].dtype == tf.int64.as_datatype_enum
    assert sig.outputs["probabilities"].dtype == tf.float32.as_datatype_enum


def test_grpc_metadata_errors(grpc_stubs: Any, target: Target) -> None:
    predict, _ = grpc_stubs
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    req.model_spec.name = "nosuchmodel"
    with pytest.raises(grpc.RpcError) as exc:
        predict.GetModelMetadata(req, timeout=30)
    assert _code(exc) == grpc.StatusCode.NOT_FOUND
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["nope"])
    req.model_spec.name = target.model_name
    with pytest.raises(grpc.RpcError) as exc:
        predict.GetModelMetadata(req, timeout=30)
    assert _code(exc) == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_model_status(grpc_stubs: Any, target: Target) -> None:
    _, model = grpc_stubs
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = target.model_name
    resp = model.GetModelStatus(req, timeout=30)
    states = {s.version: s for s in resp.model_version_status}
    for v in (1, 2):
        assert states[v].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
        assert states[v].status.error_code == 0
    req.model_spec.version.value = 1
    (one,) = model.GetModelStatus(req, timeout=30).model_version_status
    assert one.version == 1 and one.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def test_grpc_model_status_not_found(grpc_stubs: Any, target: Target) -> None:
    _, model = grpc_stubs
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = target.model_name
    req.model_spec.version.value = 999999
    with pytest.raises(grpc.RpcError) as exc:
        model.GetModelStatus(req, timeout=30)
    assert _code(exc) == grpc.StatusCode.NOT_FOUND
    req.model_spec.name = "nosuchmodel"
    req.model_spec.ClearField("version")
    with pytest.raises(grpc.RpcError) as exc:
        model.GetModelStatus(req, timeout=30)
    assert _code(exc) == grpc.StatusCode.NOT_FOUND
