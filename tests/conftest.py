"""Fixtures shared across areas: a small real corpus and a real exported model version.

The corpus is a stratified slice of the built-in BBC articles, so every test trains on real text, and
the export goes through the same code path as ``python -m training train``."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def write_small_bbc_csv(path: Path, per_class: int = 40) -> Path:
    from training.datasets import load_bbc_news

    ds = load_bbc_news()
    taken: dict[str, int] = {}
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for text, label in zip(ds.texts, ds.labels, strict=True):
            if taken.get(label, 0) < per_class:
                taken[label] = taken.get(label, 0) + 1
                w.writerow([text, label])
    return path


@pytest.fixture(scope="session")
def small_corpus_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_bbc_csv(tmp_path_factory.mktemp("corpus") / "bbc_small.csv")


@pytest.fixture(scope="session")
def exported_models(tmp_path_factory: pytest.TempPathFactory, small_corpus_csv: Path) -> Path:
    """``<base>/news/1`` trained and exported once per session; returns ``<base>``."""
    from training.model import TrainConfig
    from training.pipeline import RunConfig, run

    base = tmp_path_factory.mktemp("models")
    run(
        RunConfig(dataset=str(small_corpus_csv), model_name="news", out=base, train=TrainConfig(epochs=4)),
        emit=lambda _line: None,
    )
    return base
