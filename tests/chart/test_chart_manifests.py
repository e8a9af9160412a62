"""k8s/ (kustomize base + cpu/gpu overlays) is generated from the chart and must not drift from it;
scripts/k8s-tools.sh is the interface other areas (the e2e cluster) use to get helm and kubectl."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import ROOT, k8s_tools_dir, run, tool

Obj = dict[str, Any]
GENERATOR = ROOT / "scripts" / "render-k8s-manifests.py"


def test_k8s_manifests_do_not_drift_from_chart() -> None:
    proc = run([sys.executable, str(GENERATOR), "--helm", tool("helm"), "--check"], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_k8s_manifests_drift_is_detected(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    run([sys.executable, str(GENERATOR), "--helm", tool("helm"), "--out", str(out)])
    assert (
        run([sys.executable, str(GENERATOR), "--helm", tool("helm"), "--out", str(out), "--check"]).returncode
        == 0
    )
    dep = out / "overlays" / "gpu" / "deployment.yaml"
    dep.write_text(dep.read_text().replace("maxUnavailable: 0", "maxUnavailable: 1"))
    proc = run(
        [sys.executable, str(GENERATOR), "--helm", tool("helm"), "--out", str(out), "--check"], check=False
    )
    assert proc.returncode == 1 and "differs" in proc.stdout and "deployment.yaml" in proc.stdout


def _helm_render(overlay: str) -> list[Obj]:
    out = run(
        [
            tool("helm"),
            "template",
            "text-classifier",
            str(ROOT / "helm" / "text-classifier"),
            "--namespace",
            "text-classifier",
            "--kube-version",
            "1.35.0",
            "--skip-tests",
            "-f",
            str(ROOT / "k8s" / "chart-values" / f"{overlay}.yaml"),
        ]
    ).stdout
    return [d for d in yaml.safe_load_all(out.replace("managed-by: Helm", "managed-by: kubectl")) if d]


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_k8s_overlay_builds_to_chart_render(overlay: str) -> None:
    """`kubectl kustomize k8s/overlays/<overlay>` yields exactly the chart's objects."""
    built = [
        d
        for d in yaml.safe_load_all(run([tool("kubectl"), "kustomize", f"k8s/overlays/{overlay}"]).stdout)
        if d
    ]

    def index(objs: list[Obj]) -> dict[tuple[str, str], Obj]:
        return {(o["kind"], o["metadata"]["name"]): o for o in objs}

    assert index(built) == index(_helm_render(overlay))
    dep = index(built)[("Deployment", "text-classifier")]["spec"]["template"]["spec"]
    limits = {k for c in dep["containers"] for k in c["resources"]["limits"]}
    assert ("nvidia.com/gpu" in limits) is (overlay == "gpu")


def test_k8s_base_holds_only_shared_objects() -> None:
    base = yaml.safe_load((ROOT / "k8s" / "base" / "kustomization.yaml").read_text())
    assert "deployment.yaml" not in base["resources"] and "service.yaml" in base["resources"]
    for overlay in ("cpu", "gpu"):
        k = yaml.safe_load((ROOT / "k8s" / "overlays" / overlay / "kustomization.yaml").read_text())
        assert k["resources"][0] == "../../base" and "deployment.yaml" in k["resources"]


def test_k8s_tools_script_prints_bin_dir() -> None:
    """The documented interface: stdout is exactly the bin dir holding the pinned helm and kubectl."""
    proc = subprocess.run(
        [str(ROOT / "scripts" / "k8s-tools.sh")], capture_output=True, text=True, timeout=300, check=True
    )
    (line,) = proc.stdout.splitlines()
    assert Path(line) == k8s_tools_dir()
    helm_version = run([os.path.join(line, "helm"), "version", "--template", "{{.Version}}"]).stdout
    assert helm_version == "v4.1.4"
    kubectl = run([os.path.join(line, "kubectl"), "version", "--client", "-o", "yaml"]).stdout
    assert yaml.safe_load(kubectl)["clientVersion"]["gitVersion"] == "v1.35.2"
    check = subprocess.run(
        [str(ROOT / "scripts" / "k8s-tools.sh"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0 and check.stdout.strip() == line


def test_k8s_tools_check_fails_on_empty_cache(tmp_path: Path) -> None:
    env = {**os.environ, "K8S_TOOLS_DIR": str(tmp_path / "empty")}
    proc = subprocess.run(
        [str(ROOT / "scripts" / "k8s-tools.sh"), "--check"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 1 and proc.stdout == "" and "not installed" in proc.stderr
