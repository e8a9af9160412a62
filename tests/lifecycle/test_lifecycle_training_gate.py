"""The training Job's evaluation gate (training.promote): what the chart renders (the gate container's
command, its RBAC scoped to the tfserving ConfigMap, the schema's refusals), and that very command run
as a process against a ConfigMap held by a stand-in kubectl: it refuses a worse or broken version and
declares a good one. The in-pod API client is checked against a local HTTP server."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from lc_support import MODEL, make_version
from test_lifecycle_chart import find, objects, render

from contracts.rollout import Rollout, declared
from training.kubeapi import KubeApi, KubeApiError

REPO = Path(__file__).resolve().parents[2]
CM = "tc-text-classifier-tfserving"
GATED = ("training.enabled=true", "model.stableVersion=1")

# A stand-in for kubectl: `-n NS get configmap NAME -o json` and `-n NS patch configmap NAME --type merge
# -p PATCH` on the ConfigMap object kept in $FAKE_CM (one JSON file); it logs every call to $FAKE_CM.log.
FAKE_KUBECTL = r"""#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
path = os.environ["FAKE_CM"]
with open(path + ".log", "a") as log:
    log.write(json.dumps(args) + "\n")
ns = args[args.index("-n") + 1] if "-n" in args else "default"
cm = json.load(open(path))
verb, kind, name = [a for a in args if not a.startswith("-") and a != ns][:3]
if kind != "configmap" or name != cm["metadata"]["name"] or ns != cm["metadata"]["namespace"]:
    sys.exit(f'Error from server (NotFound): configmaps "{name}" not found in {ns}')
if verb == "get":
    print(json.dumps(cm))
elif verb == "patch":
    cm["data"].update(json.loads(args[args.index("-p") + 1])["data"])
    json.dump(cm, open(path, "w"))
    print(f"configmap/{name} patched")
else:
    sys.exit(f"fake kubectl: {verb} is not supported")
