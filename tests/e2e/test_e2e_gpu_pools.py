"""GPU pools the way autoscalers and fixed pools present them, on the real scheduler with KWOK nodes:

- a pool selected by a custom label (Karpenter's NodePool name) with a custom taint, at zero nodes: the
  pods wait as unschedulable (what Karpenter or Cluster Autoscaler act on) and land on the nodes that
  join, which carry the template's labels but not GPU feature discovery's nvidia.com/gpu.present; a
  release that still selected that label would never land there (scale-up from zero);
- a fixed pool with no spare GPU: the default surge rollout stays stuck on a Pending pod, the
  `maxSurge: 0, maxUnavailable: 1` strategy (ci/gpu-fixed-pool-values.yaml) completes;
- the longest release name Helm allows: the objects are accepted, and each upgrade gets its own
  training Job.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_support import CHART, GPU_RESOURCE, Cluster, Release, pod_ready, run, wait_until
from kubernetes import client
from kubernetes.client.rest import ApiException

POOL = "gpu-inference"
TAINT = client.V1Taint(key="dedicated", value="inference", effect="NoSchedule")
GPU_TAINT = client.V1Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule")


class Pool:
    """KWOK nodes added and removed by the test, as an autoscaler (or a pool admin) would."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.names: list[str] = []

    def add(self, labels: dict[str, str], taints: list[client.V1Taint], gpus: int, zone: str) -> str:
        name = f"e2e-pool-{uuid.uuid4().hex[:6]}"
        res = {"cpu": "16", "memory": "64Gi", "pods": "110", GPU_RESOURCE: str(gpus)}
        node = client.V1Node(
            metadata=client.V1ObjectMeta(
                name=name,
                annotations={"kwok.x-k8s.io/node": "fake"},
                labels={
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/hostname": name,
                    "type": "kwok",
                    "topology.kubernetes.io/zone": zone,
                    **labels,
                },
            ),
            spec=client.V1NodeSpec(taints=taints),
            status=client.V1NodeStatus(allocatable=res, capacity=res),
        )
        self.cluster.core.create_node(node)
        self.names.append(name)
        wait_until(
            f"node {name} Ready",
            lambda: any(
                c.type == "Ready" and c.status == "True"
                for c in (self.cluster.core.read_node(name).status.conditions or [])
            ),
            60,
        )
        return name

    def delete_all(self) -> None:
        for n in self.names:
            self.cluster.delete_node(n)


@pytest.fixture()
def pool(cluster: Cluster) -> Iterator[Pool]:
    p = Pool(cluster)
    yield p
    p.delete_all()


def unschedulable(rel: Release) -> list[str]:
    msgs = []
    for p in rel.pods():
        for c in p.status.conditions or []:
            if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
                msgs.append(c.message or "")
    return msgs


def helm_install_no_wait(rel: Release) -> None:
    rel.provision_claims()
    run(["helm", "install", rel.name, str(CHART), "-n", rel.namespace, *rel.helm_args()])


def test_custom_pool_scales_up_from_zero(
    cluster: Cluster, pool: Pool, release_factory: Callable[..., Release], tmp_path: Path
) -> None:
    rel = release_factory("karp", ["gpu-custom-pool-values.yaml"])
    # The same pool selected the old way: GPU feature discovery's label on top of the pool's.
    gfd = tmp_path / "gfd-values.yaml"
    gfd.write_text('gpu:\n  nodeSelector:\n    nvidia.com/gpu.present: "true"\n')
    old = release_factory("gfd", ["gpu-custom-pool-values.yaml", str(gfd)])
    helm_install_no_wait(rel)
    helm_install_no_wait(old)

    # Zero nodes in the pool: every pod is unschedulable, the signal an autoscaler scales up on.
    msgs = wait_until("2 unschedulable pods per release", lambda: len(unschedulable(rel)) == 2, 60)
    assert msgs
    assert all("didn't match Pod's node affinity/selector" in m for m in unschedulable(rel)), unschedulable(
        rel
    )

    # The autoscaler adds nodes from the pool's template: its label and taints, GPUs, and no
    # nvidia.com/gpu.present yet (that label comes from GPU feature discovery after boot).
    labels = {"karpenter.sh/nodepool": POOL, "node.kubernetes.io/instance-type": "g6.xlarge"}
    new = {pool.add(labels, [TAINT, GPU_TAINT], 1, zone) for zone in ("zone-a", "zone-b")}
    pods = rel.wait_ready(2, timeout=120)
    assert {p.spec.node_name for p in pods} == new
    for p in pods:
        assert p.spec.node_selector == {"karpenter.sh/nodepool": POOL}
        assert pod_ready(p)

    # The release that also selects nvidia.com/gpu.present is still waiting, with the new nodes there
    # (the scheduler retries unschedulable pods when a node joins; give it time to have done so).
    time.sleep(5)
    assert len(unschedulable(old)) == 2 and all(not p.spec.node_name for p in old.pods())
    events = cluster.core.list_namespaced_event(
        old.namespace,
        field_selector=f"involvedObject.name={old.pods()[0].metadata.name},reason=FailedScheduling",
    ).items
    assert any("didn't match Pod's node affinity/selector" in (e.message or "") for e in events)


