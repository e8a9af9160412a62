"""A rollback that TF Serving applies before the sidecar has read it: the model server unloads the old
stable while the sidecar still routes to it. Both containers read the same declaration, each on its own
poll, so either may go first. The request must still be answered, by the new stable, not fail with 503.

The sidecar polls every 60 s here and the model server every second, so the model server always wins:
without the sidecar looking again when TF Serving says the version is gone, the request below fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from lc_support import MODEL, declare, make_version, model_info, wait_for

from contracts import version_state
from devstack import Stack, server_states


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_a_rollback_applied_first_by_the_model_server_fails_no_request(
    tmp_path: Path, exported_models: Path, transport: str
) -> None:
    stack = Stack(tmp_path, MODEL)
    source = tmp_path / "source"
    shutil.copytree(exported_models / MODEL / "1", source)
    for v in (1, 2):
        make_version(source, stack.model_dir, v, "copy")
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    declare(config_dir, stack.base, 2, 1)  # stable 2; 1 kept loaded (as a canary with no traffic)
    try:
        server = stack.server(
            config_file=config_dir / "models.config",
            extra_args=(
                "--model_config_file_poll_wait_seconds=1",
                "--allow_version_labels_for_unavailable_models",
            ),
        )
        sidecar = stack.sidecar(
            server,
            transport=transport,
            model_config_file=str(config_dir / "models.config"),
            rollout_file=str(config_dir / "rollout.json"),
            version_poll_s="60",
        )
        url = sidecar.url()
        assert model_info(url)["version"] == 2

        declare(config_dir, stack.base, 1)  # the rollback: stable 1, version 2 no longer served
        wait_for(
            "the model server to unload version 2",
            lambda: server_states(server, MODEL).get(2) != version_state.AVAILABLE,
        )
        assert model_info(url)["version"] == 2, "the sidecar read the rollback on its own: no race to test"

        r = httpx.post(f"{url}/v1/classify", json={"text": "The match ended in a draw."}, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["model"]["version"] == 1
        assert r.headers["x-model-version"] == "1" and r.headers["x-model-role"] == "stable"
        assert model_info(url)["version"] == 1  # the sidecar looked again at once, not after 60 s
    finally:
        stack.stop()
