"""The chart's exact TF Serving command line runs on the stand-in.

For every ``helm/text-classifier/ci/*-values.yaml`` scenario the chart is rendered, and the
``tfserving`` container's exact ``command``/``args`` and the exact files of the TF Serving ConfigMap
are given to ``local-tensorflow-model-server`` (the console script a stand-in image runs as
``/usr/bin/tensorflow_model_server``). Only what cannot exist outside a pod is mapped: the ConfigMap
mount (/etc/tfserving) and the model volume (/models) become temporary directories, and the fixed
container ports become free local ones. Then what the pod would check is checked: the startup probe's
TCP port opens, the readiness probe's HTTP path answers 200, the model predicts. Any argument the
chart passes that the stand-in does not understand makes it exit non-zero, so this test fails."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from lms_support import REPO, free_port, publish_version

sys.path.insert(0, str(REPO / "tests" / "chart"))
import chart_support

pytestmark = pytest.mark.timeout(600)

CONFIG_MOUNT = "/etc/tfserving"
MODELS_MOUNT = "/models"
ENTRY = Path(sys.executable).parent / "local-tensorflow-model-server"


def _pod(objs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], str]:
    deployments = [o for o in objs if o["kind"] == "Deployment"]
    assert len(deployments) == 1, [o["metadata"]["name"] for o in deployments]
    spec = deployments[0]["spec"]["template"]["spec"]
    tfs = chart_support.container(spec, "tfserving")
    mounts = {m["mountPath"]: m["name"] for m in tfs.get("volumeMounts", [])}
    assert mounts.get(CONFIG_MOUNT) == "tfserving-config", mounts
    assert mounts.get(MODELS_MOUNT) == "models", mounts
    return spec, tfs, json.dumps(chart_support.config_data(objs), sort_keys=True)


def _cases() -> list[tuple[str, list[str]]]:
    """Scenarios whose tfserving container and ConfigMap differ (identical ones run once)."""
    seen: dict[str, list[str]] = {}
    for name in chart_support.SCENARIOS:
        _spec, tfs, data = _pod(chart_support.render(chart_support.scenario_file(name)))
        key = json.dumps([tfs.get("command"), tfs["args"], data])
        seen.setdefault(key, []).append(name)
    return [(names[0], names) for names in seen.values()]


@pytest.fixture(scope="module")
def cases() -> list[tuple[str, list[str]]]:
    assert chart_support.SCENARIOS, "no chart scenarios found"
    return _cases()


class Pod:
    """The tfserving container of a rendered scenario, mapped onto this machine."""

    def __init__(self, scenario: str, root: Path, version_source: Path) -> None:
        objs = chart_support.render(chart_support.scenario_file(scenario))
        _spec, self.container, _ = _pod(objs)
        self.data = chart_support.config_data(objs)
        self.config_dir = root / "etc-tfserving"
        self.models_dir = root / "models"
        self.config_dir.mkdir(parents=True)
        self.models_dir.mkdir()
        for filename, text in self.data.items():
            # The ConfigMap's files byte for byte, except model paths under the models volume.
            (self.config_dir / filename).write_text(
                text.replace(f'"{MODELS_MOUNT}/', f'"{self.models_dir}/'), encoding="utf-8"
            )
        self.model_names = re.findall(r'name:\s*"([^"]+)"', self.data["models.config"])
        assert self.model_names, self.data["models.config"]
        # The versions the config declares (`specific { versions: N }`), else one version for `latest`.
        declared = [int(v) for v in re.findall(r"versions:\s*(\d+)", self.data["models.config"])] or [1]
        for name in self.model_names:
            (self.models_dir / name).mkdir()
            for version in declared:
                publish_version(version_source, self.models_dir / name, version)
        self.ports = {p["name"]: int(p["containerPort"]) for p in self.container["ports"]}
        self.local_port = {num: free_port() for num in self.ports.values()}

    def argv(self) -> list[str]:
        command = self.container.get("command")
        assert command == ["/usr/bin/tensorflow_model_server"], command
        out = []
        for arg in self.container["args"]:
            arg = arg.replace(f"={CONFIG_MOUNT}/", f"={self.config_dir}/")
            m = re.fullmatch(r"(--(?:rest_api_)?port)=(\d+)", arg)
            if m:
                arg = f"{m.group(1)}={self.local_port[int(m.group(2))]}"
            out.append(arg)
        return out

    def probe_port(self, probe: dict[str, Any], kind: str) -> int:
        port = probe[kind]["port"]
        number = self.ports[port] if isinstance(port, str) else int(port)
        return self.local_port[number]


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    if not os.access(ENTRY, os.X_OK):
        pytest.fail(f"{ENTRY} is missing: the console script comes with `make install`", pytrace=False)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", LOCAL_MODEL_SERVER_HOST="127.0.0.1")
    with log.open("wb") as fh:
        return subprocess.Popen([str(ENTRY), *argv], cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_chart_tfserving_args_run_on_the_stand_in(
    cases: list[tuple[str, list[str]]],
    version_source: Path,
    sample: dict[str, Any],
    tmp_path: Path,
) -> None:
    checked = []
    for scenario, same in cases:
        pod = Pod(scenario, tmp_path / scenario, version_source)
        log = tmp_path / f"{scenario}.log"
        proc = _start(pod.argv(), log)
        try:
            startup = pod.container["startupProbe"]
            deadline = time.monotonic() + startup["periodSeconds"] * startup["failureThreshold"]
            port = pod.probe_port(startup, "tcpSocket")
            while not _port_open(port):
                assert proc.poll() is None, (
                    f"scenario {scenario}: the stand-in refused the chart's TF Serving args "
                    f"{pod.container['args']} (exit {proc.returncode}):\n{log.read_text()[-3000:]}"
                )
                assert time.monotonic() < deadline, f"{scenario}: startup probe port {port} never opened"
                time.sleep(0.2)
            ready = pod.container["readinessProbe"]["httpGet"]
            rest = f"http://127.0.0.1:{pod.probe_port(pod.container['readinessProbe'], 'httpGet')}"
            r = httpx.get(rest + ready["path"], timeout=pod.container["readinessProbe"]["timeoutSeconds"])
            assert r.status_code == 200, (scenario, r.text)
            rows = [
                {"token_ids": sample["ids"][i].tolist(), "token_weights": sample["weights"][i].tolist()}
                for i in range(len(sample["ids"]))
            ]
            for name in pod.model_names:
                r = httpx.post(f"{rest}/v1/models/{name}:predict", json={"instances": rows}, timeout=30)
                assert r.status_code == 200, (scenario, r.text)
                got = [p["class_ids"] for p in r.json()["predictions"]]
                assert got == [int(c) for c in sample["expected"]["class_ids"]], (scenario, got)
            if '"/monitoring' in pod.data.get("monitoring.config", "") and "enable: true" in pod.data.get(
                "monitoring.config", ""
            ):
                path = re.search(r'path:\s*"([^"]+)"', pod.data["monitoring.config"])
                assert path is not None
                page = httpx.get(rest + path.group(1), timeout=10).text
                assert ":tensorflow:serving:request_count{" in page, page[:2000]
            checked.append(f"{scenario} (same tfserving container as {', '.join(same)})")
        finally:
            _stop(proc)
    assert checked


def test_chart_args_plus_an_unknown_flag_fail(cases: list[tuple[str, list[str]]], tmp_path: Path) -> None:
    """What happens when the chart gains an argument the stand-in does not implement: a non-zero exit
    naming it (before any model loads), which fails the test above."""
    scenario = cases[0][0]
    pod = Pod.__new__(Pod)
    objs = chart_support.render(chart_support.scenario_file(scenario))
    _spec, pod.container, _ = _pod(objs)
    args = [a for a in pod.container["args"] if not a.startswith("--port")]
    for extra, why in (
        ("--grpc_socket_path=/tmp/tfs.sock", "does not implement"),
        ("--enable_batchin=true", "unknown flag"),
    ):
        proc = subprocess.run(
            [str(ENTRY), *args, extra], capture_output=True, text=True, timeout=120, cwd=REPO
        )
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert extra in proc.stderr and why in proc.stderr, proc.stderr[-2000:]
