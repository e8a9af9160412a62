"""Helpers of tests/model_server (a unique module name): the server process, the target, publishing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from contracts import version_state
from contracts.modeldir import publish_copy
from devstack import Proc, free_port, start_model_server, wait_available

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 90.0


def publish_version(src: Path, base: Path, version: int) -> Path:
    """Copy a version directory into ``base`` atomically (the model directory contract)."""
    return publish_copy(src, base, version)


class LocalServer:
    """``python -m local_model_server`` as a child process (devstack's), stopped with SIGTERM."""

    def __init__(
        self,
        base: Path,
        log_path: Path,
        model_name: str = "news",
        *extra: str,
        config_file: Path | None = None,
    ) -> None:
        """``extra``: more flags. ``config_file``: serve a --model_config_file instead of
        --model_name/--model_base_path (``model_name`` is then what wait_ready checks)."""
        self.base = base
        self.model_name = model_name
        self.log_path = log_path
        self._proc: Proc = start_model_server(
            base, model_name, None, *extra, log_file=log_path, log_mode="wb", config_file=config_file
        )
        self.proc = self._proc.popen
        self.grpc_port, self.rest_port = self._proc.ports["grpc"], self._proc.ports["http"]

    @property
    def rest_url(self) -> str:
        return self._proc.url()

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        wait_available(self._proc, self.model_name, timeout=timeout, every=0.2)

    def stop(self, timeout: float = 30.0) -> int:
        self._proc.stop(timeout=timeout)
        return int(self.proc.returncode)


@dataclass
class Target:
    """What the tests talk to: our stand-in, or a real TF Serving named by the environment."""

    rest_url: str
    grpc_target: str
    model_name: str
    base_path: Path  # the directory the server polls for <version>/ subdirectories
    local: bool
    server: LocalServer | None = None

    def status(self) -> dict[int, dict[str, Any]]:
        r = httpx.get(f"{self.rest_url}/v1/models/{self.model_name}", timeout=5)
        r.raise_for_status()
        return version_state.parse_status(r.json())

    def wait_for(
        self,
        what: str,
        pred: Callable[[dict[int, dict[str, Any]]], bool],
        timeout: float = 60.0,
        on_poll: Callable[[dict[int, dict[str, Any]]], None] | None = None,
    ) -> dict[int, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        last: dict[int, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            try:
                last = self.status()
            except httpx.HTTPError:
                last = {}
            if on_poll:
                on_poll(last)
            if pred(last):
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last status: {last}")


__all__ = ["REPO", "LocalServer", "Target", "free_port", "publish_version"]
