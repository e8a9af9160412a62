"""Security: API keys (401 without, constant-time comparison over every key), no request text in the logs
by default, no pickle in model artifacts or code paths, and pod hardening on every rendered chart scenario
(beyond what tests/chart checks)."""

from __future__ import annotations

import ast
import json
import pickle
import pickletools
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from rel_support import MODEL, PROBES, Proc, Stack

from contracts import modeldir

REPO = Path(__file__).resolve().parents[2]
KEYS = ("key-one-" + "a" * 24, "key-two-" + "b" * 24)


# --- API keys ---------------------------------------------------------------------------------------
def test_security_api_keys_401_without_valid_key(
    shared: tuple[Stack, Proc, Proc], tmp_path: Path, figures: dict[str, Any]
) -> None:
    stack, server, _ = shared
    keys_file = tmp_path / "api-keys"
    keys_file.write_text(f"\n  {KEYS[1]}  \n")
    sidecar = stack.sidecar(server, api_keys=KEYS[0], api_keys_file=str(keys_file))
    try:
        url = f"{sidecar.url()}/v1/classify"
        body = {"text": PROBES[0]}
        refused = {
            "no header": {},
            "bearer without token": {"Authorization": "Bearer"},
            "wrong key": {"Authorization": "Bearer nope"},
            "prefix of a key": {"Authorization": f"Bearer {KEYS[0][:-1]}"},
            "key plus a byte": {"Authorization": f"Bearer {KEYS[0]}x"},
            "both keys": {"Authorization": f"Bearer {KEYS[0]},{KEYS[1]}"},
            "basic scheme": {"Authorization": f"Basic {KEYS[0]}"},
            "no scheme": {"Authorization": KEYS[0]},
            "non-ascii": {"Authorization": "Bearer ключ".encode()},
        }
        n = 0
        for what, headers in refused.items():
            for path, payload in (("/v1/classify", body), ("/classify", body)):
                r = httpx.post(f"{sidecar.url()}{path}", json=payload, headers=headers, timeout=10)
                n += 1
                assert r.status_code == 401, (what, path, r.text)
                assert (
                    r.headers["www-authenticate"] == "Bearer" and r.json()["error"]["code"] == "unauthorized"
                )
            r = httpx.get(f"{sidecar.url()}/v1/model", headers=headers, timeout=10)
            n += 1
            assert r.status_code == 401, (what, r.text)
        for key in KEYS:  # from the variable and from the file
            for scheme in ("Bearer", "bearer"):
                r = httpx.post(url, json=body, headers={"Authorization": f"{scheme} {key}"}, timeout=10)
                n += 1
                assert r.status_code == 200, r.text
        for probe in ("/healthz", "/readyz", "/metrics"):  # kubelet and Prometheus need no secret
            n += 1
            assert httpx.get(f"{sidecar.url()}{probe}", timeout=10).status_code == 200
        figures["requests"] += n
        figures["cases"] += len(refused)
    finally:
        sidecar.stop()


def test_security_api_key_comparison_constant_time_over_all_keys() -> None:
    """deps.authorized (behind require_api_key, the fast classify path and OIP gRPC) compares with
    hmac.compare_digest against every key, with no early exit: neither which key nor how much of it
    matched shows in the timing."""
    src = (REPO / "preprocess_service" / "deps.py").read_text()
    fn = next(
        n
        for n in ast.walk(ast.parse(src))
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == "authorized"
    )
    loops = [n for n in ast.walk(fn) if isinstance(n, ast.For)]
    assert len(loops) == 1, "expected one loop over the configured keys"
    (loop,) = loops
    calls = [ast.unparse(n.func) for n in ast.walk(loop) if isinstance(n, ast.Call)]
    assert "hmac.compare_digest" in calls, calls
    assert not [n for n in ast.walk(loop) if isinstance(n, ast.Break | ast.Return | ast.Raise)], (
        "the loop must not stop at the first match"
    )
    assert not [n for n in ast.walk(loop) if isinstance(n, ast.BoolOp)], "`or`/`and` short-circuits"
    # no other comparison of a secret anywhere in the service
    for path in (REPO / "preprocess_service").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(
                isinstance(op, ast.Eq | ast.NotEq | ast.In) for op in node.ops
            ):
                text = ast.unparse(node).lower()
                assert not any(w in text for w in ("api_key", "token", "secret", "presented")), (
                    f"{path.relative_to(REPO)}: {ast.unparse(node)}"
                )


