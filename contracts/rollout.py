"""Declared versions: which versions serve, under which role, and how traffic is shared.

Two files, side by side in one ConfigMap (the chart's ``<release>-tfserving``) or one directory:

- ``models.config``: TF Serving's ``--model_config_file`` (protobuf text format). The model's
  ``version_labels`` ``stable`` and ``canary`` name the roles; ``specific { versions }`` lists the
  versions TF Serving loads. TF Serving, the stand-in and the sidecar all read this one file.
- ``rollout.json``: what TF Serving has no field for: the canary's share of traffic, ``split`` or
  ``shadow``, and the limits of the automatic fallback.

The sidecar cannot import TensorFlow Serving's protos (its REST image carries no TensorFlow), so the
small subset of the text format that model configs use is parsed here: fields, nested messages,
quoted strings, numbers, enum names and ``#`` comments. Unknown fields are kept as they are, so a
rewrite (promotion) changes only the policy and the labels of one model."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Literal, Union

import orjson

MODEL_CONFIG = "models.config"
ROLLOUT = "rollout.json"
STABLE, CANARY, PREVIOUS = "stable", "canary", "previous"
ROLES = (STABLE, CANARY, PREVIOUS)

Value = Union[str, "Msg"]
Msg = list[tuple[str, Value]]  # fields in order; a scalar keeps its raw token (quotes included)

_TOKEN = re.compile(
    r"""\s+|\#[^\n]*|(?P<tok>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[{}<>:;,\[\]]|[^\s{}<>:;,\[\]"'\#]+)"""
)


class RolloutError(ValueError):
    """A model config or rollout file that cannot be read; the previous one stays in force."""


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise RolloutError(f"unexpected character {text[pos]!r} at offset {pos}")
        if m.group("tok"):
            out.append(m.group("tok"))
        pos = m.end()
    return out


def parse(text: str) -> Msg:
    toks, i = _tokens(text), 0

    def message(close: str | None) -> Msg:
        nonlocal i
        msg: Msg = []
        while i < len(toks):
            t = toks[i]
            if t == close:
                i += 1
                return msg
            if t in "{}<>:;,[]":
                raise RolloutError(f"unexpected {t!r} in model config")
            name, i = t, i + 1
            if i < len(toks) and toks[i] == ":":
                i += 1
            if i >= len(toks):
                raise RolloutError(f"field {name} has no value")
            if toks[i] in ("{", "<"):
                i += 1
                msg.append((name, message("}" if toks[i - 1] == "{" else ">")))
            else:
                msg.append((name, toks[i]))
                i += 1
            if i < len(toks) and toks[i] in (",", ";"):
                i += 1
        if close is not None:
            raise RolloutError(f"missing {close!r} at the end of the model config")
        return msg

    return message(None)


def dump(msg: Msg, indent: int = 0) -> str:
    pad, lines = "  " * indent, []
    for name, value in msg:
        if isinstance(value, list):
            lines.append(f"{pad}{name} {{")
            body = dump(value, indent + 1)
            if body:
                lines.append(body)
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{name}: {value}")
    return "\n".join(lines)


def scalar(raw: Value) -> str:
    if isinstance(raw, list):
        raise RolloutError("expected a value, found a message")
    if raw[:1] in ("'", '"'):
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    return raw


def _int(raw: Value) -> int:
    try:
        return int(scalar(raw))
    except ValueError as exc:
        raise RolloutError(f"expected an integer, got {raw!r}") from exc


def _sub(msg: Msg, name: str) -> list[Msg]:
    return [v for k, v in msg if k == name and isinstance(v, list)]


def _model(tree: Msg, model_name: str) -> Msg | None:
    for lst in _sub(tree, "model_config_list"):
        for cfg in _sub(lst, "config"):
            if any(k == "name" and scalar(v) == model_name for k, v in cfg):
                return cfg
    return None


@dataclass(frozen=True)
class Declared:
    """One model's served versions as its config declares them."""

    policy: Literal["latest", "specific", "all"]
    versions: frozenset[int] = frozenset()
    num_versions: int = 1
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def stable(self) -> int | None:
        return self.labels.get(STABLE)

    @property
    def canary(self) -> int | None:
        c = self.labels.get(CANARY)
        return c if c != self.stable else None

    @property
    def previous(self) -> int | None:
        """The stable before the last promotion, kept loaded so that rolling back is instant."""
        p = self.labels.get(PREVIOUS)
        return p if p != self.stable else None


