"""Every command in docs/operations.md is exercised, and the chart README's values presets render.

The operations guide's bash blocks are run by bash itself (so quoting, heredocs, pipes and command
substitution are parsed exactly as a reader's shell parses them), in order, with `helm`, `kubectl`,
`docker` and `curl` replaced by shell functions that record their arguments (and stdin) instead of
touching a cluster. Then each recorded call is checked:
  - helm and kubectl: the subcommand exists and every flag is one the pinned binary's --help lists
    (Helm 4's --force-conflicts and --reset-then-reuse-values included);
  - helm install/upgrade: rendered with `helm template` and the same values, on top of the values the
    release already had when the call reuses them: the schema and the chart's checks must accept it;
  - kubectl: the objects and containers it names exist in the chart's output; manifests it applies
    are valid against Kubernetes' OpenAPI schemas.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import (
    CHART,
    CI_DIR,
    KUBE_VERSION,
    ROOT,
    SCENARIOS,
    containers,
    pod_specs,
    render,
    run,
    scenario_file,
    tool,
)

Obj = dict[str, Any]
OPS = ROOT / "docs" / "operations.md"
RECORDER = r"""
__record() { python3 "$RECORD_PY" "$@"; }
helm() {
  __record helm "$@"
  case "$*" in *"history"*"-o json"*) echo '[{"revision": 1}, {"revision": 2}]' ;; esac
}
kubectl() {
  __record kubectl "$@"
  case "$*" in *"-o name"*) echo pod/tc-text-classifier-abc12-xyz34 ;; esac
}
docker() { __record docker "$@"; }
curl() { __record curl "$@"; }
"""
RECORD_PY = """import json, os, sys
stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
with open(os.environ["CALLS"], "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "stdin": stdin}) + "\\n")
"""


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


@cache
def recorded_calls() -> tuple[tuple[list[str], str], ...]:
    """Run every bash block of the guide, in order, in one shell; return (argv, stdin) of each call.
    No `set -e`: a reader's `... | grep -m1 ...` finds nothing here; that every command ran is checked
    by counting the recorded calls."""
    with tempfile.TemporaryDirectory() as tmp:
        calls, record_py = Path(tmp) / "calls.jsonl", Path(tmp) / "record.py"
        record_py.write_text(RECORD_PY)
        script = RECORDER + "\n".join(bash_blocks(OPS.read_text()))
        proc = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp,
            env={"PATH": "/usr/bin:/bin", "CALLS": str(calls), "RECORD_PY": str(record_py), "HOME": tmp},
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert "syntax error" not in proc.stderr, proc.stderr
        out = []
        for line in calls.read_text().splitlines():
            rec = json.loads(line)
            out.append((rec["argv"], rec["stdin"]))
        return tuple(out)


def command_text() -> str:
    """The guide's bash blocks without comments."""
    lines = []
    for line in "\n".join(bash_blocks(OPS.read_text())).splitlines():
        if line.lstrip().startswith("#"):
            continue
        lines.append(re.sub(r"\s+#\s.*$", "", line))
    return "\n".join(lines)


def test_every_helm_and_kubectl_line_is_recorded() -> None:
    """The shell ran every command: as many recorded calls as command words in the guide's blocks."""
    words = len(re.findall(r"(?:^|[\s|;&(])(helm|kubectl) ", command_text(), flags=re.M))
    recorded = [argv for argv, _ in recorded_calls() if argv[0] in ("helm", "kubectl")]
    assert len(recorded) == words, (len(recorded), words)
    assert len(recorded) > 40


# --- flags ---------------------------------------------------------------------------------------------
@cache
def help_flags(binary: str, sub: tuple[str, ...]) -> set[str]:
    out = run([tool(binary), *sub, "--help"]).stdout
    if binary == "kubectl":
        out += run([tool("kubectl"), "options"]).stdout
    return set(re.findall(r"(?:^|\s)(-[a-zA-Z]|--[a-z][a-z0-9-]*)\b", out))


VALUE_FLAGS = {
    "-n",
    "--namespace",
    "-f",
    "--values",
    "-o",
    "--output",
    "-l",
    "--selector",
    "-c",
    "--container",
}


def positionals(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv[1:]:
        if skip:
            skip = False
        elif a.startswith("-"):
            skip = a in VALUE_FLAGS
        else:
            out.append(a)
    return out


def split_call(argv: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """(leading positional words, which --help resolves to the subcommand; flags) of a call."""
    lead: list[str] = []
    skip = False
    for a in argv[1:]:
        if skip:
            skip = False
            continue
        if a.startswith("-"):
            if a not in ("-n", "--namespace"):
                break
            skip = True
            continue
        lead.append(a)
    own = argv[1 : argv.index("--")] if "--" in argv else argv[1:]  # after --: the command run in the pod
    flags = [a.split("=", 1)[0] for a in own if a.startswith("-") and a != "-"]
    return tuple(lead[:4]), flags


@pytest.mark.parametrize("binary", ["helm", "kubectl"])
def test_docs_flags_exist_in_pinned_tools(binary: str) -> None:
    bad = []
    for argv, _ in recorded_calls():
        if argv[0] != binary:
            continue
        sub, flags = split_call(argv)
        known = help_flags(binary, sub)
        bad += [f"{shlex.join(argv)}: {f}" for f in flags if f not in known]
    assert not bad, "flags the pinned tools do not have:\n" + "\n".join(bad)


# --- helm install/upgrade render ----------------------------------------------------------------------
def values_args(argv: list[str], cwd_files: dict[str, str]) -> list[str]:
    """The value flags of a helm call, with file paths made absolute (site-values.yaml from the guide)."""
    out: list[str] = []
    it = iter(argv[1:])
    for a in it:
        if a in ("-f", "--values"):
            path = next(it)
            out += ["-f", cwd_files.get(path, str(ROOT / path))]
        elif a in ("--set", "--set-string", "--set-json"):
            out += [a, next(it)]
    return out


def test_docs_helm_installs_and_upgrades_render(tmp_path: Path) -> None:
    # The guide writes site-values.yaml with a heredoc; the recorder saw the shell create it in its cwd,
    # so rebuild it from the guide the same way bash did.
    subprocess.run(
        [
            "bash",
            "-c",
            "export REGISTRY=registry.example.com/text-classifier\n" + _heredoc("site-values.yaml"),
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    )
    assert (tmp_path / "site-values.yaml").is_file()
    files = {"site-values.yaml": str(tmp_path / "site-values.yaml")}
    release_values: dict[str, list[str]] = {}
    rendered = 0
    for argv, _ in recorded_calls():
        if argv[0] != "helm" or argv[1] not in ("install", "upgrade"):
            continue
        release = next(a for a in argv[2:] if not a.startswith("-"))
        own = values_args(argv, files)
        reuse = "--reuse-values" in argv or "--reset-then-reuse-values" in argv
        args = (release_values.get(release, []) if reuse else []) + own
        cmd = [
            tool("helm"),
            "template",
            release,
            str(CHART),
            "-n",
            "text-classifier",
            "--kube-version",
            KUBE_VERSION,
        ]
        proc = run([*cmd, *args], check=False)
        assert proc.returncode == 0, f"{shlex.join(argv)}\n{proc.stderr}"
        release_values[release] = args
        rendered += 1
    assert rendered >= 8


def _heredoc(name: str) -> str:
    m = re.search(rf"cat > {re.escape(name)} <<EOF\n.*?\nEOF\n", OPS.read_text(), flags=re.S)
    assert m, f"no heredoc for {name} in the guide"
    return m.group(0)


def test_model_image_tag_needs_set_string() -> None:
    """What the guide warns about: the tag is a string in the schema."""
    proc = run([tool("helm"), "template", "tc", str(CHART), "--set", "model.image.tag=2"], check=False)
    assert proc.returncode != 0 and "/model/image/tag" in proc.stderr
    assert "--set-string model.image.tag=2" in OPS.read_text()


# --- kubectl names and manifests -----------------------------------------------------------------------
@cache
def chart_names() -> tuple[set[str], set[str]]:
    """(kind/name of every object, container names) over every scenario, with the guide's release tc."""
    objs = [o for s in SCENARIOS for o in render(scenario_file(s), release="tc")]
    objs += render(release="tc")
    names = {f"{o['kind'].lower()}/{o['metadata']['name']}" for o in objs}
    ctrs = {c["name"] for _, spec in pod_specs(objs) for c in containers(spec)}
    return names, ctrs


def test_docs_kubectl_names_exist_in_chart() -> None:
    names, ctrs = chart_names()
    kinds = {"hpa": "horizontalpodautoscaler", "pdb": "poddisruptionbudget", "service": "service"}
    problems, checked = [], 0
    for argv, _ in recorded_calls():
        if argv[0] != "kubectl":
            continue
        pos = positionals(argv)
        for i, a in enumerate(argv[:-1]):
            if a == "-c":
                checked += 1
                if argv[i + 1] not in ctrs:
                    problems.append(f"{shlex.join(argv)}: no container {argv[i + 1]}")
        for a in pos:
            if re.fullmatch(r"(deployment|service)/tc-text-classifier[-a-z0-9]*", a):
                checked += 1
                if a not in names:
                    problems.append(f"{shlex.join(argv)}: no {a}")
        if pos[:2] == ["set", "image"]:
            for a in pos[3:]:
                checked += 1
                if a.split("=", 1)[0] not in ctrs:
                    problems.append(f"{shlex.join(argv)}: no container {a.split('=', 1)[0]}")
        if len(pos) >= 3 and pos[0] in ("get", "describe") and pos[1] in kinds:
            checked += 1
            if f"{kinds[pos[1]]}/{pos[2]}" not in names:
                problems.append(f"{shlex.join(argv)}: no {pos[1]} {pos[2]}")
    assert not problems, "\n".join(problems)
    assert checked >= 12


def test_docs_applied_manifests_are_valid() -> None:
    manifests = [
        stdin for argv, stdin in recorded_calls() if argv[0] == "kubectl" and "apply" in argv and stdin
    ]
    objs = [d for m in manifests for d in yaml.safe_load_all(m) if d]
    assert objs, "the guide applies at least one manifest (the model loader pod)"
    proc = subprocess.run(
        [tool("python"), str(Path(__file__).with_name("k8s_validate.py")), KUBE_VERSION],
        input=json.dumps(objs),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert [r["status"] for r in json.loads(proc.stdout)] == ["ok"] * len(objs), proc.stdout


# --- the chart README's values presets -----------------------------------------------------------------
def readme_presets() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", (CHART / "README.md").read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(readme_presets())))
def test_chart_readme_presets_render(index: int, tmp_path: Path) -> None:
    preset = readme_presets()[index]
    values = yaml.safe_load(preset)
    f = tmp_path / "preset.yaml"
    f.write_text(preset)
    base = [CI_DIR / "object-storage-values.yaml", CI_DIR / "gpu-values.yaml"]
    objs = render(*base, f)
    dep = next(o for o in objs if o["kind"] == "Deployment")["spec"]
    np = next(
        o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "tc-text-classifier"
    )
    for rule in values.get("networkPolicy", {}).get("extraEgress", []):
        assert rule in np["spec"]["egress"]
    if "strategy" in values:
        assert dep["strategy"] == values["strategy"]
    if "nodeSelector" in values.get("gpu", {}):
        assert dep["template"]["spec"]["nodeSelector"] == {
            **yaml.safe_load((CI_DIR / "gpu-values.yaml").read_text())["gpu"]["nodeSelector"],
            **values["gpu"]["nodeSelector"],
        }
    ports = values.get("model", {}).get("objectStorage", {}).get("egressPorts")
    if ports:
        assert {p["port"] for r in np["spec"]["egress"] for p in r["ports"]} >= set(ports)
