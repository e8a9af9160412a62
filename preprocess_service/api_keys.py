"""API keys (bearer tokens): from ``SIDECAR_API_KEYS`` and the key file ``SIDECAR_API_KEYS_FILE``.

The key file is a mounted Kubernetes Secret, and rotating a key means editing that Secret: the kubelet
swaps the file in place (a new inode behind the ``..data`` symlink) without restarting the pod. So
the file is watched: at most every ``reload_s`` seconds a request triggers one ``stat()`` of it (a
metadata read of a local tmpfs file, microseconds, cheaper than a thread hand-off), and the file is
re-read only when its inode, size or modification time changed. The new key set replaces the old one
in one assignment, so a request sees either the old or the new set, never a mix, and none is dropped.

A file that cannot be read, or that is read empty while it held keys before (a half-written edit),
keeps the previous keys: a rotation mistake must not open the service to everyone.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from preprocess_service.config import Settings

log = logging.getLogger("preprocess_service.api_keys")

Signature = tuple[int, int, int]


def parse_keys(text: str) -> tuple[str, ...]:
    """One key per line; blank lines and surrounding spaces ignored."""
    return tuple(k.strip() for k in text.splitlines() if k.strip())


class ApiKeys:
    def __init__(
        self,
        inline: tuple[str, ...],
        path: Path | None,
        reload_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inline = inline
        self._path = path
        self._reload_s = reload_s
        self._clock = clock
        self._signature: Signature | None = None
        self._file_keys: tuple[str, ...] = ()
        self._checked_at = clock()
        if path is not None:
            # At start an unreadable key file is a configuration error: fail loudly, as before.
            self._signature = self._stat(path)
            self._file_keys = parse_keys(path.read_text(encoding="utf-8"))
        self._keys = inline + self._file_keys

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        inline = tuple(k.strip() for k in settings.api_keys.split(",") if k.strip())
        return cls(inline, settings.api_keys_file, settings.api_keys_reload_s)

    @staticmethod
    def _stat(path: Path) -> Signature:
        st = os.stat(path)  # follows the Secret volume's symlinks to the current file
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def current(self) -> tuple[str, ...]:
        """The keys in force now (an empty tuple: auth is off)."""
        if self._path is not None and self._clock() - self._checked_at >= self._reload_s:
            self._checked_at = self._clock()
            self._reload_if_changed(self._path)
        return self._keys

    def _reload_if_changed(self, path: Path) -> None:
        try:
            signature = self._stat(path)
            if signature == self._signature:
                return
            keys = parse_keys(path.read_text(encoding="utf-8"))
        except OSError as exc:
            log.warning("API key file unreadable, keeping the current keys", extra={"error": str(exc)})
            return
        self._signature = signature
        if not keys and self._file_keys:
            log.warning("API key file is empty, keeping the current keys")
            return
        self._file_keys = keys
        self._keys = self._inline + keys
        log.info("API keys reloaded", extra={"keys": len(self._keys)})
