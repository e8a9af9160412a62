"""The bars of the training issue, measured on the full built-in corpora (the slow part of the suite)."""

from __future__ import annotations

import pytest

from training.pipeline import RunResult

pytestmark = pytest.mark.slow


def test_bbc_news_reaches_097_accuracy(bbc_news_full: RunResult) -> None:
    m = bbc_news_full.metrics
    assert m["data_cleaning"]["duplicates_removed"] == 98
    assert m["test"]["accuracy"] >= 0.97, m["test"]["accuracy"]
    print(f"bbc-news: trained in {m['training']['seconds']}s")  # the README records the measured time


def test_chinese_reviews_reaches_084_accuracy(chinese_reviews_full: RunResult) -> None:
    m = chinese_reviews_full.metrics
    assert m["features"]["analyzer"] == "char"
    assert m["data_cleaning"]["duplicates_removed"] > 15_000
    assert 0.84 <= m["test"]["accuracy"] < 0.95, m["test"]["accuracy"]
