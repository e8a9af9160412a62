"""Fixtures of the real-node tests (`make e2e-pods`): one Helm release on the real node, behind Traefik.

The release is installed once per session, in the CPU scenario with the model on a PVC bound to a local
PersistentVolume on the real node; its training Job writes the first model version in the trainer image.
Without the environment `make e2e-pods` sets, every test fails with the reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pods_support import CHART, VALUES, Load, Release, apply, env, kjson, kubectl, wait_until

NAMESPACE = "e2e-pods"
RELEASE = "tc"
IMAGE_VARS = ("SIDECAR_IMAGE", "STANDIN_IMAGE", "TRAINER_IMAGE", "BUSYBOX_IMAGE")


@pytest.fixture(scope="session")
def ingress_url() -> str:
    for tool in ("helm", "kubectl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not on PATH: run these tests with `make e2e-pods`")
    try:
        os.environ["KUBECONFIG"] = env("E2E_KUBECONFIG")
        return env("E2E_INGRESS_URL")
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def node_name(ingress_url: str) -> str:
    name = env("E2E_NODE_NAME")
    node = kjson("get", "node", name)
    assert node["metadata"]["labels"].get("e2e.text-classifier.io/pool") == "cpu"
    assert "kwok.x-k8s.io/node" not in node["metadata"].get("annotations", {}), (
        "the real node is not a KWOK node"
    )
    return name


def _local_volume(node: str, path: Path) -> str:
    return f"""
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: e2e-local}}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: Immediate
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: e2e-pods-models}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: e2e-local
  local: {{path: "{path}"}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {{key: kubernetes.io/hostname, operator: In, values: ["{node}"]}}
"""


@pytest.fixture(scope="session")
def release(node_name: str) -> Iterator[Release]:
    images = {v: env(v) for v in IMAGE_VARS}
    images["SIDECAR_IMAGE_B"] = env("SIDECAR_IMAGE_B")
    volume = Path(env("E2E_CLUSTER_DIR")) / "node" / "volumes" / "models"
    volume.mkdir(parents=True, exist_ok=True)
    os.chown(volume, 10001, 10001)
    apply(_local_volume(node_name, volume))
    kubectl("create", "namespace", NAMESPACE)
    rel = Release(name=RELEASE, namespace=NAMESPACE, volume=volume, images=images)
    rel.helm("install", RELEASE, str(CHART), "-f", str(VALUES), *rel.image_args())
    # The first training Job writes version 1; the serving pods become Ready through their real probes.
    job = kjson("get", "jobs", "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}")["items"][0]
    kubectl(
        "wait",
        "-n",
        NAMESPACE,
        "--for=condition=Complete",
        f"job/{job['metadata']['name']}",
        "--timeout=900s",
        timeout=960,
    )
    assert rel.versions_on_volume() == [1], f"the training Job wrote {rel.versions_on_volume()}"
    wait_until("2 Ready serving pods", lambda: len(rel.ready_serving_pods()) == 2, timeout=600, interval=3)
    yield rel
    rel.helm("uninstall", RELEASE, "--wait", "--timeout", "5m", check=False)
    kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=180s", check=False)


@pytest.fixture
def load(release: Release, ingress_url: str) -> Iterator[Load]:
    with Load(ingress_url, release.labels_of) as lg:
        lg.wait_for_requests(20)
        yield lg