"""


def job(*sets: str) -> dict[str, Any]:
    return find(objects(*sets), "Job", "-train-1")


def gate_args(*sets: str) -> list[str]:
    spec = job(*sets)["spec"]["template"]["spec"]
    (gate,) = [c for c in spec["containers"] if c["name"] == "gate"]
    assert gate.get("command") is None  # the image's entrypoint: python -m training
    return [str(a) for a in gate["args"]]


# --- what the chart renders ------------------------------------------------------------------------


def test_default_job_publishes_only() -> None:
    objs = objects("training.enabled=true")
    spec = find(objs, "Job", "-train-1")["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["trainer"] and "initContainers" not in spec
    assert spec["automountServiceAccountToken"] is False
    assert not [o for o in objs if o["kind"] in ("Role", "RoleBinding")]


def test_gated_job_trains_then_runs_the_gate_command() -> None:
    stable = job(*GATED, "training.promote.to=stable")
    spec = stable["spec"]["template"]["spec"]
    (trainer,) = spec["initContainers"]
    assert trainer["name"] == "trainer" and "--version-file=/handoff/version" in trainer["args"]
    assert gate_args(*GATED, "training.promote.to=stable") == [
        "promote", f"--model-name={MODEL}", "--model-base=/models", "--version-file=/handoff/version",
        f"--configmap={CM}", "--namespace=default", "--tolerance=0.01", "--via-canary=120",
    ]  # fmt: skip
    assert gate_args(
        *GATED, "training.promote.to=canary", "model.canary.weight=25", "model.canary.mode=shadow",
        "training.promote.tolerance=0.02", "training.promote.forceReason=accepted by the data team",
    ) == [
        "canary", f"--model-name={MODEL}", "--model-base=/models", "--version-file=/handoff/version",
        f"--configmap={CM}", "--namespace=default", "--tolerance=0.02", "--gate", "--weight=25",
        "--mode=shadow", "--force", "--reason=accepted by the data team",
    ]  # fmt: skip
    # a refusal is final: a retried pod would train and publish another version
    (rule,) = stable["spec"]["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"] == {
        "containerName": "gate", "operator": "In", "values": [1, 2],
    }  # fmt: skip
    assert spec["automountServiceAccountToken"] is True
    assert spec["serviceAccountName"] == "tc-text-classifier-training-gate"


def test_gate_rbac_is_get_and_patch_of_the_tfserving_configmap_only() -> None:
    objs = objects(*GATED, "training.promote.to=canary")
    assert find(objs, "ConfigMap", "-tfserving")["metadata"]["name"] == CM
    sa = find(objs, "ServiceAccount", "-training-gate")
    role = find(objs, "Role")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [CM], "verbs": ["get", "patch"]}
    ]
    binding = find(objs, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}  # fmt: skip
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": "default"}]  # fmt: skip
    assert not [o for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    # the serving pods' own account stays without a token
    assert find(objs, "Deployment")["spec"]["template"]["spec"].get("automountServiceAccountToken") is False


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("training.promote.to=production",), "/training/promote/to': value must be one of"),
        (("training.promote.tolerance=-0.1",), "/training/promote/tolerance"),
        (("training.promote.tolerance=2",), "maximum: got 2, want 1"),
        (("training.promote.loadWaitSeconds=-1",), "/training/promote/loadWaitSeconds': minimum"),
        (("training.promote.gate=true",), "additional properties 'gate' not allowed"),
        (("training.promote.forceReason=line one\nline two",), "/training/promote/forceReason"),
        (("training.enabled=true", "training.promote.to=canary"), "needs model.stableVersion"),
    ],
)
def test_bad_gate_values_are_refused(sets: tuple[str, ...], message: str) -> None:
    res = render(*sets)
    assert res.returncode != 0 and message in res.stderr, res.stderr


# --- the rendered command, run -----------------------------------------------------------------


@dataclass
class Cluster:
    """The versions' directory (the Job's /models) and the chart's ConfigMap behind a fake kubectl."""

    root: Path
    models: Path
    cm_file: Path
    bindir: Path

    def data(self) -> dict[str, str]:
        return dict(json.loads(self.cm_file.read_text())["data"])

    def calls(self) -> list[list[str]]:
        log = Path(f"{self.cm_file}.log")
        return [json.loads(ln) for ln in log.read_text().splitlines()] if log.exists() else []

    def run_job_gate(self, version: int, *sets: str) -> subprocess.CompletedProcess[str]:
        """The gate container's args as the chart renders them, with the pod's mount paths mapped here."""
        handoff = self.root / "handoff"
        handoff.mkdir(exist_ok=True)
        (handoff / "version").write_text(f"{version}\n")  # what train --version-file writes
        args = [
            a.replace("=/models", f"={self.models}").replace("=/handoff", f"={handoff}")
            for a in gate_args(*GATED, *sets)
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        env |= {"PATH": f"{self.bindir}{os.pathsep}{env.get('PATH', '')}", "FAKE_CM": str(self.cm_file)}
        return subprocess.run(
            [sys.executable, "-m", "training", *args],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


@pytest.fixture
def cluster(tmp_path: Path, exported_models: Path) -> Iterator[Cluster]:
    models = tmp_path / "models"
    (models / MODEL).mkdir(parents=True)
    make_version(exported_models / MODEL / "1", models / MODEL, 1)
    cm = find(objects(*GATED), "ConfigMap", "-tfserving")  # the object `helm install` creates
    cm_file = tmp_path / "configmap.json"
    cm_file.write_text(json.dumps(cm))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    kubectl = bindir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.replace("/usr/bin/env python3", sys.executable, 1))
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IXUSR)
    yield Cluster(tmp_path, models, cm_file, bindir)


def roles(c: Cluster) -> tuple[int | None, int | None, int | None]:
    decl = declared(c.data()["models.config"], MODEL)
    assert decl is not None
    return decl.stable, decl.canary, decl.previous


