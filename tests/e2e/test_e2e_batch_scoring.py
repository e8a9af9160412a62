"""The batch-scoring Job and the Open Inference Protocol's gRPC port on a real control plane (KWOK
nodes: containers never run, so what is checked is what the API server, the scheduler and the
controllers do with the chart's objects)."""

from __future__ import annotations

from collections.abc import Callable

from e2e_support import GPU_RESOURCE, Cluster, Release, wait_until
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

    # KWOK's upstream pod-complete stage finishes a Job's pod 1-6 s after it runs, so the pod may already
    # be Succeeded when the serving pods are Ready: a check for "Running" alone raced it (it failed on a
    # slow CI machine). What is asserted is that the Job's one pod was scheduled and ran, and that the
    # Job controller counted it: active while it ran, succeeded once it finished.
    def scheduled() -> client.V1Pod | None:
        pods = cluster.core.list_namespaced_pod(rel.namespace, label_selector=selector).items
        ran = [p for p in pods if p.spec.node_name and p.status.phase in ("Running", "Succeeded")]
        return ran[0] if len(ran) == 1 else None

    pod = wait_until("the scoring pod scheduled and running (or finished)", scheduled, 120)
    pods = cluster.core.list_namespaced_pod(rel.namespace, label_selector=selector).items
    assert [p.metadata.name for p in pods] == [pod.metadata.name], "the Job made more than one pod"
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

    def counted() -> client.V1JobStatus | None:
        st = batch.read_namespaced_job(job.metadata.name, rel.namespace).status
        return st if (st.active or 0) + (st.succeeded or 0) == 1 and not st.failed else None

    assert wait_until("the Job counts its one pod (active or succeeded)", counted, 60)
    net = client.NetworkingV1Api(cluster.api)
    names = {p.metadata.name for p in net.list_namespaced_network_policy(rel.namespace).items}
    assert any(n.endswith("-batch-scoring") for n in names), names


def test_oip_grpc_port_published_on_ready_pods(
    cluster: Cluster, release_factory: Callable[..., Release]
) -> None:
    """The API server admits the Service's second port and the NetworkPolicy rule, and the serving pods
    become Ready with the named container port the Service targets. (Endpoints are not checked: this
    cluster's KWOK pod IPs are loopback addresses, which EndpointSlice validation refuses.)"""
    rel = release_factory("oip", ["oip-grpc-values.yaml"])
    rel.install()
    pods = rel.wait_ready(rel.deployment().spec.replicas)
    (svc,) = cluster.core.list_namespaced_service(rel.namespace).items
    ports = {(p.name, p.port, p.target_port, p.app_protocol) for p in svc.spec.ports}
    assert ports == {("http", 80, "http", None), ("grpc-oip", 9000, "grpc-oip", "grpc")}, ports
    for pod in pods:
        sidecar = next(c for c in pod.spec.containers if c.name == "sidecar")
        assert {(p.name, p.container_port) for p in sidecar.ports} == {("http", 8080), ("grpc-oip", 8081)}
        env = {e.name: e.value for e in sidecar.env}
        assert env["SIDECAR_OIP_GRPC_PORT"] == "8081" and env["SIDECAR_API_KEYS_FILE"]
        assert sidecar.readiness_probe.http_get.port == "http"  # probes unchanged
    net = client.NetworkingV1Api(cluster.api)
    (policy,) = [
        p
        for p in net.list_namespaced_network_policy(rel.namespace).items
        if p.metadata.name == svc.metadata.name
    ]
    assert [p.port for p in policy.spec.ingress[0].ports] == ["http", "grpc-oip"]
