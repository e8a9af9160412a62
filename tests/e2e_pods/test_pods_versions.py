"""Versions on the real node: the batch-scoring Job and a canary declared, promoted and rolled back.

Runs after test_pods_serving.py (pytest takes the files in name order; the release is shared), whose
training Job leaves version 2 beside version 1 on the model volume; run alone (`-k`), the canary test
copies the newest version to a new number instead. Each test runs under the counting load through Traefik
and allows no failed request.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

from pods_support import CHART, SAMPLE_TEXTS, Load, Release, kjson, kubectl, record, run, wait_until

from contracts.rollout import Declared, declared

UID = 10001  # the chart's runAsUser: the Job writes to the volume as this user


def helm_upgrade(release: Release, *sets: str) -> str:
    """`helm upgrade --reuse-values --wait`. After a kubectl change of a chart-owned field (the gate's
    ConfigMap patch, the earlier tests' `kubectl scale` / `set image`) Helm's server-side apply stops on
    a conflict; as docs/operations.md (section 9) says, the values then carry the change and
    --force-conflicts takes the fields back. Returns which of the two happened."""
    cmd = ["upgrade", release.name, str(CHART), "--reuse-values", "--wait", "--timeout", "10m"]
    cmd += [a for s in sets for a in ("--set", s)]
    res = release.helm(*cmd, timeout=660, check=False)
    if res.returncode == 0:
        return "applied"
    assert "conflict" in res.stderr, res.stderr
    release.helm(*cmd, "--force-conflicts", timeout=660)
    return "conflict, then --force-conflicts"


def revision(release: Release) -> int:
    status = json.loads(release.helm("status", release.name, "-o", "json").stdout)
    return int(status["version"])


def declaration(release: Release) -> Declared:
    cm = kjson("get", "configmap", "-n", release.namespace, f"{release.fullname}-tfserving")
    decl = declared(cm["data"]["models.config"], "news")
    assert decl is not None, cm["data"]["models.config"]
    return decl


def chown_tree(path: Path) -> None:
    os.chown(path, UID, UID)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), UID, UID)


def only(load: Load, versions: set[int], n: int = 60) -> bool:
    window = load.versions_answering(n, timeout=180)
    print(f"next {n} ok answers by version: {dict(window)}")
    return set(window) == versions


def test_batch_scoring_job_scores_a_file_on_the_model_volume(
    release: Release, load: Load, node_name: str
) -> None:
    served = load.versions_answering(30)
    assert len(served) == 1, f"more than one version answering before the Job: {served}"
    (version,) = served
    batch = release.volume / "batch"
    batch.mkdir(exist_ok=True)
    os.chown(batch, UID, UID)
    for stale in batch.glob("output.jsonl*"):
        stale.unlink()
    good = [json.dumps({"id": f"r{i}", "text": SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)]}) for i in range(40)]
    # line 3 is not valid JSON: counted, reported with file:line, skipped
    lines = [*good[:2], '{"id": "bad", "text": ', *good[2:]]
    source = batch / "input.jsonl"
    source.write_text("\n".join(lines) + "\n")
    os.chown(source, UID, UID)

    helm_upgrade(
        release,
        "batchScoring.enabled=true",
        f"batchScoring.version={version}",
        "training.enabled=false",  # no training Job (and no new version) from this revision
    )
    job = f"{release.fullname}-score-{revision(release)}"

    def finished() -> bool:
        st = kjson("get", "job", "-n", release.namespace, job).get("status", {})
        return bool(st.get("succeeded") or st.get("failed"))

    wait_until(f"the Job {job} to finish", finished, timeout=900, interval=3)
    log = kubectl("logs", "-n", release.namespace, f"job/{job}").stdout
    status = kjson("get", "job", "-n", release.namespace, job)["status"]
    assert status.get("succeeded") == 1, f"{status}\n{log}"
    (pod,) = kjson("get", "pods", "-n", release.namespace, "-l", f"batch.kubernetes.io/job-name={job}")[
        "items"
    ]
    assert pod["spec"]["nodeName"] == node_name, "the scoring pod must run on the real node"
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")

    assert f"with news version {version}" in log, log
    assert "rejected: /models/batch/input.jsonl:3: not valid JSON" in log, log
    assert "rows in 41 = written 40 + rejected 1" in log, log
    summary = json.loads((batch / "output.jsonl.summary.json").read_text())
    assert summary["completed"] is True and summary["version"] == version, summary
    assert (summary["rows_in"], summary["written"], summary["rejected"]) == (41, 40, 1), summary
    assert summary["rows_in"] == summary["written"] + summary["rejected"]
    assert not (batch / "output.jsonl.partial").exists()
    rows = [json.loads(line) for line in (batch / "output.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(40)]
    labels = release.labels_of(version)
    for r in rows:
        assert (r["model"], r["version"]) == ("news", version), r
        if r["abstained"]:
            assert r["label"] is None, r
        else:
            assert r["label"] in labels, f"{r['label']!r} is not one of version {version}'s labels {labels}"
    answered = Counter(r["label"] for r in rows)
    print(f"scored with version {version}: {dict(answered)}")
    assert len([lbl for lbl in answered if lbl is not None]) >= 3, answered  # five different texts

    load.wait_for_requests(30)
    record(f"batch-scoring Job (version {version}, 41 rows in, 40 written, 1 rejected)", load.report)
    assert load.report.failed == 0, load.report.failures


def two_versions(release: Release) -> tuple[int, int]:
    versions = release.versions_on_volume()
    if len(versions) < 2:
        # Run alone: copy the newest version to the next number, published atomically (a rename), as the
        # training Job publishes.
        base = release.volume / "news"
        staging = base / ".copy"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(base / str(versions[-1]), staging)
        chown_tree(staging)
        staging.rename(base / str(versions[-1] + 1))
        versions = release.versions_on_volume()
    return versions[-2], versions[-1]


def test_canary_split_promote_and_rollback_under_load(release: Release, load: Load) -> None:
    stable, canary = two_versions(release)
    deploy = f"deployment/{release.fullname}"
    steps: list[str] = []

    # 1. canary at 30% beside the declared stable. The shared 2-core machine's latency is not under test:
    # no p99 limit, so only errors could make the sidecar fall back to stable.
    steps.append(
        helm_upgrade(
            release,
            f"model.stableVersion={stable}",
            f"model.canary.version={canary}",
            "model.canary.weight=30",
            "model.canary.fallback.maxP99Ms=0",
            "batchScoring.enabled=false",
            "training.enabled=false",
        )
    )
    kubectl("rollout", "status", "-n", release.namespace, deploy, "--timeout=600s", timeout=660)
    decl = declaration(release)
    assert (decl.stable, decl.canary, decl.versions) == (stable, canary, {stable, canary})
    roles_before = Counter(load.report.by_role)
    wait_until(
        f"versions {stable} and {canary} both answering",
        lambda: only(load, {stable, canary}),
        timeout=420,
        interval=0.1,
    )
    roles = Counter(load.report.by_role) - roles_before
    assert roles["canary"] > 0 and roles["stable"] > 0, roles
    print(f"canary declared: roles {dict(roles)}; {load.report.summary()}")

    # 2. promote through the evaluation gate, which patches the ConfigMap with kubectl; it reads the
    # versions' files on the model volume (a host directory here). Both versions come from the same data
    # and trainer: the tolerance only keeps run-to-run noise from refusing the promotion.
    res = run(
        sys.executable, "-m", "training", "promote", "--model-name", "news", "--version", str(canary),
        "--model-base", str(release.volume), "--configmap", f"{release.fullname}-tfserving",
        "--namespace", release.namespace, "--tolerance", "0.05",
        timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"stable v{stable}" in res.stdout and f"candidate v{canary}" in res.stdout, res.stdout
    decl = declaration(release)
    assert (decl.stable, decl.canary, decl.previous) == (canary, None, stable)
    wait_until(f"only version {canary} answering", lambda: only(load, {canary}), timeout=420, interval=0.1)
    print(f"promoted: {load.report.summary()}")

    # 3. roll back with helm: the values carry the kubectl change back (--force-conflicts once).
    steps.append(
        helm_upgrade(
            release, f"model.stableVersion={stable}", "model.previousVersion=0", "model.canary.version=0"
        )
    )
    decl = declaration(release)
    assert (decl.stable, decl.canary, decl.previous, decl.versions) == (stable, None, None, {stable})
    wait_until(f"only version {stable} answering", lambda: only(load, {stable}), timeout=420, interval=0.1)
    print(f"helm upgrades: {steps}; {load.report.summary()}")
    record(f"canary v{canary} 30% beside v{stable}, promote (gate, kubectl), roll back (helm)", load.report)
    assert load.report.failed == 0, load.report.failures
    assert load.report.by_version[stable] > 0 and load.report.by_version[canary] > 0
