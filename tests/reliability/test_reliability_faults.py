"""Faults, over real processes on 127.0.0.1: the model server absent, killed, slow; versions written,
corrupted and deleted under load; SIGTERM under load. Every load is bounded in time and request count."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from rel_support import (
    MODEL,
    PROBES,
    REFUSED,
    RESET,
    TIMEOUT,
    Load,
    SlowProxy,
    Stack,
    classify_body,
    free_port,
    http_request,
    poll,
    proc_stats,
    server_states,
    summarize,
    wait_available,
)

from contracts import modeldir

CLASSIFY = [http_request("/v1/classify", classify_body(i)) for i in range(len(PROBES))]


def _post(port: int, timeout: float = 10) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{port}/v1/classify", json={"text": PROBES[0]}, timeout=timeout)


def test_fault_server_absent_at_start_503_then_ready_by_itself(
    stack: Stack, v1_dir: Path, figures: dict[str, Any]
) -> None:
    stack.publish(v1_dir, 1)
    grpc_port, rest_port = free_port(), free_port()
    sidecar = stack.sidecar(None, ready=False, rest_port=str(rest_port), grpc_port=str(grpc_port))
    port = sidecar.ports["http"]
    statuses = []
    for _ in range(10):
        r = httpx.get(f"{sidecar.url()}/readyz", timeout=5)
        assert r.status_code == 503 and r.headers["retry-after"], r.text
        c = _post(port)
        statuses.append(c.status_code)
        assert c.status_code == 503, c.text
        assert int(c.headers["retry-after"]) >= 1
        assert c.json()["error"]["code"] == "not_ready"
        assert httpx.get(f"{sidecar.url()}/healthz", timeout=5).status_code == 200
        time.sleep(0.1)
    figures["faults"] += 1
    figures["requests"] += 30
    server = stack.server(grpc_port=grpc_port, rest_port=rest_port, wait_version=None)
    t_back = wait_available(server, MODEL, 1)
    assert poll(lambda: httpx.get(f"{sidecar.url()}/readyz", timeout=5).status_code == 200, 10)
    ready_after = time.monotonic() - t_back
    r = _post(port)
    assert r.status_code == 200 and r.json()["model"]["version"] == 1
    assert sidecar.popen.poll() is None, "the sidecar must not have exited"
    figures["details"] = {"ready_after_server_available_s": round(ready_after, 2)}
    assert ready_after < 5, stack.logs_text()


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_fault_server_killed_under_load_only_503_recovers_within_5s(
    stack: Stack, v1_dir: Path, transport: str, figures: dict[str, Any]
) -> None:
    stack.publish(v1_dir, 1)
    server = stack.server()
    grpc_port, rest_port = server.ports["grpc"], server.ports["http"]
    sidecar = stack.sidecar(server, transport=transport, upstream_timeout_s="2")
    pid = sidecar.popen.pid
    load = Load(
        sidecar.ports["http"], CLASSIFY, concurrency=8, duration_s=90, max_requests=200_000, timeout_s=10
    ).start()
    try:
        time.sleep(2)
        server.popen.send_signal(signal.SIGKILL)
        server.popen.wait(10)
        t_kill = time.monotonic()
        figures["faults"] += 1
        time.sleep(2)  # clients hammer a sidecar whose model server is gone
        server2 = stack.server(grpc_port=grpc_port, rest_port=rest_port, wait_version=None)
        t_back = wait_available(server2, MODEL, 1)
        ok_after = poll(lambda: any(r.status == 200 and r.t0 > t_back for r in load.results), 10, 0.02)
        time.sleep(3)  # and it stays recovered
    finally:
        load.stop()
        results = load.join()
    assert ok_after, "no successful request after the model server came back:\n" + stack.logs_text()
    first_ok = min(r.t1 for r in results if r.status == 200 and r.t0 > t_back)
    recovery = first_ok - t_back
    bad = [r for r in results if r.status not in (200, 503)]
    missing_retry = [r for r in results if r.status == 503 and "retry-after" not in r.headers]
    after = [r for r in results if r.t0 > first_ok + 0.5]
    figures["requests"] += len(results)
    figures["failures"] += len(bad) + len(missing_retry)
    figures["details"] = {
        "transport": transport,
        "outage_s": round(t_back - t_kill, 1),
        "recovery_s": round(recovery, 2),
        **summarize(results),
    }
    assert not bad, f"statuses other than 200/503: {summarize(bad)}\n{stack.logs_text()}"
    assert not missing_retry, "503 without Retry-After"
    assert any(r.status == 503 for r in results), "the outage was not seen at all"
    assert recovery <= 5.0, f"recovered {recovery:.2f}s after the server's return\n{stack.logs_text()}"
    assert after and all(r.status == 200 for r in after), summarize(after)
    assert max(r.latency for r in results) < 2 + 3, "a request hung past the upstream deadline"
    assert sidecar.popen.poll() is None and sidecar.popen.pid == pid, "the sidecar restarted"


def test_fault_server_slow_504_at_deadline_no_leaks(
    stack: Stack, v1_dir: Path, figures: dict[str, Any]
) -> None:
    stack.publish(v1_dir, 1)
    server = stack.server()
    proxy = SlowProxy(server.ports["http"]).start()
    try:
        deadline_s = 1.0
        sidecar = stack.sidecar(server, rest_port=str(proxy.port), upstream_timeout_s=str(deadline_s))
        port, pid = sidecar.ports["http"], sidecar.popen.pid
        with Load(port, CLASSIFY, concurrency=16, duration_s=20, max_requests=300) as warm:
            pass
        assert all(r.status == 200 for r in warm.results), summarize(warm.results)
        figures["requests"] += len(warm.results)
        samples = []
        all_slow = []
        for wave, (delay, drip) in enumerate([(3.0, 0.0), (0.0, 0.3)] * 3):
            proxy.delay_s, proxy.drip_s = delay, drip
            figures["faults"] += 1
            with Load(port, CLASSIFY, concurrency=24, duration_s=30, max_requests=24, timeout_s=10) as slow:
                pass
            proxy.delay_s = proxy.drip_s = 0.0
            all_slow += slow.results
            # back to normal: the sidecar answers again, and its resources are what they were
            with Load(port, CLASSIFY, concurrency=8, duration_s=20, max_requests=200) as normal:
                pass
            figures["requests"] += len(slow.results) + len(normal.results)
            assert all(r.status == 200 for r in normal.results), (wave, summarize(normal.results))
            time.sleep(0.5)
            samples.append({**proc_stats(pid), "proxy_open": proxy.open_connections})
    finally:
        proxy.close()
    wrong = [r for r in all_slow if r.status != 504]
    late = [r for r in all_slow if not deadline_s - 0.05 <= r.latency <= deadline_s + 1.0]
    figures["failures"] += len(wrong) + len(late)
    figures["details"] = {"deadline_s": deadline_s, "slow": summarize(all_slow), "resources": samples}
    assert not wrong, f"slow upstream gave {summarize(wrong)}\n{stack.logs_text()}"
    assert not late, f"504 not at the deadline: {sorted(round(r.latency, 2) for r in late)[:10]}"
    # the first waves may grow pools (anyio's worker threads, up to 40; httpx's connections, up to 64);
    # after that, more slow waves must not add anything
    first, last = samples[1], samples[-1]
    assert last["threads"] <= first["threads"] + 2 and last["threads"] <= 8 + 40 + 4, samples
    assert last["fds"] <= first["fds"] + 8, samples
    assert last["proxy_open"] <= 64 and last["proxy_open"] <= first["proxy_open"] + 8, samples
    assert last["rss_kib"] <= first["rss_kib"] * 1.10, samples


def _check_versions(results: list[Any], versions: dict[int, dict[str, Any]]) -> list[str]:
    problems = []
    for r in results:
        if r.status != 200:
            problems.append(f"status {r.status}: {r.body[:200]!r}")
            continue
        doc = json.loads(r.body)
        v = doc["model"]["version"]
        (pred,) = doc["predictions"]
        probs = pred["probabilities"]
        info = versions.get(v)
        if info is None or list(probs) != info["labels"]:
            problems.append(f"version {v} answered with labels {list(probs)}")
            continue
        expected = info["probs"][r.tag]
        got = np.asarray([probs[label] for label in info["labels"]])
        if float(np.abs(got - expected).max()) > 1e-4:
            problems.append(f"version {v}: probabilities {got} differ from that version's own {expected}")
    return problems


def test_rollout_new_version_under_load_no_failure_no_mixed_versions(
    stack: Stack, v1_dir: Path, v2_dir: Path, versions: dict[int, dict[str, Any]], figures: dict[str, Any]
) -> None:
    stack.publish(v1_dir, 1)
    server = stack.server()
    sidecar = stack.sidecar(server)
    load = Load(
        sidecar.ports["http"], CLASSIFY, concurrency=12, duration_s=90, max_requests=100_000, keep_bodies=True
    ).start()
    try:
        time.sleep(2)
        stack.publish(v2_dir, 2)
        figures["faults"] += 1
        t_pub = time.monotonic()
        switched = poll(lambda: any(r.status == 200 and b'"version":2' in r.body for r in load.results), 60)
        time.sleep(2)
    finally:
        load.stop()
        results = load.join()
    assert switched, "version 2 never answered:\n" + stack.logs_text()
    problems = _check_versions(results, versions)
    v2_first = min(r.t1 for r in results if b'"version":2' in r.body)
    stale = [r for r in results if r.t0 > v2_first + 0.5 and b'"version":1' in r.body]
    figures["requests"] += len(results)
    figures["failures"] += len(problems) + len(stale)
    seen = sorted({json.loads(r.body)["model"]["version"] for r in results if r.status == 200})
    figures["details"] = {
        "versions_seen": seen,
        "switch_after_publish_s": round(v2_first - t_pub, 2),
        **summarize(results),
    }
    assert not problems, f"{len(problems)} bad responses, e.g. {problems[:5]}"
    assert seen == [1, 2]
    assert not stale, "version 1 still answered after the switch"
    info = httpx.get(f"{sidecar.url()}/v1/model", timeout=5).json()
    assert info["version"] == 2 and info["vectorizer_fingerprint"] == versions[2]["fingerprint"]
    assert server_states(server, MODEL).get(1) == "AVAILABLE", "TF Serving keeps the previous version loaded"


def test_fault_corrupt_half_written_deleted_versions_skipped(
    stack: Stack, v1_dir: Path, versions: dict[int, dict[str, Any]], figures: dict[str, Any]
) -> None:
    stack.publish(v1_dir, 1)
    server = stack.server()
    sidecar = stack.sidecar(server)
    base = stack.model_dir
    has = lambda v: f'"version":{v}'.encode()  # noqa: E731
    load = Load(
        sidecar.ports["http"], CLASSIFY, concurrency=6, duration_s=90, max_requests=100_000, keep_bodies=True
    ).start()
    try:
        time.sleep(1)
        # 2: a valid SavedModel whose vectorizer.json was edited (its fingerprint no longer matches)
        vpath = stack.publish(v1_dir, 2) / modeldir.VECTORIZER
        vpath.write_bytes(vpath.read_bytes().replace(b'"idf":[', b'"idf":[9.5,', 1))
        # 3: half-written in place (no rename): a truncated saved_model.pb and nothing else
        (base / "3").mkdir()
        (base / "3" / "saved_model.pb").write_bytes((v1_dir / "saved_model.pb").read_bytes()[:100])
        # 4: an empty directory
        (base / "4").mkdir()
        # 5: a copy cut short: truncated variables and garbage labels.json
        five = stack.publish(v1_dir, 5)
        data = next((five / "variables").glob("variables.data-*"))
        data.write_bytes(data.read_bytes()[:1000])
        (five / modeldir.LABELS).write_bytes(b"\x00\xff not json")
        figures["faults"] += 4
        time.sleep(4)  # many polls of both the model server and the sidecar
        t_clean = time.monotonic()
        for v in (2, 3, 4, 5):
            shutil.rmtree(base / str(v))
        figures["faults"] += 4
        time.sleep(1.5)
        # 6: a good version appears and is served; then its directory is deleted (a rollback by delete)
        stack.publish(v1_dir, 6)
        assert poll(lambda: any(has(6) in r.body for r in load.results), 60), stack.logs_text()
        time.sleep(1)
        t_del = time.monotonic()
        shutil.rmtree(base / "6")
        figures["faults"] += 1
        back = poll(lambda: any(has(1) in r.body and r.t0 > t_del for r in load.results), 30, 0.02)
        t_back = min((r.t1 for r in load.results if has(1) in r.body and r.t0 > t_del), default=0.0)
        time.sleep(2)
    finally:
        load.stop()
        results = load.join()
    assert back, "the sidecar did not fall back to the good version:\n" + stack.logs_text()
    vmap = {1: versions[1], 6: versions[1]}
    before_delete = [r for r in results if r.t1 < t_del]
    window = [r for r in results if t_del <= r.t1 and r.t0 <= t_back]
    after = [r for r in results if r.t0 > t_back]
    problems = _check_versions(before_delete, vmap) + _check_versions(after, vmap)
    window_bad = [r for r in window if r.status not in (200, 503)]
    bad_served = [r for r in results if any(has(v) in r.body for v in (2, 3, 4, 5))]
    figures["requests"] += len(results)
    figures["failures"] += len(problems) + len(window_bad) + len(bad_served)
    log = (stack.logs / f"{sidecar.name}.log").read_text()
    skipped = [json.loads(line) for line in log.splitlines() if "skipping model version" in line]
    figures["details"] = {
        "broken_versions_phase": summarize([r for r in results if r.t1 < t_clean]),
        "fallback_after_delete_s": round(t_back - t_del, 2),
        "503_after_delete": sum(1 for r in window if r.status == 503),
        **summarize(results),
    }
    assert not problems, problems[:5]
    assert not window_bad, summarize(window_bad)
    assert not bad_served
    # 4 has no saved_model.pb, so the sidecar does not consider it (as TF Serving's loader fails on it)
    assert sorted(rec["version"] for rec in skipped) == [2, 3, 5], "each broken version logged once: " + str(
        [rec["message"][:120] for rec in skipped]
    )
    assert t_back - t_del < 5
    server_log = server.log_path.read_text()
    for v in (3, 4, 5):
        assert f"{{name: news version: {v}}} failed" in server_log, v
    assert server_states(server, MODEL).get(1) == "AVAILABLE"


def _attempt(port: int) -> str:
    """A new client during shutdown: 'refused' (clean), the status of a full answer, or what broke."""
    try:
        return str(_post(port, timeout=5).status_code)
    except httpx.ConnectError:
        return "refused"
    except httpx.HTTPError as exc:
        return type(exc).__name__


def test_fault_sigterm_under_load_drains_in_flight_refuses_new(
    stack: Stack, v1_dir: Path, figures: dict[str, Any]
) -> None:
    stack.publish(v1_dir, 1)
    server = stack.server()
    proxy = SlowProxy(server.ports["http"]).start()
    try:
        sidecar = stack.sidecar(
            server, rest_port=str(proxy.port), shutdown_grace_s="10", upstream_timeout_s="5"
        )
        port = sidecar.ports["http"]
        proxy.delay_s = 1.5  # every request is in flight for 1.5 s
        in_flight = Load(port, CLASSIFY, concurrency=32, duration_s=30, max_requests=32, timeout_s=15).start()
        assert poll(lambda: proxy.open_connections > 0, 5)
        time.sleep(0.5)
        t_term = time.monotonic()
        sidecar.popen.send_signal(signal.SIGTERM)
        figures["faults"] += 1
        time.sleep(0.3)  # uvicorn looks at its exit flag every 0.1 s
        attempts = []
        while sidecar.popen.poll() is None and time.monotonic() - t_term < 12:
            attempts.append(_attempt(port))
            time.sleep(0.1)
        results = in_flight.join()
        rc = sidecar.popen.wait(15)
        exited_after = time.monotonic() - t_term
    finally:
        proxy.close()
    figures["requests"] += len(results) + len(attempts)
    bad = [r for r in results if r.status != 200]
    figures["failures"] += len(bad) + attempts.count("timeout") + attempts.count("accepted")
    figures["details"] = {
        "in_flight": len(results),
        "new_connection_attempts": len(attempts),
        "refused": attempts.count("refused"),
        "exit_code": rc,
        "exited_after_s": round(exited_after, 2),
    }
    assert len(results) == 32
    assert not bad, f"in-flight requests broken by SIGTERM: {summarize(bad)}\n{stack.logs_text()}"
    assert len(attempts) >= 5 and set(attempts) == {"refused"}, attempts
    # uvicorn re-raises the signal after a clean shutdown, so the exit status is "killed by SIGTERM"
    assert rc in (0, -signal.SIGTERM), stack.logs_text()
    assert "Finished server process" in sidecar.log_tail(20) or "sidecar stopped" in sidecar.log_tail(20)
    assert exited_after < 10
    assert REFUSED not in {r.status for r in results} and RESET not in {r.status for r in results}
    assert TIMEOUT not in {r.status for r in results}
