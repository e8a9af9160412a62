"""The try-it page at ``/``, driven in headless Chromium with outside network blocked."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.browser.cdp import Browser
from tests.browser.conftest import ARTIFACTS, live_sidecar

SPORT = (
    "The striker scored twice and the team won the cup final after extra time at the stadium. "
    "The coach praised the players and the fans celebrated the championship."
)


def _classify_in_page(browser: Browser, text: str, min_confidence: str = "") -> dict[str, object]:
    browser.wait_for("document.getElementById('model').textContent.includes('version')", what="model info")
    browser.eval(
        f"document.getElementById('text').value = {json.dumps(text)};"
        f"document.getElementById('minconf').value = {json.dumps(min_confidence)};"
        "document.getElementById('go').click(); true"
    )
    browser.wait_for(
        "!document.getElementById('result').hidden || document.getElementById('error').textContent",
        what="the answer",
    )
    state: dict[str, object] = browser.eval(
        """({
          error: document.getElementById('error').textContent,
          verdict: document.getElementById('verdict').textContent,
          detail: document.getElementById('verdict-detail').textContent,
          bars: [...document.querySelectorAll('#bars .bar')]
            .map(b => [b.getAttribute('aria-label'), Number(b.getAttribute('aria-valuenow'))]),
          marks: [...document.querySelectorAll('#highlighted mark')]
            .map(m => [m.textContent, Number(m.dataset.contribution)]),
          highlighted: document.getElementById('highlighted').textContent,
          terms: document.querySelectorAll('#terms tbody tr').length,
        })"""
    )
    return state


def test_page_shows_label_bars_and_highlighted_terms(model_base: Path, browser: Browser) -> None:
    with live_sidecar(model_base) as url:
        api = httpx.post(
            f"{url}/v1/classify", json={"text": SPORT, "return_probabilities": True}, timeout=60
        ).json()
        browser.goto(f"{url}/")
        state = _classify_in_page(browser, SPORT)
        shot = browser.screenshot(ARTIFACTS / "try-page.png")
    expected = api["predictions"][0]
    assert state["error"] == ""
    assert state["verdict"] == expected["label"] == "sports"
    bars = dict(state["bars"])  # type: ignore[arg-type]
    assert set(bars) == set(expected["probabilities"])
    for label, p in expected["probabilities"].items():
        assert abs(bars[label] - p) < 1e-3
    marks = state["marks"]
    assert marks and any(c > 0 for _, c in marks)  # type: ignore[union-attr]
    assert state["highlighted"] == SPORT  # highlighting wraps the text, never changes it
    assert state["terms"] > 0
    assert not browser.outside_requests(), browser.outside_requests()
    assert shot.read_bytes()[:4] == b"\x89PNG"  # kept under out/browser/; the README shows a copy


def test_page_shows_abstain_when_below_the_bar(model_base: Path, browser: Browser) -> None:
    with live_sidecar(model_base) as url:
        browser.goto(f"{url}/")
        state = _classify_in_page(browser, SPORT, min_confidence="1")
    assert state["error"] == ""
    assert "abstained" in str(state["verdict"]) and "below the confidence threshold" in str(state["detail"])


def test_page_is_behind_the_api_key_and_works_with_it(model_base: Path, browser: Browser) -> None:
    with live_sidecar(model_base, api_keys="s3cret-key") as url:
        r = httpx.get(f"{url}/", timeout=60)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        assert httpx.get(f"{url}/", auth=("anyone", "wrong"), timeout=60).status_code == 401
        assert httpx.get(f"{url}/", auth=("anyone", "s3cret-key"), timeout=60).status_code == 200
        browser.use_basic_auth("me", "s3cret-key")
        browser.goto(f"{url}/")
        state = _classify_in_page(browser, SPORT)
    assert state["error"] == "" and state["verdict"] == "sports"


def test_page_can_be_switched_off(model_base: Path) -> None:
    with live_sidecar(model_base, page_enabled=False) as url:
        # httpx's default 5 s timeout is too short for a first request on a loaded 2-core machine
        assert httpx.get(f"{url}/", timeout=60).status_code == 404
        assert httpx.post(f"{url}/v1/classify", json={"text": SPORT}, timeout=60).status_code == 200
