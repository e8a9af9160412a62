"""A real sidecar on a free local port (uvicorn in a thread) for the browser to talk to; its model server
is the in-process double backed by the exported SavedModel, so the answers are the real model's."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from preprocess_service.config import Settings
from preprocess_service.main import create_app
from tests.browser.cdp import Browser
from tests.sidecar.doubles import SavedModelUpstream

ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "browser"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_sidecar(base: Path, **overrides: object) -> Iterator[str]:
    settings = Settings(model_base_path=base, model_name="news", version_poll_s=0.5, **overrides)  # type: ignore[arg-type]
    app = create_app(settings, upstream=SavedModelUpstream(base / "news"))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the sidecar did not become ready within 60 s")
        time.sleep(0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def model_base(tmp_path: Path, exported_models: Path) -> Path:
    shutil.copytree(exported_models / "news" / "1", tmp_path / "news" / "1")
    return tmp_path


@pytest.fixture
def browser() -> Iterator[Browser]:
    with Browser(offline=True) as b:
        yield b
