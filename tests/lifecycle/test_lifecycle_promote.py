"""The ship-a-version flow of docs/operations.md, run as written (canary, watch, promote, roll back)
against the stand-in model server and the sidecar under load, plus the evaluation gate's refusals."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from lc_support import MODEL, Lab, classify_bodies, model_info, rollout_is, wait_for

from devstack.loadgen import Load, http_request

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / "docs" / "operations.md"


def doc_steps() -> list[str]:
    text = OPS.read_text()
    m = re.search(r"<!-- ship-a-version -->(.*?)<!-- /ship-a-version -->", text, flags=re.S)
    assert m, "docs/operations.md lost its ship-a-version block"
    return re.findall(r"```sh\n(.*?)```", m.group(1), flags=re.S)


def sh(lab: Lab, script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a documented command the way a reader's shell would, with this stack's paths."""
    bindir = str(Path(sys.executable).parent)
    full_env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "MODEL_BASE": str(lab.stack.base),
        "CONFIG_DIR": str(lab.config_dir),
        "SIDECAR": lab.url,
        **env,
    }
    return subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def cli(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    base = ("--model-name", MODEL, "--model-base", str(lab.stack.base), "--config-dir", str(lab.config_dir))
    return subprocess.run(
        [sys.executable, "-m", "training", *args, *base],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_documented_flow_canary_promote_rollback_without_a_failed_request(lab: Lab) -> None:
    lab.declare(1)
    wait_for("stable 1, no canary", lambda: rollout_is(lab.url, 1, None))
    lab.publish(8)
    steps = doc_steps()
    assert len(steps) == 4, steps
    canary, watch, promote, rollback = steps
    env = {"OLD": "1", "NEW": "8"}
    reqs = [http_request("/classify", b) for b in classify_bodies()]
    with Load(
        lab.sidecar.ports["http"], reqs, concurrency=4, duration_s=240, max_requests=10**6, keep_bodies=True
    ) as ld:
        res = sh(lab, canary, **env)
        assert res.returncode == 0, res.stderr
        assert "candidate v8" in res.stdout and "stable v1" in res.stdout and "accuracy" in res.stdout
        wait_for("canary 8 active", lambda: rollout_is(lab.url, 1, 8, active=True, weight=10))
        res = sh(lab, watch, **env)
        assert res.returncode == 0, res.stderr
        assert res.stdout.splitlines()[0] == "1 8 True None", res.stdout
        assert "sidecar_canary_weight_percent" in res.stdout
        res = sh(lab, promote, **env)
        assert res.returncode == 0, res.stderr
        assert "promote 8 (was 1" in res.stdout
        wait_for("stable 8", lambda: rollout_is(lab.url, 8, None) and model_info(lab.url)["version"] == 8)
        res = sh(lab, rollback, **env)
        assert res.returncode == 0, res.stderr
        wait_for(
            "stable 1 again", lambda: rollout_is(lab.url, 1, None) and model_info(lab.url)["version"] == 1
        )
        ld.stop()
    results = ld.results
    bad = [r for r in results if r.status != 200]
    assert len(results) > 20 and not bad, [(r.status, r.error, r.body[:200]) for r in bad[:5]]
    assert "last change: rollback to 1" in (lab.config_dir / "models.config").read_text()


def test_gate_refuses_worse_or_broken_versions_and_force_is_logged(lab: Lab) -> None:
    lab.declare(1)
    wait_for("stable 1, no canary", lambda: rollout_is(lab.url, 1, None))
    lab.publish(7, "worse")
    lab.publish(9, "broken")
    res = cli(lab, "canary", "--version", "9")
    assert res.returncode == 1 and "fails the contract checks" in res.stderr, res.stderr
    res = cli(lab, "promote", "--version", "7")
    assert res.returncode == 1 and "declare it as canary first" in res.stderr, res.stderr
    assert cli(lab, "canary", "--version", "7", "--weight", "0").returncode == 0
    wait_for("canary 7", lambda: rollout_is(lab.url, 1, 7, active=True))
    before = (lab.config_dir / "models.config").read_text()
    res = cli(lab, "promote", "--version", "7")
    assert res.returncode == 1, res.stdout
    assert "worse than stable 1" in res.stderr and "accuracy" in res.stderr, res.stderr
    assert "stable v1" in res.stdout and "candidate v7" in res.stdout  # side by side, even when refused
    assert (lab.config_dir / "models.config").read_text() == before
    assert cli(lab, "promote", "--version", "7", "--force").returncode == 2  # --force needs --reason
    res = cli(lab, "promote", "--version", "7", "--force", "--reason", "accepted by the data team")
    assert res.returncode == 0, res.stderr
    assert "promotion forced" in res.stderr and "accepted by the data team" in res.stderr
    assert "accepted by the data team" in (lab.config_dir / "models.config").read_text()
    wait_for("stable 7", lambda: model_info(lab.url)["version"] == 7)
    assert cli(lab, "rollback").returncode == 0
    wait_for("stable 1 again", lambda: model_info(lab.url)["version"] == 1)
