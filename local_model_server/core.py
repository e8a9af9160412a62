"""The served models as TF Serving's ServerCore holds them: one version manager per model of the
``ModelServerConfig``, the version-label map, and config reloads (HandleReloadConfigRequest, or the
config file re-read every --model_config_file_poll_wait_seconds).

A reload is validated whole before anything changes: a config that fails (syntax, a duplicate or
relative model, a label on a version that is not AVAILABLE without
--allow_version_labels_for_unavailable_models) leaves the previous config serving, nothing dropped.
An accepted reload adds new models (and waits until each has a version AVAILABLE, as TF Serving
does), applies changed version policies, unloads models that left the config, then swaps labels."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from local_model_server.batching import BatchingOptions
from local_model_server.errors import Code, ServingError, invalid, not_found
from local_model_server.manager import AVAILABLE, END, ModelManager, VersionStatus
from local_model_server.model_config import ModelServerConfig, VersionPolicy, read_model_config, validate
from local_model_server.servable import Servable

log = logging.getLogger("local_model_server")

NEW_MODEL_WAIT_S = 300.0


class ServerCore:
    def __init__(
        self,
        *,
        enable_warmup: bool = True,
        allow_labels_for_unavailable: bool = False,
        batching: BatchingOptions | None = None,
        poll_wait_s: float = 1.0,
        on_state: Callable[[str, int, str], None] | None = None,
        on_load: Callable[[str, str], None] | None = None,
        delays_s: dict[int, float] | None = None,
    ) -> None:
        self.enable_warmup = enable_warmup
        self.allow_labels_for_unavailable = allow_labels_for_unavailable
        self.batching = batching
        self.poll_wait_s = poll_wait_s
        self._on_state = on_state
        self._on_load = on_load
        self._delays_s = dict(delays_s or {})  # --test_delay_ms: a deliberately slow version, for tests
        self._config = ModelServerConfig()
        self._models: dict[str, ModelManager] = {}
        self._labels: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()  # guards _models and _labels for lookups
        self._reload_lock = threading.Lock()  # one reload at a time
        self._stop = threading.Event()
        self._config_thread: threading.Thread | None = None

    # -- config --------------------------------------------------------------------------------
    @property
    def config(self) -> ModelServerConfig:
        return self._config

    def _new_label_map(self, config: ModelServerConfig) -> dict[str, dict[str, int]]:
        """UpdateModelVersionLabelMap's rule: a label may only name an AVAILABLE version, unless the
        allow flag is set and the label is new or keeps its version."""
        labels: dict[str, dict[str, int]] = {}
        for model in config.model_config_list.config:
            manager = self._models.get(model.name)
            for label, version in sorted(model.version_labels.items()):
                allowed = False
                if self.allow_labels_for_unavailable:
                    existing = self._labels.get(model.name, {}).get(label)
                    allowed = existing is None or existing == version
                available = manager is not None and manager.state_of(version) == AVAILABLE
                if not allowed and not available:
                    raise ServingError(
                        Code.FAILED_PRECONDITION,
                        f"Request to assign label to version {version} of model {model.name}, "
                        "which is not currently available for inference",
                    )
                labels.setdefault(model.name, {})[label] = version
        return labels

    def reload(self, config: ModelServerConfig) -> None:
        """ServerCore::ReloadConfig. Raises ServingError and changes nothing when the config is refused."""
        with self._reload_lock:
            validate(config)
            labels = self._new_label_map(config)
            wanted = {m.name: m for m in config.model_config_list.config}
            added: list[ModelManager] = []
            for name, model in wanted.items():
                policy = VersionPolicy.of(model)
                current = self._models.get(name)
                if current is not None and current.base_path == Path(model.base_path):
                    if current.policy != policy:
                        log.info("Model %s: version policy now %s", name, policy)
                        current.set_policy(policy)
                        current.poll_once()
                    continue
                manager = ModelManager(
                    name,
                    Path(model.base_path),
                    enable_warmup=self.enable_warmup,
                    on_state=self._on_state,
                    on_load=self._on_load,
                    policy=policy,
                    batching=self.batching,
                )
                added.append(manager)
            for manager in added:
                log.info("Adding/updating model %s from %s", manager.model_name, manager.base_path)
                manager.start(self.poll_wait_s)
            removed: list[ModelManager] = []
            with self._lock:
                for manager in added:
                    old = self._models.get(manager.model_name)
                    if old is not None:
                        removed.append(old)
                    self._models[manager.model_name] = manager
                for name in [n for n in self._models if n not in wanted]:
                    removed.append(self._models.pop(name))
                self._labels = labels
                self._config = config
            for manager in removed:
                log.info("Unloading model %s (no longer in the config)", manager.model_name)
                manager.unload_all()
            self._wait_available(added)
            log.info("Finished adding/updating models")

    def _wait_available(self, managers: list[ModelManager]) -> None:
        """TF Serving waits until every newly added model has a version loaded (or failed to load).
        A model with no version directory at all does not hold the server up here (TF Serving would
        wait for one to appear): the ports open and its status says NOT_FOUND until one does."""
        deadline = time.monotonic() + NEW_MODEL_WAIT_S
        for manager in managers:
            while time.monotonic() < deadline and not self._stop.is_set():
                states = {st.state for st in self._statuses(manager)}
                if not states or AVAILABLE in states or states <= {END} or self.poll_wait_s < 0:
                    break
                time.sleep(0.05)

    @staticmethod
    def _statuses(manager: ModelManager) -> list[VersionStatus]:
        try:
            return manager.status()
        except ServingError:
            return []

    def reload_from_file(self, path: str) -> None:
        self.reload(read_model_config(path))

    def watch_config_file(self, path: str, wait_s: float) -> None:
        """--model_config_file_poll_wait_seconds: re-read the file; a bad file is logged, not applied."""
        if wait_s <= 0:
            return

        def loop() -> None:
            while not self._stop.wait(wait_s):
                try:
                    config = read_model_config(path)
                    if config == self._config:
                        continue
                    self.reload(config)
                    log.info("Reloaded model config from %s", path)
                except ServingError as exc:
                    log.error(
                        "PollFilesystemAndReloadConfig failed to ReloadConfig: %s: %s",
                        exc.code.name,
                        exc.message,
                    )
                except Exception:  # the poller must never take the server down
                    log.exception("Reloading %s failed", path)

        self._config_thread = threading.Thread(target=loop, name="config-poll", daemon=True)
        self._config_thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._config_thread is not None:
            self._config_thread.join(timeout=10)
        with self._lock:
            managers = list(self._models.values())
        for manager in managers:
            manager.stop()

    # -- lookups (request path) ----------------------------------------------------------------
    def _manager(self, name: str) -> ModelManager | None:
        with self._lock:
            return self._models.get(name)

    def resolve(self, name: str, version: int | None, label: str | None) -> int | None:
        """ServableRequestFromModelSpec: the explicit version a label names, or ``version``."""
        if not name:
            raise invalid("ModelSpec has no name specified.")
        if label is None:
            return version
        if version is not None:
            raise invalid(
                f"Both model version ({version}) and model version label ({label}) cannot be supplied."
            )
        with self._lock:
            resolved = self._labels.get(name, {}).get(label)
        if resolved is None:
            raise invalid(f"Unrecognized servable version label: {label}")
        return resolved

    @contextlib.contextmanager
    def handle(self, name: str, version: int | None = None, label: str | None = None) -> Iterator[Servable]:
        version = self.resolve(name, version, label)
        manager = self._manager(name)
        if manager is None:
            what = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise not_found(f"Servable not found for request: {what}")
        with manager.handle(version) as servable:
            delay = self._delays_s.get(servable.version) if self._delays_s else None
            if delay:
                time.sleep(delay)  # a prediction thread (REST pool or gRPC), never the event loop
            yield servable

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[VersionStatus]:
        """GetModelStatusImpl looks at the name and an explicit version only: with a label (REST
        ``/labels/{label}`` included) it answers every version, as TF Serving does."""
        del label
        if not name:
            raise invalid("ModelSpec has no name specified.")
        manager = self._manager(name)
        if manager is None:
            if version is not None:
                raise not_found(f"Could not find version {version} of model {name}")
            raise not_found(f"Could not find any versions of model {name}")
        return manager.status(version)
