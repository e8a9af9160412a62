"""Which version answers a request: stable, or the canary for its share of traffic (sticky per client
key), a shadow copy to the canary, and the automatic fallback to stable.

A canary that fails is never the caller's problem: its request is answered again by stable, and the
failure counts against the canary's window. When the window's error rate or p99 crosses the rollout's
limits, the canary gets no more traffic from this sidecar until the declaration changes (a new canary
version or an edited rollout file): promotion and retrial stay declared changes."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.rollout import Rollout
from preprocess_service.errors import VersionUnavailable
from preprocess_service.lifecycle.window import Window
from preprocess_service.metrics import Metrics
from preprocess_service.postprocess import Answer
from preprocess_service.registry import ModelVersion, Registry

log = logging.getLogger("preprocess_service.lifecycle")

STABLE, CANARY = "stable", "canary"
MAX_SHADOW_IN_FLIGHT = 64  # shadow copies beyond this are dropped: they must never slow stable down
# how long a request whose stable version TF Serving no longer serves waits for this sidecar to read the
# declaration that moved it (a poll pass: file reads and one status call to the model server)
STABLE_MOVED_WAIT_S = 2.0

Call = Callable[[ModelVersion], Awaitable[list[Answer]]]


def bucket(key: str) -> float:
    """A client key's fixed place in [0, 100): the same key lands on the same side of any weight, and
    raising the weight only moves keys from stable to canary."""
    return (zlib.crc32(key.encode()) % 10_000) / 100


@dataclass
class VersionStats:
    requests: int = 0
    errors: int = 0
    labels: Counter[str] = field(default_factory=Counter)


@dataclass
class Plan:
    model: ModelVersion
    role: str
    stable: ModelVersion
    shadow: ModelVersion | None = None


class Lifecycle:
    def __init__(self, registry: Registry, metrics: Metrics) -> None:
        self.registry = registry
        self.metrics = metrics
        self.windows: dict[tuple[int, str], Window] = {}
        self.stats: dict[tuple[int, str], VersionStats] = {}
        # labelled metric children by (version, role[, outcome or label]): prometheus_client's labels()
        # takes a lock and builds a key on every call, and this runs for every answer
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self.fallback_reason: str | None = None
        self._fallback_for: tuple[int, int] | None = None  # (canary version, declaration revision)
        self.shadow_agree = 0
        self.shadow_compared = 0
        self.shadow_dropped = 0
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self._shown: tuple[int, int, float] | None = None  # what the role/weight gauges show (_show)

    # --- state ------------------------------------------------------------------------------------
    @property
    def rollout(self) -> Rollout:
        src = self.registry.source
        return src.rollout if src is not None else Rollout()

    def _revision(self) -> int:
        src = self.registry.source
        return src.revision if src is not None else 0

    def canary_active(self) -> bool:
        canary = self.registry.canary
        if canary is None:
            return False
        src = self.registry.source
        if src is not None and src.declared is not None and src.declared.canary != canary.version:
            # the declaration has moved on and the registry has not checked the new canary yet: the
            # old one may already be unloaded, so neither it nor the new one gets traffic until then
            return False
        if self._fallback_for is not None and self._fallback_for != (canary.version, self._revision()):
            self._fallback_for, self.fallback_reason = None, None  # a new declaration: a fresh start
        return self._fallback_for is None

    def window(self, version: int, role: str) -> Window:
        w = self.windows.get((version, role))
        if w is None or w.seconds != self.rollout.fallback.window_seconds:
            w = self.windows[(version, role)] = Window(self.rollout.fallback.window_seconds)
        return w

    # --- routing ----------------------------------------------------------------------------------
    def plan(self, stable: ModelVersion, key: str | None) -> Plan:
        canary = self.registry.canary
        ro = self.rollout
        if canary is None or not self.canary_active():
            self._show(stable, canary, 0)
            return Plan(stable, STABLE, stable)
        if ro.mode == "shadow":
            self._show(stable, canary, 0)
            return Plan(stable, STABLE, stable, shadow=canary)
        self._show(stable, canary, ro.weight)
        place = bucket(key) if key else random.random() * 100
        return Plan(canary, CANARY, stable) if place < ro.weight else Plan(stable, STABLE, stable)

    def _show(self, stable: ModelVersion, canary: ModelVersion | None, weight: float) -> None:
        """The role and weight gauges, written when what they show changes: plan() runs per request,
        and three gauge writes (two through labels()) were most of its cost."""
        shown = (stable.version, canary.version if canary else 0, weight)
        if shown == self._shown:
            return
        m = self.metrics
        m.role_version.labels(STABLE).set(shown[0])
        m.role_version.labels(CANARY).set(shown[1])
        m.canary_weight.set(weight)
        self._shown = shown

    async def run(self, plan: Plan, call: Call) -> tuple[list[Answer], ModelVersion, str]:
        """Answers and the version (and role) that gave them."""
        if plan.role == CANARY:
            t0 = time.perf_counter()
            try:
                answers = await call(plan.model)
            except Exception as exc:  # the canary's failure is answered by stable, never passed on
                self._observe(plan.model, CANARY, False, time.perf_counter() - t0, ())
                log.warning(
                    "canary failed; answered by stable",
                    extra={"version": plan.model.version, "error": f"{type(exc).__name__}: {exc}"},
                )
            else:
                self._observe(plan.model, CANARY, True, time.perf_counter() - t0, answers)
                return answers, plan.model, CANARY
        stable = plan.stable
        t0 = time.perf_counter()
        try:
            try:
                answers = await call(stable)
            except VersionUnavailable:
                moved = await self._stable_moved(stable)
                if moved is None:
                    raise
                stable = moved
                answers = await call(stable)
        except Exception:
            self._observe(stable, STABLE, False, time.perf_counter() - t0, ())
            raise
        self._observe(stable, STABLE, True, time.perf_counter() - t0, answers)
        if plan.shadow is not None and stable is plan.stable:
            self._start_shadow(plan.shadow, stable, call, answers)
        return answers, stable, STABLE

    async def _stable_moved(self, stable: ModelVersion) -> ModelVersion | None:
        """The new stable version if the declaration moved stable away from ``stable`` (which the model
        server no longer serves). Both containers read the same declaration, and TF Serving may apply it
        first: a rollback unloads the old stable while this sidecar still routes to it until its next
        poll. Looking again at once lets the request be answered by the new stable instead of failing."""
        fresh = await self.registry.refreshed(STABLE_MOVED_WAIT_S)
        if fresh is None or fresh.version == stable.version:
            return None
        log.info(
            "stable moved while answering; answered by the new stable",
            extra={"version": fresh.version, "was": stable.version},
        )
        return fresh

    # --- shadow -----------------------------------------------------------------------------------
    def _start_shadow(
        self, canary: ModelVersion, stable: ModelVersion, call: Call, ref: list[Answer]
    ) -> None:
        if len(self._shadow_tasks) >= MAX_SHADOW_IN_FLIGHT:
            self.shadow_dropped += 1
            self.metrics.shadow_compared.labels(str(stable.version), str(canary.version), "dropped").inc()
            return
        task = asyncio.create_task(self._shadow(canary, stable, call, ref))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(
        self, canary: ModelVersion, stable: ModelVersion, call: Call, ref: list[Answer]
    ) -> None:
        t0 = time.perf_counter()
        labels = (str(stable.version), str(canary.version))
        try:
            answers = await call(canary)
        except Exception:
            self._observe(canary, CANARY, False, time.perf_counter() - t0, ())
            self.metrics.shadow_compared.labels(*labels, "error").inc()
            return
        self._observe(canary, CANARY, True, time.perf_counter() - t0, answers)
        for a, b in zip(ref, answers, strict=False):
            same = a.top_label == b.top_label
            self.shadow_compared += 1
            self.shadow_agree += same
            self.metrics.shadow_compared.labels(*labels, "agree" if same else "disagree").inc()
        if self.shadow_compared:
            self.metrics.shadow_agreement.set(self.shadow_agree / self.shadow_compared)

    async def aclose(self) -> None:
        for t in list(self._shadow_tasks):
            t.cancel()
        await asyncio.gather(*self._shadow_tasks, return_exceptions=True)

    # --- observation and fallback -----------------------------------------------------------------
    def _observe(
        self, model: ModelVersion, role: str, ok: bool, seconds: float, answers: Sequence[Answer]
    ) -> None:
        version, m = model.version, self.metrics
        v = str(version)
        self._child(m.version_requests, v, role, "ok" if ok else "error").inc()
        st = self.stats.get((version, role))
        if st is None:
            st = self.stats[(version, role)] = VersionStats()
        st.requests += 1
        st.errors += not ok
        if ok:
            self._child(m.version_seconds, v, role).observe(seconds)
            counts: dict[str, int] = {}  # one metric update per label, not per text
            for a in answers:
                counts[a.top_label] = counts.get(a.top_label, 0) + 1
            labels = st.labels
            for label, n in counts.items():
                labels[label] += n  # not Counter.update(), whose generic path cost more than the rest
                self._child(m.version_predictions, v, role, label).inc(n)
        self.window(model.version, role).add(ok, seconds)
        if role == CANARY:
            self._check(model)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(*labels)
            if len(self._children) < 4096:  # versions x roles x labels: small, but bounded anyway
                self._children[key] = child
        return child

    def _check(self, canary: ModelVersion) -> None:
        if self._fallback_for is not None or self.registry.canary is not canary:
            return
        lim = self.rollout.fallback
        n, err, p99 = self.window(canary.version, CANARY).stats()
        if n < lim.min_requests:
            return
        if err > lim.max_error_rate:
            kind, why = "error_rate", f"error rate {err:.1%} > {lim.max_error_rate:.1%}"
        elif lim.max_p99_ms > 0 and p99 > lim.max_p99_ms:
            kind, why = "p99", f"p99 {p99:.0f} ms > {lim.max_p99_ms:.0f} ms"
        else:
            return
        self._fallback_for = (canary.version, self._revision())
        self.fallback_reason = (
            f"canary version {canary.version} stopped: {why} over the last {n} answers "
            f"({lim.window_seconds:g} s window); stable serves all traffic until the rollout is "
            "declared again"
        )
        self.metrics.canary_fallbacks.labels(str(canary.version), kind).inc()
        log.error(self.fallback_reason, extra={"version": canary.version, "reason": kind})
