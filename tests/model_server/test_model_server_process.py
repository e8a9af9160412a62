"""The stand-in's own process behaviour (not part of TF Serving's API contract): Prometheus metrics,
graceful shutdown, flags. Always runs our local_model_server, even when the rest targets TF Serving."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lms_support import REPO, LocalServer, free_port, publish_version

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def own(version_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    root = tmp_path_factory.mktemp("own")
    base = root / "news"
    base.mkdir()
    publish_version(version_source, base, 1)
    server = LocalServer(base, root / "server.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _metric(page: str, name: str, **labels: str) -> float:
    for line in page.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} with {labels} in:\n{page[:3000]}")


def test_process_prometheus_metrics(own: LocalServer, sample: dict[str, Any]) -> None:
    rows = [{"token_ids": sample["ids"][0].tolist(), "token_weights": sample["weights"][0].tolist()}]
    with httpx.Client(base_url=own.rest_url, timeout=30) as c:
        for _ in range(3):
            assert c.post("/v1/models/news:predict", json={"instances": rows}).status_code == 200
        assert c.post("/v1/models/news:predict", json={"instances": []}).status_code == 400
        r = c.get("/monitoring/prometheus/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    page = r.text
    labels = {"model_name": "news", "api": "predict", "entrypoint": "REST"}
    assert _metric(page, "tensorflow_serving_request_count_total", **labels, status="OK") == 3
    assert _metric(page, "tensorflow_serving_request_count_total", **labels, status="INVALID_ARGUMENT") == 1
    assert _metric(page, "tensorflow_serving_request_latency_seconds_count", **labels, status="OK") == 3
    assert _metric(page, "tensorflow_serving_runtime_latency_seconds_count", **labels) == 3
    assert (
        _metric(page, "tensorflow_serving_model_load_attempt_count_total", model_name="news", status="OK")
        == 1
    )
    assert _metric(page, "tensorflow_serving_model_version_state", version="1", state="AVAILABLE") == 1
    assert re.search(r"^process_resident_memory_bytes ", page, re.M)


def test_process_help_names_it_a_dev_tool() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "local_model_server", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "DEVELOPMENT AND TEST" in out
    for flag in (
        "--port",
        "--rest_api_port",
        "--model_name",
        "--model_base_path",
        "--file_system_poll_wait_seconds",
        "--num_versions",
        "--enable_model_warmup",
    ):
        assert flag in out


def test_process_port_in_use_exits_nonzero(tmp_path: Path) -> None:
    base = tmp_path / "news"
    base.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "local_model_server",
                "--port",
                str(free_port()),
                "--rest_api_port",
                str(s.getsockname()[1]),
                "--model_name",
                "news",
                "--model_base_path",
                str(base),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "cannot start" in proc.stderr


def test_process_sigterm_finishes_in_flight_and_exits_zero(own: LocalServer, sample: dict[str, Any]) -> None:
    rows = [{"token_ids": sample["ids"][0].tolist(), "token_weights": sample["weights"][0].tolist()}]
    results: list[int] = []

    def hammer() -> None:
        with httpx.Client(base_url=own.rest_url, timeout=30) as c:
            for _ in range(200):
                try:
                    results.append(c.post("/v1/models/news:predict", json={"instances": rows}).status_code)
                except httpx.HTTPError:
                    return  # the server has closed its port: expected after SIGTERM

    th = threading.Thread(target=hammer)
    th.start()
    while len(results) < 5 and th.is_alive():
        time.sleep(0.01)
    rc = own.stop(timeout=30)
    th.join(30)
    assert rc == 0, own.log()[-3000:]
    assert results and set(results) == {200}, results[-10:]
    assert "Server stopped" in own.log()
