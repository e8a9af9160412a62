"""Model config reloads and version labels (TF Serving's ModelService/HandleReloadConfigRequest,
``version_labels``, addressing by label over REST and gRPC).

Against our stand-in these run on a fresh server; against a real TF Serving (see conftest) they run
on it and put its config back at the end. Its config must name the model's base path as the server
sees it: TFSERVING_SERVER_BASE_PATH (default: TFSERVING_MODEL_BASE_PATH)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from lms_support import LocalServer, Target, publish_version
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

pytestmark = pytest.mark.timeout(300)
SPECIFIC_1_2 = "model_version_policy { specific { versions: 1 versions: 2 } } "


class Reloadable:
    def __init__(self, t: Target, server_base: str) -> None:
        self.t = t
        self.server_base = server_base
        self.channel = grpc.insecure_channel(t.grpc_target)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def config(self, body: str) -> model_server_config_pb2.ModelServerConfig:
        text = (
            f'model_config_list {{ config {{ name: "{self.t.model_name}" base_path: "{self.server_base}" '
            f'model_platform: "tensorflow" {body} }} }}'
        )
        return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())

    def reload(self, body: str) -> None:
        req = model_management_pb2.ReloadConfigRequest(config=self.config(body))
        self.models.HandleReloadConfigRequest(req, timeout=120)


@pytest.fixture(scope="module")
def cfg(
    target: Target, version_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Reloadable]:
    if not target.local:
        r = Reloadable(target, os.environ.get("TFSERVING_SERVER_BASE_PATH", str(target.base_path)))
        try:
            yield r
        finally:
            r.reload("model_version_policy { latest { num_versions: 2 } }")
            r.channel.close()
        return
    root = tmp_path_factory.mktemp("cfg")
    base = root / "news"
    base.mkdir()
    for v in (1, 2):
        publish_version(version_source, base, v)
    server = LocalServer(base, root / "server.log")
    try:
        server.wait_ready()
        t = Target(server.rest_url, server.grpc_target, "news", base, local=True, server=server)
        t.wait_for(
            "1 and 2 AVAILABLE", lambda s: all(s.get(v, {}).get("state") == "AVAILABLE" for v in (1, 2))
        )
        r = Reloadable(t, str(base))
        yield r
        r.channel.close()
    finally:
        server.stop()


def _request(model: str, sample: dict[str, Any], label: str | None = None, version: int | None = None) -> Any:
    spec = model_pb2.ModelSpec(name=model)
    if label is not None:
        spec.version_label = label
    if version is not None:
        spec.version.value = version
    req = predict_pb2.PredictRequest(model_spec=spec)
    req.inputs["token_ids"].CopyFrom(tf.make_tensor_proto(sample["ids"]))
    req.inputs["token_weights"].CopyFrom(tf.make_tensor_proto(sample["weights"]))
    return req


def _rows(sample: dict[str, Any]) -> dict[str, Any]:
    return {
        "instances": [
            {"token_ids": i.tolist(), "token_weights": w.tolist()}
            for i, w in zip(sample["ids"], sample["weights"], strict=True)
        ]
    }


def test_config_labels_route_rest_and_grpc(cfg: Reloadable, sample: dict[str, Any]) -> None:
    cfg.reload(
        "model_version_policy { specific { versions: 1 versions: 2 } } "
        'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 }'
    )
    t = cfg.t
    for label, version in (("stable", 1), ("canary", 2)):
        resp = cfg.predict.Predict(_request(t.model_name, sample, label=label), timeout=30)
        assert resp.model_spec.version.value == version
        np.testing.assert_allclose(
            tf.make_ndarray(resp.outputs["probabilities"]), sample["expected"]["probabilities"], atol=1e-6
        )
        r = httpx.post(
            f"{t.rest_url}/v1/models/{t.model_name}/labels/{label}:predict", json=_rows(sample), timeout=30
        )
        assert r.status_code == 200, r.text
        assert [p["class_ids"] for p in r.json()["predictions"]] == sample["expected"]["class_ids"].tolist()
        st = httpx.get(f"{t.rest_url}/v1/models/{t.model_name}/labels/{label}", timeout=30)
        assert st.status_code == 200, st.text
        # TF Serving's status ignores the label: every version, the labelled one among them
        assert version in [int(v["version"]) for v in st.json()["model_version_status"]]
        status = cfg.models.GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(
                model_spec=model_pb2.ModelSpec(name=t.model_name, version_label=label)
            ),
            timeout=30,
        )
        assert version in [v.version for v in status.model_version_status]


def test_config_unknown_label_is_invalid_argument(cfg: Reloadable, sample: dict[str, Any]) -> None:
    cfg.reload(SPECIFIC_1_2 + 'version_labels { key: "stable" value: 1 }')
    t = cfg.t
    with pytest.raises(grpc.RpcError) as err:
        cfg.predict.Predict(_request(t.model_name, sample, label="nope"), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Unrecognized servable version label: nope" in err.value.details()
    r = httpx.post(
        f"{t.rest_url}/v1/models/{t.model_name}/labels/nope:predict", json=_rows(sample), timeout=30
    )
    assert r.status_code == 400
    assert "Unrecognized servable version label: nope" in r.json()["error"]


def test_config_label_on_unloaded_version_is_refused_and_old_config_keeps_serving(
    cfg: Reloadable, sample: dict[str, Any]
) -> None:
    cfg.reload(SPECIFIC_1_2 + 'version_labels { key: "stable" value: 1 }')
    with pytest.raises(grpc.RpcError) as err:
        cfg.reload(SPECIFIC_1_2 + 'version_labels { key: "stable" value: 7 }')
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Request to assign label to version 7" in err.value.details()
    assert "not currently available for inference" in err.value.details()
    resp = cfg.predict.Predict(_request(cfg.t.model_name, sample, label="stable"), timeout=30)
    assert resp.model_spec.version.value == 1
    status = cfg.t.status()
    assert status[1]["state"] == "AVAILABLE" and status[2]["state"] == "AVAILABLE", status


def test_config_reload_changes_policy_and_unloads(cfg: Reloadable, sample: dict[str, Any]) -> None:
    t = cfg.t
    cfg.reload("model_version_policy { specific { versions: 1 } }")
    t.wait_for(
        "only version 1 AVAILABLE",
        lambda s: s.get(1, {}).get("state") == "AVAILABLE" and s.get(2, {}).get("state") == "END",
    )
    resp = cfg.predict.Predict(_request(t.model_name, sample), timeout=30)
    assert resp.model_spec.version.value == 1
    with pytest.raises(grpc.RpcError) as err:
        cfg.predict.Predict(_request(t.model_name, sample, version=2), timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    cfg.reload("model_version_policy { all {} }")
    t.wait_for("1 and 2 AVAILABLE", lambda s: all(s.get(v, {}).get("state") == "AVAILABLE" for v in (1, 2)))
    resp = cfg.predict.Predict(_request(t.model_name, sample), timeout=30)
    assert resp.model_spec.version.value == 2
