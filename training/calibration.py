"""Fit the calibration of a version on its validation split, and report it on the test split.

Temperature scaling: one scalar T minimising the validation negative log-likelihood of
softmax(log p / T). It never changes the predicted class, only how sure the scores say the model is.
The abstain threshold is the lowest calibrated confidence at which the validation texts answered reach
the target precision: below it the sidecar says "I don't know" instead of guessing."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import minimize_scalar

from textvec.calibration import Calibration, apply_temperature

ECE_BINS = 15


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(probs[np.arange(len(y)), y], 1e-12, None)
    return float(-np.log(p).mean())


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises validation NLL (searched on log T: the loss is smooth there)."""
    if len(y) == 0:
        return 1.0
    res = minimize_scalar(
        lambda log_t: nll(apply_temperature(probs, float(np.exp(log_t))), y),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    t = float(np.exp(res.x))
    # keep T = 1 unless scaling really helps: a flat loss (a perfect validation split) says nothing
    return t if nll(apply_temperature(probs, t), y) < nll(probs, y) - 1e-9 else 1.0


def ece(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: |accuracy - confidence| per equal-width confidence bin, weighted by
    the share of texts in the bin."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in pairwise(edges):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(total)


def choose_threshold(probs: np.ndarray, y: np.ndarray, target_precision: float) -> float | None:
    """Lowest confidence t such that the texts with confidence >= t are right at least
    ``target_precision`` of the time (on validation). None when every text qualifies (no abstaining
    needed); 1.0 (abstain on nearly everything) when even the most confident texts fall short."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    order = np.argsort(-conf, kind="stable")
    conf_sorted, right = conf[order], correct[order]
    precision = np.cumsum(right) / np.arange(1, len(right) + 1)
    # answering a prefix only makes sense up to a confidence step: ties share one decision
    ok = [
        int(i)
        for i in np.flatnonzero(precision >= target_precision)
        if i == len(conf_sorted) - 1 or conf_sorted[i + 1] < conf_sorted[i]
    ]
    if not ok:
        return 1.0
    last = max(ok)
    if last == len(conf_sorted) - 1:
        return None
    return float(conf_sorted[last])


def coverage_report(probs: np.ndarray, y: np.ndarray, threshold: float | None) -> dict[str, Any]:
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    answered = conf >= threshold if threshold is not None else np.ones_like(correct)
    n = int(answered.sum())
    return {
        "threshold": threshold,
        "coverage": float(answered.mean()) if len(y) else 0.0,
        "answered": n,
        "abstained": int(len(y) - n),
        "accuracy_answered": float(correct[answered].mean()) if n else None,
    }


def fit(val_probs: np.ndarray, val_y: np.ndarray, target_precision: float | None) -> Calibration:
    t = fit_temperature(val_probs, val_y)
    threshold = (
        choose_threshold(apply_temperature(val_probs, t), val_y, target_precision)
        if target_precision is not None
        else None
    )
    return Calibration(temperature=t, abstain_threshold=threshold, target_precision=target_precision)


def ece_change_se(before: np.ndarray, after: np.ndarray, y: np.ndarray, rounds: int = 400) -> float:
    """Standard error of ECE(after) - ECE(before) on these texts, by a paired bootstrap (seeded): how far
    that change moves with which texts the test split happens to hold. A split of a few hundred texts
    that a model gets 98% right holds only a handful of errors, so the change moves by about as much as
    temperature scaling changes it."""
    if len(y) < 2:
        return 0.0
    rng = np.random.default_rng(0)
    diffs = np.empty(rounds)
    for i in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        diffs[i] = ece(after[idx], y[idx]) - ece(before[idx], y[idx])
    return float(diffs.std(ddof=1))


def report(cal: Calibration, test_probs: np.ndarray, test_y: np.ndarray, val_size: int) -> dict[str, Any]:
    """The calibration section of metrics.json: test-split ECE before and after (with the standard error
    of the change), and the coverage and accuracy of the texts answered at the stored threshold."""
    after = cal.apply(test_probs)
    return {
        "method": "temperature scaling",
        "fitted_on": f"validation split ({val_size} texts)",
        "temperature": cal.temperature,
        "ece_bins": ECE_BINS,
        "test_ece_before": ece(test_probs, test_y),
        "test_ece_after": ece(after, test_y),
        "test_ece_change_se": ece_change_se(test_probs, after, test_y),
        "test_nll_before": nll(test_probs, test_y),
        "test_nll_after": nll(after, test_y),
        "abstain": {
            "target_precision": cal.target_precision,
            **coverage_report(after, test_y, cal.abstain_threshold),
        },
    }


def plot_reliability(
    test_probs: np.ndarray, test_y: np.ndarray, cal: Calibration, path: Path, title: str
) -> Path:
    """Reliability diagram: per confidence bin, accuracy against mean confidence, before and after."""
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=110)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for probs, name, marker in ((test_probs, "before", "o"), (cal.apply(test_probs), "after", "s")):
        conf, correct = probs.max(axis=1), probs.argmax(axis=1) == test_y
        xs, ys = [], []
        for lo, hi in pairwise(edges):
            inside = (conf > lo) & (conf <= hi)
            if inside.any():
                xs.append(conf[inside].mean())
                ys.append(correct[inside].mean())
        ax.plot(xs, ys, marker=marker, label=f"{name} (ECE {ece(probs, test_y):.3f})")
    if cal.abstain_threshold is not None:
        ax.axvline(cal.abstain_threshold, color="red", linewidth=1, label="abstain below")
    ax.set_xlabel("confidence (top class)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{title}\nT = {cal.temperature:.3f}, {ECE_BINS} bins, test split", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
