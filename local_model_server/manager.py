"""Version watching of one model, like TF Serving's file-system storage path source and version policy.

Every poll lists ``<base>/<version>`` directories (all-digit names). The policy (``latest { N }``,
``specific { versions }`` or ``all``) picks, among those not known to be broken, the aspired versions:
each is loaded (state LOADING, then AVAILABLE). Only once loads are done are available versions the
policy no longer wants unloaded (UNLOADING, then END); under ``latest`` that is the versions beyond the
newest N good ones, so a new version never replaces the old one before it serves, and a broken one
never displaces a good one. A failed
load leaves the version in END with its error in ``status``; it is retried only when the directory's
contents change (a half-written copy that completes). A deleted directory is unloaded."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tensorflow_serving.apis.get_model_status_pb2 import ModelVersionStatus

from contracts.modeldir import version_dirs
from local_model_server.batching import BatchingOptions
from local_model_server.errors import Code, ServingError, not_found
from local_model_server.model_config import VersionPolicy
from local_model_server.servable import Servable, load

log = logging.getLogger("local_model_server")

# TF Serving's ModelVersionStatus.State names, from the proto
START, LOADING, AVAILABLE, UNLOADING, END = (
    ModelVersionStatus.State.Name(s)
    for s in (
        ModelVersionStatus.START,
        ModelVersionStatus.LOADING,
        ModelVersionStatus.AVAILABLE,
        ModelVersionStatus.UNLOADING,
        ModelVersionStatus.END,
    )
)
Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass
class VersionStatus:
    version: int
    state: str
    error_code: Code = Code.OK
    error_message: str = ""


def _fingerprint(path: Path) -> Fingerprint:
    items = []
    for root, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            with contextlib.suppress(OSError):
                st = os.stat(p)
                items.append((os.path.relpath(p, path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(items))


def list_versions(base: Path) -> dict[int, Path]:
    """All-digit child directories, as TF Serving's FileSystemStoragePathSource sees them."""
    return version_dirs(base, complete=False)


