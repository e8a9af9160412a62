"""One stand-in model server reading a declared model config (re-read every second) and one sidecar
reading the same files: the pod's arrangement, as processes. Tests change the declaration and watch."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from lc_support import MODEL, SLOW_MS, SLOW_VERSION, Lab

from devstack import Stack, free_port


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