def test_job_gate_refuses_a_worse_version_and_promotes_a_good_one(cluster: Cluster) -> None:
    src = cluster.models / MODEL / "1"
    stable_mode = ("training.promote.to=stable", "training.promote.loadWaitSeconds=0")
    assert roles(cluster) == (1, None, None)
    make_version(src, cluster.models / MODEL, 2, "worse")
    before = cluster.data()
    res = cluster.run_job_gate(2, *stable_mode)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "refused: version 2 is worse than stable 1" in res.stderr and "accuracy" in res.stderr
    assert "stable v1" in res.stdout and "candidate v2" in res.stdout  # side by side
    assert cluster.data() == before and not [c for c in cluster.calls() if "patch" in c]
    make_version(src, cluster.models / MODEL, 3, "broken")
    res = cluster.run_job_gate(3, *stable_mode)
    assert res.returncode == 1 and "fails the contract checks" in res.stderr, res.stderr
    assert cluster.data() == before
    make_version(src, cluster.models / MODEL, 4)
    res = cluster.run_job_gate(4, *stable_mode)
    assert res.returncode == 0, res.stdout + res.stderr
    assert roles(cluster) == (4, None, 1)  # promoted; the old stable stays loaded as previous
    patches = [c for c in cluster.calls() if "patch" in c]
    assert len(patches) == 2 and all(c[:2] == ["-n", "default"] for c in patches)  # canary, then stable
    assert "promote 4 (was 1" in cluster.data()["models.config"]
    # forced past a worse evaluation: the reason is logged and kept in the config
    make_version(src, cluster.models / MODEL, 5, "worse")
    res = cluster.run_job_gate(5, *stable_mode, "training.promote.forceReason=accepted by the data team")
    assert res.returncode == 0, res.stderr
    assert "accepted by the data team" in res.stderr
    assert roles(cluster) == (5, None, 4) and "accepted by the data team" in cluster.data()["models.config"]


def test_job_gate_in_canary_mode_declares_only_a_version_that_passes(cluster: Cluster) -> None:
    src = cluster.models / MODEL / "1"
    canary_mode = ("training.promote.to=canary", "model.canary.weight=20")
    make_version(src, cluster.models / MODEL, 2, "worse")
    res = cluster.run_job_gate(2, *canary_mode)
    assert res.returncode == 1 and "worse than stable 1" in res.stderr, res.stderr
    assert roles(cluster) == (1, None, None)
    make_version(src, cluster.models / MODEL, 3)
    res = cluster.run_job_gate(3, *canary_mode)
    assert res.returncode == 0, res.stderr
    assert roles(cluster) == (1, 3, None)
    ro = Rollout.from_json(cluster.data()["rollout.json"])
    assert (ro.mode, ro.weight) == ("split", 20)


# --- the in-pod API client ---------------------------------------------------------------------


def test_kube_api_client_gets_and_merge_patches_one_configmap() -> None:
    seen: list[tuple[str, str, str, str, bytes]] = []
    store = {"metadata": {"name": CM}, "data": {"models.config": "x"}}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, code: int, doc: dict[str, Any]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            seen.append((self.command, self.path, self.headers.get("Authorization", ""),
                         self.headers.get("Content-Type", ""), body))  # fmt: skip
            if not self.path.endswith(f"/configmaps/{CM}"):
                self._answer(403, {"kind": "Status", "message": "configmaps is forbidden: not this one"})
                return
            if self.command == "PATCH":
                store["data"].update(json.loads(body)["data"])
            self._answer(200, store)

        do_GET = do_PATCH = _handle

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = KubeApi(f"http://127.0.0.1:{server.server_address[1]}", "tok", "ns1")
        assert api.get_configmap(CM)["data"] == {"models.config": "x"}
        api.patch_configmap(CM, {"data": {"models.config": "y"}})
        assert store["data"] == {"models.config": "y"}
        assert seen[0][:3] == ("GET", f"/api/v1/namespaces/ns1/configmaps/{CM}", "Bearer tok")
        assert seen[1][:4] == (
            "PATCH", f"/api/v1/namespaces/ns1/configmaps/{CM}", "Bearer tok", "application/merge-patch+json",
        )  # fmt: skip
        with pytest.raises(KubeApiError, match="403 configmaps is forbidden"):
            api.get_configmap("other")
    finally:
        server.shutdown()
