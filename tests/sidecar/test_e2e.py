"""End to end over real processes on 127.0.0.1: the local model server and the sidecar under uvicorn."""

from __future__ import annotations

import contextlib
import csv
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack import Proc, free_port, start_model_server, start_sidecar, wait_http
from preprocess_service.config import Settings

SPORT = "The striker scored twice and the team won the cup final after extra time at the stadium."
NEWS_LABELS = {"business", "entertainment", "politics", "sports", "tech"}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, exported_models: Path
) -> Iterator[tuple[Path, Proc, Proc]]:
    base = tmp_path_factory.mktemp("e2e_models")
    shutil.copytree(exported_models / "news" / "1", base / "news" / "1")
    logs = tmp_path_factory.mktemp("e2e_logs")
    server = start_model_server(base / "news", "news", logs, "--log_level", "debug")
    sidecar = start_sidecar(base, "news", server, logs, upstream_timeout_s="1.5")
    try:
        wait_http(sidecar, "/readyz")
        yield base, server, sidecar
    finally:
        sidecar.stop()
        server.stop()


@contextlib.contextmanager
def sidecar_speaking(transport: str, stack: tuple[Path, Proc, Proc], tmp_path: Path) -> Iterator[Proc]:
    """The module's REST sidecar, or a second sidecar on the same model server speaking gRPC."""
    base, server, sidecar = stack
    if transport == "grpc":
        sidecar = start_sidecar(base, "news", server, tmp_path, transport="grpc")
    try:
        wait_http(sidecar, "/readyz")
        yield sidecar
    finally:
        if transport == "grpc":
            sidecar.stop()


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_e2e_classify_through_each_transport(
    stack: tuple[Path, Proc, Proc], tmp_path: Path, transport: str
) -> None:
    with sidecar_speaking(transport, stack, tmp_path) as sidecar:
        one = httpx.post(sidecar.url() + "/v1/classify", json={"text": SPORT}, timeout=10)
        assert one.status_code == 200, one.text
        assert one.json()["predictions"][0]["label"] == "sports" and one.json()["model"]["version"] == 1
        batch = httpx.post(
            sidecar.url() + "/v1/classify",
            timeout=10,
            json={
                "texts": [SPORT, "Shares fell as the bank cut its profit forecast for the year."],
                "return_probabilities": True,
            },
        )
        assert [p["label"] for p in batch.json()["predictions"]] == ["sports", "business"]
        legacy = httpx.post(sidecar.url() + "/classify", json={"text": SPORT}, timeout=10)
        assert legacy.json()["label"] == "sports"


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_e2e_request_id_reaches_the_model_server_log(
    stack: tuple[Path, Proc, Proc], tmp_path: Path, transport: str
) -> None:
    server = stack[1]
    rid = f"trace-{transport}-{time.monotonic_ns()}"
    with sidecar_speaking(transport, stack, tmp_path) as sidecar:
        r = httpx.post(sidecar.url() + "/v1/classify", json={"text": SPORT}, headers={"X-Request-ID": rid})
        assert r.status_code == 200 and r.headers["x-request-id"] == rid, r.text
        deadline = time.monotonic() + 10
        while rid not in server.log_tail(400) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"predict news: OK (request id {rid})" in server.log_tail(400), server.log_tail(20)


