"""Model versions for lifecycle tests, made from one real exported version, and the declared config.

- ``copy``: the same files under another number (agrees with stable everywhere);
- ``permuted``: labels.json reversed (the same network answers, under other names: disagrees);
- ``failing``: vectorizer ids shifted past the network's input size: TF Serving loads it, and every
  predict fails with INVALID_ARGUMENT (a canary that errors);
- ``broken``: neither TF Serving nor the sidecar can load it;
- ``worse``: metrics.json with lower test scores (for the evaluation gate)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from contracts import modeldir, version_state
from contracts.rollout import MODEL_CONFIG, ROLLOUT, Fallback, Rollout
from devstack import Proc, Stack, server_states
from textvec import Vectorizer

MODEL = "news"
# The lab's model server answers every predict on this version after SLOW_MS ms (--test_delay_ms)
SLOW_VERSION = 10
SLOW_MS = 600
TEXTS = [
    "The striker scored twice as the home side won the cup final.",
    "Shares fell sharply after the bank reported a loss for the quarter.",
    "The prime minister faces a vote in parliament on the new budget.",
    "The film won three awards at the festival, including best actor.",
    "A new smartphone chip promises faster processors and longer battery life.",
]


def _set_fingerprint(vdir: Path, fp: str) -> None:
    for rel in (modeldir.METRICS, Path("assets") / "calibration.json"):
        p = vdir / rel
        if p.exists():
            doc = json.loads(p.read_text())
            if "vectorizer_fingerprint" in doc:
                doc["vectorizer_fingerprint"] = fp
                p.write_text(json.dumps(doc))


def make_version(src: Path, model_dir: Path, version: int, kind: str = "copy") -> Path:
    """A variant of ``src`` published as ``model_dir/<version>`` (staged, then renamed)."""
    staged = modeldir.staging_dir(model_dir, version)
    shutil.copytree(src, staged, dirs_exist_ok=True)
    if kind == "permuted":
        labels = modeldir.load_labels(staged)
        (staged / modeldir.LABELS).write_text(json.dumps({"labels": labels[::-1]}))
        doc = json.loads((staged / modeldir.METRICS).read_text())
        per_class = doc["test"]["per_class"]
        doc["test"]["per_class"] = dict(zip(labels[::-1], per_class.values(), strict=True))
        (staged / modeldir.METRICS).write_text(json.dumps(doc))
    elif kind == "failing":
        vec = Vectorizer.load(staged / modeldir.VECTORIZER)
        pad = [f"\x01pad{i}" for i in range(vec.n_features)]  # no real text contains these terms
        import numpy as np

        shifted = Vectorizer(
            analyzer=vec.analyzer, ngram_range=vec.ngram_range, vocabulary=(*pad, *vec.vocabulary),
            idf=np.concatenate([np.ones(len(pad)), vec.idf]), lowercase=vec.lowercase,
            token_pattern=vec.token_pattern, sublinear_tf=vec.sublinear_tf,
        )  # fmt: skip
        shifted.save(staged / modeldir.VECTORIZER)
        _set_fingerprint(staged, shifted.fingerprint)
    elif kind == "broken":
        (staged / modeldir.SAVED_MODEL).write_bytes(b"not a SavedModel")
        (staged / modeldir.VECTORIZER).write_text("{broken")
    elif kind == "worse":
        doc = json.loads((staged / modeldir.METRICS).read_text())
        doc["test"]["accuracy"] = doc["test"]["accuracy"] - 0.2
        doc["test"]["macro_f1"] = doc["test"]["macro_f1"] - 0.2
        (staged / modeldir.METRICS).write_text(json.dumps(doc))
    elif kind != "copy":
        raise ValueError(kind)
    return modeldir.publish(staged, model_dir, version)


def model_config(base: Path, stable: int | None, canary: int | None = None, latest: int = 2) -> str:
    """The chart's models.config, as its template renders it for these values."""
    if stable is None:
        policy = f"latest {{ num_versions: {latest} }}"
        labels = ""
    else:
        served = sorted({stable} | ({canary} if canary else set()))
        policy = "specific { " + " ".join(f"versions: {v}" for v in served) + " }"
        roles = [("stable", stable)] + ([("canary", canary)] if canary else [])
        labels = "".join(f'    version_labels {{ key: "{k}" value: {v} }}\n' for k, v in roles)
    return (
        "model_config_list {\n  config {\n"
        f'    name: "{MODEL}"\n    base_path: "{(base / MODEL).resolve()}"\n'
        f'    model_platform: "tensorflow"\n    model_version_policy {{ {policy} }}\n{labels}  }}\n}}\n'
    )


