"""Version pinning and hot swap.

The sidecar serves exactly one version at a time: its vectorizer, its labels, and TF Serving's network of
the same number. A newer version directory is loaded in the background, and the switch (one reference
assignment, atomic for every request that starts afterwards) happens only once TF Serving reports that
version AVAILABLE. A request reads :attr:`Registry.current` once and uses that snapshot throughout, so no
request can mix one version's vectorizer with another version's network."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from contracts import modeldir, version_state
from contracts.modeldir import ModelDirError, load_labels, version_dirs
from contracts.rollout import Declared
from preprocess_service.lifecycle.source import DeclaredSource
from preprocess_service.metrics import Metrics
from preprocess_service.upstream import Upstream
from textvec import Vectorizer, VectorizerError
from textvec.calibration import Calibration, load_calibration

log = logging.getLogger("preprocess_service.registry")


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    path: Path
    vectorizer: Vectorizer
    labels: tuple[str, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)


def load_version(name: str, path: Path) -> ModelVersion:
    """Read a version's vectorizer, labels and evaluation report; raises on anything inconsistent."""
    vec = Vectorizer.load(path / modeldir.VECTORIZER)
    labels = tuple(load_labels(path))
    metrics: dict[str, Any] = {}
    fingerprint = None
    mpath = path / modeldir.METRICS
    if mpath.is_file():
        try:
            doc = orjson.loads(mpath.read_bytes())
            test = doc.get("test", {})
            metrics = {
                "dataset": doc.get("dataset"),
                "accuracy": test.get("accuracy"),
                "macro_f1": test.get("macro_f1"),
                "per_class": test.get("per_class"),
                "data_cleaning": doc.get("data_cleaning"),
            }
            fingerprint = doc.get("vectorizer_fingerprint")
        except (orjson.JSONDecodeError, AttributeError):
            log.warning("unreadable metrics.json", extra={"path": str(mpath)})
    if fingerprint and fingerprint != vec.fingerprint:
        raise ModelDirError(f"{path}: metrics.json belongs to another vectorizer")
    # calibration contract: absent = temperature 1 and never abstain (older versions); malformed = rejected
    calibration = load_calibration(path, vec.fingerprint)
    return ModelVersion(name, int(path.name), path, vec, labels, metrics, calibration)


