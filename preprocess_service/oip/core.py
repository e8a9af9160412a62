"""The protocol-neutral part of the Open Inference Protocol: metadata, input checks, one inference.

The model is the sidecar's pinned version as a whole (vectorizer + network + calibration), so its one
input is text: ``text``, ``BYTES``, shape ``[N]`` (``[N, 1]`` is accepted too, as clients that add a
batch dimension send it). Its outputs are named tensors: ``label`` (``BYTES [N]``; the configured
unknown label, or an empty string, when the model abstains), ``score`` (``FP32 [N]``, the calibrated
probability of the top class), ``probabilities`` (``FP32 [N, C]``, calibrated, in the order of the
version's labels), and on request ``top_k_labels``/``top_k_scores`` (``[N, k]``) and ``explanation``
(``BYTES [N]``, one JSON document per text).

Versions follow the model lifecycle: an inference that names no version is routed like ``/v1/classify``
(stable, or the declared canary for its share of traffic, with the same fallback to stable), and the
response's ``model_version`` names the version that answered. Naming a version asks for exactly that
one: the stable version, or the declared canary while it is loaded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from preprocess_service.batching import Batcher
from preprocess_service.config import Settings
from preprocess_service.errors import InvalidInput, NotFound, NotReady
from preprocess_service.lifecycle.routing import CANARY, STABLE, Lifecycle
from preprocess_service.metrics import Metrics
from preprocess_service.postprocess import Answer, Options
from preprocess_service.registry import ModelVersion, Registry
from preprocess_service.routers.classify import check_limits, classifier

SERVER_NAME = "text-classifier-sidecar"
SERVER_VERSION = "1.0.0"
EXTENSIONS = ("binary_tensor_data",)  # the REST binding's binary extension; gRPC has raw contents natively
PLATFORM = "tensorflow_savedmodel"
INPUT = "text"
DEFAULT_OUTPUTS = ("label", "score", "probabilities")
OPTIONAL_OUTPUTS = ("top_k_labels", "top_k_scores", "explanation")
PARAMETERS = {"top_k": int, "explain": bool, "min_confidence": float}


@dataclass(frozen=True)
class Tensor:
    """An input as a binding decoded it: ``data`` is flat (row-major), BYTES elements as ``bytes``."""

    name: str
    datatype: str
    shape: list[int]
    data: Sequence[Any]


@dataclass(frozen=True)
class Output:
    name: str
    datatype: str  # "BYTES" (data: list[bytes]) or "FP32" (data: np.ndarray of float32)
    shape: list[int]
    data: Any


@dataclass(frozen=True)
class InferResult:
    model: ModelVersion  # the version that answered
    outputs: list[Output] = field(default_factory=list)
    role: str = STABLE  # "stable" or "canary"


def served_model(registry: Registry, name: str, version: str | None) -> ModelVersion:
    """The stable version if ``name`` is what this sidecar serves, or the version asked for when it is
    the stable one or the declared, loaded canary; an unknown model or version is 404, no version yet is
    503 (worth retrying)."""
    if name != registry.model_name:
        raise NotFound(f"unknown model '{name}'; this server serves '{registry.model_name}'")
    model = registry.current
    if model is None:
        raise NotReady(f"model '{name}' has no version ready yet: {registry.status}")
    if version in (None, "") or version == str(model.version):
        return model
    canary = registry.canary
    if canary is not None and version == str(canary.version):
        return canary
    raise NotFound(
        f"model '{name}' version '{version}' is not served; served: {', '.join(served_versions(registry))}"
    )


def served_versions(registry: Registry) -> list[str]:
    """The versions an inference may name: stable, then the canary while one is declared and loaded."""
    out = [str(registry.current.version)] if registry.current is not None else []
    if registry.canary is not None and str(registry.canary.version) not in out:
        out.append(str(registry.canary.version))
    return out


def role_of(registry: Registry, model: ModelVersion) -> str:
    canary = registry.canary
    return CANARY if canary is not None and model.version == canary.version else STABLE


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": list(EXTENSIONS)}


def model_metadata(model: ModelVersion, versions: Sequence[str] | None = None) -> dict[str, Any]:
    n = len(model.labels)
    return {
        "name": model.name,
        "versions": list(versions) if versions is not None else [str(model.version)],
        "platform": PLATFORM,
        "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "score", "datatype": "FP32", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, n]},
            {"name": "top_k_labels", "datatype": "BYTES", "shape": [-1, -1]},
            {"name": "top_k_scores", "datatype": "FP32", "shape": [-1, -1]},
            {"name": "explanation", "datatype": "BYTES", "shape": [-1]},
        ],
    }


def texts_of(inputs: Sequence[Tensor]) -> list[str]:
    """The texts of the one ``text`` input; every way to get it wrong is a 400 naming the mistake."""
    if not inputs:
        raise InvalidInput(f"missing input '{INPUT}' (BYTES, shape [N]): the request has no inputs")
    by_name = {t.name: t for t in inputs}
    if INPUT not in by_name:
        given = ", ".join(repr(n) for n in by_name)
        raise InvalidInput(f"missing input '{INPUT}' (BYTES, shape [N]); the request has {given}")
    if len(inputs) > 1:
        raise InvalidInput(f"the model has one input, '{INPUT}'; the request has {len(inputs)}")
    t = by_name[INPUT]
    if t.datatype != "BYTES":
        raise InvalidInput(f"input '{INPUT}' has datatype {t.datatype}; the model expects BYTES")
    shape = list(t.shape)
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or any(d < 0 for d in shape):
        raise InvalidInput(f"input '{INPUT}' has shape {shape}; the model expects [N] (or [N, 1])")
    n = shape[0]
    if n < 1:
        raise InvalidInput(f"input '{INPUT}' has no texts (shape {shape})")
    if len(t.data) != n:
        raise InvalidInput(f"input '{INPUT}' has shape {shape} but {len(t.data)} element(s)")
    texts = []
    for i, item in enumerate(t.data):
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"input '{INPUT}' element {i} is not UTF-8") from exc
        if not isinstance(item, str):
            raise InvalidInput(f"input '{INPUT}' element {i} is {type(item).__name__}, not a string")
        texts.append(item)
    return texts


def options_of(parameters: Mapping[str, Any], model: ModelVersion) -> Options:
    """Request parameters the model understands (``top_k``, ``explain``, ``min_confidence``); others
    (clients add their own, e.g. ``binary_data_output``) are ignored, as the protocol lets a server do."""
    values: dict[str, Any] = {}
    for key, kind in PARAMETERS.items():
        if key not in parameters or parameters[key] is None:
            continue
        v = parameters[key]
        if kind is float and isinstance(v, str):
            # the protocol's gRPC parameters have no double (bool, int64, string): "0.8" is accepted
            try:
                v = float(v)
            except ValueError:
                raise InvalidInput(f"parameter '{key}' must be a number, got {v!r}") from None
        ok = (
            isinstance(v, bool)
            if kind is bool
            else isinstance(v, int | float)
            and not isinstance(v, bool)
            and (kind is float or float(v).is_integer())
        )
        if not ok:
            raise InvalidInput(f"parameter '{key}' must be {kind.__name__}, got {v!r}")
        values[key] = kind(v)
    k = values.get("top_k")
    if k is not None and not 1 <= k <= len(model.labels):
        raise InvalidInput(f"parameter 'top_k' is {k}; it must be between 1 and {len(model.labels)}")
    mc = values.get("min_confidence")
    if mc is not None and not 0.0 <= mc <= 1.0:
        raise InvalidInput(f"parameter 'min_confidence' is {mc}; it must be between 0 and 1")
    return Options(True, k, mc, bool(values.get("explain", False)))


def check_explain(opts: Options, n_texts: int, settings: Settings) -> None:
    if opts.explain and n_texts > settings.explain_max_texts:
        raise InvalidInput(
            f"explain is limited to {settings.explain_max_texts} texts per request; this one has {n_texts}"
        )


def _explanation(a: Answer) -> bytes:
    terms = [
        {"term": t.term, "contribution": t.contribution, "weight": t.weight} for t in a.explanation or []
    ]
    return orjson.dumps({"label": a.top_label, "method": "occlusion", "terms": terms})


def outputs_of(
    model: ModelVersion, answers: Sequence[Answer], opts: Options, wanted: Sequence[str]
) -> list[Output]:
    n = len(answers)
    available = list(DEFAULT_OUTPUTS)
    if opts.top_k:
        available += ["top_k_labels", "top_k_scores"]
    if opts.explain:
        available.append("explanation")
    names = list(wanted) or available
    for name in names:
        if name not in available:
            why = " (ask with the 'top_k' or 'explain' parameter)" if name in OPTIONAL_OUTPUTS else ""
            raise InvalidInput(f"unknown output '{name}'{why}; available: {', '.join(available)}")
    out = []
    for name in names:
        if name == "label":
            out.append(Output(name, "BYTES", [n], [(a.label or "").encode() for a in answers]))
        elif name == "score":
            out.append(Output(name, "FP32", [n], np.array([a.score for a in answers], dtype=np.float32)))
        elif name == "probabilities":
            probs = [[(a.probabilities or {})[lbl] for lbl in model.labels] for a in answers]
            out.append(Output(name, "FP32", [n, len(model.labels)], np.array(probs, dtype=np.float32)))
        elif name == "top_k_labels":
            k = opts.top_k or 0
            labels = [lbl.encode() for a in answers for lbl, _ in a.top_k or []]
            out.append(Output(name, "BYTES", [n, k], labels))
        elif name == "top_k_scores":
            k = opts.top_k or 0
            scores = np.array([[s for _, s in a.top_k or []] for a in answers], dtype=np.float32)
            out.append(Output(name, "FP32", [n, k], scores.reshape(n, k)))
        else:
            out.append(Output(name, "BYTES", [n], [_explanation(a) for a in answers]))
    return out


async def infer(
    model: ModelVersion,
    inputs: Sequence[Tensor],
    parameters: Mapping[str, Any],
    wanted_outputs: Sequence[str],
    batcher: Batcher,
    metrics: Metrics,
    settings: Settings,
    lifecycle: Lifecycle | None = None,
    client_key: str | None = None,
    role: str = STABLE,
) -> InferResult:
    """One inference: the same steps, limits and answers as ``/v1/classify``, as named tensors. With
    ``lifecycle``, ``model`` is the stable version and the rollout picks the version that answers (sticky
    per ``client_key``); without it, ``model`` answers (a version the request named, in ``role``)."""
    texts = texts_of(inputs)
    opts = options_of(parameters, model)
    check_limits(texts, settings.max_texts, settings.max_chars)
    check_explain(opts, len(texts), settings)

    call = classifier(texts, opts, batcher, metrics, settings)
    if lifecycle is None:
        answers = await call(model)
    else:
        answers, model, role = await lifecycle.run(lifecycle.plan(model, client_key), call)
    return InferResult(model, outputs_of(model, answers, opts, wanted_outputs), role)
