"""Headless Chromium driven over the DevTools protocol (a small synchronous client, no extra package).

The browser runs with a fresh profile, no sandbox (CI runs as root), no GPU, and nothing in the
background that could reach the internet; ``offline=True`` also makes every host name except
127.0.0.1 unresolvable, and every request the page makes is recorded so a test can prove where it went."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from websockets.sync.client import ClientConnection, connect


class BrowserError(RuntimeError):
    pass


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise BrowserError("chromium is not installed: run `make browser-tools` (Debian package chromium)")
    return path


class Browser:
    def __init__(self, offline: bool = True, width: int = 1100, height: int = 900) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        args = [
            chromium_path(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-default-apps",
            "--disable-extensions",
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        if offline:
            args.insert(1, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.is_file() or not port_file.read_text().strip():
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise BrowserError(f"chromium exited with {self.proc.returncode}: {err[-2000:]}")
            if time.monotonic() > deadline:
                self.close()
                raise BrowserError("chromium did not open its DevTools port within 60 s")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        req = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(req, timeout=10) as resp:
            target = json.load(resp)
        self._connection = connect(target["webSocketDebuggerUrl"], max_size=64 * 2**20)
        self.ws: ClientConnection = self._connection.__enter__()
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.auth: tuple[str, str] | None = None
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Network.enable")

    # --- protocol ---------------------------------------------------------------------------------
    def _handle(self, msg: dict[str, Any]) -> None:
        self.events.append(msg)
        method = msg.get("method")
        if method == "Fetch.authRequired" and self.auth is not None:
            user, password = self.auth
            self._post(
                "Fetch.continueWithAuth",
                requestId=msg["params"]["requestId"],
                authChallengeResponse={
                    "response": "ProvideCredentials",
                    "username": user,
                    "password": password,
                },
            )
        elif method == "Fetch.requestPaused":
            self._post("Fetch.continueRequest", requestId=msg["params"]["requestId"])

    def _post(self, method: str, **params: Any) -> int:
        mid = next(self._ids)
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        return mid

    def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        mid = self._post(method, **params)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"no answer to {method} within {timeout} s")
            msg = json.loads(self.ws.recv(timeout=remaining))
            if msg.get("id") == mid:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            self._handle(msg)

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                self._handle(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                return

    # --- conveniences -----------------------------------------------------------------------------
    def use_basic_auth(self, user: str, password: str) -> None:
        """Answer HTTP auth challenges the way a person typing into the browser's prompt would."""
        self.auth = (user, password)
        self.send("Fetch.enable", handleAuthRequests=True, patterns=[{"urlPattern": "*"}])

    def goto(self, url: str, timeout: float = 30) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", timeout)

    def eval(self, expression: str) -> Any:
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise BrowserError(f"{expression!r} threw: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30, what: str | None = None) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout} s waiting for {what or expression}")
            self.pump(0.1)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def outside_requests(self) -> list[tuple[str, str | None]]:
        """Requests to any host but 127.0.0.1, with the reason the browser blocked each before it
        reached the network ('csp', ...), or None when it really tried (and needed DNS)."""
        blocked = {
            e["params"]["requestId"]: e["params"].get("blockedReason")
            for e in self.events
            if e.get("method") == "Network.loadingFailed"
        }
        out = []
        for e in self.events:
            if e.get("method") != "Network.requestWillBeSent":
                continue
            url = e["params"]["request"]["url"]
            parsed = urlparse(url)
            if parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname != "127.0.0.1":
                out.append((url, blocked.get(e["params"]["requestId"])))
        return out

    def failed_requests(
        self, keep: Callable[[dict[str, Any]], bool] = lambda _e: True
    ) -> list[dict[str, Any]]:
        return [e["params"] for e in self.events if e.get("method") == "Network.loadingFailed" and keep(e)]

    def close(self) -> None:
        try:
            if hasattr(self, "ws"):
                self._connection.__exit__(None, None, None)
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
