"""The model server (the local stand-in for TF Serving) and the sidecar, started the way the pod runs
them, and :class:`Stack`: a model base directory plus the processes started on it, stopped together."""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from contracts import modeldir, version_state
from devstack.procs import HOST, Proc, free_port, spawn, wait_http

READY_TIMEOUT_S = 120.0


def start_model_server(
    model_dir: Path,
    model_name: str,
    log_dir: Path | None,
    *extra_args: str,
    poll_s: float | None = 0.5,
    grpc_port: int | None = None,
    rest_port: int | None = None,
    name: str = "model_server",
    log_file: Path | None = None,
    log_mode: str = "ab",
    new_session: bool = False,
    config_file: Path | None = None,
) -> Proc:
    """``python -m local_model_server`` with TF Serving's flags, serving ``model_dir`` (the directory that
    holds the ``<version>/`` directories), or the models of ``config_file`` (TF Serving's
    ``--model_config_file``; ``model_dir`` is then ignored). ``extra_args`` are passed on as they are."""
    grpc_port = grpc_port or free_port()
    rest_port = rest_port or free_port()
    # TF Serving (and so the stand-in) refuses a relative model base path.
    served = (
        [f"--model_config_file={config_file}"]
        if config_file is not None
        else ["--model_name", model_name, "--model_base_path", str(Path(model_dir).resolve())]
    )
    args = ["-m", "local_model_server", "--port", str(grpc_port), "--rest_api_port", str(rest_port), *served]
    if poll_s is not None:
        args += ["--file_system_poll_wait_seconds", str(poll_s)]
    proc = spawn(
        name, [*args, *extra_args], log_dir, log_file=log_file, log_mode=log_mode, new_session=new_session
    )
    proc.ports = {"grpc": grpc_port, "http": rest_port}
    return proc


def sidecar_env(
    model_base: Path,
    model_name: str,
    *,
    port: int,
    rest_port: int,
    grpc_port: int,
    transport: str = "rest",
    **settings: str,
) -> dict[str, str]:
    """The sidecar's settings as the environment it reads (``SIDECAR_*``), pointed at a model server."""
    return {
        "SIDECAR_MODEL_NAME": model_name,
        "SIDECAR_MODEL_BASE_PATH": str(model_base),
        "SIDECAR_TRANSPORT": transport,
        "SIDECAR_TFSERVING_REST_URL": f"http://{HOST}:{rest_port}",
        "SIDECAR_TFSERVING_GRPC_TARGET": f"{HOST}:{grpc_port}",
        "SIDECAR_HOST": HOST,
        "SIDECAR_PORT": str(port),
        **{f"SIDECAR_{k.upper()}": v for k, v in settings.items()},
    }


def start_sidecar(
    model_base: Path,
    model_name: str,
    server: Proc | None,
    log_dir: Path | None,
    transport: str = "rest",
    port: int | None = None,
    rest_port: int | None = None,
    grpc_port: int | None = None,
    new_session: bool = False,
    extra: Mapping[str, str] | None = None,
    **settings: str,
) -> Proc:
    """``python -m preprocess_service`` reading ``<model_base>/<model_name>`` and sending to ``server``
    (or to the given ports). ``settings`` (and ``extra``) are Settings fields, e.g.
    ``batch_enabled="false"``."""
    settings = {**settings, **(extra or {})}
    port = port or free_port()
    rest_port = rest_port or (server.ports["http"] if server else free_port())
    grpc_port = grpc_port or (server.ports["grpc"] if server else free_port())
    settings.setdefault("version_poll_s", "0.5")
    env = sidecar_env(
        model_base, model_name, port=port, rest_port=rest_port, grpc_port=grpc_port, transport=transport,
        **settings,
    )  # fmt: skip
    proc = spawn(
        f"sidecar_{transport}_{port}", ["-m", "preprocess_service"], log_dir, env, new_session=new_session
    )
    proc.ports = {"http": port}
    return proc


