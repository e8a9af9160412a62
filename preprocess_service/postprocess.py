"""Probabilities into answers: calibration, abstaining, top-k (the postprocess step of a request).

The version's calibration (``assets/calibration.json``) rescales the network's probabilities with its
temperature; the top class is answered only when its calibrated probability reaches the abstain
threshold (the version's, or the request's ``min_confidence``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preprocess_service.explain import TermContribution
from preprocess_service.registry import ModelVersion


@dataclass(frozen=True)
class Options:
    """What a request asked for beyond the label."""

    with_probabilities: bool = False
    top_k: int | None = None
    min_confidence: float | None = None  # overrides the version's abstain threshold
    explain: bool = False


@dataclass(frozen=True)
class Answer:
    label: str | None  # None (or the configured unknown label) when abstained
    score: float  # calibrated probability of the top class
    abstained: bool
    top_label: str  # the most probable class, answered or not (what an explanation explains)
    probabilities: dict[str, float] | None = None
    top_k: list[tuple[str, float]] | None = None
    explanation: list[TermContribution] | None = None


def calibrate(model: ModelVersion, probs: np.ndarray) -> np.ndarray:
    return model.calibration.apply(probs)


def threshold(model: ModelVersion, opts: Options) -> float | None:
    return opts.min_confidence if opts.min_confidence is not None else model.calibration.abstain_threshold


def top_k(labels: tuple[str, ...], row: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The k most probable labels, highest first; ties keep label order, so the shape and order never
    depend on anything but the scores."""
    order = np.argsort(-row, kind="stable")[:k]
    return [(labels[i], float(row[i])) for i in order]


def answer_row(model: ModelVersion, row: np.ndarray, opts: Options, unknown_label: str | None) -> Answer:
    best = int(row.argmax())
    score = float(row[best])
    t = threshold(model, opts)
    abstained = t is not None and score < t
    return Answer(
        label=unknown_label if abstained else model.labels[best],
        score=score,
        abstained=abstained,
        top_label=model.labels[best],
        probabilities=(
            {label: float(p) for label, p in zip(model.labels, row, strict=True)}
            if opts.with_probabilities
            else None
        ),
        top_k=top_k(model.labels, row, opts.top_k) if opts.top_k else None,
    )
