"""Shared helpers for the static checks of the Helm chart, the k8s/ manifests and the Dockerfiles.

Tools come from the repository's own make targets; a missing tool fails the tests with the command
that installs it (never a silent skip):
  helm, kubectl         `make k8s-tools`   (scripts/k8s-tools.sh, pinned, user cache)
  checkov, hadolint,    `make chart-tools` (.cache/chart-tools venv, tests/chart/tools-requirements.txt)
  kubernetes-validate
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "text-classifier"
CI_DIR = CHART / "ci"
SCENARIOS = sorted(p.name.removesuffix("-values.yaml") for p in CI_DIR.glob("*-values.yaml"))
RELEASE = "tc"
NAMESPACE = "serving"
KUBE_VERSION = "1.35.0"
CHART_TOOLS = ROOT / ".cache" / "chart-tools" / "bin"

Obj = dict[str, Any]


def k8s_tools_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "text-classifier" / "bin"
    return Path(os.environ.get("K8S_TOOLS_DIR", default))


def tool(name: str) -> str:
    if name in ("helm", "kubectl"):
        path, how = k8s_tools_dir() / name, "make k8s-tools"
    else:
        path, how = CHART_TOOLS / name, "make chart-tools"
    if not os.access(path, os.X_OK):
        pytest.fail(f"{name} is not installed at {path}: run `{how}` first", pytrace=False)
    return str(path)


def run(cmd: list[str], *, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    return proc


def helm_template_cmd(
    *values_files: Path,
    sets: tuple[str, ...] = (),
    release: str = RELEASE,
    extra: tuple[str, ...] = (),
    chart: Path = CHART,
) -> list[str]:
    """`helm template`; `extra` holds further flags (--set-json, --set-string, --show-only, ...)."""
    cmd = [
        tool("helm"),
        "template",
        release,
        str(chart),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
    ]
    for f in values_files:
        cmd += ["-f", str(f)]
    for s in sets:
        cmd += ["--set", s]
    return cmd + list(extra)


def render(
    *values_files: Path,
    sets: tuple[str, ...] = (),
    release: str = RELEASE,
    extra: tuple[str, ...] = (),
    chart: Path = CHART,
) -> list[Obj]:
    out = run(helm_template_cmd(*values_files, sets=sets, release=release, extra=extra, chart=chart)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def render_error(*values_files: Path, sets: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> str:
    """Render that must fail; returns helm's error text."""
    proc = run(helm_template_cmd(*values_files, sets=sets, extra=extra), check=False)
    assert proc.returncode != 0, f"helm template accepted {values_files} {sets} {extra}"
    return proc.stderr


def scenario_file(name: str) -> Path:
    return CI_DIR / f"{name}-values.yaml"


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Obj]]:
    """Every ci/*-values.yaml scenario plus the chart defaults, rendered once."""
    assert SCENARIOS, f"no scenarios in {CI_DIR}"
    out = {name: render(scenario_file(name)) for name in SCENARIOS}
    out["defaults"] = render()
    return out


@pytest.fixture(scope="session")
def render_fn() -> Callable[..., list[Obj]]:
    return render


def find(objs: list[Obj], kind: str, name_suffix: str = "") -> list[Obj]:
    return [o for o in objs if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]


def one(objs: list[Obj], kind: str, name_suffix: str = "") -> Obj:
    found = find(objs, kind, name_suffix)
    assert len(found) == 1, (
        f"expected one {kind} *{name_suffix}, found {[o['metadata']['name'] for o in found]}"
    )
    return found[0]


def pod_specs(objs: list[Obj]) -> Iterator[tuple[str, Obj]]:
    """(object name, PodSpec) of every workload: Deployments, Jobs and bare Pods (the helm test)."""
    for o in objs:
        if o["kind"] in ("Deployment", "Job"):
            yield f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"]
        elif o["kind"] == "Pod":
            yield f"Pod/{o['metadata']['name']}", o["spec"]


def containers(spec: Obj) -> list[Obj]:
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def container(spec: Obj, name: str) -> Obj:
    matches = [c for c in containers(spec) if c["name"] == name]
    assert len(matches) == 1, f"no container {name}: {[c['name'] for c in containers(spec)]}"
    return matches[0]


def env_map(c: Obj) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in c.get("env", [])}


def config_data(objs: list[Obj]) -> dict[str, str]:
    return dict(one(objs, "ConfigMap", "-tfserving")["data"])


def dump_json(objs: list[Obj]) -> str:
    return json.dumps(objs)
