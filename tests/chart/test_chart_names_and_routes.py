"""Names and labels that stay valid with the longest release name Helm allows; the Ingress (API paths only,
catch-all rule, schema error instead of a NOTES crash); egress rules for object stores and workload
identity; NOTES ordering; pod-template labels that a chart bump does not change."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import (
    CHART,
    NAMESPACE,
    SCENARIOS,
    container,
    find,
    one,
    render,
    render_error,
    run,
    scenario_file,
    tool,
)

Obj = dict[str, Any]
Rendered = dict[str, list[Obj]]
LONG_RELEASE = "search-ranking-eu-west1-production-canary-release-002"  # 53: the most Helm allows
assert len(LONG_RELEASE) == 53
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def label_problems(labels: dict[str, str], where: str) -> list[str]:
    """Kubernetes' rules for label keys ([prefix/]name, name <= 63) and values (<= 63)."""
    out = []
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if len(name) > 63 or not LABEL_NAME.match(name) or len(prefix) > 253:
            out.append(f"{where}: label key {key!r} ({len(name)} characters)")
        if len(str(value)) > 63 or not LABEL_VALUE.match(str(value)):
            out.append(f"{where}: label value {key}={value!r}")
    return out


def all_label_sets(obj: Obj) -> list[tuple[str, dict[str, str]]]:
    found: list[tuple[str, dict[str, str]]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("labels", "matchLabels") and isinstance(v, dict):
                    found.append((f"{obj['kind']}/{obj['metadata']['name']}{path}.{k}", v))
                else:
                    walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(obj, "")
    return found


# --- long release names --------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", ["auth", "pvc", "object-storage", "autoscaling-custom-metric"])
def test_long_release_name_renders_valid_names_and_labels(scenario: str) -> None:
    objs = render(scenario_file(scenario), release=LONG_RELEASE)
    problems = [p for o in objs for where, labels in all_label_sets(o) for p in label_problems(labels, where)]
    assert not problems, "\n".join(problems)
    for o in objs:
        if o["kind"] in ("Service", "Job", "Deployment"):  # names that become DNS labels or label values
            assert len(o["metadata"]["name"]) <= 63 and DNS_LABEL.match(o["metadata"]["name"]), o["metadata"]


def test_long_release_name_client_label_and_training_job() -> None:
    objs = render(scenario_file("pvc"), scenario_file("auth"), release=LONG_RELEASE)
    pod = one(objs, "Pod")
    (client_key,) = [k for k in pod["metadata"]["labels"] if k.endswith("-client")]
    assert len(client_key) <= 63 and client_key.startswith(LONG_RELEASE[:40])
    (np,) = [
        o for o in find(objs, "NetworkPolicy") if not o["metadata"]["name"].endswith(("-test", "-training"))
    ]
    assert {"podSelector": {"matchLabels": {client_key: "true"}}} in np["spec"]["ingress"][0]["from"]
    job = one(objs, "Job")["metadata"]["name"]
    # The revision survives the cut: each `helm upgrade` creates its own Job (a Job is immutable).
    assert job.endswith("-train-1") and len(job) <= 63, job
    # Two releases whose names share the first 48 characters still get different client labels.
    other = render(scenario_file("auth"), release=LONG_RELEASE[:-1] + "3")
    (other_key,) = [k for k in one(other, "Pod")["metadata"]["labels"] if k.endswith("-client")]
    assert other_key != client_key


def test_short_release_name_keeps_the_documented_client_label(rendered: Rendered) -> None:
    assert one(rendered["auth"], "Pod")["metadata"]["labels"]["tc-text-classifier-client"] == "true"


# --- pod template labels --------------------------------------------------------------------------------
def test_chart_version_bump_does_not_change_the_pod_template(tmp_path: Path) -> None:
    bumped = tmp_path / "text-classifier"
    shutil.copytree(CHART, bumped)
    chart_yaml = yaml.safe_load((bumped / "Chart.yaml").read_text())
    chart_yaml["version"] = "9.9.9"
    (bumped / "Chart.yaml").write_text(yaml.safe_dump(chart_yaml))
    gpu = scenario_file("gpu")
    before = one(render(gpu), "Deployment")
    after = one(render(gpu, chart=bumped), "Deployment")
    assert before["metadata"]["labels"]["helm.sh/chart"] != after["metadata"]["labels"]["helm.sh/chart"]
    assert before["spec"]["template"] == after["spec"]["template"], "a chart bump alone restarts GPU pods"
    assert "helm.sh/chart" not in before["spec"]["template"]["metadata"]["labels"]


# --- Ingress -------------------------------------------------------------------------------------------
def routes(ingress: Obj, host: str | None, path: str) -> bool:
    """Whether the Ingress sends `path` on `host` to the backend (networking/v1 path matching)."""
    for rule in ingress["spec"]["rules"]:
        if rule.get("host") not in (host, None):
            continue
        for p in rule["http"]["paths"]:
            if p["pathType"] == "Exact" and path == p["path"]:
                return True
            if p["pathType"] == "Prefix":
                prefix = p["path"].rstrip("/")
                if path == prefix or path.startswith(prefix + "/") or prefix == "":
                    return True
            if p["pathType"] == "ImplementationSpecific" and path.startswith(p["path"]):
                return True
    return False


INTERNAL_PATHS = ["/metrics", "/docs", "/openapi.json", "/healthz", "/readyz", "/redoc"]
API_PATHS = ["/v1/classify", "/classify", "/v1/model"]


@pytest.mark.parametrize("name", [*SCENARIOS, "defaults", "enabled"])
def test_ingress_routes_only_the_api(rendered: Rendered, name: str) -> None:
    objs = render(sets=("ingress.enabled=true",)) if name == "enabled" else rendered[name]
    for ing in find(objs, "Ingress"):
        for rule in ing["spec"]["rules"]:
            host = rule.get("host")
            for path in INTERNAL_PATHS:
                assert not routes(ing, host, path), f"{name}: the Ingress exposes {path}"
            for path in API_PATHS:
                assert routes(ing, host, path), f"{name}: the Ingress does not route {path}"


def test_ingress_without_hosts_is_a_schema_error() -> None:
    err = render_error(sets=("ingress.enabled=true",), extra=("--set-json", "ingress.hosts=[]"))
    assert "schema" in err and "/ingress/hosts': minItems: got 0, want 1" in err, err


def test_ingress_catch_all_rule_and_notes(rendered: Rendered) -> None:
    ing = one(rendered["ingress-catch-all"], "Ingress")
    (rule,) = ing["spec"]["rules"]
    assert "host" not in rule
    notes = run(
        [
            tool("helm"), "install", "tc", str(CHART), "--dry-run=client", "--namespace", NAMESPACE,
            "-f", str(scenario_file("ingress-catch-all")),
        ]
    ).stdout.split("NOTES:", 1)[1]  # fmt: skip
    assert "http://<ingress address>/v1/classify" in notes
    assert "http://<ingress address>/v1/model" in notes


def test_notes_export_api_key_before_using_it() -> None:
    out = run(
        [
            tool("helm"), "install", "tc", str(CHART), "--dry-run=client", "--namespace", NAMESPACE,
            "-f", str(scenario_file("auth")), "-f", str(scenario_file("ingress-tls")),
        ]
    ).stdout.split("NOTES:", 1)[1]  # fmt: skip
    assert out.index("export API_KEY=") < out.index('"Authorization: Bearer $API_KEY"')


# --- egress --------------------------------------------------------------------------------------------
def egress(objs: list[Obj]) -> list[Obj]:
    return list(one(objs, "NetworkPolicy", "tc-text-classifier")["spec"]["egress"])


def test_object_storage_egress_ports_and_cidrs(rendered: Rendered) -> None:
    minio = egress(rendered["object-storage-minio"])
    assert {
        "to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
        "ports": [{"port": 9000, "protocol": "TCP"}],
    } in minio
    assert 443 not in [p["port"] for r in minio for p in r["ports"]]
    s3 = egress(rendered["object-storage"])
    assert {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]} in s3


def test_workload_identity_metadata_server_egress(rendered: Rendered) -> None:
    gcs = egress(rendered["object-storage-gcs"])
    assert {
        "to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}],
        "ports": [{"port": 80, "protocol": "TCP"}],
    } in gcs
    assert {
        "to": [{"ipBlock": {"cidr": "169.254.169.252/32"}}],
        "ports": [{"port": 988, "protocol": "TCP"}],
    } in gcs
    spec = one(rendered["object-storage-gcs"], "Deployment")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in container(spec, "model-sync-init")["env"]}
    assert env["RCLONE_CONFIG_STORE_TYPE"] == "google cloud storage"
