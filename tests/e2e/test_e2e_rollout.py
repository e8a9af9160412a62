"""Rollouts driven by helm and kubectl keep every desired replica Ready (maxUnavailable 0),
and `kubectl rollout undo` / `helm rollback` restore the previous revision."""

from __future__ import annotations

import json
from collections.abc import Callable

from e2e_support import CHART, Cluster, ReadyWatcher, Release, run

DIGEST_V4 = "sha256:" + "4" * 64
DIGEST_V5 = "sha256:" + "5" * 64


def model_image(rel: Release) -> str:
    """Image of the init container that copies the model version into the pod (model.source=image)."""
    spec = rel.deployment().spec.template.spec
    found = [c.image for c in (spec.init_containers or []) if "model-news" in c.image]
    assert len(found) == 1, [c.image for c in (spec.init_containers or [])]
    return str(found[0])


def rollout_status(rel: Release, deployment: str) -> None:
    out = run(
        ["kubectl", "rollout", "status", f"deployment/{deployment}", "-n", rel.namespace, "--timeout=120s"]
    )
    assert "successfully rolled out" in out.stdout, out.stdout


def test_rollout_keeps_ready_replicas_and_rolls_back(
    cluster: Cluster, priority_class: str, release_factory: Callable[..., Release]
) -> None:
    rel = release_factory("roll", ["gpu-values.yaml", "model-image-values.yaml"])
    rel.install()
    rel.wait_ready(2)
    dep = rel.deployment()
    name, desired = dep.metadata.name, dep.spec.replicas
    assert desired == 2
    assert str(dep.spec.strategy.rolling_update.max_unavailable) == "0"
    v3 = model_image(rel)
    assert v3.endswith("@sha256:" + "0123456789abcdef" * 4), v3
    repo = v3.split("@", 1)[0]
    init_name = next(c.name for c in dep.spec.template.spec.init_containers if c.image == v3)

    with ReadyWatcher(cluster, rel.namespace, rel.selector(), name) as watcher:
        # 1. a new model version through Helm (the way a release pipeline ships one)
        upgrade = ["helm", "upgrade", rel.name, str(CHART), "-n", rel.namespace, *rel.helm_args()]
        run([*upgrade, "--set", f"model.image.digest={DIGEST_V4}", "--wait", "--timeout", "180s"])
        rollout_status(rel, name)
        rel.wait_ready(desired)
        assert model_image(rel) == f"{repo}@{DIGEST_V4}"

        # 2. another one by hand with kubectl set image
        run(
            [
                "kubectl",
                "set",
                "image",
                f"deployment/{name}",
                f"{init_name}={repo}@{DIGEST_V5}",
                "-n",
                rel.namespace,
            ]
        )
        rollout_status(rel, name)
        rel.wait_ready(desired)
        assert model_image(rel) == f"{repo}@{DIGEST_V5}"

        # 3. kubectl rollout undo: back to the previous ReplicaSet (helm's upgrade)
        run(["kubectl", "rollout", "undo", f"deployment/{name}", "-n", rel.namespace])
        rollout_status(rel, name)
        rel.wait_ready(desired)
        assert model_image(rel) == f"{repo}@{DIGEST_V4}"

        # 4. helm rollback to the first release revision. Helm 4 applies server-side: kubectl now owns the
        # init container's image field, so a plain rollback stops on that conflict (nothing changes), and
        # --force-conflicts takes the field back. Operators who used kubectl must pass it too (docs/e2e.md).
        rollback = ["helm", "rollback", rel.name, "1", "-n", rel.namespace, "--wait", "--timeout", "180s"]
        refused = run(rollback, check=False)
        assert refused.returncode != 0 and "conflict" in refused.stderr, refused.stderr
        assert model_image(rel) == f"{repo}@{DIGEST_V4}"
        run([*rollback, "--force-conflicts"])
        rollout_status(rel, name)
        rel.wait_ready(desired)
        assert model_image(rel) == v3

    # Never fewer Ready pods than desired, from the pods' own watch events...
    assert min(watcher.ready_counts) >= desired, watcher.ready_counts
    # ...and in the Deployment's status while spec.replicas was the desired count.
    samples = [ready for ready, spec in watcher.deploy_samples if spec == desired]
    assert samples and min(samples) >= desired, watcher.deploy_samples
    # Not vacuous: surge pods existed, and four rollouts each replaced both pods.
    assert max(watcher.total_counts) > desired, watcher.total_counts
    assert len(watcher.pod_names) >= desired * 5, sorted(watcher.pod_names)

    history = run(["helm", "history", rel.name, "-n", rel.namespace, "-o", "json"]).stdout
    last = json.loads(history)[-1]
    assert last["status"] == "deployed" and last["description"] == "Rollback to 1", history
