"""The object-storage sync script (files/model-sync.sh, shipped in the chart's ConfigMap) run for real by
/bin/sh with the rendered init container's environment, against a stand-in `rclone` that serves a local
directory as the bucket and records every copy. Only the served versions are copied (once each), the
others are never fetched, and versions no longer served are removed; the image source's copy step is
run the same way, retried."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chart_support import container, one, render, scenario_file

Obj = dict[str, Any]

FAKE_RCLONE = r'''#!PYTHON
"""Stand-in for the rclone subcommands model-sync.sh uses (lsf, lsf --dirs-only, copy), remote "store:"
mapped to $FAKE_BUCKET_ROOT. Every copy is appended to $FAKE_RCLONE_LOG."""
import os, shutil, sys
from pathlib import Path

args = [a for a in sys.argv[1:] if a not in ("--checksum", "--fast-list")]
root = Path(os.environ["FAKE_BUCKET_ROOT"])

def local(remote):
    assert remote.startswith("store:"), remote
    return root / remote[len("store:"):]

if args[0] == "lsf":
    dirs_only = "--dirs-only" in args
    p = local([a for a in args[1:] if not a.startswith("--")][0])
    if p.is_file() and not dirs_only:
        print(p.name)
    elif p.is_dir():
        for c in sorted(p.iterdir()):
            if c.is_dir():
                print(c.name + "/")
            elif not dirs_only:
                print(c.name)
    else:
        print(f"ERROR : {p}: directory not found", file=sys.stderr)
        sys.exit(3)
elif args[0] == "copy":
    src, dst = local(args[1]), Path(args[2])
    with open(os.environ["FAKE_RCLONE_LOG"], "a") as log:
        log.write(f"{src.relative_to(root)}\n")
    shutil.copytree(src, dst, dirs_exist_ok=True)
else:
    sys.exit(f"fake rclone: unsupported {args}")
'''


def make_version(bucket: Path, v: str, complete: bool = True) -> None:
    d = bucket / "models" / "news" / v
    (d / "assets").mkdir(parents=True)
    (d / "saved_model.pb").write_bytes(b"pb" + v.encode())
    if complete:
        (d / "assets" / "vectorizer.json").write_text("{}")


class Syncer:
    def __init__(self, tmp: Path, scenario: str) -> None:
        objs = render(
            scenario_file(scenario), sets=("model.objectStorage.bucket=models", "model.objectStorage.prefix=")
        )
        self.script = tmp / "model-sync.sh"
        self.script.write_text(one(objs, "ConfigMap", "-model-sync")["data"]["model-sync.sh"])
        spec = one(objs, "Deployment")["spec"]["template"]["spec"]
        self.env = {e["name"]: e["value"] for e in container(spec, "model-sync-init")["env"] if "value" in e}
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        rclone = bin_dir / "rclone"
        rclone.write_text(FAKE_RCLONE.replace("PYTHON", sys.executable, 1))
        rclone.chmod(0o755)
        self.bucket, self.root, self.log = tmp / "bucket", tmp / "models", tmp / "copies.log"
        self.bucket.mkdir()
        self.root.mkdir()
        self.env.update(
            MODEL_ROOT=str(self.root),
            PATH=f"{bin_dir}:{os.environ['PATH']}",
            FAKE_BUCKET_ROOT=str(self.bucket),
            FAKE_RCLONE_LOG=str(self.log),
        )

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/sh", str(self.script), "once"], env=self.env, capture_output=True, text=True, timeout=60
        )

    def live(self) -> list[str]:
        return sorted(p.name for p in (self.root / "news").iterdir())

    def copies(self) -> list[str]:
        out = self.log.read_text().split() if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        return [c.rsplit("/", 1)[1] for c in out]


def test_sync_latest_copies_only_served_versions_once(tmp_path: Path) -> None:
    s = Syncer(tmp_path, "object-storage")
    assert s.env["MODEL_LATEST"] == "2" and "MODEL_VERSIONS" not in s.env
    for v in ("1", "2", "3"):
        make_version(s.bucket, v)
    make_version(s.bucket, "4", complete=False)  # upload still running: not a version yet
    (s.bucket / "models" / "news" / "notes").mkdir()
    proc = s.run()
    assert proc.returncode == 0, proc.stderr
    assert s.live() == ["2", "3"]
    assert sorted(s.copies()) == ["2", "3"], "versions 1 and 4 must never be fetched"
    assert sorted(p.name for p in s.root.iterdir()) == ["news"], "no staging or temporary directory left"

    make_version(s.bucket, "5")
    proc = s.run()
    assert proc.returncode == 0, proc.stderr
    assert s.live() == ["3", "5"], "version 2 is no longer served: removed"
    assert s.copies() == ["5"], "live versions are not copied again"
    assert "retired news/2" in proc.stdout


def test_sync_declared_versions_only(tmp_path: Path) -> None:
    s = Syncer(tmp_path, "object-storage-minio")
    assert s.env["MODEL_VERSIONS"] == "3 4"
    for v in ("2", "3", "4", "5"):
        make_version(s.bucket, v)
    proc = s.run()
    assert proc.returncode == 0, proc.stderr
    assert s.live() == ["3", "4"] and sorted(s.copies()) == ["3", "4"]


def test_sync_keeps_live_versions_when_nothing_is_served(tmp_path: Path) -> None:
    s = Syncer(tmp_path, "object-storage")
    make_version(s.bucket, "7")
    assert s.run().returncode == 0 and s.live() == ["7"]
    make_version(s.bucket, "8", complete=False)
    shutil.rmtree(s.bucket / "models" / "news" / "7")
    proc = s.run()
    assert proc.returncode != 0 and "no served version is complete" in proc.stderr
    assert s.live() == ["7"], "the last live version is never removed while nothing replaces it"


@pytest.mark.parametrize("leftover", ["none", "stale-tmp", "already-copied"])
def test_model_copy_init_container_is_retry_safe(tmp_path: Path, leftover: str) -> None:
    spec = one(render(scenario_file("model-image")), "Deployment")["spec"]["template"]["spec"]
    init = container(spec, "model-copy")
    models, image = tmp_path / "models", tmp_path / "image"
    for v in ("1", "2"):
        (image / "news" / v).mkdir(parents=True)
        (image / "news" / v / "saved_model.pb").write_text(v)
    models.mkdir()
    if leftover == "stale-tmp":  # a previous attempt died during cp
        (models / ".copy-tmp" / "1").mkdir(parents=True)
    script = init["args"][0].replace("/models", str(models))
    env = {**os.environ, "MODEL_NAME": "news", "MODEL_IMAGE_PATH": str(image)}
    runs = 2 if leftover == "already-copied" else 1  # a retry after a complete copy
    for _ in range(runs):
        proc = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in models.iterdir()) == ["news"]
    assert sorted(p.name for p in (models / "news").iterdir()) == ["1", "2"]
