"""`kubectl drain` of a GPU node is held back by the PodDisruptionBudget."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable

from e2e_support import Cluster, Release, pod_ready, run, wait_until


def test_drain_gpu_node_held_back_by_pdb(
    cluster: Cluster, priority_class: str, release_factory: Callable[..., Release]
) -> None:
    rel = release_factory("drain", ["gpu-values.yaml"], sets=["replicaCount=4"])
    rel.install()
    pods = rel.wait_ready(4)
    per_node = Counter(p.spec.node_name for p in pods)
    assert sorted(per_node.values()) == [2, 2], per_node  # DoNotSchedule spread over the two GPU nodes
    target, other = sorted(per_node)
    pdb_name = rel.deployment().metadata.name

    def pdb_allows(n: int) -> bool:
        st = cluster.policy.read_namespaced_pod_disruption_budget(pdb_name, rel.namespace).status
        return st is not None and st.disruptions_allowed == n

    wait_until("PDB allows 1 disruption", lambda: pdb_allows(1), 60)
    new_node = f"gpu-extra-{uuid.uuid4().hex[:5]}"
    # The rest of the GPU pool has no room: cordon the other GPU node, so an evicted pod cannot come back.
    run(["kubectl", "cordon", other])
    try:
        drain = ["kubectl", "drain", target, "--ignore-daemonsets", "--delete-emptydir-data"]
        held = run([*drain, "--timeout=40s"], check=False, timeout=120)
        out = held.stdout + held.stderr
        assert held.returncode != 0, out
        assert "violate the pod's disruption budget" in out, out

        left = [p for p in rel.pods() if p.spec.node_name == target]
        pending = [p for p in rel.pods() if not p.spec.node_name]
        assert len(left) == 1 and pod_ready(left[0]), [p.metadata.name for p in left]
        assert len(pending) == 1, [p.metadata.name for p in pending]
        st = cluster.policy.read_namespaced_pod_disruption_budget(pdb_name, rel.namespace).status
        assert (st.disruptions_allowed, st.current_healthy, st.desired_healthy) == (0, 3, 3), st
        assert cluster.core.read_node(target).spec.unschedulable is True

        # A GPU node joins (what the autoscaler does on the Pending pod): the replacement becomes Ready,
        # the budget allows the next eviction, and the drain completes.
        cluster.add_node(new_node, "gpu", "zone-c")
        wait_until(
            "the replacement Ready on the new node",
            lambda: [p for p in rel.pods() if p.spec.node_name == new_node and pod_ready(p)],
            90,
        )
        done = run([*drain, "--timeout=120s"], timeout=180)
        assert f"node/{target} drained" in done.stdout, done.stdout
        assert [p for p in rel.pods() if p.spec.node_name == target] == []
    finally:
        run(["kubectl", "uncordon", target, other], check=False)
        run(["helm", "uninstall", rel.name, "-n", rel.namespace, "--wait", "--timeout", "120s"], check=False)
        cluster.delete_node(new_node)