# --- logs --------------------------------------------------------------------------------------------
def _send_marked(sidecar: Proc, marker: str) -> int:
    url = f"{sidecar.url()}/v1/classify"
    payloads: list[Any] = [
        {"text": f"The striker scored {marker} twice"},
        {"texts": [f"{marker} one", f"two {marker}"], "return_probabilities": True},
        {"text": f"{marker}\u0000nul"},  # 422
        {"text": f"{marker} " + "x" * 20_001},  # 422, too long
        {"text": marker, "unexpected": marker},  # 422, extra field
        {"texts": [marker] * 65},  # 422, too many
    ]
    n = 0
    for p in payloads:
        httpx.post(url, json=p, timeout=10)
        n += 1
    httpx.post(
        url, content=f'{{"text": "{marker}'.encode(), headers={"content-type": "application/json"}, timeout=10
    )  # invalid JSON
    httpx.post(f"{sidecar.url()}/classify", json={"text": marker}, timeout=10)
    httpx.post(f"{sidecar.url()}/classify", json={"text": [marker]}, timeout=10)
    return n + 3


def test_security_no_request_text_in_logs_by_default(
    shared: tuple[Stack, Proc, Proc], figures: dict[str, Any]
) -> None:
    stack, server, _ = shared
    quiet = stack.sidecar(server, log_level="debug")
    loud = stack.sidecar(server, log_request_text="true")  # the control: the same grep finds it when on
    try:
        marker = f"zqx{uuid.uuid4().hex}"
        n = _send_marked(quiet, marker) + _send_marked(loud, marker)
    finally:
        quiet.stop()
        loud.stop()
    figures["requests"] += n
    quiet_log = quiet.log_path.read_text(errors="replace")
    assert '"path":"/v1/classify","status":422' in quiet_log, "the requests did reach the log"
    assert marker not in quiet_log, [ln for ln in quiet_log.splitlines() if marker in ln][:3]
    assert marker in loud.log_path.read_text(errors="replace"), (
        "control: SIDECAR_LOG_REQUEST_TEXT=true logs it"
    )


# --- no pickle ----------------------------------------------------------------------------------------
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
FORBIDDEN_SUFFIXES = {".pkl", ".pickle", ".joblib", ".npy", ".npz", ".h5", ".keras", ".dill", ".sav"}


def _is_pickle(data: bytes) -> bool:
    if len(data) < 2 or data[0] != 0x80 or data[1] > 5:
        return False
    try:
        ops = list(pickletools.genops(data))
    except Exception:
        return False
    return bool(ops) and ops[-1][0].name == "STOP"


def scan_artifacts(root: Path) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        rel = str(path.relative_to(root))
        if path.suffix.lower() in FORBIDDEN_SUFFIXES:
            found.append(f"{rel}: suffix {path.suffix}")
        if _is_pickle(data):
            found.append(f"{rel}: a pickle stream")
        if data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(path) as zf:
                found += [f"{rel}!{n}: a pickle stream" for n in zf.namelist() if _is_pickle(zf.read(n))]
    return found


