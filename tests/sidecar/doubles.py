"""An upstream double for API tests that need faults on demand (timeouts, outages, a version not yet
AVAILABLE). Its predictions are real: it runs the exported SavedModel in process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from contracts import version_state
from contracts.signature import PROBABILITIES, SIGNATURE, TOKEN_IDS, TOKEN_WEIGHTS
from preprocess_service.errors import NotReady, UpstreamTimeout


class SavedModelUpstream:
    transport = "double"

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.states: dict[int, str] = {}
        self.default_state = version_state.AVAILABLE
        self.fail: Exception | None = None
        self.delay_s = 0.0
        self.calls: list[tuple[int, tuple[int, ...]]] = []
        self._fns: dict[int, object] = {}

    def _fn(self, version: int) -> object:
        if version not in self._fns:
            import tensorflow as tf

            self._fns[version] = tf.saved_model.load(str(self.model_dir / str(version))).signatures[SIGNATURE]
        return self._fns[version]

    async def predict(self, version: int, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        self.calls.append((version, ids.shape))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        fn = self._fn(version)
        out = fn(**{TOKEN_IDS: tf.constant(ids), TOKEN_WEIGHTS: tf.constant(weights)})  # type: ignore[operator]
        return np.asarray(out[PROBABILITIES])

    async def version_state(self, version: int) -> str:
        if isinstance(self.fail, NotReady | UpstreamTimeout):
            return version_state.UNREACHABLE
        return self.states.get(version, self.default_state)

    async def aclose(self) -> None:
        return None