def declared(text: str, model_name: str) -> Declared | None:
    """The declaration of ``model_name`` in a model config, or None when it is not listed."""
    cfg = _model(parse(text), model_name)
    if cfg is None:
        return None
    labels: dict[str, int] = {}
    for lab in _sub(cfg, "version_labels"):
        kv = dict(lab)
        if "key" in kv and "value" in kv:
            labels[scalar(kv["key"])] = _int(kv["value"])
    for pol in _sub(cfg, "model_version_policy"):
        for spec in _sub(pol, "specific"):
            return Declared("specific", frozenset(_int(v) for k, v in spec if k == "versions"), 1, labels)
        if _sub(pol, "all"):
            return Declared("all", labels=labels)
        for lat in _sub(pol, "latest"):
            n = [_int(v) for k, v in lat if k == "num_versions"]
            return Declared("latest", num_versions=max(1, n[0] if n else 1), labels=labels)
    return Declared("latest", labels=labels)


def with_roles(
    text: str, model_name: str, stable: int, canary: int | None, previous: int | None = None
) -> str:
    """The config with ``model_name`` serving exactly ``stable`` (and ``canary``, ``previous``),
    labelled so; other labels survive when their version is still served, other fields are kept.

    TF Serving refuses a whole config in which an existing label moves to a version it has not
    loaded (``--allow_version_labels_for_unavailable_models`` admits only new labels); callers keep
    to moves that are safe (training/promote.py)."""
    if any(v is not None and v <= 0 for v in (stable, canary, previous)):
        raise RolloutError("versions are positive integers")
    tree = parse(text)
    cfg = _model(tree, model_name)
    if cfg is None:
        raise RolloutError(f"model {model_name!r} is not in the model config")
    served = sorted({v for v in (stable, canary, previous) if v is not None})
    kept: Msg = []
    for k, v in cfg:
        if k == "model_version_policy":
            continue
        if k == "version_labels" and isinstance(v, list):
            kv = dict(v)
            if scalar(kv.get("key", "")) in ROLES or _int(kv.get("value", "0")) not in served:
                continue
        kept.append((k, v))
    kept.append(("model_version_policy", [("specific", [("versions", str(s)) for s in served])]))
    roles = [(r, v) for r, v in ((STABLE, stable), (CANARY, canary), (PREVIOUS, previous)) if v is not None]
    for role, version in roles:
        kept.append(("version_labels", [("key", f'"{role}"'), ("value", str(version))]))
    cfg[:] = kept
    return dump(tree) + "\n"


# --- rollout.json ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fallback:
    """Limits over a sliding window of canary answers; crossing one stops the canary's traffic."""

    window_seconds: float = 60.0
    min_requests: int = 20
    max_error_rate: float = 0.05
    max_p99_ms: float = 1000.0


@dataclass(frozen=True)
class Rollout:
    """``weight``: percent of requests (or of client keys) the canary answers in ``split`` mode; in
    ``shadow`` mode the canary gets a copy of every request and stable answers."""

    mode: Literal["split", "shadow"] = "split"
    weight: float = 0.0
    fallback: Fallback = field(default_factory=Fallback)

    @classmethod
    def from_json(cls, data: bytes | str) -> Rollout:
        try:
            doc = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError as exc:
            raise RolloutError(f"rollout file is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise RolloutError("rollout file must hold a JSON object")
        canary, fb = doc.get("canary") or {}, doc.get("fallback") or {}
        mode, weight = canary.get("mode", "split"), canary.get("weight", 0)
        if mode not in ("split", "shadow"):
            raise RolloutError(f"canary.mode must be split or shadow, got {mode!r}")
        if not isinstance(weight, int | float) or not 0 <= weight <= 100:
            raise RolloutError(f"canary.weight is a percentage in [0, 100], got {weight!r}")
        try:
            fallback = Fallback(
                window_seconds=float(fb.get("window_seconds", Fallback.window_seconds)),
                min_requests=int(fb.get("min_requests", Fallback.min_requests)),
                max_error_rate=float(fb.get("max_error_rate", Fallback.max_error_rate)),
                max_p99_ms=float(fb.get("max_p99_ms", Fallback.max_p99_ms)),
            )
        except (TypeError, ValueError) as exc:
            raise RolloutError(f"fallback: {exc}") from exc
        if fallback.window_seconds <= 0 or not 0 <= fallback.max_error_rate <= 1:
            raise RolloutError("fallback.window_seconds must be > 0, max_error_rate in [0, 1]")
        return cls(mode, float(weight), fallback)

    def to_json(self) -> bytes:
        doc = {"canary": {"mode": self.mode, "weight": self.weight}, "fallback": asdict(self.fallback)}
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
