"""Exact per-term explanations by occlusion.

For a text's TF-IDF row, each of its heaviest M present terms is removed in turn and the row is
re-normalised to unit L2 length, exactly as the vectorizer would have produced it had the term not been
in the vocabulary. All variants of all texts go to the model in the same batched call as the texts
themselves, so one explanation costs one upstream call of (1 + M) rows per text, however long the text.
A term's contribution is the predicted class's calibrated probability with the term minus without it:
positive terms pushed towards the class, negative ones away from it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Row = tuple[list[int], list[float]]


@dataclass(frozen=True)
class Occlusion:
    """The variants of one row: ``term_ids[i]`` is the term removed from ``rows[i]``."""

    term_ids: list[int]
    rows: list[Row]


@dataclass(frozen=True)
class TermContribution:
    term: str
    contribution: float
    weight: float  # the term's TF-IDF weight in the text (after L2 normalisation)


def without(row: Row, term_ids: set[int]) -> Row:
    """The row with these terms removed, re-normalised to unit L2 length as the vectorizer does."""
    kept = [(i, w) for i, w in zip(row[0], row[1], strict=True) if i not in term_ids]
    norm = float(np.sqrt(sum(w * w for _, w in kept)))
    if not kept or norm == 0.0:
        return [], []
    return [i for i, _ in kept], [w / norm for _, w in kept]


def occlude(row: Row, max_terms: int) -> Occlusion:
    ids = np.asarray(row[0], dtype=np.int64)
    w = np.asarray(row[1], dtype=np.float64)
    k = len(ids)
    if not k:
        return Occlusion([], [])
    chosen = np.argsort(-w, kind="stable")[:max_terms]
    if k == 1:  # the text's only term removed: an empty row
        return Occlusion(ids[chosen].tolist(), [([], [])])
    # one variant per chosen term, all at once: row i keeps every position but chosen[i]
    keep = np.ones((len(chosen), k), dtype=bool)
    keep[np.arange(len(chosen)), chosen] = False
    var_ids = np.broadcast_to(ids, keep.shape)[keep].reshape(len(chosen), k - 1)
    var_w = np.broadcast_to(w, keep.shape)[keep].reshape(len(chosen), k - 1)
    # the vectorizer's L2 normalisation of what is left
    var_w /= np.sqrt(np.maximum(float(w @ w) - w[chosen] ** 2, 1e-300))[:, None]
    return Occlusion(ids[chosen].tolist(), list(zip(var_ids.tolist(), var_w.tolist(), strict=True)))


def contributions(
    full: np.ndarray,
    variants: np.ndarray,
    class_index: int,
    occlusion: Occlusion,
    row: Row,
    vocabulary: tuple[str, ...],
) -> list[TermContribution]:
    """``full``: calibrated probabilities of the text; ``variants``: of its occluded rows. Sorted with
    the terms that support the class most first."""
    weight_of = dict(zip(row[0], row[1], strict=True))
    deltas = full[class_index] - variants[:, class_index] if len(variants) else np.zeros(0)
    out = [
        TermContribution(vocabulary[t], float(d), float(weight_of[t]))
        for t, d in zip(occlusion.term_ids, deltas, strict=True)
    ]
    out.sort(key=lambda c: c.contribution, reverse=True)
    return out
