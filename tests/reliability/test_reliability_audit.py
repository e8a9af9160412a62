"""Dependency audit: pip-audit over requirements/lock.txt (what every install resolves to). Every known
vulnerability must be fixed or explained in audit-ignore.yaml; a dependency that could not be audited
(for example with no route to the vulnerability service) fails the test with the reason, because
"No known vulnerabilities found" over zero audited packages proves nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "lock.txt"
IGNORE = Path(__file__).with_name("audit-ignore.yaml")


def _ignores() -> dict[str, str]:
    doc = yaml.safe_load(IGNORE.read_text()) or {}
    for vid, why in doc.items():
        assert isinstance(why, str) and len(why.split()) >= 15, f"{vid}: ignore without a real justification"
    return dict(doc)


def test_audit_lock_no_unexplained_vulnerability(figures: dict[str, Any]) -> None:
    try:
        import pip_audit  # noqa: F401
    except ImportError:
        pytest.fail(
            "pip-audit is not installed: `make reliability` installs the pinned version", pytrace=False
        )
    ignores = _ignores()
    cmd = [
        sys.executable,
        "-m",
        "pip_audit",
        "-r",
        str(LOCK),
        "--no-deps",
        "--disable-pip",
        "--progress-spinner",
        "off",
        "-f",
        "json",
        "--desc",
        "off",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO, check=False)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"pip-audit gave no report (exit {proc.returncode}):\n{proc.stderr[-2000:]}", pytrace=False
        )
    deps = report["dependencies"]
    pinned = [ln for ln in LOCK.read_text().splitlines() if "==" in ln and not ln.lstrip().startswith("#")]
    skipped = [d for d in deps if "skip_reason" in d]
    vulns = {(d["name"], d["version"], v["id"]): v for d in deps for v in d.get("vulns", [])}
    unexplained = sorted(
        f"{n} {ver}: {vid} (fix: {v.get('fix_versions')})"
        for (n, ver, vid), v in vulns.items()
        if vid not in ignores and not set(v.get("aliases", [])) & set(ignores)
    )
    seen_ids = {vid for (_, _, vid) in vulns} | {a for v in vulns.values() for a in v.get("aliases", [])}
    stale = sorted(set(ignores) - seen_ids)
    figures["cases"] += len(deps) - len(skipped)
    figures["failures"] += len(unexplained)
    figures["details"] = {
        "pinned": len(pinned),
        "audited": len(deps) - len(skipped),
        "skipped": len(skipped),
        "vulnerabilities": len(vulns),
        "ignored": len(vulns) - len(unexplained),
    }
    if skipped:
        pytest.fail(
            f"pip-audit could not audit {len(skipped)} of {len(deps)} locked packages, so the audit proves "
            f"nothing. First reason: {skipped[0]['skip_reason']}. pip-audit asks the vulnerability service "
            "(PyPI's JSON API, or OSV with --vulnerability-service osv) over the network; run `make "
            "reliability` where that is reachable.",
            pytrace=False,
        )
    assert len(deps) == len(pinned), (len(deps), len(pinned))
    assert not unexplained, "known vulnerabilities; upgrade or justify in audit-ignore.yaml:\n" + "\n".join(
        unexplained
    )
    assert not stale, f"audit-ignore.yaml lists advisories that no longer apply: {stale}"
