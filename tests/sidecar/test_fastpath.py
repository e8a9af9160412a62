"""The fast ``/v1/classify`` path (preprocess_service.fastpath) answers exactly as the FastAPI route does.

Every request below goes to two apps over the same model: one with the fast path (the default), one with
``SIDECAR_FAST_PATH=false``. Status, body (request ids aside) and the headers a client reads must be
equal, and the fast path must have answered the well-formed ones itself (else this would compare the
route with itself)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from preprocess_service import fastpath
from preprocess_service.config import Settings
from preprocess_service.errors import UpstreamTimeout
from preprocess_service.main import create_app
from tests.sidecar.doubles import SavedModelUpstream

SPORT = "The striker scored twice and the team won the cup final after extra time at the stadium."
MONEY = "Shares fell after the bank cut its profit forecast for the year."
KEY = "fast-path-test-key"


@pytest.fixture
def model_base(tmp_path: Path, exported_models: Path) -> Path:
    shutil.copytree(exported_models / "news" / "1", tmp_path / "news" / "1")
    return tmp_path


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the fast path answered each request it was offered (False: it passed it to the route)."""
    seen: list[bool] = []
    answer = fastpath.FastClassify._answer

    async def spy(self: fastpath.FastClassify, *args: Any) -> bool:
        result = await answer(self, *args)
        seen.append(result)
        return result

    monkeypatch.setattr(fastpath.FastClassify, "_answer", spy)
    return seen


@pytest.fixture
def clients(model_base: Path) -> Iterator[tuple[TestClient, TestClient]]:
    def make(fast: bool) -> TestClient:
        settings = Settings(  # type: ignore[call-arg]
            model_base_path=model_base, model_name="news", version_poll_s=0.1, fast_path=fast, api_keys=KEY
        )
        return TestClient(create_app(settings, upstream=SavedModelUpstream(model_base / "news")))

    with make(True) as fast, make(False) as route:
        yield fast, route


AUTH = {"authorization": f"Bearer {KEY}"}
WELL_FORMED: list[dict[str, Any]] = [
    {"text": SPORT},
    {"texts": [SPORT, MONEY], "return_probabilities": True},
    {"text": SPORT, "top_k": 3, "min_confidence": 0.99},
    {"text": MONEY, "explain": True},
    {"texts": [SPORT], "min_confidence": 0.0, "top_k": 1},
]
REFUSED: list[tuple[bytes, dict[str, str]]] = [
    (b'{"text": "x"', {"content-type": "application/json"} | AUTH),  # not JSON
    (b'{"text": "x", "extra": 1}', AUTH),  # unknown field
    (b'{"text": "x", "texts": ["y"]}', AUTH),  # both
    (b'{"text": "   "}', AUTH),  # only whitespace
    (b'{"text": "a\\u0000b"}', AUTH),  # NUL
    (b'{"texts": []}', AUTH),
    (b'{"text": "x", "top_k": 99}', AUTH),  # more than the labels
    (b'{"text": 12}', AUTH),
    (b'{"text": "x", "score": NaN}', AUTH),  # json.loads takes NaN, orjson does not
    (b'{"text": "\\ud800 lone surrogate"}', AUTH),
    (b"\xff\xfe not UTF-8", AUTH),
    (b"null", AUTH),
    (b'{"text": "x"}', {}),  # no key
    (b'{"text": "x"}', {"authorization": "Bearer wrong"}),
    (b'{"text": "x"}', {"content-type": "text/plain"} | AUTH),
]


def _same(fast: Any, route: Any) -> None:
    assert fast.status_code == route.status_code, (fast.text, route.text)
    fb, rb = fast.json(), route.json()
    for body in (fb, rb):
        if "error" in body:
            body["error"].pop("request_id")
    assert fb == rb
    for header in ("content-type", "x-model-version", "x-model-role", "www-authenticate"):
        assert fast.headers.get(header) == route.headers.get(header), header
    assert fast.headers["x-request-id"]