def scan_code(files: list[Path]) -> list[str]:
    found = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            name = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
            where = f"{name}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                found += [
                    f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLE_MODULES
                ]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
                found.append(f"{where} from {node.module} import")
            elif isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
                if kw.get("allow_pickle") == "True":
                    found.append(f"{where} {func}(allow_pickle=True)")
                if kw.get("safe_mode") == "False":
                    found.append(f"{where} {func}(safe_mode=False)")
                if func in ("yaml.load", "yaml.unsafe_load", "yaml.full_load") and "SafeLoader" not in str(
                    kw
                ):
                    found.append(f"{where} {func} (unsafe YAML)")
                if func.endswith(("read_pickle", "torch.load")) or func in ("eval", "exec"):
                    found.append(f"{where} {func}()")
    return found


def _repo_python() -> list[Path]:
    skip = {".venv", ".cache", "node_modules", ".git", "out"}
    return [p for p in REPO.rglob("*.py") if not skip & set(p.relative_to(REPO).parts)]


def test_security_no_pickle_in_model_artifacts(v1_dir: Path, v2_dir: Path, figures: dict[str, Any]) -> None:
    for d in (v1_dir, v2_dir):
        assert (d / modeldir.SAVED_MODEL).is_file() and (d / modeldir.VECTORIZER).is_file()
        assert scan_artifacts(d) == [], scan_artifacts(d)
        # every JSON asset is plain JSON
        for f in d.rglob("*.json"):
            json.loads(f.read_text(encoding="utf-8"))
    figures["cases"] += sum(1 for d in (v1_dir, v2_dir) for p in d.rglob("*") if p.is_file())


def test_security_no_pickle_in_code_paths(figures: dict[str, Any]) -> None:
    files = _repo_python()
    assert len(files) > 30 and any(p.parts[-2:] == ("preprocess_service", "main.py") for p in files)
    found = [f for f in scan_code(files) if "tests/reliability/test_reliability_security.py" not in f]
    figures["cases"] += len(files)
    assert found == [], found


def test_security_pickle_scanners_catch_what_they_look_for(tmp_path: Path) -> None:
    """The scanners are not no-ops."""
    (tmp_path / modeldir.ASSETS).mkdir()
    (tmp_path / modeldir.VECTORIZER).write_bytes(pickle.dumps({"idf": [1.0]}, protocol=4))
    with zipfile.ZipFile(tmp_path / "weights.bin", "w") as zf:
        zf.writestr("data", pickle.dumps([1, 2], protocol=2))
    (tmp_path / "model.joblib").write_bytes(b"{}")
    assert len(scan_artifacts(tmp_path)) == 3, scan_artifacts(tmp_path)
    code = tmp_path / "bad.py"
    code.write_text(
        "import pickle\nfrom joblib import load\nimport numpy as np\nimport yaml\n"
        "np.load('x', allow_pickle=True)\nyaml.load(open('f'))\nimport marshal.x\n"
    )
    assert len(scan_code([code])) == 5, scan_code([code])


# --- chart hardening beyond tests/chart -------------------------------------------------------------
sys.path.insert(0, str(REPO / "tests" / "chart"))
SECRETISH = ("KEY", "TOKEN", "PASSWORD", "PASSWD", "SECRET", "CREDENTIAL")


@pytest.fixture(scope="module")
def scenarios() -> dict[str, list[dict[str, Any]]]:
    from chart_support import CI_DIR, SCENARIOS, render

    out = {name: render(CI_DIR / f"{name}-values.yaml") for name in SCENARIOS}
    out["defaults"] = render()
    return out


