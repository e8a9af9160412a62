"""Helpers of the e2e tests (cluster handle, Helm releases, readiness watcher); fixtures: conftest.py."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "text-classifier"
CI_DIR = CHART / "ci"
ADD_NODE = ROOT / "scripts" / "cluster" / "add-node.sh"
CRD_DIR = Path(__file__).resolve().parent / "crds"
KUBECONFIG_ENV = "E2E_KUBECONFIG"
POOL_LABEL = "e2e.text-classifier.io/pool"
GPU_RESOURCE = "nvidia.com/gpu"
# ci/gpu-values.yaml sets priorityClassName; a cluster admin creates the class once per cluster.
PRIORITY_CLASS = "text-classifier-serving"


def wait_until(what: str, predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.5) -> Any:
    """Poll until predicate() is truthy; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last value: {last!r})")


def run(
    cmd: list[str], *, check: bool = True, timeout: float = 300, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run helm/kubectl the way a user does; on an unexpected exit show the command's output."""
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        pytest.fail(
            f"command failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def pod_ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def pod_active(pod: client.V1Pod) -> bool:
    return pod.metadata.deletion_timestamp is None and pod.status.phase not in ("Succeeded", "Failed")


def pod_requests(pod: client.V1Pod, resource: str) -> int:
    total = 0
    for c in pod.spec.containers:
        req = (c.resources.requests or {}) if c.resources else {}
        total += int(req.get(resource, 0))
    return total


def serving_container(spec: client.V1PodSpec) -> client.V1Container:
    """The TF Serving container of a serving pod (found by its image, not by a name the chart may change)."""
    found = [c for c in spec.containers if "tensorflow/serving" in (c.image or "")]
    assert len(found) == 1, (
        f"expected one tensorflow/serving container, got {[c.image for c in spec.containers]}"
    )
    return found[0]


@dataclass
class Cluster:
    kubeconfig: str
    api: client.ApiClient
    core: client.CoreV1Api = field(init=False)
    apps: client.AppsV1Api = field(init=False)
    policy: client.PolicyV1Api = field(init=False)
    autoscaling: client.AutoscalingV2Api = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.policy = client.PolicyV1Api(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)

    def node_pool(self, node_name: str) -> str:
        return str(self.core.read_node(node_name).metadata.labels.get(POOL_LABEL, "?"))

    def nodes(self, pool: str) -> list[client.V1Node]:
        return list(self.core.list_node(label_selector=f"{POOL_LABEL}={pool}").items)

    def add_node(self, name: str, pool: str, zone: str) -> None:
        run(["bash", str(ADD_NODE), name, pool, zone])

    def delete_node(self, name: str) -> None:
        try:
            self.core.delete_node(name)
        except ApiException as e:
            if e.status != 404:
                raise


@dataclass
class Release:
    """One Helm release of the chart in its own namespace."""

    cluster: Cluster
    name: str
    namespace: str
    values: list[Path]
    sets: list[str]
    pvs: list[str] = field(default_factory=list)

    def helm_args(self) -> list[str]:
        args: list[str] = []
        for v in self.values:
            args += ["-f", str(v)]
        for s in self.sets:
            args += ["--set", s]
        return args

    def render(self) -> list[dict[str, Any]]:
        out = run(["helm", "template", self.name, str(CHART), "-n", self.namespace, *self.helm_args()]).stdout
        return [d for d in yaml.safe_load_all(out) if d]

    def provision_claims(self) -> None:
        """Static PersistentVolumes pre-bound to the release's claims (no storage provisioner runs here).

        The PV controller in kube-controller-manager still does the binding; nothing ever mounts the path.
        """
        for doc in self.render():
            if doc.get("kind") != "PersistentVolumeClaim":
                continue
            claim = doc["metadata"]["name"]
            pv_name = f"{self.namespace}-{claim}"[:63].rstrip("-.")
            spec = doc["spec"]
            pv = client.V1PersistentVolume(
                metadata=client.V1ObjectMeta(name=pv_name, labels={"e2e.text-classifier.io/static": "true"}),
                spec=client.V1PersistentVolumeSpec(
                    capacity={"storage": spec["resources"]["requests"]["storage"]},
                    access_modes=spec["accessModes"],
                    storage_class_name=spec.get("storageClassName", ""),
                    persistent_volume_reclaim_policy="Retain",
                    host_path=client.V1HostPathVolumeSource(path=f"/srv/e2e-models/{pv_name}"),
                    claim_ref=client.V1ObjectReference(namespace=self.namespace, name=claim),
                ),
            )
            self.cluster.core.create_persistent_volume(pv)
            self.pvs.append(pv_name)

    def install(self, timeout: str = "180s") -> str:
        self.provision_claims()
        cmd = ["helm", "install", self.name, str(CHART), "-n", self.namespace, *self.helm_args()]
        return run([*cmd, "--wait", "--timeout", timeout]).stdout

    def deployment(self) -> client.V1Deployment:
        items = self.cluster.apps.list_namespaced_deployment(
            self.namespace, label_selector=f"app.kubernetes.io/instance={self.name}"
        ).items
        assert len(items) == 1, f"expected one Deployment in release {self.name}, got {len(items)}"
        return items[0]

    def selector(self) -> str:
        labels = self.deployment().spec.selector.match_labels
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    def pods(self) -> list[client.V1Pod]:
        """The serving pods (the Deployment's selector), excluding terminating and finished ones."""
        items = self.cluster.core.list_namespaced_pod(self.namespace, label_selector=self.selector()).items
        return [p for p in items if pod_active(p)]

    def wait_ready(self, replicas: int, timeout: float = 120) -> list[client.V1Pod]:
        def ok() -> list[client.V1Pod] | None:
            pods = self.pods()
            d = self.deployment()
            done = (
                d.status.observed_generation == d.metadata.generation
                and (d.status.updated_replicas or 0) == replicas
                and (d.status.ready_replicas or 0) == replicas
                and len(pods) == replicas
                and all(pod_ready(p) for p in pods)
            )
            return pods if done else None

        return list(wait_until(f"{replicas} ready pods of {self.name}", ok, timeout))


class ReadyWatcher:
    """Watches a release's pods and Deployment from a background thread and records, after every event, how
    many pods are Ready and not terminating, and the Deployment's readyReplicas against spec.replicas."""

    def __init__(self, cluster: Cluster, namespace: str, selector: str, deployment: str) -> None:
        self.cluster, self.namespace, self.selector, self.deployment = (
            cluster,
            namespace,
            selector,
            deployment,
        )
        self.ready_counts: list[int] = []
        self.total_counts: list[int] = []
        self.deploy_samples: list[tuple[int, int]] = []  # (readyReplicas, spec.replicas)
        self.pod_names: set[str] = set()
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._guard, args=(self._watch_pods,), daemon=True),
            threading.Thread(target=self._guard, args=(self._watch_deployment,), daemon=True),
        ]

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as e:  # reported by stop()
            self.errors.append(e)

    def _watch_pods(self) -> None:
        core = self.cluster.core
        initial = core.list_namespaced_pod(self.namespace, label_selector=self.selector)
        state = {p.metadata.name: p for p in initial.items}
        rv = initial.metadata.resource_version
        self._record(state)
        while not self._stop.is_set():
            w = watch.Watch()
            for ev in w.stream(
                core.list_namespaced_pod,
                self.namespace,
                label_selector=self.selector,
                resource_version=rv,
                timeout_seconds=2,
            ):
                pod = ev["object"]
                rv = pod.metadata.resource_version
                if ev["type"] == "DELETED":
                    state.pop(pod.metadata.name, None)
                else:
                    state[pod.metadata.name] = pod
                self._record(state)

    def _record(self, state: dict[str, client.V1Pod]) -> None:
        active = [p for p in state.values() if pod_active(p)]
        self.pod_names.update(state)
        self.ready_counts.append(sum(1 for p in active if pod_ready(p)))
        self.total_counts.append(len(active))

    def _watch_deployment(self) -> None:
        apps = self.cluster.apps
        rv = apps.read_namespaced_deployment(self.deployment, self.namespace).metadata.resource_version
        while not self._stop.is_set():
            w = watch.Watch()
            for ev in w.stream(
                apps.list_namespaced_deployment,
                self.namespace,
                field_selector=f"metadata.name={self.deployment}",
                resource_version=rv,
                timeout_seconds=2,
            ):
                d = ev["object"]
                rv = d.metadata.resource_version
                self.deploy_samples.append((d.status.ready_replicas or 0, d.spec.replicas or 0))

    def __enter__(self) -> ReadyWatcher:
        for t in self._threads:
            t.start()
        wait_until("the watcher's first sample", lambda: self.ready_counts, 10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)
        if self.errors:
            raise AssertionError(f"watch failed: {self.errors[0]!r}")


def describe_pod_events(cluster: Cluster, namespace: str, pod: str) -> list[str]:
    evs = cluster.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod}").items
    return [f"{e.reason}: {e.message}" for e in evs]


def dump(obj: Any) -> str:
    return json.dumps(client.ApiClient().sanitize_for_serialization(obj), indent=1)[:3000]