def declare(
    config_dir: Path,
    base: Path,
    stable: int | None,
    canary: int | None = None,
    mode: str = "split",
    weight: float = 0.0,
    fallback: Fallback | None = None,
) -> None:
    rollout = Rollout(mode, weight, fallback or Fallback())  # type: ignore[arg-type]
    for name, blob in (
        (ROLLOUT, rollout.to_json()),
        (MODEL_CONFIG, model_config(base, stable, canary).encode()),
    ):
        tmp = config_dir / f".{name}.tmp"
        tmp.write_bytes(blob)
        tmp.replace(config_dir / name)


def wait_for(
    what: str,
    cond: Callable[[], Any],
    timeout: float = 90,
    every: float = 0.2,
    fail: Callable[[], Any] | None = None,
) -> Any:
    """``cond()`` once it is truthy; on timeout, fails with its last value (and ``fail()``'s)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = cond()
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    extra = f"\n{fail()}" if fail is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}{extra}")


def model_info(url: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/v1/model", timeout=5)
    r.raise_for_status()
    doc: dict[str, Any] = r.json()
    return doc


def rollout_is(
    url: str,
    stable: int,
    canary: int | None,
    active: bool | None = None,
    mode: str = "split",
    weight: float = 0,
) -> bool:
    """The sidecar applied this declaration (``weight``: only checked when not 0)."""
    ro = model_info(url)["rollout"]
    ok = ro["stable_version"] == stable and ro["canary_version"] == canary and ro["mode"] == mode
    ok = ok and (not weight or ro["weight"] == weight)
    if active is not None:
        ok = ok and ro["canary_active"] is active
    return bool(ok)


def classify_bodies(n: int = len(TEXTS)) -> list[bytes]:
    return [json.dumps({"text": TEXTS[i % len(TEXTS)]}).encode() for i in range(n)]


@dataclass
class Lab:
    stack: Stack
    server: Proc
    sidecar: Proc
    config_dir: Path
    source: Path  # a good version's files, to derive more versions from
    canary: int | None = None  # the last declared
    oip_grpc_port: int = 0  # the sidecar's Open Inference Protocol gRPC port

    @property
    def url(self) -> str:
        return self.sidecar.url()

    def publish(self, version: int, kind: str = "copy") -> Path:
        """Publish once (versions are immutable): tests may run alone or in any order."""
        done = self.stack.model_dir / str(version)
        return done if done.exists() else make_version(self.source, self.stack.model_dir, version, kind)

    def declare(self, stable: int | None, canary: int | None = None, **rollout: Any) -> None:
        """As docs/operations.md says to: TF Serving refuses to move the canary label onto a version
        it has not loaded, so a different canary replaces the old one only after its removal is applied."""
        if self.canary is not None and canary is not None and canary != self.canary:
            declare(self.config_dir, self.stack.base, stable)
            old = self.canary
            wait_for(
                f"the model server to unload canary {old}",
                lambda: server_states(self.server, MODEL).get(old) != version_state.AVAILABLE,
            )
        rollout.setdefault("fallback", Fallback(max_p99_ms=0))  # a busy test machine is not a slow canary
        declare(self.config_dir, self.stack.base, stable, canary, **rollout)
        self.canary = canary