def server_states(server: Proc, model_name: str) -> dict[int, str]:
    """``{version: state}`` as the model server reports them now; empty when it does not answer."""
    try:
        r = httpx.get(f"{server.url()}/v1/models/{model_name}", timeout=2)
    except httpx.HTTPError:
        return {}
    if r.status_code != 200:
        return {}
    return version_state.states(r.json())


def wait_available(
    server: Proc,
    model_name: str,
    version: int | None = None,
    timeout: float = READY_TIMEOUT_S,
    every: float = 0.05,
) -> float:
    """Block until the model server reports ``version`` (or, if None, any version) AVAILABLE; returns
    the monotonic time it did. Fails with the server's log if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    states: dict[int, str] = {}
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            raise AssertionError(f"{server.name} exited with {server.popen.returncode}:\n{server.log_tail()}")
        states = server_states(server, model_name)
        wanted = [states.get(version)] if version is not None else list(states.values())
        if version_state.AVAILABLE in wanted:
            return time.monotonic()
        time.sleep(every)
    what = f"version {version}" if version is not None else "no version"
    raise AssertionError(
        f"{server.name}: {what} AVAILABLE after {timeout}s (states: {states}):\n{server.log_tail()}"
    )


class Stack:
    """A model base directory plus the processes started on it; :meth:`stop` stops them all."""

    def __init__(self, root: Path, model_name: str = "news", poll_s: float = 0.3) -> None:
        self.root = root
        self.model_name = model_name
        self.poll_s = poll_s
        self.base = root / "models"
        self.model_dir = self.base / model_name
        self.model_dir.mkdir(parents=True, exist_ok=True)
        self.logs = root / "logs"
        self.procs: list[Proc] = []

    def publish(self, src: Path, version: int) -> Path:
        """Copy a version directory in, atomically (the model directory contract)."""
        return modeldir.publish_copy(src, self.model_dir, version)

    def server(
        self,
        grpc_port: int | None = None,
        rest_port: int | None = None,
        wait_version: int | None = 1,
        timeout: float = READY_TIMEOUT_S,
        config_file: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> Proc:
        """The model server on this base, or on the models of ``config_file`` (TF Serving's
        ``--model_config_file``; ``extra_args`` e.g. its poll and label flags)."""
        p = start_model_server(
            self.model_dir, self.model_name, self.logs, *extra_args, poll_s=self.poll_s, grpc_port=grpc_port,
            rest_port=rest_port, config_file=config_file,
        )  # fmt: skip
        self.procs.append(p)
        if wait_version is not None:
            wait_available(p, self.model_name, wait_version, timeout)
        return p

    def sidecar(
        self,
        server: Proc | None,
        transport: str = "rest",
        ready: bool = True,
        timeout: float = READY_TIMEOUT_S,
        rest_port: int | str | None = None,
        grpc_port: int | str | None = None,
        **settings: str,
    ) -> Proc:
        """A sidecar on this base, sending to ``server`` or to the given model-server ports; waits for
        /readyz (``ready``) or only for /healthz. ``settings`` are Settings fields."""
        settings.setdefault("version_poll_s", str(self.poll_s))
        p = start_sidecar(
            self.base, self.model_name, server, self.logs, transport=transport,
            rest_port=int(rest_port) if rest_port else None, grpc_port=int(grpc_port) if grpc_port else None,
            extra=settings,
        )  # fmt: skip
        self.procs.append(p)
        wait_http(p, "/readyz" if ready else "/healthz", 200, timeout=timeout)
        return p

    def stop(self) -> None:
        """Sidecars get SIGTERM (their graceful shutdown is under test elsewhere); the model server is
        killed, as a test's teardown need not wait for its unloading."""
        for p in reversed(self.procs):
            if p.alive():
                p.stop(signal.SIGKILL if p.name.startswith("model_server") else signal.SIGTERM, timeout=25)

    def logs_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log_tail(60)}" for p in self.procs)
