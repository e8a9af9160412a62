"""Child processes of the development stack: ports, spawning with a log file, readiness, stopping."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[1]


# Ports for the stack's servers come from below the kernel's ephemeral range: a port the kernel hands
# out for "any free port" comes from that range, and any process's outgoing connection can take it as
# its local port between this call and the server's bind ("Address already in use", seen in make test
# while other tests made hundreds of connections). Ports already handed out by this process are not
# handed out again, in case the server they were for has not bound yet.
_LOW_PORTS = (15_000, 30_000)  # under 32,768 (Linux's default ephemeral start) and Kubernetes' NodePorts
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, outside the ephemeral range when it can be."""
    lo, hi = _LOW_PORTS[0], min(_LOW_PORTS[1], _ephemeral_start())
    if hi - lo >= 1_000:
        for _ in range(200):
            port = random.randrange(lo, hi)
            if port not in _handed_out and port_free(port):
                _handed_out.add(port)
                return port
    while True:  # no room below the ephemeral range: let the kernel choose
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None
    ports: dict[str, int] = field(default_factory=dict)

    def url(self, port: str = "http") -> str:
        return f"http://{HOST}:{self.ports[port]}"

    def log_tail(self, n: int = 40) -> str:
        if self.log_path is None:
            return "<output on the terminal>"
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


def spawn(
    name: str,
    args: list[str],
    log_dir: Path | None,
    env: dict[str, str] | None = None,
    *,
    log_file: Path | None = None,
    log_mode: str = "ab",
    new_session: bool = False,
) -> Proc:
    """``python <args>`` with the repository on the import path. Output goes to ``log_file``, else to
    ``<log_dir>/<name>.log``, else (both None) to this terminal; ``new_session`` keeps Ctrl-C from
    reaching the child directly."""
    full_env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        **(env or {}),
    }
    cmd = [sys.executable, *args]
    if log_file is None and log_dir is None:
        popen = subprocess.Popen(cmd, env=full_env, start_new_session=new_session)
        return Proc(name, popen, None)
    log_path = log_file or Path(str(log_dir)) / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open(log_mode) as fh:
        popen = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env=full_env, start_new_session=new_session
        )
    return Proc(name, popen, log_path)


def wait_http(
    proc: Proc,
    path: str,
    status: int = 200,
    timeout: float = 90,
    accept: Callable[[httpx.Response], bool] | None = None,
    every: float = 0.2,
    watch: Sequence[Proc] = (),
) -> httpx.Response:
    """Poll ``path`` until it answers ``status`` (and ``accept`` holds for the answer); fail with the
    process' log if it (or one of ``watch``) exits, or the time runs out."""
    deadline = time.monotonic() + timeout
    last: str = "no answer"
    while time.monotonic() < deadline:
        for p in (proc, *watch):
            if p.popen.poll() is not None:
                raise AssertionError(f"{p.name} exited with {p.popen.returncode}:\n{p.log_tail()}")
        try:
            r = httpx.get(proc.url() + path, timeout=2)
            if r.status_code == status and (accept is None or accept(r)):
                return r
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(every)
    raise AssertionError(
        f"{proc.name}{path} not {status} after {timeout}s (last: {last}):\n{proc.log_tail()}"
    )
