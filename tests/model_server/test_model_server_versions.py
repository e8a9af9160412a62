"""Version watching: a new version appears under load, the num_versions policy, broken and half-written
directories, a deleted version. Against a real TF Serving (see conftest) start it with
``--file_system_poll_wait_seconds=1 --max_num_load_retries=0`` and a latest{2} version policy."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from lms_support import LocalServer, Target, publish_version
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_service_pb2_grpc

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def swap(target: Target, version_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A server whose base path these tests may change: our own fresh one, or the external TF Serving."""
    if not target.local:
        yield target
        return
    root = tmp_path_factory.mktemp("swap")
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
        yield t
    finally:
        server.stop()


def _available(status: dict[int, dict[str, Any]]) -> set[int]:
    return {v for v, s in status.items() if s["state"] == "AVAILABLE"}


def _grpc_request(model: str, sample: dict[str, Any]) -> predict_pb2.PredictRequest:
    req = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model))
    req.inputs["token_ids"].CopyFrom(tf.make_tensor_proto(sample["ids"]))
    req.inputs["token_weights"].CopyFrom(tf.make_tensor_proto(sample["weights"]))
    return req


def _latest_served(t: Target, sample: dict[str, Any]) -> int:
    with grpc.insecure_channel(t.grpc_target) as ch:
        resp = prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(
            _grpc_request(t.model_name, sample), timeout=30
        )
    return int(resp.model_spec.version.value)


class Load:
    """Requests to the latest version over both transports, from two threads, until stopped."""

    def __init__(self, t: Target, sample: dict[str, Any]) -> None:
        self.t, self.sample = t, sample
        self.failures: list[str] = []
        self.grpc_versions: list[int] = []
        self.rest_ok = 0
        self._stop = threading.Event()
        rows = [
            {"token_ids": i.tolist(), "token_weights": w.tolist()}
            for i, w in zip(sample["ids"], sample["weights"], strict=True)
        ]
        self._body = {"instances": rows}
        self._threads = [threading.Thread(target=self._rest), threading.Thread(target=self._grpc)]

    def __enter__(self) -> Load:
        for th in self._threads:
            th.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(30)

    def _rest(self) -> None:
        with httpx.Client(base_url=self.t.rest_url, timeout=30) as c:
            while not self._stop.is_set():
                try:
                    r = c.post(f"/v1/models/{self.t.model_name}:predict", json=self._body)
                    if r.status_code != 200 or len(r.json()["predictions"]) != len(self.sample["ids"]):
                        self.failures.append(f"REST {r.status_code}: {r.text[:200]}")
                    else:
                        self.rest_ok += 1
                except httpx.HTTPError as exc:
                    self.failures.append(f"REST {exc!r}")

    def _grpc(self) -> None:
        with grpc.insecure_channel(self.t.grpc_target) as ch:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
            req = _grpc_request(self.t.model_name, self.sample)
            while not self._stop.is_set():
                try:
                    resp = stub.Predict(req, timeout=30)
                    probs = tf.make_ndarray(resp.outputs["probabilities"])
                    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
                    self.grpc_versions.append(int(resp.model_spec.version.value))
                except (grpc.RpcError, AssertionError) as exc:
                    self.failures.append(f"gRPC {exc!r}")


def test_versions_new_version_under_load_no_request_fails(
    swap: Target, version_source: Path, sample: dict[str, Any]
) -> None:
    before = swap.status()
    m = max(before)
    assert before[m]["state"] == "AVAILABLE"
    new = m + 1
    violations: list[str] = []

    def old_stays_until_new_available(status: dict[int, dict[str, Any]]) -> None:
        if status.get(new, {}).get("state") != "AVAILABLE" and status.get(m, {}).get("state") != "AVAILABLE":
            violations.append(f"version {m} not AVAILABLE before {new} was: {status}")

    with Load(swap, sample) as load:
        time.sleep(0.5)
        publish_version(version_source, swap.base_path, new)
        swap.wait_for(
            f"version {new} AVAILABLE",
            lambda s: s.get(new, {}).get("state") == "AVAILABLE",
            on_poll=old_stays_until_new_available,
        )
        # num_versions 2: the one before m is unloaded, m and new stay.
        status = swap.wait_for(f"only {m} and {new} AVAILABLE", lambda s: _available(s) == {m, new})
        deadline = time.monotonic() + 20
        while new not in load.grpc_versions[-5:] and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not violations, violations[:3]
    assert not load.failures, load.failures[:5]
    assert load.rest_ok > 0 and m in load.grpc_versions and new in load.grpc_versions
    if m - 1 in status:
        assert status[m - 1]["state"] == "END"
        assert status[m - 1]["status"]["error_code"] == "OK"


def _wait_failed(swap: Target, version: int) -> dict[str, Any]:
    status = swap.wait_for(
        f"version {version} reported as failed",
        lambda s: s.get(version, {}).get("state") == "END" and s[version]["status"]["error_code"] != "OK",
    )
    return status[version]


def test_versions_corrupt_dir_reported_and_skipped(
    swap: Target, version_source: Path, sample: dict[str, Any]
) -> None:
    good = max(_available(swap.status()))
    bad = max(swap.status()) + 1
    tmp = swap.base_path / f".tmp-corrupt-{bad}"
    shutil.copytree(version_source, tmp)
    (tmp / "saved_model.pb").write_bytes(b"\x00 this is not a SavedModel protocol buffer \xff" * 10)
    tmp.rename(swap.base_path / str(bad))
    failed = _wait_failed(swap, bad)
    assert failed["status"]["error_message"]
    time.sleep(1.5)  # a few more polls: still skipped, nothing unloaded, still serving
    status = swap.status()
    assert good in _available(status) and bad not in _available(status)
    assert _latest_served(swap, sample) == good


def test_versions_half_written_dir_reported_and_skipped(
    swap: Target, version_source: Path, sample: dict[str, Any]
) -> None:
    good = max(_available(swap.status()))
    half = max(swap.status()) + 1
    target_dir = swap.base_path / str(half)
    target_dir.mkdir()  # written in place, not renamed: a poller sees it before saved_model.pb exists
    shutil.copytree(version_source / "variables", target_dir / "variables")
    _wait_failed(swap, half)
    assert good in _available(swap.status())
    assert _latest_served(swap, sample) == good


def test_versions_deleted_dir_is_unloaded(swap: Target, sample: dict[str, Any]) -> None:
    status = swap.status()
    for v, s in status.items():  # clear the broken ones the tests above left
        if s["status"]["error_code"] != "OK":
            shutil.rmtree(swap.base_path / str(v), ignore_errors=True)
    newest = max(_available(status))
    previous = max(_available(status) - {newest})
    shutil.rmtree(swap.base_path / str(newest))
    swap.wait_for(f"version {newest} END", lambda s: s.get(newest, {}).get("state") == "END")
    swap.wait_for(f"version {previous} AVAILABLE", lambda s: s.get(previous, {}).get("state") == "AVAILABLE")
    assert _latest_served(swap, sample) == previous
