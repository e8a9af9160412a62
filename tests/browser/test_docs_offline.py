"""``/docs`` and ``/redoc`` render in headless Chromium with every outside host unresolvable: their
scripts and styles come from the sidecar itself, and no request leaves 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.browser.cdp import Browser
from tests.browser.conftest import ARTIFACTS, live_sidecar


def test_swagger_ui_renders_offline(model_base: Path, browser: Browser) -> None:
    with live_sidecar(model_base) as url:
        html = httpx.get(f"{url}/docs", timeout=60).text
        assert "cdn." not in html and "/docs-assets/swagger-ui-bundle.js" in html
        browser.goto(f"{url}/docs")
        ops = browser.wait_for(
            "document.querySelectorAll('.swagger-ui .opblock').length",
            timeout=60,
            what="Swagger UI operations",
        )
        text = browser.eval("document.querySelector('.swagger-ui').innerText")
        browser.screenshot(ARTIFACTS / "docs-swagger.png")
    assert ops >= 5 and "/v1/classify" in text
    assert not browser.outside_requests(), browser.outside_requests()
    assert not browser.failed_requests(), browser.failed_requests()


def test_redoc_renders_offline(model_base: Path, browser: Browser) -> None:
    with live_sidecar(model_base) as url:
        html = httpx.get(f"{url}/redoc", timeout=60).text
        assert "fonts.googleapis" not in html and "/docs-assets/redoc.standalone.js" in html
        browser.goto(f"{url}/redoc")
        browser.wait_for(
            "document.body.innerText.includes('Classify one text or a batch')",
            timeout=60,
            what="ReDoc content",
        )
        text = browser.eval("document.body.innerText")
        browser.screenshot(ARTIFACTS / "docs-redoc.png")
    assert "min_confidence" in text and "top_k" in text
    # ReDoc's bundle asks for its maker's logo from a CDN; the page's policy stops it in the browser
    assert all(reason == "csp" for _, reason in browser.outside_requests()), browser.outside_requests()
