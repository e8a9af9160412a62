"""The model version directory: where things live inside ``<base>/<model_name>/<version>/``, which
directories count as versions, and how a version is published, for every reader and writer."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import orjson

VECTORIZER = Path("assets") / "vectorizer.json"
LABELS = Path("assets") / "labels.json"
WARMUP = Path("assets.extra") / "tf_serving_warmup_requests"
METRICS = Path("assets.extra") / "metrics.json"
ASSETS, ASSETS_EXTRA = "assets", "assets.extra"
SAVED_MODEL = "saved_model.pb"
TMP_PREFIX = ".tmp-"  # not all digits: no poller takes a version being written for a version


class ModelDirError(ValueError):
    """A model version directory that is missing a part or holds a malformed one."""


def version_dirs(model_base: str | Path, *, complete: bool = True) -> dict[int, Path]:
    """Version directories under ``<base>/<model_name>``, keyed by version number.

    Like TF Serving, only all-digit names count, so directories being written (``.tmp-*``) are never
    seen. ``complete`` (what the sidecar and the harness want) also requires a positive number and a
    saved_model.pb; without it every all-digit directory is listed, as TF Serving's file-system
    source sees them (a broken one is then tried, fails, and is reported)."""
    found: dict[int, Path] = {}
    try:
        entries = list(os.scandir(model_base))
    except OSError:
        return found
    for e in entries:
        if not (e.name.isdigit() and e.is_dir()):
            continue
        path = Path(e.path)
        if complete and (int(e.name) < 1 or not (path / SAVED_MODEL).is_file()):
            continue
        found[int(e.name)] = path
    return found


def next_version(model_base: str | Path) -> int:
    base = Path(model_base)
    taken = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
    return max(taken, default=0) + 1


def staging_dir(model_base: str | Path, version: int) -> Path:
    """A new hidden directory beside the versions, to assemble ``version`` in before :func:`publish`."""
    staged = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{version}-", dir=model_base))
    os.chmod(staged, 0o755)  # mkdtemp makes 0700; the serving containers run as other users
    return staged


def publish(staged: Path, model_base: str | Path, version: int) -> Path:
    """Rename an assembled directory to ``<base>/<version>`` in one step, so a poller never sees half of
    a version. Versions are immutable: an existing one is never replaced."""
    final = Path(model_base) / str(version)
    if final.exists():
        raise FileExistsError(f"{final} already exists; versions are immutable")
    os.rename(staged, final)
    return final


def publish_copy(src: str | Path, model_base: str | Path, version: int) -> Path:
    """Copy a version directory to ``<base>/<version>``: copied under a hidden name, then published."""
    staged = Path(model_base) / f"{TMP_PREFIX}{version}-{uuid.uuid4().hex[:6]}"
    shutil.copytree(src, staged)
    try:
        return publish(staged, model_base, version)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def load_labels(version_dir: str | Path) -> list[str]:
    path = Path(version_dir) / LABELS
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise ModelDirError(f"{path}: missing") from exc
    except orjson.JSONDecodeError as exc:
        raise ModelDirError(f"{path}: not valid JSON: {exc}") from exc
    labels = doc.get("labels") if isinstance(doc, dict) else None
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelDirError(f'{path}: expected {{"labels": ["...", ...]}} with at least one label')
    return labels