@pytest.mark.parametrize("payload", WELL_FORMED)
def test_well_formed_requests_are_answered_by_the_fast_path_as_by_the_route(
    clients: tuple[TestClient, TestClient], taken: list[bool], payload: dict[str, Any]
) -> None:
    fast, route = clients
    a, b = (
        fast.post("/v1/classify", json=payload, headers=AUTH),
        route.post("/v1/classify", json=payload, headers=AUTH),
    )
    assert a.status_code == 200
    _same(a, b)
    assert taken == [True]
    assert int(a.headers["content-length"]) == len(a.content)


@pytest.mark.parametrize(("body", "headers"), REFUSED)
def test_refused_requests_get_the_routes_answer(
    clients: tuple[TestClient, TestClient], taken: list[bool], body: bytes, headers: dict[str, str]
) -> None:
    fast, route = clients
    a = fast.post("/v1/classify", content=body, headers=headers)
    b = route.post("/v1/classify", content=body, headers=headers)
    assert a.status_code in (401, 422), a.text
    _same(a, b)
    assert taken == [False]


def test_a_model_server_error_is_mapped_as_the_route_maps_it(
    clients: tuple[TestClient, TestClient], taken: list[bool]
) -> None:
    fast, route = clients
    for c in clients:
        c.app.state.upstream.fail = UpstreamTimeout("TF Serving did not answer within 5.0s")  # type: ignore[attr-defined]
    a = fast.post("/v1/classify", json={"text": SPORT}, headers=AUTH)
    b = route.post("/v1/classify", json={"text": SPORT}, headers=AUTH)
    assert a.status_code == 504, a.text
    _same(a, b)
    assert taken == [True]


def test_metrics_and_the_access_log_name_the_route(
    clients: tuple[TestClient, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    fast, _ = clients
    with caplog.at_level("INFO", logger="preprocess_service.access"):
        assert fast.post("/v1/classify", json={"texts": [SPORT, MONEY]}, headers=AUTH).status_code == 200
    (record,) = [r for r in caplog.records if r.getMessage() == "request"]
    assert record.path == "/v1/classify" and record.status == 200 and record.texts == 2  # type: ignore[attr-defined]
    metrics = fast.get("/metrics").text
    assert 'sidecar_requests_total{method="POST",route="/v1/classify",status="200"} 1.0' in metrics


def test_an_unexpected_error_gets_the_server_error_handlers_answer_with_its_request_id(
    model_base: Path, taken: list[bool], caplog: pytest.LogCaptureFixture
) -> None:
    """The fast path sits in front of FastAPI's server-error layer (preprocess_service.front), so it
    calls the app's handler itself: the same 500 body as the route's, the request id in the body, the
    header and the log line, the 500 counted, and the next request served."""

    def make(fast: bool) -> TestClient:
        settings = Settings(  # type: ignore[call-arg]
            model_base_path=model_base, model_name="news", version_poll_s=0.1, fast_path=fast
        )
        app = create_app(settings, upstream=SavedModelUpstream(model_base / "news"))
        return TestClient(app, raise_server_exceptions=False)

    with make(True) as fast, make(False) as route, caplog.at_level("ERROR", logger="preprocess_service"):
        for c in (fast, route):
            c.app.state.upstream.fail = RuntimeError("a bug, not a typed error")  # type: ignore[attr-defined]
            r = c.post("/v1/classify", json={"text": SPORT}, headers={"x-request-id": "rid-500-check"})
            assert r.status_code == 500, r.text
            assert r.json() == {
                "error": {
                    "code": "internal",
                    "message": "internal error; see the server log",
                    "request_id": "rid-500-check",
                }
            }
            assert r.headers["x-request-id"] == "rid-500-check"
            metrics = c.get("/metrics").text
            assert 'sidecar_requests_total{method="POST",route="/v1/classify",status="500"} 1.0' in metrics
            c.app.state.upstream.fail = None  # type: ignore[attr-defined]
            assert c.post("/v1/classify", json={"text": SPORT}).status_code == 200
    # the fast path's failing request raised out of _answer (so the spy saw no result); the next it answered
    assert taken == [True]
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert [getattr(r, "request_id", None) for r in logged] == ["rid-500-check", "rid-500-check"]
