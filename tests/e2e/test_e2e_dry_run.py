"""Every ci/*-values.yaml scenario is accepted by the real API server (server-side dry run:
full validation and admission, nothing stored), with minimal CRDs for ServiceMonitor and ScaledObject."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from e2e_support import CHART, CI_DIR, Cluster, run

EXPECTED_SCENARIOS = {
    "auth",
    "autoscaling-custom-metric",
    "batch-scoring",
    "canary",
    "cpu",
    "extensions",
    "gpu",
    "gpu-custom-pool",
    "gpu-fixed-pool",
    "ingress-catch-all",
    "ingress-tls",
    "keda-scale-to-zero",
    "model-image",
    "object-storage",
    "object-storage-gcs",
    "object-storage-minio",
    "oip-grpc",
    "pvc",
    "training-gate",
}
SCENARIOS = sorted(p.name for p in CI_DIR.glob("*-values.yaml"))
# Not a ci/ file: the KEDA ScaledObject is only rendered with keda.enabled (HPA off).
EXTRA = {"defaults": [], "keda": ["--set", "autoscaling.enabled=false", "--set", "keda.enabled=true"]}
KINDS_SEEN: dict[str, set[str]] = {}


def render(release: str, namespace: str, args: list[str]) -> tuple[str, list[dict[str, Any]]]:
    out = run(["helm", "template", release, str(CHART), "-n", namespace, *args]).stdout
    return out, [d for d in yaml.safe_load_all(out) if d]


def server_dry_run(namespace: str, manifest: str, check: bool = True) -> Any:
    return run(
        ["kubectl", "apply", "--dry-run=server", "-n", namespace, "-f", "-"], stdin=manifest, check=check
    )


def test_dry_run_scenarios_all_present() -> None:
    assert {s.removesuffix("-values.yaml") for s in SCENARIOS} == EXPECTED_SCENARIOS


@pytest.mark.parametrize("scenario", [*SCENARIOS, *EXTRA])
def test_dry_run_scenario_accepted(
    cluster: Cluster, crds: list[str], priority_class: str, namespace: str, scenario: str
) -> None:
    args = EXTRA[scenario] if scenario in EXTRA else ["-f", str(CI_DIR / scenario)]
    manifest, docs = render("dry", namespace, args)
    assert docs, "nothing rendered"
    proc = server_dry_run(namespace, manifest)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == len(docs), proc.stdout
    assert all(ln.endswith("(server dry run)") for ln in lines), proc.stdout
    KINDS_SEEN[scenario] = {d["kind"] for d in docs}


def test_dry_run_covers_every_kind(cluster: Cluster) -> None:
    """Runs after the parametrized tests (file order): together they sent every kind the issue names."""
    seen = set().union(*KINDS_SEEN.values()) if KINDS_SEEN else set()
    want = {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "Ingress",
        "PodDisruptionBudget",
        "Job",
        "ServiceMonitor",
        "ScaledObject",
        "Pod",  # the helm test hook
    }
    assert want <= seen, f"missing kinds: {sorted(want - seen)}"


def test_dry_run_rejects_invalid_gpu_limits(cluster: Cluster, priority_class: str, namespace: str) -> None:
    """The check is not vacuous: the API server rejects what it should (extended resources such as
    nvidia.com/gpu must have equal requests and limits)."""
    _, docs = render("bad", namespace, ["-f", str(CI_DIR / "gpu-values.yaml")])
    dep = next(d for d in docs if d["kind"] == "Deployment")
    for c in dep["spec"]["template"]["spec"]["containers"]:
        limits = c.get("resources", {}).get("limits", {})
        if "nvidia.com/gpu" in limits:
            c["resources"]["requests"]["nvidia.com/gpu"] = 1
            limits["nvidia.com/gpu"] = 2
    proc = server_dry_run(namespace, yaml.safe_dump(dep), check=False)
    assert proc.returncode != 0, proc.stdout
    assert "nvidia.com/gpu" in proc.stderr and "must be equal" in proc.stderr, proc.stderr
