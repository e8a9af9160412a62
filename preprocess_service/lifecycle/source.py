"""The declared versions as the sidecar reads them: the model config TF Serving reads (labels
``stable``/``canary``) and the rollout file beside it, re-read whenever their content changes.

A file that cannot be parsed is logged and ignored: the previous declaration stays in force, as TF
Serving keeps its previous config when a reload fails."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from contracts.rollout import Declared, Rollout, RolloutError, declared

log = logging.getLogger("preprocess_service.lifecycle")


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


@dataclass
class DeclaredSource:
    model_name: str
    config_file: Path | None
    rollout_file: Path | None
    declared: Declared | None = None
    rollout: Rollout = field(default_factory=Rollout)
    revision: int = 0  # bumped on every change that took effect; a fallback lasts one revision
    error: str | None = None
    _seen: tuple[bytes | None, bytes | None] = (None, None)

    def poll(self) -> bool:
        """Re-read both files; True when the declaration changed. Small files: read, not stat'ed, as a
        ConfigMap volume swaps a symlink and keeps modification times of its own."""
        raw = (_read(self.config_file), _read(self.rollout_file))
        if raw == self._seen:
            return False
        self._seen = raw
        try:
            decl = declared(raw[0].decode(), self.model_name) if raw[0] is not None else None
            rollout = Rollout.from_json(raw[1]) if raw[1] is not None else Rollout()
        except (RolloutError, UnicodeDecodeError) as exc:
            self.error = f"declared versions not applied: {exc}"
            log.error(self.error)
            return False
        self.error = None
        if (decl, rollout) == (self.declared, self.rollout):
            return False
        self.declared, self.rollout = decl, rollout
        self.revision += 1
        log.info(
            "declared versions",
            extra={
                "model": self.model_name,
                "stable": decl.stable if decl else None,
                "canary": decl.canary if decl else None,
                "mode": rollout.mode,
                "weight": rollout.weight,
            },
        )
        return True
