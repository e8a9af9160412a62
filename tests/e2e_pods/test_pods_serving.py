"""The chart on the real node: install, probes, Ingress, security context and logs, rollouts under load.

Each test that changes the release runs under continuous load through Traefik (pods_support.Load) and
allows no failed request: every response must be a 200 whose label belongs to the version it names.
Order matters (pytest runs a file top to bottom): the release is shared by the whole session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from pods_support import CHART, HOST, SAMPLE_TEXTS, Load, Release, kjson, kubectl, record, wait_until

CONTAINERS = ("sidecar", "tfserving")


def _deployment(release: Release) -> str:
    return f"deployment/{release.fullname}"


def test_install_pods_ready_on_real_node_and_predict_through_ingress(
    release: Release, ingress_url: str, node_name: str
) -> None:
    pods = release.ready_serving_pods()
    assert len(pods) == 2
    for pod in pods:
        assert pod["spec"]["nodeName"] == node_name, "serving pods must run on the real node, not a KWOK node"
        statuses = {c["name"]: c for c in pod["status"]["containerStatuses"]}
        for name in CONTAINERS:
            assert statuses[name]["ready"] is True and "running" in statuses[name]["state"]
            assert statuses[name]["containerID"].startswith("containerd://")
        assert pod["status"]["podIP"].startswith("10.213.0."), "pod address from the CNI bridge"
    resp = httpx.post(
        f"{ingress_url}/v1/classify", json={"text": SAMPLE_TEXTS[0]}, headers={"Host": HOST}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == {"name": "news", "version": 1}
    assert body["predictions"][0]["label"] in release.labels_of(1)
    # A Host the Ingress does not know is not routed to the release.
    assert (
        httpx.get(f"{ingress_url}/v1/model", headers={"Host": "other.e2e.test"}, timeout=10).status_code
        == 404
    )
    with Load(ingress_url, release.labels_of) as load:
        load.wait_for_requests(150, timeout=180)
    record("install: steady load", load.report)
    assert load.report.failed == 0, load.report.failures
    assert set(load.report.by_version) == {1}


def test_containers_non_root_read_only_no_capabilities(release: Release) -> None:
    # uid/gid, effective and permitted capabilities, and whether / is mounted read-only (a failed write
    # would prove nothing: / belongs to root anyway).
    probe = (
        "import os\n"
        "st = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
        "mounts = [m.split() for m in open('/proc/self/mounts')]\n"
        "ro = any(m[1] == '/' and 'ro' in m[3].split(',') for m in mounts)\n"
        "print(os.getuid(), os.getgid(), st['CapEff'].strip(), st['CapPrm'].strip(), ro)"
    )
    for pod in release.ready_serving_pods():
        for container in CONTAINERS:
            out = kubectl(
                "exec",
                "-n",
                release.namespace,
                pod["metadata"]["name"],
                "-c",
                container,
                "--",
                "python",
                "-c",
                probe,
            ).stdout.split()
            uid, gid, cap_eff, cap_prm, read_only = out
            assert (uid, gid) == ("10001", "10001"), f"{container} runs as {uid}:{gid}"
            assert int(cap_eff, 16) == 0 and int(cap_prm, 16) == 0, f"{container} has capabilities {cap_eff}"
            assert read_only == "True", f"{container} could write to its root filesystem"


def test_sidecar_logs_are_json_with_request_ids_and_no_request_text(
    release: Release, ingress_url: str
) -> None:
    secret = "a sentence only this log test sends about umbrellas and lighthouses"
    rid = "e2e-pods-log-check-1"
    for _ in range(4):  # both replicas, whichever Traefik picks
        resp = httpx.post(
            f"{ingress_url}/v1/classify",
            json={"text": secret},
            headers={"Host": HOST, "X-Request-ID": rid},
            timeout=30,
        )
        assert resp.status_code == 200 and resp.headers["x-request-id"] == rid
    lines: list[str] = []
    for pod in release.ready_serving_pods():
        lines += kubectl(
            "logs", "-n", release.namespace, pod["metadata"]["name"], "-c", "sidecar"
        ).stdout.splitlines()
    assert lines
    records = [json.loads(line) for line in lines if line.strip()]  # every line parses as JSON
    assert any(r.get("request_id") == rid for r in records), "the access log names the request id"
    assert not any(secret in line or "umbrellas" in line for line in lines), "request text reached the logs"


def test_delete_pod_under_load_loses_no_request(release: Release, load: Load) -> None:
    victim = release.ready_serving_pods()[0]["metadata"]["name"]
    kubectl("delete", "pod", "-n", release.namespace, victim, "--wait=true", timeout=180)
    wait_until(
        "a replacement pod Ready",
        lambda: (
            len(release.ready_serving_pods()) == 2
            and victim not in {p["metadata"]["name"] for p in release.ready_serving_pods()}
        ),
        timeout=300,
    )
    load.wait_for_requests(50)
    record("kubectl delete pod", load.report)
    assert load.report.failed == 0, load.report.failures


def test_set_image_rollout_and_undo_under_load(release: Release, load: Load) -> None:
    deploy = _deployment(release)
    before = kjson("get", deploy, "-n", release.namespace)["spec"]["template"]["spec"]["containers"]
    old_image = next(c["image"] for c in before if c["name"] == "sidecar")
    new_image = release.images["SIDECAR_IMAGE_B"]
    assert new_image != old_image
    kubectl("set", "image", "-n", release.namespace, deploy, f"sidecar={new_image}")
    kubectl("rollout", "status", "-n", release.namespace, deploy, "--timeout=600s", timeout=660)
    images = {
        c["image"]
        for p in release.ready_serving_pods()
        for c in p["spec"]["containers"]
        if c["name"] == "sidecar"
    }
    assert images == {new_image}
    kubectl("rollout", "undo", "-n", release.namespace, deploy)
    kubectl("rollout", "status", "-n", release.namespace, deploy, "--timeout=600s", timeout=660)
    wait_until(
        "only the original sidecar image serving",
        lambda: (
            {
                c["image"]
                for p in release.ready_serving_pods()
                for c in p["spec"]["containers"]
                if c["name"] == "sidecar"
            }
            == {old_image}
            and len(release.ready_serving_pods()) == 2
        ),
        timeout=120,
    )
    load.wait_for_requests(50)
    record("kubectl set image + rollout undo (sidecar)", load.report)
    assert load.report.failed == 0, load.report.failures


def test_drain_is_held_by_the_pod_disruption_budget(release: Release, load: Load, node_name: str) -> None:
    try:
        proc = kubectl(
            "drain",
            node_name,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=40s",
            "--pod-selector",
            f"app.kubernetes.io/instance={release.name}",
            timeout=120,
            check=False,
        )
        assert proc.returncode != 0, "drain evicted both replicas despite the PodDisruptionBudget"
        assert "disruption budget" in proc.stderr, proc.stderr
        assert len(release.ready_serving_pods()) >= 1
        load.wait_for_requests(30)
    finally:
        kubectl("uncordon", node_name)
    wait_until(
        "2 Ready serving pods after uncordon", lambda: len(release.ready_serving_pods()) == 2, timeout=300
    )
    load.wait_for_requests(30)
    record("kubectl drain held by the PDB", load.report)
    assert load.report.failed == 0, load.report.failures


def test_training_job_writes_next_version_and_pods_switch(release: Release, load: Load) -> None:
    # helm upgrade: a new revision runs a new training Job in the trainer image (and keeps the release's
    # values); it writes version 2 to the PVC, and the serving pods load it and switch under load.
    # --force-conflicts: kubectl (set image, rollout undo) owns the image fields now; docs/e2e.md, Findings.
    release.helm("upgrade", release.name, str(CHART), "--reuse-values", "--force-conflicts")
    job = f"job/{release.fullname}-train-2"
    kubectl("wait", "-n", release.namespace, "--for=condition=Complete", job, "--timeout=900s", timeout=960)
    assert release.versions_on_volume() == [1, 2]
    wait_until(
        "responses from version 2", lambda: load.report.by_version.get(2, 0) >= 20, timeout=300, interval=1
    )
    seen = load.report.by_version.get(2, 0)
    load.wait_for_requests(40)
    assert load.report.by_version[2] > seen
    record("training Job -> version 2 (helm upgrade)", load.report)
    assert load.report.failed == 0, load.report.failures


def test_helm_rollback_under_load(release: Release, load: Load) -> None:
    release.helm(
        "rollback", release.name, "1", "--force-conflicts", "--wait", "--timeout", "10m", timeout=660
    )
    history = release.helm("history", release.name, "-o", "json").stdout
    assert json.loads(history)[-1]["status"] == "deployed"
    wait_until(
        "2 Ready serving pods after rollback", lambda: len(release.ready_serving_pods()) == 2, timeout=300
    )
    load.wait_for_requests(40)
    record("helm rollback", load.report)
    assert load.report.failed == 0, load.report.failures


@contextmanager
def only_the_real_node_schedulable(node_name: str) -> Iterator[None]:
    # The chart's test pod has no node selector: on this cluster it could land on a KWOK node, where a KWOK
    # stage (not its command) would decide the outcome. Cordoning the KWOK nodes leaves only the real one.
    kwok = [
        n["metadata"]["name"] for n in kjson("get", "nodes")["items"] if n["metadata"]["name"] != node_name
    ]
    for n in kwok:
        kubectl("cordon", n)
    try:
        yield
    finally:
        for n in kwok:
            kubectl("uncordon", n)


def test_helm_test_runs_its_real_command(release: Release, node_name: str) -> None:
    # The test pod classifies through the Service by name (cluster DNS -> kube-proxy -> a serving pod);
    # its log (which only a real container has) shows the answer.
    with only_the_real_node_schedulable(node_name):
        proc = release.helm("test", release.name, "--logs", "--timeout", "5m", timeout=360, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Phase:          Succeeded" in proc.stdout
    assert "POST /classify -> 200" in proc.stdout and "ok: classified as" in proc.stdout, proc.stdout


def test_helm_test_fails_on_a_release_that_serves_nothing(release: Release, node_name: str) -> None:
    deploy = _deployment(release)
    kubectl("scale", "-n", release.namespace, deploy, "--replicas=0")
    try:
        wait_until("no serving pods", lambda: not release.pods(), timeout=180)
        with only_the_real_node_schedulable(node_name):
            proc = release.helm("test", release.name, "--logs", "--timeout", "3m", timeout=240, check=False)
        assert proc.returncode != 0, "helm test passed with no serving pod"
        out = proc.stdout + proc.stderr
        assert re.search(r"Phase:\s+Failed|pod \S+ failed", out), out
    finally:
        kubectl("scale", "-n", release.namespace, deploy, "--replicas=2")
    wait_until("2 Ready serving pods", lambda: len(release.ready_serving_pods()) == 2, timeout=600)
