"""The GPU scenario lands TF Serving on GPU nodes only, the CPU scenario on CPU nodes."""

from __future__ import annotations

from collections.abc import Callable

from e2e_support import GPU_RESOURCE, Cluster, Release, pod_ready, serving_container


def test_placement_gpu_scenario_all_ready_on_gpu_nodes(
    cluster: Cluster, priority_class: str, release_factory: Callable[..., Release]
) -> None:
    rel = release_factory("gpu", ["gpu-values.yaml"])
    rel.install()
    pods = rel.wait_ready(2)

    gpu_nodes = {n.metadata.name for n in cluster.nodes("gpu")}
    cpu_nodes = {n.metadata.name for n in cluster.nodes("cpu")}
    for p in pods:
        assert pod_ready(p), p.metadata.name
        assert p.spec.node_name in gpu_nodes, f"{p.metadata.name} on {p.spec.node_name}, not a GPU node"
        tfs = serving_container(p.spec)
        assert tfs.image.endswith("-gpu"), tfs.image
        assert tfs.resources.limits[GPU_RESOURCE] == "1"
        assert p.spec.priority_class_name == priority_class and p.spec.priority == 100000
    # The scenario spreads replicas over GPU nodes with DoNotSchedule: one per node.
    assert len({p.spec.node_name for p in pods}) == 2

    # No pod of the release (serving or otherwise) on a CPU node.
    every_pod = cluster.core.list_namespaced_pod(rel.namespace).items
    assert every_pod, "no pods at all"
    on_cpu = [p.metadata.name for p in every_pod if p.spec.node_name in cpu_nodes]
    assert on_cpu == [], f"pods of the GPU scenario on CPU nodes: {on_cpu}"


def test_placement_cpu_scenario_on_cpu_nodes(
    cluster: Cluster, release_factory: Callable[..., Release]
) -> None:
    rel = release_factory("cpu", ["cpu-values.yaml"])
    rel.install()
    # cpu-values.yaml turns the HPA on, so the chart leaves Deployment.spec.replicas to it: the real HPA
    # controller raises the Deployment to minReplicas (2) even though no metrics server runs here.
    pods = rel.wait_ready(2)
    hpa = cluster.autoscaling.read_namespaced_horizontal_pod_autoscaler(
        rel.deployment().metadata.name, rel.namespace
    )
    assert hpa.spec.min_replicas == 2 and hpa.status.desired_replicas == 2

    cpu_nodes = {n.metadata.name for n in cluster.nodes("cpu")}
    for p in pods:
        assert p.spec.node_name in cpu_nodes, f"{p.metadata.name} on {p.spec.node_name}, not a CPU node"
        tfs = serving_container(p.spec)
        assert not tfs.image.endswith("-gpu"), tfs.image
        assert GPU_RESOURCE not in (tfs.resources.limits or {})
        assert not [t for t in (p.spec.tolerations or []) if t.key == GPU_RESOURCE]
