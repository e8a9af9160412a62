"""The Open Inference Protocol follows the rollout like /v1/classify: an inference that names no version
is routed (stable or canary, sticky per client key) and says which version answered; naming a version
asks for exactly that one, the stable or the declared canary. Over a real stand-in model server and a
real sidecar reading one declared model config (conftest.Lab), through both bindings."""

from __future__ import annotations

from collections import Counter

import httpx
import numpy as np
import tritonclient.grpc as triton
from lc_support import MODEL, Lab, rollout_is, wait_for

from preprocess_service.lifecycle.routing import bucket

TEXT = "The striker scored twice and the team won the cup final after extra time at the stadium."
INFER = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [TEXT]}]}


def key_on(side: str, weight: float) -> str:
    """A client key that the split puts on ``side`` of ``weight`` (the router's own bucket function)."""
    keys = (f"client-{i}" for i in range(10_000))
    return next(k for k in keys if (bucket(k) < weight) == (side == "canary"))


def infer(lab: Lab, path: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{lab.url}/v2/models/{MODEL}{path}/infer", json=INFER, headers=headers, timeout=10)


def answered(r: httpx.Response) -> tuple[str, str]:
    assert r.status_code == 200, r.text
    version = r.json()["model_version"]
    assert r.headers["x-model-version"] == version
    return version, r.headers["x-model-role"]


def test_oip_rest_inference_is_routed_and_versions_can_be_named(lab: Lab) -> None:
    lab.publish(2)
    lab.declare(1, 2, weight=50)
    wait_for("canary 2 active", lambda: rollout_is(lab.url, 1, 2, active=True, weight=50))

    meta = httpx.get(f"{lab.url}/v2/models/{MODEL}", timeout=5).json()
    assert meta["versions"] == ["1", "2"]
    assert httpx.get(f"{lab.url}/v2/models/{MODEL}/versions/2/ready", timeout=5).status_code == 200

    # unnamed: the split decides, sticky per client key, as on /v1/classify
    canary_key, stable_key = key_on("canary", 50), key_on("stable", 50)
    for _ in range(3):
        assert answered(infer(lab, "", **{"X-Client-Key": canary_key})) == ("2", "canary")
        assert answered(infer(lab, "", **{"X-Client-Key": stable_key})) == ("1", "stable")
    # without a key each request is placed at random: both versions answer
    seen = Counter(answered(infer(lab, ""))[0] for _ in range(60))
    assert set(seen) == {"1", "2"}, seen

    # named: exactly that version, whatever the split says
    assert answered(infer(lab, "/versions/2", **{"X-Client-Key": stable_key})) == ("2", "canary")
    assert answered(infer(lab, "/versions/1", **{"X-Client-Key": canary_key})) == ("1", "stable")
    r = infer(lab, "/versions/7")
    assert r.status_code == 404 and "served: 1, 2" in r.json()["error"], r.text

    # the canary withdrawn: it can no longer be named, and unnamed inferences all go to stable
    lab.declare(1)
    wait_for("canary withdrawn", lambda: rollout_is(lab.url, 1, None))
    r = infer(lab, "/versions/2")
    assert r.status_code == 404, r.text
    assert httpx.get(f"{lab.url}/v2/models/{MODEL}", timeout=5).json()["versions"] == ["1"]
    assert {answered(infer(lab, "", **{"X-Client-Key": canary_key})) for _ in range(5)} == {("1", "stable")}


def test_oip_grpc_inference_is_routed_and_versions_can_be_named(lab: Lab) -> None:
    lab.publish(2)
    lab.declare(1, 2, weight=50)
    wait_for("canary 2 active", lambda: rollout_is(lab.url, 1, 2, active=True, weight=50))
    client = triton.InferenceServerClient(url=f"127.0.0.1:{lab.oip_grpc_port}")
    try:
        t = triton.InferInput("text", [1], "BYTES")
        t.set_data_from_numpy(np.array([TEXT.encode()], dtype=np.object_))

        def version(model_version: str = "", key: str | None = None) -> str:
            headers = {"x-client-key": key} if key else None
            r = client.infer(MODEL, [t], model_version=model_version, headers=headers, client_timeout=10)
            return str(r.get_response().model_version)

        assert version(key=key_on("canary", 50)) == "2"
        assert version(key=key_on("stable", 50)) == "1"
        assert version("2", key=key_on("stable", 50)) == "2"
        assert version("1", key=key_on("canary", 50)) == "1"
        assert list(client.get_model_metadata(MODEL).versions) == ["1", "2"]
        assert client.is_model_ready(MODEL, "2")
        assert not client.is_model_ready(MODEL, "7")
    finally:
        client.close()
    lab.declare(1)
    wait_for("canary withdrawn", lambda: rollout_is(lab.url, 1, None))