def _pod_specs(objs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for o in objs:
        ident = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] == "Pod":
            specs.append((ident, o["spec"]))
        elif o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
            specs.append((ident, o["spec"]["template"]["spec"]))
        elif o["kind"] == "CronJob":
            specs.append((ident, o["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    return specs


def _gate_role(role: dict[str, Any]) -> bool:
    """The one Role allowed: the training Job's evaluation gate gets and patches the tfserving
    ConfigMap, by name (tests/chart/test_chart_security.py checks who is bound to it)."""
    rules = role.get("rules") or []
    if len(rules) != 1:
        return False
    r = rules[0]
    names = [str(n) for n in r.get("resourceNames") or []]
    return (
        (r.get("apiGroups"), r.get("resources"), r.get("verbs")) == ([""], ["configmaps"], ["get", "patch"])
        and len(names) == 1
        and names[0].endswith("-tfserving")
    )


def test_security_chart_hardening_every_scenario(
    scenarios: dict[str, list[dict[str, Any]]], figures: dict[str, Any]
) -> None:
    problems = []
    n_pods = 0
    for name, objs in scenarios.items():
        for o in objs:
            if o["kind"] in ("ClusterRole", "ClusterRoleBinding") or (
                o["kind"] == "Role" and not _gate_role(o)
            ):
                problems.append(
                    f"{name}: RBAC {o['kind']}/{o['metadata']['name']}: the pods need no API access"
                )
        for o in objs:
            if o["kind"] == "ConfigMap":
                for k, v in (o.get("data") or {}).items():
                    if any(w in k.upper() for w in SECRETISH) and not k.upper().endswith("_FILE"):
                        problems.append(f"{name}: ConfigMap {o['metadata']['name']} holds {k}")
                    if isinstance(v, str) and "key-" in v and "SIDECAR_API_KEYS" in v:
                        problems.append(f"{name}: ConfigMap {o['metadata']['name']} holds API keys")
            if o["kind"] == "Service" and o["spec"].get("type", "ClusterIP") not in ("ClusterIP",):
                problems.append(f"{name}: Service {o['metadata']['name']} is {o['spec']['type']}")
        for ident, spec in _pod_specs(objs):
            n_pods += 1
            where = f"{name} {ident}"
            vols = {v["name"]: v for v in spec.get("volumes", [])}
            for v in vols.values():
                if "emptyDir" in v and not (v["emptyDir"] or {}).get("sizeLimit"):
                    problems.append(
                        f"{where}: emptyDir {v['name']} without sizeLimit can fill the node's disk"
                    )
            secret_vols = {n for n, v in vols.items() if "secret" in v}
            for c in [*spec.get("initContainers", []), *spec["containers"]]:
                for p in c.get("ports", []):
                    if "hostPort" in p:
                        problems.append(f"{where} {c['name']}: hostPort")
                for m in c.get("volumeMounts", []):
                    if m["name"] in secret_vols and not m.get("readOnly"):
                        problems.append(f"{where} {c['name']}: secret {m['name']} mounted writable")
                for e in c.get("env", []):
                    if (
                        any(w in e["name"].upper() for w in SECRETISH)
                        and "value" in e
                        and not e["name"].endswith("_FILE")
                    ):
                        problems.append(
                            f"{where} {c['name']}: {e['name']} is a literal value, not a secretKeyRef"
                        )
                sc = c.get("securityContext", {})
                if sc.get("runAsUser") == 0 or sc.get("runAsGroup") == 0:
                    problems.append(f"{where} {c['name']}: runs as uid/gid 0")
                if sc.get("capabilities", {}).get("add"):
                    problems.append(f"{where} {c['name']}: adds capabilities {sc['capabilities']['add']}")
                if c.get("stdin") or c.get("tty"):
                    problems.append(f"{where} {c['name']}: stdin/tty")
            if spec.get("shareProcessNamespace"):
                problems.append(f"{where}: shareProcessNamespace lets one container read another's memory")
            if (spec.get("securityContext") or {}).get("sysctls"):
                problems.append(f"{where}: sysctls")
            for c in spec["containers"]:
                rp = c.get("readinessProbe", {})
                if rp.get("httpGet", {}).get("path") == "/readyz" and rp.get("timeoutSeconds", 1) < 3:
                    problems.append(
                        f"{where}: /readyz asks TF Serving (2 s deadline); probe timeout under 3 s"
                    )
    figures["cases"] += n_pods
    figures["details"] = {"scenarios": sorted(scenarios), "pod_specs_checked": n_pods}
    assert len(scenarios) >= 9 and n_pods >= 2 * len(scenarios)
    assert not problems, "\n".join(problems)


__all__ = ["MODEL"]
