"""Helpers of tests/model_server (a unique module name): the server process, the target, publishing."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 90.0


def publish_version(src: Path, base: Path, version: int) -> Path:
    """Copy a version directory into ``base`` atomically (copy to a hidden name, then rename)."""
    tmp = base / f".tmp-{version}-{uuid.uuid4().hex[:6]}"
    shutil.copytree(src, tmp)
    final = base / str(version)
    os.rename(tmp, final)
    return final


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """``python -m local_model_server`` as a child process, stopped with SIGTERM."""

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
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.log_path = log_path
        self._log = log_path.open("wb")
        env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local_model_server",
                "--port",
                str(self.grpc_port),
                "--rest_api_port",
                str(self.rest_port),
                *(
                    [f"--model_config_file={config_file}"]
                    if config_file is not None
                    else ["--model_name", model_name, "--model_base_path", str(base)]
                ),
                "--file_system_poll_wait_seconds",
                "0.5",
                *extra,
            ],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                r = httpx.get(f"{self.rest_url}/v1/models/{self.model_name}", timeout=2)
                if r.status_code == 200 and any(
                    v["state"] == "AVAILABLE" for v in r.json()["model_version_status"]
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready after {timeout}s:\n{self.log()[-4000:]}")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
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
        return {int(v["version"]): v for v in r.json()["model_version_status"]}

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
