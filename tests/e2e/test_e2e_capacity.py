"""More GPU replicas than GPUs stay Pending with the scheduler's Insufficient nvidia.com/gpu
reason (what a cluster autoscaler acts on) and schedule once a GPU node joins."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from e2e_support import GPU_RESOURCE, Cluster, Release, pod_requests, run, wait_until


def test_capacity_extra_gpu_pods_pending_until_node_added(
    cluster: Cluster, priority_class: str, release_factory: Callable[..., Release]
) -> None:
    rel = release_factory("cap", ["gpu-values.yaml"])
    rel.install()
    rel.wait_ready(2)
    deployment = rel.deployment().metadata.name

    capacity = sum(int(n.status.allocatable[GPU_RESOURCE]) for n in cluster.nodes("gpu"))
    used = sum(
        pod_requests(p, GPU_RESOURCE)
        for p in cluster.core.list_pod_for_all_namespaces().items
        if p.spec.node_name
        and p.metadata.deletion_timestamp is None
        and p.status.phase in ("Pending", "Running")
    )
    assert capacity == 8 and used == 2, (capacity, used)
    want = 2 + (capacity - used) + 2  # two more replicas than there are GPUs
    run(["kubectl", "scale", f"deployment/{deployment}", f"--replicas={want}", "-n", rel.namespace])

    def split() -> tuple[list, list] | None:
        pods = rel.pods()
        bound = [p for p in pods if p.spec.node_name]
        unbound = [p for p in pods if not p.spec.node_name]
        reasons = [
            c
            for p in unbound
            for c in (p.status.conditions or [])
            if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
        ]
        ok = len(pods) == want and len(bound) == want - 2 and len(unbound) == 2 and len(reasons) == 2
        return (bound, unbound) if ok else None

    bound, unbound = wait_until("8 bound and 2 unschedulable GPU pods", split, 90)
    for p in unbound:
        cond = next(c for c in p.status.conditions if c.type == "PodScheduled")
        assert f"Insufficient {GPU_RESOURCE}" in cond.message, cond.message
    events = cluster.core.list_namespaced_event(
        rel.namespace,
        field_selector=f"involvedObject.name={unbound[0].metadata.name},reason=FailedScheduling",
    ).items
    assert any(f"Insufficient {GPU_RESOURCE}" in (e.message or "") for e in events), [
        e.message for e in events
    ]
    assert {cluster.node_pool(p.spec.node_name) for p in bound} == {"gpu"}

    new_node = f"gpu-extra-{uuid.uuid4().hex[:5]}"
    try:
        cluster.add_node(new_node, "gpu", "zone-c")
        pods = rel.wait_ready(want, timeout=120)
        placed = {p.metadata.name: p.spec.node_name for p in pods}
        for p in unbound:
            assert placed[p.metadata.name] == new_node, (p.metadata.name, placed.get(p.metadata.name))
    finally:
        run(["helm", "uninstall", rel.name, "-n", rel.namespace, "--wait", "--timeout", "120s"], check=False)
        cluster.delete_node(new_node)
