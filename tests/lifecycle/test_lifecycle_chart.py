"""The chart's declared versions: what `helm template` renders for model.stableVersion/canary is read
the same way by TF Serving's own parser (the stand-in's), by the sidecar's, and by the promote CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.rollout import Rollout, declared, with_roles

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "text-classifier"


def helm() -> str:
    found = shutil.which("helm")
    if found:
        return found
    res = subprocess.run(
        [str(REPO / "scripts" / "k8s-tools.sh")], capture_output=True, text=True, check=False
    )
    if res.returncode != 0:
        pytest.fail(f"helm is needed (scripts/k8s-tools.sh failed): {res.stderr[-500:]}")
    return str(Path(res.stdout.strip()) / "helm")


def render(*sets: str) -> subprocess.CompletedProcess[str]:
    args = [helm(), "template", "tc", str(CHART)]
    for s in sets:
        args += ["--set", s]
    return subprocess.run(args, capture_output=True, text=True, check=False)


def objects(*sets: str) -> list[dict[str, Any]]:
    res = render(*sets)
    assert res.returncode == 0, res.stderr
    return [d for d in yaml.safe_load_all(res.stdout) if d]


def find(objs: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    (obj,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)]
    return obj


def container(objs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    spec = find(objs, "Deployment")["spec"]["template"]["spec"]
    (c,) = [c for c in spec["containers"] if c["name"] == name]
    return c


CANARY = ("model.stableVersion=3", "model.canary.version=4", "model.canary.weight=10")


def test_stable_and_canary_render_specific_versions_with_labels(tmp_path: Path) -> None:
    from local_model_server.model_config import VersionPolicy, read_model_config

    objs = objects(*CANARY, "model.canary.mode=shadow")
    data = find(objs, "ConfigMap", "-tfserving")["data"]
    decl = declared(data["models.config"], "news")
    assert decl is not None and (decl.policy, decl.versions) == ("specific", frozenset({3, 4}))
    assert (decl.stable, decl.canary) == (3, 4)
    # TF Serving's own proto parser (the stand-in uses tensorflow-serving-api) accepts it as well
    (tmp_path / "models.config").write_text(data["models.config"])
    cfg = read_model_config(tmp_path / "models.config").model_config_list.config[0]
    assert VersionPolicy.of(cfg).versions == {3, 4} and dict(cfg.version_labels) == {"stable": 3, "canary": 4}
    ro = Rollout.from_json(data["rollout.json"])
    assert (ro.mode, ro.weight, ro.fallback.max_error_rate) == ("shadow", 10.0, 0.05)
    tfs = container(objs, "tfserving")["args"]
    assert "--model_config_file_poll_wait_seconds=10" in tfs
    assert "--allow_version_labels_for_unavailable_models=true" in tfs
    sidecar = container(objs, "sidecar")
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["SIDECAR_MODEL_CONFIG_FILE"] == "/etc/tfserving/models.config"
    assert env["SIDECAR_ROLLOUT_FILE"] == "/etc/tfserving/rollout.json"
    mounts = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}
    assert mounts["/etc/tfserving"] == "tfserving-config"


def test_stable_version_takes_precedence_over_versions_specific() -> None:
    """A release that used model.versions.specific/labels moves to declared roles with --reuse-values."""
    objs = objects("model.versions.specific={3,4}", "model.versions.labels.old=3", "model.stableVersion=5")
    decl = declared(find(objs, "ConfigMap", "-tfserving")["data"]["models.config"], "news")
    assert decl is not None and (decl.versions, decl.labels) == (frozenset({5}), {"stable": 5})


def test_default_stays_latest_two() -> None:
    data = find(objects(), "ConfigMap", "-tfserving")["data"]
    decl = declared(data["models.config"], "news")
    assert decl is not None and (decl.policy, decl.num_versions, decl.labels) == ("latest", 2, {})
    assert Rollout.from_json(data["rollout.json"]).weight == 10  # inert without a canary


def test_declared_changes_do_not_roll_the_pods() -> None:
    def checksum(*sets: str) -> str:
        ann = find(objects(*sets), "Deployment")["spec"]["template"]["metadata"]["annotations"]
        return str(ann["checksum/config"])

    base = checksum()
    assert checksum(*CANARY) == base
    assert checksum("model.stableVersion=4") == base
    assert checksum("model.canary.weight=50", *CANARY[:2]) == base
    assert checksum("tfServing.monitoringPath=/metrics") != base  # other config still rolls them


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("model.canary.version=4",), "model.canary.version needs model.stableVersion"),
        (("model.stableVersion=4", "model.canary.version=4"), "must differ from model.stableVersion"),
        (("model.stableVersion=4", "model.canary.mode=mirror"), "split"),
        (("model.stableVersion=4", "model.canary.weight=101"), "weight"),
    ],
)
def test_bad_declarations_are_refused(sets: tuple[str, ...], message: str) -> None:
    res = render(*sets)
    assert res.returncode != 0 and message in res.stderr, res.stderr


def test_promote_rewrite_matches_the_chart_rendering() -> None:
    """What `python -m training promote` writes into the ConfigMap equals what `helm upgrade` with the
    same declaration renders (so Helm and kubectl users describe one state the same way)."""
    before = find(objects(*CANARY), "ConfigMap", "-tfserving")["data"]["models.config"]
    after = find(objects("model.stableVersion=4"), "ConfigMap", "-tfserving")["data"]["models.config"]
    assert declared(with_roles(before, "news", 4, None), "news") == declared(after, "news")
    assert (
        json.loads(find(objects(), "ConfigMap", "-tfserving")["data"]["rollout.json"])["canary"]["mode"]
        == "split"
    )


def test_dashboard_shows_versions_and_roles() -> None:
    from preprocess_service.metrics import Metrics

    dash = json.loads((CHART / "files" / "dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    exported = {m.name for m in Metrics().registry.collect()}
    for name in ("sidecar_version_requests", "sidecar_version_request_duration_seconds",
                 "sidecar_version_predictions", "sidecar_canary_weight_percent",
                 "sidecar_shadow_agreement_ratio", "sidecar_canary_fallbacks"):  # fmt: skip
        assert name in exported and name in exprs, name
