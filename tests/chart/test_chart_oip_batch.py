"""The Open Inference Protocol's gRPC port and the batch-scoring Job, as the chart renders them."""

from __future__ import annotations

from typing import Any

import pytest
from chart_support import container, env_map, find, one, render_error, scenario_file

Obj = dict[str, Any]
Rendered = dict[str, list[Obj]]


def sidecar_of(objs: list[Obj]) -> Obj:
    return container(one(objs, "Deployment")["spec"]["template"]["spec"], "sidecar")


def test_oip_grpc_port_in_deployment_service_and_network_policy(rendered: Rendered) -> None:
    objs = rendered["oip-grpc"]
    sidecar = sidecar_of(objs)
    assert {p["name"]: p["containerPort"] for p in sidecar["ports"]} == {"http": 8080, "grpc-oip": 8081}
    assert env_map(sidecar)["SIDECAR_OIP_GRPC_PORT"] == "8081"
    # probes stay on http
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert sidecar[probe]["httpGet"]["port"] == "http"
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in one(objs, "Service")["spec"]["ports"]}
    assert ports == {"http": (80, "http"), "grpc-oip": (9000, "grpc-oip")}
    (policy,) = [p for p in find(objs, "NetworkPolicy") if p["metadata"]["name"] == "tc-text-classifier"]
    assert [p["port"] for p in policy["spec"]["ingress"][0]["ports"]] == ["http", "grpc-oip"]


@pytest.mark.parametrize("name", ["defaults", "cpu", "gpu"])
def test_oip_grpc_off_by_default(rendered: Rendered, name: str) -> None:
    sidecar = sidecar_of(rendered[name])
    assert "SIDECAR_OIP_GRPC_PORT" not in env_map(sidecar)
    assert [p["name"] for p in one(rendered[name], "Service")["spec"]["ports"]] == ["http"]


def test_batch_scoring_job(rendered: Rendered) -> None:
    objs = rendered["batch-scoring"]
    job = one(objs, "Job", "-score-1")
    spec = job["spec"]["template"]["spec"]
    scorer = container(spec, "scorer")
    assert scorer["command"] == ["python", "-m", "scoring"]
    assert scorer["image"].startswith("registry.example.com/text-classifier/trainer:")
    assert scorer["args"][:5] == [
        "/models/batch/incoming/reviews.csv",
        "--model-dir=/models/news",
        "--out=/models/batch/scored/reviews.csv",
        "--summary=/models/batch/scored/reviews.csv.summary.json",
        "--version=3",
    ]
    assert "--fail-fast" in scorer["args"] and "--text-column=body" in scorer["args"]
    mounts = {m["mountPath"]: m for m in scorer["volumeMounts"]}
    assert not mounts["/models"].get("readOnly")  # it writes its output there
    claim = {v["name"]: v for v in spec["volumes"]}["models"]["persistentVolumeClaim"]["claimName"]
    assert claim == one(objs, "PersistentVolumeClaim")["metadata"]["name"]
    # GPU pool: the GPU resource and the pool's toleration
    assert scorer["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    assert spec["securityContext"]["runAsNonRoot"] is True and job["spec"]["backoffLimit"] == 0
    policy = one(objs, "NetworkPolicy", "-batch-scoring")
    assert policy["spec"]["ingress"] == [] and policy["spec"]["egress"] == []


def test_batch_scoring_on_cpu_pool_without_gpu(render_fn: Any) -> None:
    objs = render_fn(sets=("model.source=pvc", "batchScoring.enabled=true"))
    spec = one(objs, "Job", "-score-1")["spec"]["template"]["spec"]
    scorer = container(spec, "scorer")
    assert "nvidia.com/gpu" not in scorer["resources"]["limits"] and not spec.get("tolerations")
    assert not any(a.startswith("--version") for a in scorer["args"])


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ("batchScoring.enabled=true", "model.source=image", "model.image.repository=r/m"),
            "needs model.source=pvc",
        ),
        (("batchScoring.output=../etc/x.jsonl",), "/batchScoring/output"),
        (("batchScoring.output=out.parquet",), "/batchScoring/output"),
        (("openInference.grpc.containerPort=8500",), "/openInference/grpc/containerPort"),
    ],
)
def test_bad_values_refused(sets: tuple[str, ...], message: str) -> None:
    assert message in render_error(scenario_file("pvc"), sets=sets)
