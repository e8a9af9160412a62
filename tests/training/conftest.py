"""Models trained once per session on the full built-in corpora (the slow part of the suite), shared by
the quality bars and the calibration and explanation checks."""

from __future__ import annotations

import pytest

from training.pipeline import RunConfig, RunResult, run


@pytest.fixture(scope="session")
def bbc_news_full(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    out = tmp_path_factory.mktemp("bbc-full")
    return run(RunConfig(dataset="bbc-news", model_name="news", out=out), emit=print)


@pytest.fixture(scope="session")
def chinese_reviews_full(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    out = tmp_path_factory.mktemp("reviews-full")
    return run(RunConfig(dataset="chinese-reviews", model_name="reviews", out=out), emit=print)
