"""Security properties of every rendered object, OpenAPI validation, and the checkov scan."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import KUBE_VERSION, SCENARIOS, containers, pod_specs, run, tool

Obj = dict[str, Any]
Rendered = dict[str, list[Obj]]
ALL = [*SCENARIOS, "defaults"]
SKIPS_FILE = Path(__file__).with_name("checkov-skips.yaml")
CRD_KINDS = {"ServiceMonitor", "ScaledObject"}  # not in Kubernetes' OpenAPI; asserted in test_chart_scenarios


@pytest.mark.parametrize("name", ALL)
def test_chart_security_context_strict_everywhere(rendered: Rendered, name: str) -> None:
    specs = list(pod_specs(rendered[name]))
    assert len(specs) >= 2, "expected the Deployment and the helm test pod"
    for ident, spec in specs:
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True, ident
        assert psc["runAsUser"] >= 10000, ident
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, ident
        # only the training Job's evaluation gate talks to the API server (test_chart_gate_rbac_scope)
        gate = ident.startswith("Job/") and spec["serviceAccountName"].endswith("-training-gate")
        assert spec["automountServiceAccountToken"] is (True if gate else False), ident  # noqa: SIM210
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), ident
        for c in containers(spec):
            where = f"{ident} container {c['name']}"
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["privileged"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert c["resources"]["requests"] and c["resources"]["limits"], where
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), where
            assert not c["image"].endswith(":latest") and (":" in c["image"] or "@" in c["image"]), where
        for vol in spec.get("volumes", []):
            assert "hostPath" not in vol, ident


def test_chart_objects_valid_against_kubernetes_openapi(rendered: Rendered, tmp_path: Path) -> None:
    """Every rendered object of every scenario against the Kubernetes JSON schemas (strict: unknown
    fields are errors), with kubernetes-validate's schemas generated from the release's OpenAPI spec."""
    objs = [o for name in ALL for o in rendered[name]]
    proc = subprocess.run(
        [tool("python"), str(Path(__file__).with_name("k8s_validate.py")), KUBE_VERSION],
        input=json.dumps(objs),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert len(results) == len(objs)
    invalid = [f"{r['object']}: {r['message']}" for r in results if r["status"] == "invalid"]
    assert not invalid, "\n".join(invalid)
    unchecked = {r["object"].split("/")[0] for r in results if r["status"] == "no-schema"}
    assert unchecked <= CRD_KINDS, f"kinds without a schema: {unchecked - CRD_KINDS}"
    checked_kinds = {r["object"].split("/")[0] for r in results if r["status"] == "ok"}
    assert {
        "Deployment",
        "Service",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "Pod",
    } <= checked_kinds


def test_chart_openapi_validation_catches_errors() -> None:
    """The validator is not a no-op: a misplaced field and a wrong type are reported."""
    bad = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "a"},
            "spec": {"ports": [{"port": 80, "tagetPort": 1}]},
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "b"},
            "spec": {"maxUnavailable": []},
        },
    ]
    proc = subprocess.run(
        [tool("python"), str(Path(__file__).with_name("k8s_validate.py")), KUBE_VERSION],
        input=json.dumps(bad),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert [r["status"] for r in json.loads(proc.stdout)] == ["invalid", "invalid"]


def _skips() -> dict[str, str]:
    skips = yaml.safe_load(SKIPS_FILE.read_text())
    for check, why in skips.items():
        assert isinstance(why, str) and len(why.split()) >= 15, f"{check}: skip without a real justification"
    return dict(skips)


def test_chart_checkov_zero_failed_checks(rendered: Rendered, tmp_path: Path) -> None:
    """One checkov run over every scenario's manifests; only justified skips are allowed."""
    for name in ALL:
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(rendered[name], sort_keys=False))
    skips = _skips()
    proc = run(
        [
            tool("checkov"),
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-check",
            ",".join(skips),
            "--skip-download",
        ],
        check=False,
        timeout=600,
    )
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{f['check_id']} {f['check_name']}: {f['resource']} ({Path(f['file_path']).name})"
        for r in reports
        for f in r["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    passed = sum(r["summary"]["passed"] for r in reports)
    assert passed > 500, f"checkov ran too few checks ({passed}): did it parse the manifests?"
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    assert proc.returncode == 0, proc.stderr


def test_chart_checkov_skip_annotations_justified(rendered: Rendered) -> None:
    for o in rendered["defaults"]:
        for key, value in o["metadata"].get("annotations", {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, why = value.partition("=")
                assert check.startswith("CKV") and len(why.split()) >= 8, f"{o['metadata']['name']}: {value}"


@pytest.mark.parametrize("name", ALL)
def test_chart_gate_rbac_scope(rendered: Rendered, name: str) -> None:
    """RBAC exists only for the training Job's gate: get and patch of this release's tfserving ConfigMap."""
    objs = rendered[name]
    roles = [o for o in objs if o["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")]
    if not roles:
        return
    assert {o["kind"] for o in roles} == {"Role", "RoleBinding"}, name
    (cm,) = [
        o["metadata"]["name"]
        for o in objs
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-tfserving")
    ]
    (role,) = [o for o in roles if o["kind"] == "Role"]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [cm], "verbs": ["get", "patch"]}
    ], name
    (binding,) = [o for o in roles if o["kind"] == "RoleBinding"]
    (subject,) = binding["subjects"]
    jobs = [
        o
        for o in objs
        if o["kind"] == "Job" and o["spec"]["template"]["spec"]["serviceAccountName"] == subject["name"]
    ]
    assert len(jobs) == 1 and jobs[0]["metadata"]["name"].split("-")[-2] == "train", name