class Registry:
    def __init__(
        self,
        model_name: str,
        model_dir: Path,
        upstream: Upstream,
        metrics: Metrics,
        source: DeclaredSource | None = None,
    ) -> None:
        self.model_name = model_name
        self.model_dir = model_dir
        self.upstream = upstream
        self.metrics = metrics
        self.current: ModelVersion | None = None
        self.status = "starting"
        self._loaded: dict[int, ModelVersion] = {}
        self._broken: dict[int, float] = {}  # version -> mtime of the directory when it failed
        self._wake = asyncio.Event()
        # declared versions (models.config labels stable/canary); None or no declaration: newest wins
        self.source = source
        self.canary: ModelVersion | None = None
        self.canary_status = "no canary declared"
        self._passes_started = 0
        self._passes_done = 0
        self._pass_done = asyncio.Condition()

    def request_refresh(self) -> None:
        """Called when TF Serving says the pinned version is gone: look again now, not at the next poll."""
        self._wake.set()

    async def refreshed(self, timeout_s: float) -> ModelVersion | None:
        """Ask for a refresh, wait (at most ``timeout_s``) for a poll pass that starts after this call,
        and return the stable version then. For a request whose version TF Serving no longer serves: the
        model server can apply a new declaration (a rollback unloads the old stable) before this
        sidecar's next poll has read it."""
        target = self._passes_started + 1
        self.request_refresh()
        async with self._pass_done:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._pass_done.wait_for(lambda: self._passes_done >= target), timeout_s
                )
        return self.current

    async def _candidate(self, version: int, path: Path) -> ModelVersion | None:
        if version in self._loaded:
            return self._loaded[version]
        mtime = path.stat().st_mtime if path.exists() else 0.0
        if self._broken.get(version) == mtime:
            return None
        try:
            mv = await asyncio.to_thread(load_version, self.model_name, path)
        except (VectorizerError, ModelDirError, OSError, ValueError) as exc:
            self._broken[version] = mtime
            log.error("skipping model version: %s", exc, extra={"version": version})
            return None
        self._loaded[version] = mv
        return mv

    async def refresh(self) -> None:
        decl = None
        if self.source is not None:
            self.source.poll()
            decl = self.source.declared
        if decl is not None and (decl.stable is not None or decl.policy == "specific"):
            await self._refresh_declared(decl)
            return
        if self.canary is not None or self.canary_status != "no canary declared":
            self.canary, self.canary_status = None, "no canary declared"
        await self._refresh_newest()

    async def _ready(self, version: int, dirs: dict[int, Path]) -> tuple[ModelVersion | None, str]:
        """The version if its files load here and TF Serving reports it AVAILABLE; else why not."""
        if version not in dirs:
            return None, f"version {version} has no directory under {self.model_dir}"
        mv = await self._candidate(version, dirs[version])
        if mv is None:
            return None, f"version {version} is broken (its vectorizer, labels or reports do not load)"
        state = await self.upstream.version_state(version)
        if state != version_state.AVAILABLE:
            return None, f"TF Serving reports version {version} {state}"
        return mv, "ready"

    async def _refresh_declared(self, decl: Declared) -> None:
        """Serve the declared stable (or the newest declared version that is ready); never switch to a
        version that is not ready, so a broken or unloaded version never evicts the one serving."""
        dirs = version_dirs(self.model_dir)
        current = self.current
        wanted = [decl.stable] if decl.stable is not None else sorted(decl.versions, reverse=True)
        reasons = []
        for version in wanted:
            if current is not None and current.version == version:
                break
            mv, why = await self._ready(version, dirs)
            if mv is not None:
                self._switch(mv)
                break
            reasons.append(why)
        if reasons and (self.current is None or self.current.version not in wanted):
            msg = "; ".join(reasons)
            if self.current is None:
                self.status = msg
            log.warning("declared stable version not servable yet: %s", msg)
        canary = decl.canary
        if canary is None:
            self.canary, self.canary_status = None, "no canary declared"
        elif self.canary is None or self.canary.version != canary:
            self.canary, self.canary_status = await self._ready(canary, dirs)
        keep = {v for v in (decl.stable, canary, decl.previous) if v is not None}
        self._forget(dirs, keep)

    def _forget(self, dirs: dict[int, Path], keep: set[int]) -> None:
        # forget versions that are gone, so memory does not grow with every rollout
        for v in list(self._loaded):
            if v not in dirs and v not in keep and (self.current is None or v != self.current.version):
                del self._loaded[v]

    async def _refresh_newest(self) -> None:
        dirs = version_dirs(self.model_dir)
        current = self.current
        for version in sorted(dirs, reverse=True):
            if current is not None and version <= current.version and current.version in dirs:
                break
            mv = await self._candidate(version, dirs[version])
            if mv is None:
                continue
            state = await self.upstream.version_state(version)
            if state == version_state.AVAILABLE:
                self._switch(mv)
                break
            # keep serving what we have; an older directory TF Serving already holds may still do
            if current is None:
                self.status = f"version {version} is loaded here but TF Serving reports it {state}"
        if not dirs and current is None:
            self.status = f"no model version directory under {self.model_dir}"
        self._forget(dirs, set())

    def _switch(self, mv: ModelVersion) -> None:
        previous = self.current
        self.current = mv
        self.status = "ready"
        self.metrics.model_version.labels(self.model_name).set(mv.version)
        if previous is None or previous.version != mv.version:
            self.metrics.swaps.labels(self.model_name).inc()
            log.info(
                "serving model version",
                extra={
                    "model": self.model_name,
                    "version": mv.version,
                    "previous": previous.version if previous else None,
                    "fingerprint": mv.vectorizer.fingerprint,
                    # False where textvec's C extension was not built: the same numbers, ~5x the CPU
                    "vectorizer_compiled": mv.vectorizer.compiled,
                },
            )

    async def run(self, poll_s: float) -> None:
        """Poll forever; quicker until the first version is servable."""
        while True:
            self._passes_started += 1
            try:
                await self.refresh()
            except Exception:  # a poller that dies silently is worse than a logged error
                log.exception("version refresh failed")
            self._passes_done = self._passes_started
            async with self._pass_done:
                self._pass_done.notify_all()
            wait = poll_s if self.current is not None else min(poll_s, 0.5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()