def test_e2e_client_errors_have_their_status(stack: tuple[Path, Proc, Proc]) -> None:
    url = stack[2].url()
    assert httpx.post(url + "/v1/classify", json={"text": " "}).status_code == 422
    assert (
        httpx.post(
            url + "/v1/classify", content=b"{oops", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    assert httpx.post(url + "/v1/classify", json={"texts": ["a"] * 1000}).status_code == 422
    big = httpx.post(
        url + "/v1/classify",
        content=b"[" * (Settings.model_fields["max_body_bytes"].default + 1),
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413
    assert httpx.get(url + "/healthz").status_code == 200


def test_e2e_paused_model_server_gives_504_then_recovers(stack: tuple[Path, Proc, Proc]) -> None:
    _, server, sidecar = stack
    server.popen.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = httpx.post(sidecar.url() + "/v1/classify", json={"text": SPORT}, timeout=10)
        assert r.status_code == 504, r.text
        assert 1.0 < time.monotonic() - t0 < 5
    finally:
        server.popen.send_signal(signal.SIGCONT)
    wait_http(sidecar, "/readyz", timeout=15)
    assert httpx.post(sidecar.url() + "/v1/classify", json={"text": SPORT}).status_code == 200


def test_e2e_readiness_follows_model_server(tmp_path: Path, exported_models: Path) -> None:
    shutil.copytree(exported_models / "news" / "1", tmp_path / "m" / "news" / "1")
    grpc_port, rest_port = free_port(), free_port()
    sidecar = start_sidecar(tmp_path / "m", "news", None, tmp_path, rest_port=rest_port, grpc_port=grpc_port)
    server = None
    try:
        wait_http(sidecar, "/healthz")
        assert httpx.get(sidecar.url() + "/readyz").status_code == 503
        r = httpx.post(sidecar.url() + "/v1/classify", json={"text": SPORT})
        assert r.status_code == 503 and r.headers["retry-after"] and r.json()["error"]["code"] == "not_ready"
        server = start_model_server(
            tmp_path / "m" / "news", "news", tmp_path, grpc_port=grpc_port, rest_port=rest_port
        )
        wait_http(sidecar, "/readyz", timeout=60)
        assert httpx.post(sidecar.url() + "/v1/classify", json={"text": SPORT}).status_code == 200
    finally:
        sidecar.stop()
        if server:
            server.stop()


def _three_class_csv(src: Path, dst: Path) -> Path:
    keep = {"business", "sports", "tech"}
    with src.open(encoding="utf-8") as fin, dst.open("w", newline="", encoding="utf-8") as fout:
        rows = csv.reader(fin)
        w = csv.writer(fout)
        w.writerow(next(rows))
        w.writerows(r for r in rows if r[1] in keep)
    return dst


def test_e2e_new_version_under_traffic_never_mixes_versions(
    stack: tuple[Path, Proc, Proc], small_corpus_csv: Path, tmp_path: Path
) -> None:
    """Version 2 has other labels and another vocabulary: a response that mixed v1's vectorizer with
    v2's network (or the reverse) would fail or carry the wrong label set."""
    from training.model import TrainConfig
    from training.pipeline import RunConfig, run

    base, _, sidecar = stack
    results: list[tuple[int, int, set[str]]] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=sidecar.url(), timeout=15) as c:
            while not stop.is_set():
                r = c.post(
                    "/v1/classify",
                    json={"texts": [SPORT, "new phone software"], "return_probabilities": True},
                )
                body = r.json()
                version = body.get("model", {}).get("version", -1)
                labels = set(body["predictions"][0]["probabilities"]) if r.status_code == 200 else set()
                results.append((r.status_code, version, labels))

    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        run(
            RunConfig(
                dataset=str(_three_class_csv(small_corpus_csv, tmp_path / "three.csv")),
                model_name="news",
                out=base,
                version=2,
                train=TrainConfig(epochs=2),
            ),
            emit=lambda _l: None,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(v == 2 for _, v, _ in results):
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert results, "no traffic was sent"
    failures = [r for r in results if r[0] != 200]
    assert not failures, f"{len(failures)} of {len(results)} requests failed: {failures[:3]}"
    v1 = [labels for _, v, labels in results if v == 1]
    v2 = [labels for _, v, labels in results if v == 2]
    assert v1 and v2, f"expected answers from both versions, got v1={len(v1)} v2={len(v2)}"
    assert all(labels == NEWS_LABELS for labels in v1)
    assert all(labels == {"business", "sports", "tech"} for labels in v2)
    assert httpx.get(sidecar.url() + "/v1/model").json()["version"] == 2
