"""Fixtures of the e2e tests: the chart on a real control plane with KWOK-simulated node pools.

`make e2e` (scripts/cluster/e2e.sh) builds and starts the cluster and sets E2E_KUBECONFIG. Without it every
test here fails with the reason; `make test` does not collect this directory at all (--ignore=tests/e2e).

Containers never run under KWOK: a pod is "Ready" because a KWOK stage says so. What is real: the API
server's validation and admission, the scheduler's placement, the controllers (Deployment, ReplicaSet,
HPA, disruption, PV binding, Job, garbage collection) and Helm's release machinery.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from e2e_support import (
    CHART,
    CI_DIR,
    CRD_DIR,
    KUBECONFIG_ENV,
    PRIORITY_CLASS,
    Cluster,
    Release,
    run,
    wait_until,
)
from kubernetes import client, config
from kubernetes.client.rest import ApiException

__all__ = ["CHART"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    kubeconfig = os.environ.get(KUBECONFIG_ENV)
    if not kubeconfig:
        pytest.fail(f"{KUBECONFIG_ENV} is not set: the e2e tests need the local test cluster, run `make e2e`")
    if not Path(kubeconfig).is_file():
        pytest.fail(f"{KUBECONFIG_ENV}={kubeconfig} does not exist: start the cluster with `make e2e`")
    for tool in ("helm", "kubectl"):
        if shutil.which(tool) is None:
            pytest.fail(
                f"{tool} is not on PATH (scripts/k8s-tools.sh installs the pinned one; `make e2e` uses it)"
            )
    os.environ["KUBECONFIG"] = kubeconfig  # for helm and kubectl
    api = config.new_client_from_config(config_file=kubeconfig)
    c = Cluster(kubeconfig=kubeconfig, api=api)
    ver = client.VersionApi(api).get_code()
    assert ver.major == "1" and int(ver.minor.rstrip("+")) >= 34, (
        f"server {ver.git_version} is older than 1.34"
    )
    assert len(c.nodes("cpu")) >= 2 and len(c.nodes("gpu")) >= 2, (
        "the cluster must start with 2 CPU + 2 GPU nodes"
    )
    return c


@pytest.fixture(scope="session")
def priority_class(cluster: Cluster) -> str:
    sched = client.SchedulingV1Api(cluster.api)
    try:
        sched.create_priority_class(
            client.V1PriorityClass(
                metadata=client.V1ObjectMeta(name=PRIORITY_CLASS),
                value=100000,
                description="online text-classifier serving (created by the e2e tests as an admin would)",
            )
        )
    except ApiException as e:
        if e.status != 409:
            raise
    return PRIORITY_CLASS


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> list[str]:
    """Minimal CRDs for the chart's optional CRD-based objects (ServiceMonitor, ScaledObject)."""
    names = []
    for f in sorted(CRD_DIR.glob("*.yaml")):
        run(["kubectl", "apply", "-f", str(f)])
        names.append(yaml.safe_load(f.read_text())["metadata"]["name"])
    for n in names:
        run(["kubectl", "wait", "--for=condition=Established", f"crd/{n}", "--timeout=60s"])
    return names


@pytest.fixture()
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_until(
        f"ServiceAccount default in {name}",
        lambda: any(
            sa.metadata.name == "default" for sa in cluster.core.list_namespaced_service_account(name).items
        ),
        60,
    )
    yield name
    cluster.core.delete_namespace(name)

    def gone() -> bool:
        try:
            cluster.core.read_namespace(name)
        except ApiException as e:
            return e.status == 404
        return False

    wait_until(f"namespace {name} deleted", gone, 120)


@pytest.fixture()
def release_factory(cluster: Cluster, namespace: str) -> Iterator[Callable[..., Release]]:
    releases: list[Release] = []

    def make(name: str, values: list[str], sets: list[str] | None = None) -> Release:
        r = Release(cluster, name, namespace, [CI_DIR / v for v in values], list(sets or []))
        releases.append(r)
        return r

    yield make
    for r in releases:
        run(["helm", "uninstall", r.name, "-n", r.namespace, "--wait", "--timeout", "120s"], check=False)
        for pv in r.pvs:
            try:
                cluster.core.delete_persistent_volume(pv)
            except ApiException as e:
                if e.status != 404:
                    raise
