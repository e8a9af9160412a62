"""The chart's README carries a values table generated from values.yaml's "# --" comments; it must stay
in sync (scripts/render-chart-readme.py --check), and the check must notice a change."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml
from chart_support import CHART, ROOT, run

GENERATOR = ROOT / "scripts" / "render-chart-readme.py"


def test_chart_readme_values_table_in_sync() -> None:
    proc = run([sys.executable, str(GENERATOR), "--check"], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_chart_readme_lists_every_documented_value() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for key in ("strategy", "gpu.nodeSelector", "tfServing.threads.intraOp", "model.versions.specific",
                "model.objectStorage.credentialsFile.secretName", "autoscaling.metrics", "keda.extraTriggers",
                "extraVolumes", "sidecar.extraEnvFrom", "metrics.serviceMonitor.tfServing"):  # fmt: skip
        node = values
        for part in key.split("."):
            node = node[part]
        assert f"| `{key}` |" in readme, key


def test_chart_readme_drift_is_detected(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    shutil.copy(CHART / "README.md", readme)
    text = readme.read_text()
    readme.write_text(
        text.replace("| `replicaCount` | integer | `2` |", "| `replicaCount` | integer | `3` |")
    )
    proc = run([sys.executable, str(GENERATOR), "--check", "--readme", str(readme)], check=False)
    assert proc.returncode == 1 and "differs" in proc.stdout
