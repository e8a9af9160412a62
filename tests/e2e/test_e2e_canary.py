"""A canary declared with `helm upgrade`, promoted through the evaluation gate (which patches the
ConfigMap with kubectl), and rolled back with `helm upgrade`: the declaration changes in the one
ConfigMap TF Serving and the sidecar read, the pods are never replaced (the pod template does not
change), and every replica stays Ready throughout. Containers do not run under KWOK: TF Serving's and
the sidecar's reaction to the changed files is tested over real processes in tests/lifecycle/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from e2e_support import CHART, Cluster, ReadyWatcher, Release, run

from contracts.rollout import Declared, Rollout, declared

REPO = Path(__file__).resolve().parents[2]


def state(cluster: Cluster, rel: Release) -> tuple[Declared, Rollout]:
    cm = cluster.core.read_namespaced_config_map(f"{rel.name}-text-classifier-tfserving", rel.namespace)
    decl = declared(cm.data["models.config"], "news")
    assert decl is not None, cm.data["models.config"]
    return decl, Rollout.from_json(cm.data["rollout.json"])


def helm_upgrade(rel: Release, *sets: str) -> str:
    """`helm upgrade --reuse-values`; after a kubectl change of the same ConfigMap Helm 4's server-side
    apply may report a conflict with kubectl's field manager: then, as docs/operations.md says, the
    values carry the change and --force-conflicts takes the fields back."""
    cmd = ["helm", "upgrade", rel.name, str(CHART), "-n", rel.namespace, "--reuse-values", "--wait"]
    cmd += [a for s in sets for a in ("--set", s)]
    res = run(cmd, check=False)
    if res.returncode == 0:
        return "applied"
    assert "conflict" in res.stderr, res.stderr
    run([*cmd, "--force-conflicts"])
    return "conflict, then --force-conflicts"


def test_canary_declared_promoted_and_rolled_back_without_replacing_pods(
    cluster: Cluster,
    priority_class: str,
    release_factory: Callable[..., Release],
    exported_models: Path,
    tmp_path: Path,
) -> None:
    base = tmp_path / "models"
    for v in (7, 8):  # the gate reads the versions' files: a copy of the model store
        shutil.copytree(exported_models / "news" / "1", base / "news" / str(v))
    rel = release_factory("canary", ["cpu-values.yaml"], ["model.stableVersion=7"])
    rel.install()
    dep = rel.deployment()
    desired, name = dep.spec.replicas, dep.metadata.name
    revision = dep.metadata.annotations["deployment.kubernetes.io/revision"]
    rel.wait_ready(desired)
    pods = {p.metadata.name for p in rel.pods()}
    decl, _ = state(cluster, rel)
    assert (decl.stable, decl.canary, decl.versions) == (7, None, {7})
    cm = f"{rel.name}-text-classifier-tfserving"

    with ReadyWatcher(cluster, rel.namespace, rel.selector(), name) as watcher:
        # 1. canary 8 at 10% with helm
        helm_upgrade(rel, "model.canary.version=8", "model.canary.weight=10")
        decl, ro = state(cluster, rel)
        assert (decl.stable, decl.canary, decl.versions) == (7, 8, {7, 8})
        assert (ro.mode, ro.weight) == ("split", 10)

        # 2. promote with the evaluation gate, which patches the ConfigMap through kubectl
        res = subprocess.run(
            [sys.executable, "-m", "training", "promote", "--model-name", "news", "--version", "8",
             "--model-base", str(base), "--configmap", cm, "--namespace", rel.namespace],
            cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert "stable v7" in res.stdout and "candidate v8" in res.stdout
        decl, _ = state(cluster, rel)
        assert (decl.stable, decl.canary, decl.previous, decl.versions) == (8, None, 7, {7, 8})

        # 3. the values catch up with what kubectl did, then roll back with helm
        print(
            "helm after kubectl, same declaration:",
            helm_upgrade(rel, "model.stableVersion=8", "model.previousVersion=7", "model.canary.version=0"),
        )
        decl, _ = state(cluster, rel)
        assert (decl.stable, decl.previous) == (8, 7)
        print(
            "helm rollback after kubectl:",
            helm_upgrade(rel, "model.stableVersion=7", "model.previousVersion=0"),
        )
        decl, _ = state(cluster, rel)
        assert (decl.stable, decl.canary, decl.previous, decl.versions) == (7, None, None, {7})

    assert not watcher.errors, watcher.errors
    assert min(watcher.ready_counts, default=desired) >= desired, watcher.ready_counts
    after = rel.deployment().metadata.annotations["deployment.kubernetes.io/revision"]
    assert after == revision, "the pod template changed: a new ReplicaSet rolled the pods"
    # the autoscaler may add replicas meanwhile; the pods of before all still run, from the same template
    assert pods <= {p.metadata.name for p in rel.pods()}, "pods were replaced"
    hashes = {p.metadata.labels["pod-template-hash"] for p in rel.pods()}
    assert len(hashes) == 1, hashes