class ModelManager:
    def __init__(
        self,
        model_name: str,
        base_path: Path,
        num_versions: int = 2,
        enable_warmup: bool = True,
        on_state: Callable[[str, int, str], None] | None = None,
        on_load: Callable[[str, str], None] | None = None,
        unload_grace_s: float = 30.0,
        policy: VersionPolicy | None = None,
        batching: BatchingOptions | None = None,
    ) -> None:
        self.model_name = model_name
        self.base_path = base_path
        self.policy = policy or VersionPolicy("latest", num_versions=max(1, num_versions))
        self.enable_warmup = enable_warmup
        self.batching = batching
        self._on_state = on_state
        self._on_load = on_load
        self._unload_grace_s = unload_grace_s
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._status: dict[int, VersionStatus] = {}
        self._available: dict[int, Servable] = {}
        self._latest: Servable | None = None
        self._failed: dict[int, Fingerprint] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_empty = False

    # -- state ---------------------------------------------------------------------------------
    def _set(self, version: int, state: str, code: Code = Code.OK, message: str = "") -> None:
        with self._lock:
            self._status[version] = VersionStatus(version, state, code, message)
        if self._on_state:
            self._on_state(self.model_name, version, state)

    def _publish(self) -> None:  # caller holds the lock
        self._latest = self._available[max(self._available)] if self._available else None

    # -- polling -------------------------------------------------------------------------------
    def poll_once(self) -> None:
        # The poll thread and a config reload (a changed policy) may both poll: one at a time.
        with self._poll_lock:
            self._poll()

    def _poll(self) -> None:
        on_disk = list_versions(self.base_path)
        if not on_disk and not self._warned_empty:
            log.warning(
                "No versions of servable %s found under base path %s", self.model_name, self.base_path
            )
            self._warned_empty = True
        elif on_disk:
            self._warned_empty = False

        for v in [v for v in self._available if v not in on_disk]:
            log.info("Version directory %s of %s is gone: unloading", v, self.model_name)
            self._unload(v)
        for v in [v for v in self._failed if v not in on_disk]:
            del self._failed[v]

        candidates = []
        for v, path in on_disk.items():
            if v in self._failed:
                if self._failed[v] == _fingerprint(path):
                    continue  # broken, unchanged: skip
                del self._failed[v]
            candidates.append(v)
        policy = self.policy
        for v in policy.aspired(candidates):
            if v not in self._available and not self._stop.is_set():
                self._load(v, on_disk[v])

        keep = set(policy.aspired(list(self._available)))
        for v in sorted(self._available):
            if v not in keep:
                self._unload(v)

    def set_policy(self, policy: VersionPolicy) -> None:
        """A reloaded model config changed this model's version policy: applied at the next poll."""
        self.policy = policy

    def _load(self, version: int, path: Path) -> None:
        log.info("Loading servable: {name: %s version: %d} from %s", self.model_name, version, path)
        self._set(version, LOADING)
        before = _fingerprint(path)
        t0 = time.perf_counter()
        try:
            servable = load(self.model_name, version, path, self.enable_warmup, self.batching)
        except ServingError as exc:
            log.error(
                "Loading servable: {name: %s version: %d} failed: %s: %s",
                self.model_name,
                version,
                exc.code.name,
                exc.message,
            )
            self._failed[version] = _fingerprint(path) if path.exists() else before
            self._set(version, END, exc.code, exc.message)
            if self._on_load:
                self._on_load(self.model_name, exc.code.name)
            return
        with self._lock:
            self._available[version] = servable
            self._publish()
            self._status[version] = VersionStatus(version, AVAILABLE)
        if self._on_state:
            self._on_state(self.model_name, version, AVAILABLE)
        if self._on_load:
            self._on_load(self.model_name, "OK")
        log.info(
            "Successfully loaded servable version {name: %s version: %d} in %.2fs",
            self.model_name,
            version,
            time.perf_counter() - t0,
        )

    def _unload(self, version: int) -> None:
        with self._lock:
            servable = self._available.pop(version, None)
            self._publish()
            if servable is None:
                return
            self._status[version] = VersionStatus(version, UNLOADING)
        if self._on_state:
            self._on_state(self.model_name, version, UNLOADING)
        deadline = time.monotonic() + self._unload_grace_s
        while servable.inflight > 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # in-flight requests finish on the version they started on
        servable.close()
        self._set(version, END)
        log.info("Done unloading servable version {name: %s version: %d}", self.model_name, version)

    def start(self, poll_wait_s: float) -> None:
        """TF Serving's --file_system_poll_wait_seconds: >0 poll periodically, 0 once, <0 never."""
        if poll_wait_s < 0:
            return
        self._safe_poll()
        if poll_wait_s == 0:
            return
        self._thread = threading.Thread(target=self._loop, args=(poll_wait_s,), name="fs-poll", daemon=True)
        self._thread.start()

    def _safe_poll(self) -> None:
        try:
            self.poll_once()
        except Exception:  # a poll must never take the server down
            log.exception("Polling %s failed; will retry", self.base_path)

    def _loop(self, wait_s: float) -> None:
        while not self._stop.wait(wait_s):
            self._safe_poll()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def unload_all(self) -> None:
        """The model left the config: stop polling and unload every version (TF Serving's tear-down)."""
        self.stop()
        for v in sorted(self._available):
            self._unload(v)

    def state_of(self, version: int) -> str | None:
        with self._lock:
            st = self._status.get(version)
            return st.state if st else None

    # -- lookups (request path) ----------------------------------------------------------------
    @contextlib.contextmanager
    def handle(self, version: int | None = None) -> Iterator[Servable]:
        """The servable a request names (latest AVAILABLE without a version), held for the request."""
        with self._lock:
            servable = self._latest if version is None else self._available.get(version)
            if servable is None:
                what = (
                    f"Latest({self.model_name})"
                    if version is None
                    else f"Specific({self.model_name}, {version})"
                )
                raise not_found(f"Servable not found for request: {what}")
            servable.inflight += 1  # under the manager lock: an unload cannot slip in between
        try:
            yield servable
        finally:
            with self._lock:
                servable.inflight -= 1

    def status(self, version: int | None = None) -> list[VersionStatus]:
        """GetModelStatusImpl: one version, or all versions ever seen (newest first)."""
        with self._lock:
            if version is not None and version in self._status:
                return [self._status[version]]
            if version is not None:
                raise not_found(f"Could not find version {version} of model {self.model_name}")
            if not self._status:
                raise not_found(f"Could not find any versions of model {self.model_name}")
            return [self._status[v] for v in sorted(self._status, reverse=True)]
