"""The benchmark's measuring parts on their own: /proc and socket-diagnostics readers, the load generator
against a tiny server, the dense export's equality with the sparse model, and the target arithmetic."""

from __future__ import annotations

import os
import re
import socket
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import procstat
from bench.runner import evaluate
from devstack import loadgen


def test_procstat_reads_own_cpu_and_memory() -> None:
    before = procstat.cpu_seconds(os.getpid())
    sum(i * i for i in range(300_000))
    assert procstat.cpu_seconds(os.getpid()) > before
    mem = procstat.memory_kb(os.getpid())
    assert mem["VmHWM"] >= mem["VmRSS"] > 1000


def test_procstat_counts_bytes_sent_to_a_port() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    try:
        before = procstat.bytes_sent_to([port])
        client.sendall(b"x" * 50_000)
        got = 0
        while got < 50_000:
            got += len(conn.recv(65536))
        after = procstat.bytes_sent_to([port])
        assert procstat.sent_delta(before, after) == 50_000
    finally:
        client.close()
        conn.close()
        server.close()


def _http_server(status: int) -> tuple[socket.socket, threading.Thread]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    def handle(conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
                    if len(rest) < length:
                        break
                    buf = rest[length:]
                    body = b'{"ok":true}'
                    conn.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize(("status", "ok"), [(200, True), (503, False)])
def test_loadgen_counts_answers_and_errors(status: int, ok: bool) -> None:
    server, _ = _http_server(status)
    port = server.getsockname()[1]
    try:
        reqs = loadgen.build_requests("127.0.0.1", port, "/x", [b'{"text":"a"}', b'{"text":"bb"}'])
        loop = loadgen.new_loop()
        try:
            r = loop.run_until_complete(loadgen.run_load("127.0.0.1", port, reqs, 3, 0.3))
        finally:
            loop.close()
    finally:
        server.close()
    assert r.requests > 3
    if ok:
        assert r.errors == 0 and r.latency_ms["p50"] > 0 and r.throughput_rps > 0
    else:
        assert r.errors == r.requests and r.first_error == "HTTP 503" and r.latency_ms == {}


def _result(side_rps: float, fair_rps: float, p99: float, side_cpu: float, healthz_p99: float) -> dict:
    def target(rps: float, nbytes: float, p99_ms: float, rss: float, cpu: float) -> dict:
        runs = [
            {"concurrency": c, "throughput_rps": rps, "latency_ms": {"p99": p99_ms},
             "bytes_to_model_server_per_doc": nbytes, "front_cpu_ms_per_request": cpu}
            for c in (1, 32)
        ]  # fmt: skip
        return {"runs": runs, "peak_rss_mb": rss}

    inproc = target(1000.0, 0.0, 20.0, 800.0, 0.0)
    for run in inproc["runs"]:
        run["cpu_ms_per_request"] = 0.3
    return {
        "settings": {"sidecar_default_transport": "rest", "concurrency": [1, 32]},
        "vectorize_one_doc": {"us_best": 100.0},
        "sklearn_transform_one_doc": {"us_best": 1600.0},
        "healthz_during_flood": {"healthz": {"latency_ms": {"p99": healthz_p99}}},
        "targets": {
            "inproc": inproc,
            "dense_rest": target(100.0, 80_000, 900.0, 90.0, 2.0),
            "dense_rest_batch": target(fair_rps, 80_000, 300.0, 90.0, 2.0),
            "sidecar_rest_batch": target(side_rps, 5000, p99, 85.0, side_cpu),
            "sidecar_grpc_batch": target(side_rps, 5000, p99, 120.0, side_cpu),
        },
    }


def test_evaluate_applies_each_target_limit() -> None:
    good = evaluate(_result(side_rps=600, fair_rps=150, p99=30, side_cpu=0.32, healthz_p99=10))
    assert good["default_configuration"] == "sidecar_rest_batch"
    assert {k: v["met"] for k, v in good.items() if isinstance(v, dict) and "met" in v} == {
        "cpu_per_request_c32_vs_inproc": True,
        "throughput_c32_vs_inproc": True,
        "throughput_c32_vs_fair_baseline": True,
        "p99_c32_vs_inproc": True,
        "vectorize_speedup_vs_sklearn": True,
        "payload_vs_dense": True,
        "sidecar_peak_rss_mb": True,
        "healthz_p99_ms_during_flood": True,
    }
    assert good["vectorize_speedup_vs_sklearn"]["value"] == 16.0
    assert good["peak_rss_mb_by_transport"] == {"sidecar_rest_batch": 85.0, "sidecar_grpc_batch": 120.0}
    assert good["throughput_c32_vs_unbatched_baseline"] == 6.0
    bad = evaluate(_result(side_rps=400, fair_rps=150, p99=41, side_cpu=0.6, healthz_p99=80))
    assert bad["throughput_c32_vs_inproc"] == {"value": 0.4, "limit": 0.5, "at_least": True, "met": False}
    assert bad["throughput_c32_vs_fair_baseline"]["value"] == 2.67
    assert bad["throughput_c32_vs_fair_baseline"]["met"] is False
    assert (
        bad["cpu_per_request_c32_vs_inproc"]["value"] == 2.0
        and not bad["cpu_per_request_c32_vs_inproc"]["met"]
    )
    assert bad["p99_c32_vs_inproc"]["met"] is False and bad["healthz_p99_ms_during_flood"]["met"] is False


# textvec compiles scikit-learn's default token pattern as \w\w+ for speed (bench found the regex was a
# quarter of the transform): the two must find the same tokens in any text.
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_fast_token_pattern_finds_the_same_tokens_as_sklearns(text: str) -> None:
    from textvec.vectorizer import _FAST_PATTERNS, DEFAULT_TOKEN_PATTERN

    fast = re.compile(_FAST_PATTERNS[DEFAULT_TOKEN_PATTERN])
    assert fast.findall(text) == re.findall(DEFAULT_TOKEN_PATTERN, text)
    assert fast.findall(text.lower()) == re.findall(DEFAULT_TOKEN_PATTERN, text.lower())


def test_loadgen_counts_timeouts_and_refusals() -> None:
    """The reliability suite's outcomes: a server that never answers is a client timeout at the deadline,
    a closed port is a refused connection; each request is recorded once, with what was sent."""
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        reqs = [loadgen.http_request("/x", b'{"text":"a"}'), loadgen.http_request("/x", b'{"text":"b"}')]
        with loadgen.Load(
            silent.getsockname()[1], reqs, concurrency=2, duration_s=3, max_requests=2, timeout_s=0.4
        ) as hung:
            pass
    finally:
        silent.close()
    assert [r.status for r in hung.results] == [loadgen.TIMEOUT, loadgen.TIMEOUT]
    assert sorted(r.tag for r in hung.results) == [0, 1]
    assert all(0.35 < r.latency < 2 for r in hung.results)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with loadgen.Load(port, reqs, concurrency=1, duration_s=2, max_requests=3) as refused:
        pass
    assert loadgen.summarize(refused.results)["by_status"] == {"connection refused": 3}


# textvec looks the default word analyzer's n-grams up as token tuples and tokenizes ASCII text with the
# ASCII pattern (bench found both cheaper): the ids must be those of the n-gram strings, in order.
_VOCAB = ("the", "cup", "the cup", "cup final", "final", "héllo", "héllo wörld", "wörld", "a1 b2", "b2")


@given(st.lists(st.sampled_from(["the", "cup", "final", "héllo", "wörld", "a1", "b2", "x", "!", " ", "\n"])))
def test_tuple_lookup_finds_the_ids_of_the_ngram_strings(words: list[str]) -> None:
    import numpy as np

    from textvec import Vectorizer

    vec = Vectorizer(analyzer="word", ngram_range=(1, 2), vocabulary=_VOCAB, idf=np.ones(len(_VOCAB)))
    text = " ".join(words).upper()
    expected = [vec._index.get(t, -1) for t in vec.terms(text)]
    assert vec._default_word_ids(text).tolist() == expected
