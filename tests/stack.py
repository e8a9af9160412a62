"""Real processes on 127.0.0.1 for end-to-end tests and the benchmark: the local model server and the
sidecar under uvicorn, on free ports, with their logs kept for the failure message."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    ports: dict[str, int] = field(default_factory=dict)

    def url(self, port: str = "http") -> str:
        return f"http://{HOST}:{self.ports[port]}"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


def _spawn(name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None) -> Proc:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", **(env or {})}
    fh = log_path.open("ab")
    popen = subprocess.Popen([sys.executable, *args], stdout=fh, stderr=subprocess.STDOUT, env=full_env)
    fh.close()
    return Proc(name, popen, log_path)


def start_model_server(
    model_base: Path,
    model_name: str,
    log_dir: Path,
    poll_s: float = 0.5,
    grpc_port: int | None = None,
    rest_port: int | None = None,
) -> Proc:
    grpc_port = grpc_port or free_port()
    rest_port = rest_port or free_port()
    proc = _spawn(
        "model_server",
        [
            "-m",
            "local_model_server",
            "--port",
            str(grpc_port),
            "--rest_api_port",
            str(rest_port),
            "--model_name",
            model_name,
            "--model_base_path",
            str(model_base / model_name),
            "--file_system_poll_wait_seconds",
            str(poll_s),
        ],
        log_dir,
    )
    proc.ports = {"grpc": grpc_port, "http": rest_port}
    return proc


def start_sidecar(
    model_base: Path,
    model_name: str,
    server: Proc | None,
    log_dir: Path,
    transport: str = "rest",
    port: int | None = None,
    rest_port: int | None = None,
    grpc_port: int | None = None,
    **settings: str,
) -> Proc:
    port = port or free_port()
    rest_port = rest_port or (server.ports["http"] if server else free_port())
    grpc_port = grpc_port or (server.ports["grpc"] if server else free_port())
    env = {
        "SIDECAR_MODEL_NAME": model_name,
        "SIDECAR_MODEL_BASE_PATH": str(model_base),
        "SIDECAR_TRANSPORT": transport,
        "SIDECAR_TFSERVING_REST_URL": f"http://{HOST}:{rest_port}",
        "SIDECAR_TFSERVING_GRPC_TARGET": f"{HOST}:{grpc_port}",
        "SIDECAR_VERSION_POLL_S": "0.5",
        "SIDECAR_HOST": HOST,
        "SIDECAR_PORT": str(port),
        **{f"SIDECAR_{k.upper()}": v for k, v in settings.items()},
    }
    proc = _spawn(f"sidecar_{transport}_{port}", ["-m", "preprocess_service"], log_dir, env)
    proc.ports = {"http": port}
    return proc


def wait_until(proc: Proc, path: str, status: int = 200, timeout: float = 90) -> httpx.Response:
    """Poll ``path`` until it answers ``status``; fail with the process' log if it dies or times out."""
    deadline = time.monotonic() + timeout
    last: str = "no answer"
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        try:
            r = httpx.get(proc.url() + path, timeout=2)
            if r.status_code == status:
                return r
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise AssertionError(
        f"{proc.name}{path} not {status} after {timeout}s (last: {last}):\n{proc.log_tail()}"
    )
