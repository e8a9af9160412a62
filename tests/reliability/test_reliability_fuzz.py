"""Bad input against the real sidecar process: schemathesis over its own /openapi.json (at least 1,000
generated cases, no 5xx, every response as its schema says) and a corpus of hostile requests sent as raw
bytes (invalid JSON, deep nesting, wrong types, NUL bytes, lone surrogates, 10,000 texts, bodies far over
the limit, slow clients)."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from rel_support import HOST, PROBES, Load, Proc, Stack, classify_body, http_request, summarize
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

from preprocess_service.config import Settings

MIN_CASES = 1_000
# generated examples per operation and mode; the GETs without parameters get a few positive ones
EXAMPLES = {"POST /v1/classify": 400, "POST /classify": 200}
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def sidecar(shared: tuple[Stack, Proc, Proc]) -> Proc:
    return shared[2]


# (schemathesis.pytest.from_fixture does not work with pytest 9, so the cases are driven from one test)
def _run_operation(op: Any, mode: GenerationMode, n: int, base_url: str, failed: list[str]) -> int:
    label = f"{op.method.upper()} {op.path} ({mode.value})"
    count = {"n": 0}

    @settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        count["n"] += 1
        try:
            case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=30)
        except Exception as exc:  # collect, so one run reports every distinct failure
            failed.append(f"{label}: {str(exc)[:400]}")

    run()
    return count["n"]


def test_fuzz_openapi_1000_cases_no_5xx_schema_conformant(sidecar: Proc, figures: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_url(f"{sidecar.url()}/openapi.json")
    cases: dict[str, int] = {}
    failed: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()
        label = f"{op.method.upper()} {op.path}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            n = EXAMPLES.get(label, 25)
            if mode is GenerationMode.NEGATIVE and not EXAMPLES.get(label):
                continue  # a GET without parameters has no negative input
            cases[f"{label} ({mode.value})"] = _run_operation(op, mode, n, sidecar.url(), failed)
    total = sum(cases.values())
    figures["cases"] += total
    figures["requests"] += total
    figures["failures"] += len(failed)
    figures["details"] = {"cases_per_operation": cases}
    assert total >= MIN_CASES, f"only {total} schemathesis cases ran: {cases}"
    assert {"POST /v1/classify (negative)", "POST /classify (positive)", "GET /v1/model (positive)"} <= set(
        cases
    )
    assert not failed, f"{len(failed)} failing cases, e.g.:\n" + "\n".join(sorted(set(failed))[:8])


# --- hostile corpus -------------------------------------------------------------------------------
def _raw(port: int, data: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one HTTP response (status, headers, body)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed without a response: {buf[:200]!r}")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(body) < n and (chunk := s.recv(65536)):
                body += chunk
            return status, headers, body
        while not body.endswith(b"0\r\n\r\n") and (chunk := s.recv(65536)):  # chunked, or until close
            body += chunk
        if headers.get("transfer-encoding") == "chunked":
            out, rest = b"", body
            while rest and (size := int(rest.split(b"\r\n", 1)[0], 16)):
                rest = rest.split(b"\r\n", 1)[1]
                out, rest = out + rest[:size], rest[size + 2 :]
            body = out
        return status, headers, body


def _nested(depth: int) -> bytes:
    return b'{"text": ' + b"[" * depth + b"]" * depth + b"}"


HOSTILE: list[tuple[str, bytes, set[int]]] = [
    ("invalid JSON", b'{"text": "unterminated', {422}),
    ("not JSON at all", b"\x00\x01\x02 binary", {422}),
    ("invalid UTF-8", b'{"text": "\xff\xfe\xfd"}', {422}),
    ("JSON array body", b'["a", "b"]', {422}),
    ("JSON null", b"null", {422}),
    ("deep nesting 100k", _nested(100_000), {422}),
    (
        "deep nesting in object",
        b'{"text": "a", "x": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}",
        {422},
    ),
    ("text is a number", b'{"text": 42}', {422}),
    ("text is an object", b'{"text": {"a": 1}}', {422}),
    ("texts is a string", b'{"texts": "abc"}', {422}),
    ("texts has null", b'{"texts": ["a", null]}', {422}),
    ("return_probabilities is a string", b'{"text": "a b", "return_probabilities": "yes please"}', {422}),
    ("huge number", b'{"text": 1' + b"0" * 5000 + b"}", {422}),
    ("NUL escaped", b'{"text": "a\\u0000b"}', {422}),
    ("NUL raw", b'{"text": "a\x00b"}', {422}),
    ("lone surrogate", b'{"text": "caf\\ud800 goal match"}', {200, 422}),
    ("lone low surrogate", b'{"texts": ["\\udfff", "goal team"]}', {200, 422}),
    ("10,000 texts", json.dumps({"texts": ["goal"] * 10_000}).encode(), {422}),
    ("empty texts", b'{"texts": []}', {422}),
    ("duplicate keys", b'{"text": "a", "text": "goal match"}', {200, 422}),
    ("unknown field", b'{"text": "goal", "__proto__": {"admin": true}}', {422}),
    ("control chars", json.dumps({"text": "".join(chr(i) for i in range(1, 32)) + " goal"}).encode(), {200}),
    ("RTL and zero-width", json.dumps({"text": "\u202egoal\u200b\u200d match \ufeff"}).encode(), {200}),
    ("max chars + 1", json.dumps({"text": "a" * 20_001}).encode(), {422}),
    ("legacy with texts", b'{"texts": ["a"]}', {422}),
]


@pytest.mark.parametrize(("name", "body", "allowed"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_request_refused_cleanly(
    sidecar: Proc, name: str, body: bytes, allowed: set[int], figures: dict[str, Any]
) -> None:
    port = sidecar.ports["http"]
    path = "/classify" if name.startswith("legacy") else "/v1/classify"
    status, headers, resp = _raw(port, http_request(path, body))
    figures["requests"] += 1
    figures["cases"] += 1
    ok = status in allowed
    figures["failures"] += 0 if ok else 1
    assert ok, f"{name}: {status} {resp[:300]!r}"
    doc = json.loads(resp)
    if status >= 400:
        assert set(doc) == {"error"} and {"code", "message", "request_id"} <= set(doc["error"]), doc
        assert "Traceback" not in resp.decode("utf-8", "replace")
        assert headers["content-type"].startswith("application/json")
    # and the process is still fine
    assert httpx.post(f"{sidecar.url()}/v1/classify", json={"text": PROBES[0]}, timeout=10).status_code == 200


def test_hostile_body_far_over_limit_refused_before_read(sidecar: Proc, figures: dict[str, Any]) -> None:
    """A declared 1 GiB body is refused from its headers; a chunked one is cut soon after the limit."""
    port = sidecar.ports["http"]
    head = (
        f"POST /v1/classify HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {1 << 30}\r\n\r\n"
    ).encode()
    t0 = time.monotonic()
    status, headers, body = _raw(port, head + b'{"text": "' + b"a" * 1000)
    assert status == 413 and json.loads(body)["error"]["code"] == "payload_too_large"
    assert headers.get("connection") == "close" and time.monotonic() - t0 < 2
    # chunked, no length: count what the server swallowed before it answered 413
    limit: int = Settings.model_fields["max_body_bytes"].default
    sent = 0
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.sendall(
            f"POST /v1/classify HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"a" * 65536
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        s.settimeout(0.2)
        answer = b""
        while sent < 64 * limit:  # bounded: 64 MiB at most
            try:
                s.sendall(framed)
                sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            try:
                got = s.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            answer += got
            if got:
                break
    figures["requests"] += 2
    figures["cases"] += 2
    figures["details"] = {"chunked_bytes_sent_before_refusal": sent, "limit": limit}
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent <= 4 * limit, f"the server read {sent} bytes of a body over {limit} before refusing it"


def test_hostile_slow_clients_bounded_others_served(sidecar: Proc, figures: dict[str, Any]) -> None:
    """20 clients send a request one byte a second (for 8 s each, bounded); meanwhile everyone else is
    served as usual, and the slow requests, once complete, get a proper answer."""
    port = sidecar.ports["http"]
    body = json.dumps({"text": "goal"}).encode()
    req = http_request("/v1/classify", body)
    n_slow, seconds = 20, 8
    statuses: list[int] = []

    def slow_client() -> None:
        with socket.create_connection((HOST, port), timeout=30) as s:
            prefix, rest = req[: len(req) - seconds], req[len(req) - seconds :]
            s.sendall(prefix)
            for i in range(len(rest)):
                time.sleep(1)
                s.sendall(rest[i : i + 1])
            s.settimeout(15)
            data = s.recv(65536)
            statuses.append(int(data.split()[1]) if data else -1)

    threads = [threading.Thread(target=slow_client, daemon=True) for _ in range(n_slow)]
    for t in threads:
        t.start()
    time.sleep(1)
    with Load(
        port,
        [http_request("/v1/classify", classify_body(i)) for i in range(4)],
        concurrency=4,
        duration_s=seconds - 2,
        max_requests=5_000,
    ) as load:
        pass
    for t in threads:
        t.join(30)
    others = load.results
    figures["requests"] += len(others) + n_slow
    figures["cases"] += n_slow
    bad = [r for r in others if r.status != 200]
    figures["failures"] += len(bad) + sum(1 for s in statuses if s != 200)
    figures["details"] = {"slow_clients": n_slow, "bytes_per_second": 1, "others": summarize(others)}
    assert not bad, summarize(bad)
    assert summarize(others)["latency_ms"]["p99"] < 1000, summarize(others)
    assert statuses == [200] * n_slow, statuses
