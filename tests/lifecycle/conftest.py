"""One stand-in model server reading a declared model config (re-read every second) and one sidecar
reading the same files: the pod's arrangement, as processes. Tests change the declaration and watch."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lc_support import MODEL, SLOW_MS, SLOW_VERSION, declare, make_version, wait_for

from contracts import version_state
from contracts.rollout import Fallback
from devstack import Proc, Stack, free_port, server_states


@dataclass
class Lab:
    stack: Stack
    server: Proc
    sidecar: Proc
    config_dir: Path
    source: Path  # a good version's files, to derive more versions from
    canary: int | None = None  # the last declared
    oip_grpc_port: int = 0  # the sidecar's Open Inference Protocol gRPC port

    @property
    def url(self) -> str:
        return self.sidecar.url()

    def publish(self, version: int, kind: str = "copy") -> Path:
        """Publish once (versions are immutable): tests may run alone or in any order."""
        done = self.stack.model_dir / str(version)
        return done if done.exists() else make_version(self.source, self.stack.model_dir, version, kind)

    def declare(self, stable: int | None, canary: int | None = None, **rollout: Any) -> None:
        """As docs/operations.md says to: TF Serving refuses to move the canary label onto a version
        it has not loaded, so a different canary replaces the old one only after its removal is applied."""
        if self.canary is not None and canary is not None and canary != self.canary:
            declare(self.config_dir, self.stack.base, stable)
            old = self.canary
            wait_for(
                f"the model server to unload canary {old}",
                lambda: server_states(self.server, MODEL).get(old) != version_state.AVAILABLE,
            )
        rollout.setdefault("fallback", Fallback(max_p99_ms=0))  # a busy test machine is not a slow canary
        declare(self.config_dir, self.stack.base, stable, canary, **rollout)
        self.canary = canary


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, exported_models: Path) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lifecycle")
    stack = Stack(root, MODEL, poll_s=0.3)
    source = root / "source"
    shutil.copytree(exported_models / MODEL / "1", source)
    config_dir = root / "config"
    config_dir.mkdir()
    lab_ = Lab(stack, None, None, config_dir, source, oip_grpc_port=free_port())  # type: ignore[arg-type]
    lab_.publish(1)
    lab_.declare(1)
    try:
        lab_.server = stack.server(
            config_file=config_dir / "models.config",
            extra_args=(
                "--model_config_file_poll_wait_seconds=1",
                "--allow_version_labels_for_unavailable_models",
                # a deliberately slow version (the stand-in's test-only delay), for the p99 fallback
                f"--test_delay_ms={SLOW_VERSION}:{SLOW_MS}",
            ),
        )
        lab_.sidecar = stack.sidecar(
            lab_.server,
            model_config_file=str(config_dir / "models.config"),
            rollout_file=str(config_dir / "rollout.json"),
            oip_grpc_port=str(lab_.oip_grpc_port),
        )
        yield lab_
    finally:
        stack.stop()
