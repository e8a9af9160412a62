"""Contract 1: where things live inside a model version directory, shared by every reader and writer."""

from __future__ import annotations

from pathlib import Path

import orjson

VECTORIZER = Path("assets") / "vectorizer.json"
LABELS = Path("assets") / "labels.json"
WARMUP = Path("assets.extra") / "tf_serving_warmup_requests"
METRICS = Path("assets.extra") / "metrics.json"
SAVED_MODEL = "saved_model.pb"


class ModelDirError(ValueError):
    """A model version directory that is missing a part or holds a malformed one."""


def version_dirs(model_base: str | Path) -> dict[int, Path]:
    """Complete version directories under ``<base>/<model_name>``, keyed by version number.

    Like TF Serving, only names that are positive integers count; temporary directories (training
    writes ``.tmp-*`` and renames) and directories without a saved_model.pb are ignored."""
    base = Path(model_base)
    found: dict[int, Path] = {}
    if not base.is_dir():
        return found
    for child in base.iterdir():
        if child.name.isdigit() and int(child.name) > 0 and (child / SAVED_MODEL).is_file():
            found[int(child.name)] = child
    return found


def next_version(model_base: str | Path) -> int:
    base = Path(model_base)
    taken = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
    return max(taken, default=0) + 1


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
