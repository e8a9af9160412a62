"""Fixtures for the local_model_server suite.

By default every test runs against real ``python -m local_model_server`` processes on 127.0.0.1
(ephemeral ports), serving versions written by the real exporter (the shared ``exported_models``
fixture of tests/conftest.py). Set TFSERVING_REST_URL, TFSERVING_GRPC_TARGET and
TFSERVING_MODEL_BASE_PATH (and TFSERVING_MODEL_NAME, default ``news``) to run the same tests against
a real TensorFlow Serving instead (TFSERVING_SERVER_BASE_PATH: the base path as that server sees it,
for the config-reload cases); docs/local_model_server.md says how that server must be started."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lms_support import LocalServer, Target, publish_version


@pytest.fixture(scope="session")
def version_source(exported_models: Path) -> Path:
    """A version directory written by the real exporter; served as version 1 and, copied, as 2."""
    src = exported_models / "news" / "1"
    assert (src / "saved_model.pb").is_file(), f"the shared exported_models fixture gave no {src}"
    return src


def _external_env() -> dict[str, str] | None:
    keys = ("TFSERVING_REST_URL", "TFSERVING_GRPC_TARGET", "TFSERVING_MODEL_BASE_PATH")
    present = {k: os.environ[k] for k in keys if os.environ.get(k)}
    if not present:
        return None
    missing = [k for k in keys if k not in present]
    if missing:
        pytest.fail(
            f"to target a real TF Serving set all of {', '.join(keys)}; missing: {', '.join(missing)}"
        )
    return present


def _seed_versions(src: Path, base: Path, versions: list[int]) -> None:
    base.mkdir(parents=True, exist_ok=True)
    for v in versions:
        if not (base / str(v)).exists():
            publish_version(src, base, v)


@pytest.fixture(scope="session")
def target(version_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The server under test, serving versions 1 and 2 of the exported model."""
    env = _external_env()
    if env is not None:
        base = Path(env["TFSERVING_MODEL_BASE_PATH"])
        _seed_versions(version_source, base, [1, 2])
        t = Target(
            env["TFSERVING_REST_URL"].rstrip("/"),
            env["TFSERVING_GRPC_TARGET"],
            os.environ.get("TFSERVING_MODEL_NAME", "news"),
            base,
            local=False,
        )
        t.wait_for(
            "versions 1 and 2 AVAILABLE",
            lambda s: all(s.get(v, {}).get("state") == "AVAILABLE" for v in (1, 2)),
            timeout=120,
        )
        yield t
        return
    root = tmp_path_factory.mktemp("served")
    base = root / "news"
    _seed_versions(version_source, base, [1, 2])
    server = LocalServer(base, root / "server.log")
    try:
        server.wait_ready()
        t = Target(server.rest_url, server.grpc_target, "news", base, local=True, server=server)
        t.wait_for(
            "versions 1 and 2 AVAILABLE",
            lambda s: all(s.get(v, {}).get("state") == "AVAILABLE" for v in (1, 2)),
        )
        yield t
    finally:
        server.stop()


@pytest.fixture(scope="session")
def rest(target: Target) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.rest_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def grpc_stubs(target: Target) -> Iterator[tuple[Any, Any]]:
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(target.grpc_target)
    grpc.channel_ready_future(channel).result(timeout=30)
    yield (
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
    )
    channel.close()


@pytest.fixture(scope="session")
def sample(version_source: Path) -> dict[str, Any]:
    """Two texts vectorized with the version's own vectorizer, and the exported model's own answer."""
    import numpy as np

    from contracts import modeldir
    from tests.reference import predict_exported
    from textvec import Vectorizer, load_labels

    vec = Vectorizer.load(version_source / modeldir.VECTORIZER)
    texts = [
        "The striker scored twice as the club won the league match.",
        "Shares fell after the bank reported lower profits and the market slid.",
    ]
    ids, weights = vec.transform(texts)
    expected = predict_exported(version_source, ids, weights)
    return {
        "ids": np.asarray(ids, dtype=np.int64),
        "weights": np.asarray(weights, dtype=np.float32),
        "expected": expected,
        "labels": load_labels(version_source),
        "n_features": vec.n_features,
    }
