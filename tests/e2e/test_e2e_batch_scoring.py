"""The batch-scoring Job and the Open Inference Protocol's gRPC port on a real control plane (KWOK
nodes: containers never run, so what is checked is what the API server, the scheduler and the
controllers do with the chart's objects)."""

from __future__ import annotations

from collections.abc import Callable

from e2e_support import GPU_RESOURCE, Cluster, Release, pod_active, wait_until
from kubernetes import client


def test_batch_scoring_job_runs_on_the_gpu_pool_with_the_model_claim(
    cluster: Cluster, release_factory: Callable[..., Release]
) -> None:
    rel = release_factory("batch", ["batch-scoring-values.yaml"])
    rel.install()
    rel.wait_ready(rel.deployment().spec.replicas)
    batch = client.BatchV1Api(cluster.api)
    (job,) = batch.list_namespaced_job(rel.namespace).items
    assert job.metadata.name.endswith("-score-1"), job.metadata.name
    selector = "app.kubernetes.io/component=batch-scoring"

    def running() -> client.V1Pod | None:
        pods = [p for p in cluster.core.list_namespaced_pod(rel.namespace, label_selector=selector).items]
        live = [p for p in pods if pod_active(p) and p.status.phase == "Running"]
        return live[0] if len(live) == 1 else None

    pod = wait_until("the scoring pod running", running, 120)
    gpu_nodes = {n.metadata.name for n in cluster.nodes("gpu")}
    assert pod.spec.node_name in gpu_nodes, f"scoring pod on {pod.spec.node_name}, not a GPU node"
    scorer = pod.spec.containers[0]
    assert scorer.command == ["python", "-m", "scoring"]
    assert scorer.resources.limits[GPU_RESOURCE] == "1"
    claim = next(v for v in pod.spec.volumes if v.name == "models").persistent_volume_claim.claim_name
    pvc = cluster.core.read_namespaced_persistent_volume_claim(claim, rel.namespace)
    assert pvc.status.phase == "Bound"
    # the serving pods mount the same claim, read-only; the Job reads its input from it and writes there
    serving = rel.pods()[0]
    assert (
        claim
        == next(v for v in serving.spec.volumes if v.name == "models").persistent_volume_claim.claim_name
    )
    assert wait_until("the Job counts its pod active", lambda: batch.read_namespaced_job(
        job.metadata.name, rel.namespace).status.active == 1, 60)  # fmt: skip
    net = client.NetworkingV1Api(cluster.api)
    names = {p.metadata.name for p in net.list_namespaced_network_policy(rel.namespace).items}
    assert any(n.endswith("-batch-scoring") for n in names), names


def test_oip_grpc_port_has_ready_endpoints(cluster: Cluster, release_factory: Callable[..., Release]) -> None:
    rel = release_factory("oip", ["oip-grpc-values.yaml"])
    rel.install()
    pods = rel.wait_ready(rel.deployment().spec.replicas)
    disc = client.DiscoveryV1Api(cluster.api)

    def slices() -> list[client.V1EndpointSlice] | None:
        items = disc.list_namespaced_endpoint_slice(
            rel.namespace, label_selector=f"kubernetes.io/service-name={rel.deployment().metadata.name}"
        ).items
        ready = [e for s in items for e in (s.endpoints or []) if e.conditions and e.conditions.ready]
        return items if len(ready) == len(pods) else None

    found = wait_until("endpoint slices with every pod ready", slices, 60)
    ports = {(p.name, p.port) for s in found for p in (s.ports or [])}
    assert ("grpc-oip", 8081) in ports and ("http", 8080) in ports, ports
    svc = cluster.core.list_namespaced_service(rel.namespace).items
    svc_ports = {(p.name, p.port) for s in svc for p in s.spec.ports}
    assert ("grpc-oip", 9000) in svc_ports, svc_ports