def test_fixed_pool_rollout_needs_no_spare_gpu(
    cluster: Cluster, pool: Pool, release_factory: Callable[..., Release]
) -> None:
    node_api = client.NodeV1Api(cluster.api)
    try:
        node_api.create_runtime_class(
            client.V1RuntimeClass(metadata=client.V1ObjectMeta(name="nvidia"), handler="nvidia")
        )
    except ApiException as e:
        if e.status != 409:
            raise
    labels = {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    nodes = {pool.add(labels, [GPU_TAINT], 1, z) for z in ("zone-a", "zone-b", "zone-c")}
    # First the default strategy (surge) on this full pool: the surge pod never finds a GPU.
    surge = ["strategy.rollingUpdate.maxSurge=1", "strategy.rollingUpdate.maxUnavailable=0"]
    rel = release_factory("fixed", ["gpu-fixed-pool-values.yaml"], surge)
    rel.install()
    pods = rel.wait_ready(3)
    assert {p.spec.node_name for p in pods} == nodes and all(
        p.spec.runtime_class_name == "nvidia" for p in pods
    )
    deployment = rel.deployment().metadata.name
    upgrade = ["helm", "upgrade", rel.name, str(CHART), "-n", rel.namespace, "-f", str(rel.values[0])]
    run([*upgrade, *[x for s in surge for x in ("--set", s)], "--set-string", "podAnnotations.model=v2"])
    stuck = run(
        ["kubectl", "rollout", "status", f"deployment/{deployment}", "-n", rel.namespace, "--timeout=20s"],
        check=False,
    )
    assert stuck.returncode != 0, stuck.stdout
    msgs = wait_until("a surge pod Pending on GPUs", lambda: unschedulable(rel), 30)
    assert any(f"Insufficient {GPU_RESOURCE}" in m for m in msgs), msgs

    # The fixed-pool strategy from the scenario: one pod at a time, no spare GPU needed.
    run([*upgrade, "--set-string", "podAnnotations.model=v3", "--wait", "--timeout", "180s"])
    done = run(
        ["kubectl", "rollout", "status", f"deployment/{deployment}", "-n", rel.namespace, "--timeout=120s"]
    )
    assert "successfully rolled out" in done.stdout
    pods = rel.wait_ready(3)
    assert all(p.metadata.annotations.get("model") == "v3" for p in pods)
    strategy = rel.deployment().spec.strategy.rolling_update
    assert (str(strategy.max_surge), str(strategy.max_unavailable)) == ("0", "1")


def test_longest_release_name_installs_and_upgrades(
    cluster: Cluster, release_factory: Callable[..., Release]
) -> None:
    name = "search-ranking-eu-west1-production-canary-release-002"
    assert len(name) == 53  # the most Helm allows
    # Training on (one Job per revision) and client-label-only NetworkPolicy (the label key is the
    # longest name the chart builds): the API server validates both.
    rel = release_factory(name, [], ["training.enabled=true", "networkPolicy.allowSameNamespace=false"])
    rel.install()
    rel.wait_ready(2)
    batch = client.BatchV1Api(cluster.api)

    def jobs() -> list[str]:
        return sorted(j.metadata.name for j in batch.list_namespaced_job(rel.namespace).items)

    (first,) = jobs()
    assert first.endswith("-train-1") and len(first) <= 63, first
    # The upgrade creates the next revision's Job (a Job's template is immutable: reusing the name would
    # fail); Helm removes the previous revision's, which is no longer in the release.
    upgrade = ["helm", "upgrade", rel.name, str(CHART), "-n", rel.namespace, *rel.helm_args()]
    run([*upgrade, "--wait", "--timeout", "180s"])
    (second,) = wait_until(
        "the second revision's Job alone",
        lambda: jobs() if len(jobs()) == 1 and jobs() != [first] else None,
        60,
    )
    assert second == first.removesuffix("-1") + "-2", (first, second)
    run(["helm", "test", rel.name, "-n", rel.namespace, "--timeout", "120s"])
