"""What each values scenario must (and must not) contain."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from chart_support import SCENARIOS, config_data, container, containers, env_map, find, one

Obj = dict[str, Any]
Rendered = dict[str, list[Obj]]
TF_PORTS = {8500, 8501, "tfs-grpc", "tfs-rest"}


def deployment_spec(objs: list[Obj]) -> Obj:
    return one(objs, "Deployment")["spec"]["template"]["spec"]


@pytest.mark.parametrize("name", [*SCENARIOS, "defaults"])
def test_chart_service_exposes_only_sidecar_port(rendered: Rendered, name: str) -> None:
    svc = one(rendered[name], "Service")
    ports = svc["spec"]["ports"]
    # the Open Inference Protocol's gRPC binding is the sidecar's too (tests/chart/test_chart_oip_batch.py)
    oip = name == "oip-grpc"
    extra = [(9000, "grpc-oip")] if oip else []
    assert [(p["port"], p["targetPort"]) for p in ports] == [(80, "http"), *extra]
    sidecar = container(deployment_spec(rendered[name]), "sidecar")
    expected = {"http": 8080, "grpc-oip": 8081} if oip else {"http": 8080}
    assert {p["name"]: p["containerPort"] for p in sidecar["ports"]} == expected
    for p in ports:
        assert p["targetPort"] not in TF_PORTS and p["port"] not in TF_PORTS


@pytest.mark.parametrize("name", [*SCENARIOS, "defaults"])
def test_chart_pod_runs_tfserving_and_sidecar_with_readonly_models(rendered: Rendered, name: str) -> None:
    spec = deployment_spec(rendered[name])
    extra = ["log-shipper"] if name == "extensions" else []
    assert [c["name"] for c in spec["containers"]] == ["sidecar", "tfserving", *extra]
    for c in spec["containers"][:2]:
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert mounts["/models"]["readOnly"] is True, c["name"]
    tfs = container(spec, "tfserving")
    assert tfs["image"].startswith("tensorflow/serving")
    assert "--model_config_file=/etc/tfserving/models.config" in tfs["args"]
    assert "--monitoring_config_file=/etc/tfserving/monitoring.config" in tfs["args"]
    assert any(a.startswith("--file_system_poll_wait_seconds=") for a in tfs["args"])
    data = config_data(rendered[name])
    assert 'base_path: "/models/news"' in data["models.config"]
    if name in ("object-storage-minio", "canary"):  # declared versions
        assert "specific {\n        versions: 3\n        versions: 4\n      }" in data["models.config"]
    elif name == "training-gate":  # declared stable 3; the Job declares what it trains
        assert "specific {\n        versions: 3\n      }" in data["models.config"]
    else:
        assert "latest {\n        num_versions: 2\n      }" in data["models.config"]
    assert 'path: "/monitoring/prometheus/metrics"' in data["monitoring.config"]


@pytest.mark.parametrize("name", [*SCENARIOS, "defaults"])
def test_chart_sidecar_env_matches_contract(rendered: Rendered, name: str) -> None:
    env = env_map(container(deployment_spec(rendered[name]), "sidecar"))
    required = {
        "SIDECAR_MODEL_NAME": "news",
        "SIDECAR_MODEL_BASE_PATH": "/models",
        "SIDECAR_TFSERVING_REST_URL": "http://127.0.0.1:8501",
        "SIDECAR_TFSERVING_GRPC_TARGET": "127.0.0.1:8500",
    }
    for k, v in required.items():
        assert env[k] == v
    names = {
        "SIDECAR_TRANSPORT",
        "SIDECAR_UPSTREAM_TIMEOUT_S",
        "SIDECAR_VERSION_POLL_S",
        "SIDECAR_MAX_TEXTS",
        "SIDECAR_MAX_CHARS",
        "SIDECAR_MAX_BODY_BYTES",
        "SIDECAR_BATCH_ENABLED",
        "SIDECAR_BATCH_MAX_SIZE",
        "SIDECAR_BATCH_MAX_WAIT_MS",
        "SIDECAR_LOG_REQUEST_TEXT",
        "SIDECAR_SHUTDOWN_GRACE_S",
        "SIDECAR_LOG_LEVEL",
    }
    assert names <= set(env)
    assert env["SIDECAR_LOG_REQUEST_TEXT"] == "false"
    assert "SIDECAR_API_KEYS" not in env, "API keys must come from the mounted Secret file, never plain env"


@pytest.mark.parametrize("name", [*SCENARIOS, "defaults"])
def test_chart_rollout_drops_nothing(rendered: Rendered, name: str) -> None:
    dep = one(rendered[name], "Deployment")
    # A fixed GPU pool has no spare GPU for a surge pod: it replaces one pod at a time instead.
    surge, unavailable = (0, 1) if name == "gpu-fixed-pool" else (1, 0)
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": unavailable, "maxSurge": surge},
    }
    spec = dep["spec"]["template"]["spec"]
    sidecar, tfs = container(spec, "sidecar"), container(spec, "tfserving")
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert sidecar["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert tfs["startupProbe"]["tcpSocket"] == {"port": "tfs-grpc"}
    assert "tcpSocket" in tfs["livenessProbe"], "TF Serving liveness must not depend on a busy HTTP handler"
    grace = int(env_map(sidecar)["SIDECAR_SHUTDOWN_GRACE_S"])
    delay = sidecar["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert delay > 0
    assert tfs["lifecycle"]["preStop"]["sleep"]["seconds"] >= delay + grace, (
        "TF Serving must outlive the drain"
    )
    assert spec["terminationGracePeriodSeconds"] >= delay + grace + 5


def test_chart_gpu_requests_gpu_and_tolerates_taint(rendered: Rendered) -> None:
    objs = rendered["gpu"]
    spec = deployment_spec(objs)
    tfs = container(spec, "tfserving")
    assert tfs["image"] == "tensorflow/serving:2.20.0-gpu"
    assert tfs["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert tfs["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in container(spec, "sidecar")["resources"].get("limits", {})
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    # The pool's own label only: GPU feature discovery's label appears after a node boots, so selecting
    # on it would stop the autoscaler from scaling the pool up from zero.
    assert spec["nodeSelector"] == {"cloud.google.com/gke-nodepool": "gpu-pool"}
    assert spec["priorityClassName"] == "text-classifier-serving"
    keys = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}
    assert keys["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert "topology.kubernetes.io/zone" in keys
    assert tfs["startupProbe"]["periodSeconds"] * tfs["startupProbe"]["failureThreshold"] >= 600
    assert "--enable_batching=true" in tfs["args"]
    batching = config_data(objs)["batching.config"]
    assert "max_batch_size { value: 128 }" in batching
    assert "pad_variable_length_inputs: true" in batching
    assert "allowed_batch_sizes: 128" in batching


def test_chart_gpu_resource_name_configurable(render_fn: Callable[..., list[Obj]]) -> None:
    objs = render_fn(sets=("gpu.enabled=true", "gpu.resourceName=nvidia.com/mig-1g.10gb"))
    limits = container(deployment_spec(objs), "tfserving")["resources"]["limits"]
    assert limits["nvidia.com/mig-1g.10gb"] == 1 and "nvidia.com/gpu" not in limits


@pytest.mark.parametrize("name", ["cpu", "defaults"])
def test_chart_cpu_has_no_gpu(rendered: Rendered, name: str) -> None:
    spec = deployment_spec(rendered[name])
    tfs = container(spec, "tfserving")
    assert tfs["image"] == "tensorflow/serving:2.20.0"
    assert not [k for c in containers(spec) for k in c["resources"].get("limits", {}) if "gpu" in k]
    assert "tolerations" not in spec and "nodeSelector" not in spec
    assert "--enable_batching=true" not in tfs["args"]
    assert "batching.config" not in config_data(rendered[name])


def test_chart_cpu_hpa_on_cpu(rendered: Rendered) -> None:
    objs = rendered["cpu"]
    hpa = one(objs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        }
    ]
    assert "replicas" not in one(objs, "Deployment")["spec"], "the HPA owns the replica count"


def test_chart_custom_metric_autoscaling(rendered: Rendered) -> None:
    objs = rendered["autoscaling-custom-metric"]
    hpa = one(objs, "HorizontalPodAutoscaler")["spec"]
    pods = [m for m in hpa["metrics"] if m["type"] == "Pods"]
    assert pods == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "sidecar_in_flight_requests"},
                "target": {"type": "AverageValue", "averageValue": "16"},
            },
        }
    ]
    assert any(m["type"] == "Resource" for m in hpa["metrics"])
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    sm = one(objs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"},
        {
            "targetPort": "tfs-rest",
            "path": "/monitoring/prometheus/metrics",
            "interval": "30s",
            "scrapeTimeout": "10s",
        },
    ]
    assert sm["spec"]["selector"]["matchLabels"] == one(objs, "Service")["spec"]["selector"]
    dash = one(objs, "ConfigMap", "-dashboard")
    assert dash["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert '"uid": "text-classifier"' in dash["data"]["text-classifier.json"]
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    np_ingress = one(objs, "NetworkPolicy", "tc-text-classifier")["spec"]["ingress"]
    assert monitoring in np_ingress[0]["from"]
    # TF Serving's REST port (its metrics) is open to the monitoring namespace and nothing else.
    assert np_ingress[1] == {"from": [monitoring], "ports": [{"port": "tfs-rest", "protocol": "TCP"}]}
    panels = {p["title"]: p for p in json.loads(dash["data"]["text-classifier.json"])["panels"]}
    exprs = {t: " ".join(x["expr"] for x in p["targets"]) for t, p in panels.items()}
    assert ":tensorflow:serving:request_latency_bucket" in exprs["TF Serving request latency"]
    assert (
        ":tensorflow:serving:batching_session:queuing_latency_bucket"
        in exprs["TF Serving batch queuing latency"]
    )
    assert "DCGM_FI_DEV_GPU_UTIL" in exprs["GPU utilisation per pod (DCGM)"]
    assert "DCGM_FI_DEV_FB_USED" in exprs["GPU memory used per pod (DCGM)"]


def test_chart_keda_replaces_hpa(render_fn: Callable[..., list[Obj]]) -> None:
    objs = render_fn(sets=("keda.enabled=true",))
    assert not find(objs, "HorizontalPodAutoscaler")
    so = one(objs, "ScaledObject")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert so["spec"]["scaleTargetRef"]["name"] == "tc-text-classifier"
    trigger = so["spec"]["triggers"][0]
    assert trigger["type"] == "prometheus"
    assert (
        'namespace="serving"' in trigger["metadata"]["query"]
        and "tc-text-classifier-" in trigger["metadata"]["query"]
    )
    assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"][
        "stabilizationWindowSeconds"
    ]
    assert "replicas" not in one(objs, "Deployment")["spec"]


def test_chart_pvc_scenario_existing_claim_and_training_job(rendered: Rendered) -> None:
    objs = rendered["pvc"]
    assert not find(objs, "PersistentVolumeClaim"), "existingClaim: the chart must not create a claim"
    spec = deployment_spec(objs)
    vol = {v["name"]: v for v in spec["volumes"]}["models"]
    assert vol["persistentVolumeClaim"] == {"claimName": "shared-models", "readOnly": True}
    assert "initContainers" not in spec
    job = one(objs, "Job")
    jspec = job["spec"]["template"]["spec"]
    trainer = container(jspec, "trainer")
    assert trainer["args"][:4] == ["train", "--dataset=bbc-news", "--model-name=news", "--out=/models"]
    assert {m["mountPath"]: m.get("readOnly", False) for m in trainer["volumeMounts"]}["/models"] is False
    assert {v["name"]: v for v in jspec["volumes"]}["models"]["persistentVolumeClaim"][
        "claimName"
    ] == "shared-models"
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "training"
    training_np = one(objs, "NetworkPolicy", "-training")
    assert training_np["metadata"]["labels"]["app.kubernetes.io/component"] == "training"
    assert jspec["restartPolicy"] == "Never"


def test_chart_default_pvc_is_kept_on_uninstall(rendered: Rendered) -> None:
    pvc = one(rendered["defaults"], "PersistentVolumeClaim")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_chart_model_image_copied_by_init_container(rendered: Rendered) -> None:
    spec = deployment_spec(rendered["model-image"])
    (init,) = spec["initContainers"]
    digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    assert init["image"] == f"registry.example.com/text-classifier/model-news@{digest}"
    assert {m["mountPath"]: m.get("readOnly", False) for m in init["volumeMounts"]}["/models"] is False
    assert env_map(init) == {"MODEL_NAME": "news", "MODEL_IMAGE_PATH": "/models"}
    assert "mv /models/.copy-tmp" in init["args"][0], "the version set must appear atomically"
    vol = {v["name"]: v for v in spec["volumes"]}["models"]
    assert vol == {"name": "models", "emptyDir": {"sizeLimit": "2Gi"}}
    assert not find(rendered["model-image"], "PersistentVolumeClaim")


def test_chart_object_storage_init_and_sync_sidecar(rendered: Rendered) -> None:
    objs = rendered["object-storage"]
    spec = deployment_spec(objs)
    init, sync = spec["initContainers"]
    assert init["command"][-1] == "once" and sync["command"][-1] == "loop"
    assert sync["restartPolicy"] == "Always", "the sync sidecar is a native sidecar container"
    assert "restartPolicy" not in init
    env = env_map(init)
    assert env["RCLONE_CONFIG_STORE_TYPE"] == "s3" and env["RCLONE_CONFIG_STORE_REGION"] == "eu-west-1"
    assert env["MODEL_BUCKET"] == "example-models" and env["MODEL_PREFIX"] == "text-classifier"
    assert env["RCLONE_CONFIG_STORE_ENV_AUTH"] == "true"
    script = one(objs, "ConfigMap", "-model-sync")["data"]["model-sync.sh"]
    assert 'mv "$TMP/$v" "$LIVE/$v"' in script, "a version must appear atomically"
    sa = one(objs, "ServiceAccount")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    egress = one(objs, "NetworkPolicy", "tc-text-classifier")["spec"]["egress"]
    assert {"port": 443, "protocol": "TCP"} in [p for rule in egress for p in rule.get("ports", [])]


def test_chart_object_storage_gcs(render_fn: Callable[..., list[Obj]]) -> None:
    objs = render_fn(
        sets=(
            "model.source=objectStorage",
            "model.objectStorage.provider=gcs",
            "model.objectStorage.bucket=b",
        )
    )
    spec = deployment_spec(objs)
    assert len(spec["initContainers"]) == 1, "keepInSync is off by default"
    assert env_map(spec["initContainers"][0])["RCLONE_CONFIG_STORE_TYPE"] == "google cloud storage"


def test_chart_auth_uses_existing_secret_file(
    rendered: Rendered, render_fn: Callable[..., list[Obj]]
) -> None:
    objs = rendered["auth"]
    assert not find(objs, "Secret"), "existingSecret: the chart must not create one"
    spec = deployment_spec(objs)
    sidecar = container(spec, "sidecar")
    assert env_map(sidecar)["SIDECAR_API_KEYS_FILE"] == "/etc/text-classifier/auth/api-keys"
    vol = {v["name"]: v for v in spec["volumes"]}["api-keys"]["secret"]
    assert vol == {"secretName": "text-classifier-api-keys", "items": [{"key": "keys", "path": "api-keys"}]}
    np = one(objs, "NetworkPolicy", "tc-text-classifier")
    assert {"podSelector": {}} not in np["spec"]["ingress"][0]["from"]
    test_pod = one(objs, "Pod")
    assert test_pod["metadata"]["labels"]["tc-text-classifier-client"] == "true"
    assert test_pod["spec"]["volumes"][0]["secret"]["secretName"] == "text-classifier-api-keys"
    created = render_fn(
        sets=("auth.enabled=true", "auth.apiKeys={key-aaaaaaaaaaaaaaaa,key-bbbbbbbbbbbbbbbb}")
    )
    secret = one(created, "Secret")
    expected = "key-aaaaaaaaaaaaaaaa\nkey-bbbbbbbbbbbbbbbb\n"
    assert base64.b64decode(secret["data"]["api-keys"]).decode() == expected
    assert "checksum/api-keys" in one(created, "Deployment")["spec"]["template"]["metadata"]["annotations"]


def test_chart_ingress_tls_and_body_size(rendered: Rendered) -> None:
    objs = rendered["ingress-tls"]
    ing = one(objs, "Ingress")
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [
        {"secretName": "classify-example-com-tls", "hosts": ["classify.example.com"]}
    ]
    assert ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "2m"
    assert ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "classify.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "tc-text-classifier", "port": {"name": "http"}}
    assert env_map(container(deployment_spec(objs), "sidecar"))["SIDECAR_MAX_BODY_BYTES"] == "2097152"


@pytest.mark.parametrize("name", [*SCENARIOS, "defaults"])
def test_chart_networkpolicy_only_sidecar_port(rendered: Rendered, name: str) -> None:
    objs = rendered[name]
    np = one(objs, "NetworkPolicy", "tc-text-classifier")["spec"]
    assert np["policyTypes"] == ["Ingress", "Egress"]
    assert np["podSelector"]["matchLabels"] == one(objs, "Service")["spec"]["selector"]
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    for rule in np["ingress"]:
        if rule["ports"] == [{"port": "tfs-rest", "protocol": "TCP"}]:
            assert rule["from"] == [monitoring], "TF Serving's port is for the monitoring namespace only"
        else:
            oip = [{"port": "grpc-oip", "protocol": "TCP"}] if name == "oip-grpc" else []
            assert rule["ports"] == [{"port": "http", "protocol": "TCP"}, *oip]
    ingress_ns = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    assert ingress_ns in np["ingress"][0]["from"]
    # DNS, the object store's ports, and the metadata-server preset of the GCS scenario; nothing else.
    allowed_egress_ports = {"object-storage-minio": {53, 9000}, "object-storage-gcs": {53, 443, 80, 988}}
    assert {p["port"] for rule in np["egress"] for p in rule["ports"]} <= allowed_egress_ports.get(
        name, {53, 443}
    )
    test_np_obj = one(objs, "NetworkPolicy", "-test")
    test_np = test_np_obj["spec"]
    assert (
        test_np["ingress"] == []
        and test_np["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    )
    assert test_np_obj["metadata"]["labels"]["app.kubernetes.io/component"] == "test"


@pytest.mark.parametrize("name", [*SCENARIOS, "defaults"])
def test_chart_pdb_and_serviceaccount(rendered: Rendered, name: str) -> None:
    objs = rendered[name]
    pdb = one(objs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == one(objs, "Service")["spec"]["selector"]
    sa = one(objs, "ServiceAccount", "tc-text-classifier")  # the serving pods' (not the gate's)
    assert sa["automountServiceAccountToken"] is False
    assert deployment_spec(objs)["serviceAccountName"] == sa["metadata"]["name"]


@pytest.mark.parametrize("name", [*SCENARIOS, "defaults"])
def test_chart_helm_test_classifies_through_service(rendered: Rendered, name: str) -> None:
    pod = one(rendered[name], "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    c = pod["spec"]["containers"][0]
    env = env_map(c)
    assert env["SERVICE_URL"] == "http://tc-text-classifier.serving.svc:80"
    assert env["SAMPLE_TEXT"]
    script = c["args"][0]
    compile(script, "helm-test", "exec")  # the test program is valid Python
    assert 'call("/classify", {"text": os.environ["SAMPLE_TEXT"]})' in script
    assert pod["spec"]["restartPolicy"] == "Never"


def test_chart_config_change_rolls_pods(render_fn: Callable[..., list[Obj]]) -> None:
    def checksum(objs: list[Obj]) -> str:
        return str(one(objs, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum(render_fn()) != checksum(render_fn(sets=("tfServing.monitoringPath=/metrics",)))
