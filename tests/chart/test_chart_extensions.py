"""The extension points: extra volumes, mounts, env and envFrom per container, extra init containers and
containers, pod labels and annotations, runtimeClassName, the service-account token, HPA metrics passed
through as written, and a mountable credentials file for object storage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chart_support import container, env_map, one

Obj = dict[str, Any]
Rendered = dict[str, list[Obj]]


def spec_of(objs: list[Obj]) -> Obj:
    return one(objs, "Deployment")["spec"]["template"]["spec"]


def test_extensions_volumes_mounts_env_per_container(rendered: Rendered) -> None:
    spec = spec_of(rendered["extensions"])
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["ca-bundle"] == {"name": "ca-bundle", "configMap": {"name": "corporate-ca"}}
    assert {"models", "tfserving-config", "tmp", "shipper-buffer"} <= set(vols)
    ca_mount = {"name": "ca-bundle", "mountPath": "/etc/corporate-ca", "readOnly": True}
    sidecar, tfs = container(spec, "sidecar"), container(spec, "tfserving")
    assert ca_mount in sidecar["volumeMounts"] and ca_mount in tfs["volumeMounts"]
    assert env_map(sidecar)["SSL_CERT_FILE"] == "/etc/corporate-ca/ca.crt"
    assert env_map(sidecar)["SIDECAR_MODEL_NAME"] == "news", "the chart's own env stays"
    assert sidecar["envFrom"] == [{"configMapRef": {"name": "sidecar-overrides", "optional": True}}]
    assert env_map(tfs) == {"TF_CPP_MIN_LOG_LEVEL": "1"}
    assert tfs["envFrom"] == [{"configMapRef": {"name": "tfserving-overrides", "optional": True}}]


def test_extensions_init_containers_and_containers(
    rendered: Rendered, render_fn: Callable[..., list[Obj]]
) -> None:
    spec = spec_of(rendered["extensions"])
    assert [c["name"] for c in spec["initContainers"]] == ["wait-for-config"]
    assert [c["name"] for c in spec["containers"]] == ["sidecar", "tfserving", "log-shipper"]
    # With a model image, the chart's own init container runs first: the extra one may rely on /models.
    from chart_support import scenario_file

    objs = render_fn(scenario_file("model-image"), scenario_file("extensions"))
    assert [c["name"] for c in spec_of(objs)["initContainers"]] == ["model-copy", "wait-for-config"]


def test_extensions_pod_labels_annotations_not_in_selector(rendered: Rendered) -> None:
    dep = one(rendered["extensions"], "Deployment")
    meta = dep["spec"]["template"]["metadata"]
    assert meta["labels"]["team"] == "search"
    assert meta["annotations"]["example.com/owner"] == "search-team"
    assert "team" not in dep["spec"]["selector"]["matchLabels"]
    assert "team" not in one(rendered["extensions"], "Service")["spec"]["selector"]


def test_runtime_class_and_service_account_token(render_fn: Callable[..., list[Obj]]) -> None:
    default = spec_of(render_fn())
    assert "runtimeClassName" not in default and default["automountServiceAccountToken"] is False
    spec = spec_of(render_fn(sets=("runtimeClassName=nvidia", "automountServiceAccountToken=true")))
    assert spec["runtimeClassName"] == "nvidia" and spec["automountServiceAccountToken"] is True


def test_hpa_metrics_passed_through_as_written(rendered: Rendered) -> None:
    hpa = one(rendered["extensions"], "HorizontalPodAutoscaler")["spec"]
    assert hpa["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "DCGM_FI_DEV_GPU_UTIL"},
                "target": {"type": "AverageValue", "averageValue": "70"},
            },
        },
        {
            "type": "External",
            "external": {
                "metric": {
                    "name": "pubsub.googleapis.com|subscription|num_undelivered_messages",
                    "selector": {"matchLabels": {"resource.labels.subscription_id": "classify-requests"}},
                },
                "target": {"type": "AverageValue", "averageValue": "100"},
            },
        },
    ], "targetCPUUtilizationPercentage null: only the metrics as written"


def test_object_storage_credentials_file(rendered: Rendered, render_fn: Callable[..., list[Obj]]) -> None:
    spec = spec_of(rendered["object-storage-minio"])
    vol = {v["name"]: v for v in spec["volumes"]}["object-storage-credentials"]
    assert vol["secret"] == {
        "secretName": "minio-credentials",
        "items": [{"key": "credentials", "path": "credentials"}],
    }
    sync = container(spec, "model-sync-init")
    mount = {
        "name": "object-storage-credentials",
        "mountPath": "/etc/model-sync-credentials",
        "readOnly": True,
    }
    assert mount in sync["volumeMounts"]
    assert env_map(sync)["AWS_SHARED_CREDENTIALS_FILE"] == "/etc/model-sync-credentials/credentials"
    assert env_map(sync)["RCLONE_CONFIG_STORE_ENDPOINT"] == "http://minio.storage.svc:9000"
    for name in ("sidecar", "tfserving"):  # the credentials reach the syncer only
        assert mount["name"] not in [m["name"] for m in container(spec, name)["volumeMounts"]]
    gcs = spec_of(
        render_fn(
            sets=(
                "model.source=objectStorage",
                "model.objectStorage.provider=gcs",
                "model.objectStorage.bucket=b",
                "model.objectStorage.credentialsFile.secretName=gcs-key",
                "model.objectStorage.credentialsFile.key=key.json",
            )
        )
    )
    env = env_map(container(gcs, "model-sync-init"))
    assert env["RCLONE_CONFIG_STORE_SERVICE_ACCOUNT_FILE"] == "/etc/model-sync-credentials/credentials"
    assert "AWS_SHARED_CREDENTIALS_FILE" not in env


def test_declared_versions_config_and_label_checks(
    rendered: Rendered, render_fn: Callable[..., list[Obj]]
) -> None:
    from chart_support import config_data, render_error

    cfg = config_data(rendered["object-storage-minio"])["models.config"]
    assert 'version_labels {\n      key: "canary"\n      value: 4\n    }' in cfg
    assert 'version_labels {\n      key: "stable"\n      value: 3\n    }' in cfg
    assert "model.versions.labels needs model.versions.specific" in render_error(
        extra=("--set-json", 'model.versions.labels={"stable": 3}')
    )
    assert "model.versions.labels.stable=5 is not in model.versions.specific" in render_error(
        extra=("--set-json", 'model.versions={"latest": 2, "specific": [3, 4], "labels": {"stable": 5}}')
    )
    cfg3 = config_data(render_fn(sets=("model.versions.latest=3",)))["models.config"]
    assert "num_versions: 3" in cfg3
