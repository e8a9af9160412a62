"""Helpers of the real-node tests: kubectl/helm runners, the release under test and the counting load.

Everything here talks to the cluster that `make e2e-pods` (scripts/cluster/e2e-pods.sh) started: the test
control plane, KWOK GPU nodes and one real node (kubelet, containerd, runc, CNI, kube-proxy), with Traefik
on 127.0.0.1 as the Ingress controller. All HTTP goes through Traefik with the release's Host header.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "text-classifier"
VALUES = Path(__file__).resolve().parent / "values-real-node.yaml"
HOST = "classifier.e2e.test"
SAMPLE_TEXTS = (
    "The central bank raised interest rates again as inflation stayed above target.",
    "The striker scored twice in the second half and the club moved top of the league.",
    "The new phone has a faster chip, a brighter screen and a bigger battery.",
    "Parliament voted on the budget after a long debate between the parties.",
    "The film won three awards at the festival, including best actress.",
)


def env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise RuntimeError(f"{name} is not set: run these tests with `make e2e-pods`")
    return value


def run(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def kubectl(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("kubectl", *args, timeout=timeout, check=check)


def apply(manifest: str) -> None:
    proc = subprocess.run(
        ["kubectl", "apply", "-f", "-"], input=manifest, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise AssertionError(f"kubectl apply failed:\n{proc.stderr}\n{manifest}")


def kjson(*args: str) -> dict:
    out: dict = json.loads(kubectl(*args, "-o", "json").stdout)
    return out


def wait_until(what: str, pred: Callable[[], bool], timeout: float, interval: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Release:
    name: str
    namespace: str
    volume: Path  # host directory behind the model PVC (a local PersistentVolume on the real node)
    images: dict[str, str]

    @property
    def fullname(self) -> str:
        return f"{self.name}-text-classifier" if "text-classifier" not in self.name else self.name

    def helm(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("helm", *args, "-n", self.namespace, timeout=timeout, check=check)

    def image_args(self) -> list[str]:
        args: list[str] = []
        for key, var in (
            ("sidecar.image", "SIDECAR_IMAGE"),
            ("tfServing.image", "STANDIN_IMAGE"),
            ("training.image", "TRAINER_IMAGE"),
        ):
            repo, tag = self.images[var].rsplit(":", 1)
            args += ["--set", f"{key}.repository={repo}", "--set", f"{key}.tag={tag}"]
        return args

    def pods(self, component: str = "server") -> list[dict]:
        items: list[dict] = kjson(
            "get", "pods", "-n", self.namespace, "-l", f"app.kubernetes.io/instance={self.name}"
        )["items"]
        return [p for p in items if p["metadata"]["labels"].get("app.kubernetes.io/component") == component]

    def ready_serving_pods(self) -> list[dict]:
        def ready(p: dict) -> bool:
            if p["metadata"].get("deletionTimestamp"):
                return False
            conds = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}
            return conds.get("Ready") == "True"

        return [p for p in self.pods() if ready(p)]

    def versions_on_volume(self, model: str = "news") -> list[int]:
        base = self.volume / model
        return (
            sorted(int(d.name) for d in base.iterdir() if d.is_dir() and d.name.isdigit())
            if base.is_dir()
            else []
        )

    def labels_of(self, version: int, model: str = "news") -> set[str]:
        data = json.loads((self.volume / model / str(version) / "assets" / "labels.json").read_text())
        return {str(v) for v in data["labels"]}


@dataclass
class LoadReport:
    ok: int = 0
    failed: int = 0
    by_version: Counter[int] = field(default_factory=Counter)
    by_role: Counter[str] = field(default_factory=Counter)  # X-Model-Role: stable, canary, ...
    abstained: int = 0  # of the ok answers: no label (below the version's calibrated threshold)
    failures: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.ok + self.failed

    def summary(self) -> str:
        return (
            f"{self.total} requests: {self.ok} ok ({self.abstained} abstained), {self.failed} failed;"
            f" by version {dict(self.by_version)}, by role {dict(self.by_role)}"
        )


class Load:
    """Continuous POST /v1/classify through the Ingress from `workers` threads, counting every response.

    A response counts as ok only with status 200, a model version in the body, and a label that belongs to
    that version's labels.json (read from the model volume). Anything else, including a connection error or
    a timeout, is a failure, kept with its detail.
    """

    def __init__(self, url: str, labels_of: Callable[[int], set[str]], workers: int = 3) -> None:
        self.url = url.rstrip("/")
        self.labels_of = labels_of
        self.workers = workers
        self.report = LoadReport()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._labels: dict[int, set[str]] = {}

    def _labels_for(self, version: int) -> set[str]:
        if version not in self._labels:
            self._labels[version] = self.labels_of(version)
        return self._labels[version]

    def _check(self, resp: httpx.Response) -> str | None:
        if resp.status_code != 200:
            return f"HTTP {resp.status_code}: {resp.text[:200]}"
        body = resp.json()
        version = int(body["model"]["version"])
        # The headers name the version too (docs/operations.md, section 9): they must agree with the body.
        header = resp.headers.get("x-model-version")
        if header is not None and int(header) != version:
            return f"X-Model-Version {header} but the body names version {version}"
        role = resp.headers.get("x-model-role", "")
        prediction = body["predictions"][0]
        label = prediction["label"]
        if prediction["abstained"]:
            # The sidecar abstains below the version's calibrated threshold: no label (the chart configures
            # no unknown-label name), which is an answer, not a failure.
            if label is not None:
                return f"abstained with label {label!r} (expected null)"
            with self._lock:
                self.report.abstained += 1
                self.report.by_version[version] += 1
                self.report.by_role[role] += 1
            return None
        with self._lock:
            allowed = self._labels_for(version)
        if label not in allowed:
            return f"label {label!r} is not one of version {version}'s labels {sorted(allowed)}"
        with self._lock:
            self.report.by_version[version] += 1
            self.report.by_role[role] += 1
        return None

    def _worker(self, n: int) -> None:
        with httpx.Client(timeout=20.0, headers={"Host": HOST}) as http:
            i = n
            while not self._stop.is_set():
                text = SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)]
                i += 1
                try:
                    problem = self._check(http.post(f"{self.url}/v1/classify", json={"text": text}))
                except (httpx.HTTPError, ValueError, KeyError, OSError) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if problem is None:
                        self.report.ok += 1
                    else:
                        self.report.failed += 1
                        if len(self.report.failures) < 20:
                            self.report.failures.append(problem)
                time.sleep(0.02)

    def __enter__(self) -> Load:
        for n in range(self.workers):
            t = threading.Thread(target=self._worker, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def versions_answering(self, n: int, timeout: float = 120) -> Counter[int]:
        """The versions that gave the next `n` ok answers (a window of the running counts)."""
        with self._lock:
            before = Counter(self.report.by_version)
            start = self.report.ok
        wait_until(f"{n} more ok answers", lambda: self.report.ok >= start + n, timeout, 0.2)
        with self._lock:
            after = Counter(self.report.by_version)
        return after - before

    def wait_for_requests(self, n: int, timeout: float = 60) -> None:
        start = self.report.total
        wait_until(
            f"{n} more requests through the Ingress", lambda: self.report.total >= start + n, timeout, 0.2
        )


def record(name: str, report: LoadReport) -> None:
    """Append a test's request counts to out/e2e-pods/requests.jsonl (docs/e2e.md quotes them)."""
    out = REPO / "out" / "e2e-pods"
    out.mkdir(parents=True, exist_ok=True)
    line = {
        "test": name,
        "requests": report.total,
        "ok": report.ok,
        "failed": report.failed,
        "abstained": report.abstained,
        "by_version": {str(k): v for k, v in sorted(report.by_version.items())},
        "by_role": dict(sorted(report.by_role.items())),
    }
    with (out / "requests.jsonl").open("a") as f:
        f.write(json.dumps(line) + "\n")
