"""helm lint, helm template of every scenario, values schema strictness, documented values, NOTES."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from chart_support import (
    CHART,
    KUBE_VERSION,
    NAMESPACE,
    SCENARIOS,
    render,
    render_error,
    run,
    scenario_file,
    tool,
)

EXPECTED_SCENARIOS = {
    "cpu",
    "gpu",
    "gpu-custom-pool",
    "gpu-fixed-pool",
    "pvc",
    "model-image",
    "object-storage",
    "object-storage-gcs",
    "object-storage-minio",
    "autoscaling-custom-metric",
    "keda-scale-to-zero",
    "auth",
    "ingress-tls",
    "ingress-catch-all",
    "extensions",
}


def test_chart_scenarios_all_present() -> None:
    assert set(SCENARIOS) >= EXPECTED_SCENARIOS


def test_chart_lint_strict_all_scenarios() -> None:
    for name in [*SCENARIOS, None]:
        cmd = [
            tool("helm"),
            "lint",
            "--strict",
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
        ]
        if name:
            cmd += ["-f", str(scenario_file(name))]
        proc = run(cmd, check=False)
        assert proc.returncode == 0, f"helm lint --strict ({name or 'defaults'}):\n{proc.stdout}{proc.stderr}"
        assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout


@pytest.mark.parametrize("name", SCENARIOS)
def test_chart_template_renders_scenario(name: str) -> None:
    objs = render(scenario_file(name))
    kinds = {o["kind"] for o in objs}
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount", "Pod"} <= kinds
    for o in objs:
        assert o["metadata"].get("namespace") == NAMESPACE, f"{o['kind']} without the release namespace"
        labels = o["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "text-classifier"
        assert labels["app.kubernetes.io/instance"] == "tc"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("unknownTopLevel=1",), "additional properties 'unknownTopLevel' not allowed"),
        (("sidecar.typoedKey=1",), "additional properties 'typoedKey' not allowed"),
        (("model.pvc.sizee=1Gi",), "additional properties 'sizee' not allowed"),
        (("model.source=ftp",), "model/source"),
        (("sidecar.transport=http",), "sidecar/transport"),
        (("gpu.count=0",), "gpu/count"),
        (("model.image.digest=sha256:short",), "model/image/digest"),
    ],
)
def test_chart_schema_rejects_bad_values(sets: tuple[str, ...], message: str) -> None:
    err = render_error(sets=sets)
    assert "schema" in err and message in err, err


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("autoscaling.enabled=true", "keda.enabled=true"), "mutually exclusive"),
        (("training.enabled=true", "model.source=image"), "training.enabled needs model.source=pvc"),
        (("model.source=objectStorage",), "needs model.objectStorage.bucket"),
        (("auth.enabled=true",), "auth.enabled needs"),
        (("terminationGracePeriodSeconds=10",), "terminationGracePeriodSeconds (10) must be >="),
        (("model.pvc.create=false",), "needs model.pvc.existingClaim"),
    ],
)
def test_chart_render_fails_on_inconsistent_values(sets: tuple[str, ...], message: str) -> None:
    assert message in render_error(sets=sets)


def _leaf_paths(node: object, prefix: str = "") -> set[str]:
    if (
        isinstance(node, dict)
        and node
        and not prefix.endswith(("Selector", "Labels", "labels", "annotations"))
    ):
        out: set[str] = set()
        for k, v in node.items():
            out |= _leaf_paths(v, f"{prefix}.{k}" if prefix else k)
        return out
    return {prefix}


def _schema_paths(schema: dict, prefix: str = "") -> set[str]:
    props = schema.get("properties")
    if not props:
        return {prefix}
    out: set[str] = set()
    for k, v in props.items():
        out |= _schema_paths(v, f"{prefix}.{k}" if prefix else k)
    return out


def test_chart_values_all_typed_in_schema() -> None:
    """Every value in values.yaml has a schema entry (strict objects down to the leaves)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    schema_paths = _schema_paths(schema) - {"global"}
    missing = {
        p for p in _leaf_paths(values) if not any(p == s or p.startswith(s + ".") for s in schema_paths)
    }
    assert not missing, f"values without schema: {sorted(missing)}"
    nullable = {
        "terminationGracePeriodSeconds",
        "tfServing.batching.enabled",
        "tfServing.threads.intraOp",
        "tfServing.threads.interOp",
        "tfServing.threads.restApi",
        "tfServing.restApiTimeoutMs",
    }
    unused = {
        s for s in schema_paths if not any(p == s or p.startswith(s + ".") for p in _leaf_paths(values))
    }
    assert unused <= nullable, f"schema entries without a default in values.yaml: {sorted(unused - nullable)}"


def _strict_objects(schema: dict, path: str = "") -> list[str]:
    bad = []
    if schema.get("properties") and schema.get("additionalProperties") is not False:
        bad.append(path or "<root>")
    for k, v in schema.get("properties", {}).items():
        bad += _strict_objects(v, f"{path}.{k}")
    return bad


def test_chart_schema_strict_everywhere() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert _strict_objects(schema) == []


def test_chart_values_every_key_documented() -> None:
    """Every value in values.yaml is documented: a '# --' comment block right above it, or above an
    enclosing key (the whole object is one documented value). Group keys only need documented children."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, bool]] = []  # (indent, documented) of enclosing keys
    undocumented = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)(?:- )?([A-Za-z][A-Za-z0-9_./-]*):(.*)$", line)
        if not m or line.lstrip().startswith("#"):
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        block, j = [], i - 1
        while j >= 0 and lines[j].lstrip().startswith("#"):
            block.append(lines[j].strip())
            j -= 1
        direct = any(c.startswith("# --") for c in block)
        documented = direct or any(doc for _, doc in stack)
        is_group = m.group(3).strip() == ""
        if not documented and not is_group:
            undocumented.append(f"line {i + 1}: {line.strip()}")
        stack.append((indent, documented))
    assert not undocumented, "undocumented values:\n" + "\n".join(undocumented)


def test_chart_notes_tell_next_steps() -> None:
    cmd = [
        tool("helm"),
        "install",
        "tc",
        str(CHART),
        "--dry-run=client",
        "--namespace",
        NAMESPACE,
        "-f",
        str(scenario_file("ingress-tls")),
    ]
    notes = run(cmd).stdout.split("NOTES:", 1)[1]
    assert "kubectl -n serving rollout status deployment/tc-text-classifier" in notes
    assert "helm test tc -n serving --logs" in notes
    assert "https://classify.example.com/v1/classify" in notes
    assert "helm rollback tc -n serving" in notes


def test_chart_packaging_excludes_ci_values(tmp_path: Path) -> None:
    run([tool("helm"), "package", str(CHART), "-d", str(tmp_path)])
    (pkg,) = tmp_path.glob("text-classifier-*.tgz")
    names = run(["tar", "tzf", str(pkg)]).stdout.split()
    assert "text-classifier/values.schema.json" in names
    assert "text-classifier/templates/tests/test-classify.yaml" in names
    assert not [n for n in names if "/ci/" in n]
