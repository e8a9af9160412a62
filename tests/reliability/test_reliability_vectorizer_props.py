"""Property tests of the shared vectorizer (one vectorizer, two users): for any Unicode string — lone
surrogates, control characters, combining marks, scripts without spaces included — the weights are
finite, L2-normalised, and equal to scikit-learn's TfidfVectorizer fitted on the same corpus, for both
analyzers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

from tests.reference import csr_to_padded
from training.features import FeatureConfig, fit

CORPUS = [
    "The striker scored twice as the home side won the cup final.",
    "Shares fell after the bank cut its forecast; the market slumped.",
    "Le café est fermé à Noël, naïve façade — Straße ÉCOLE",
    "这本书非常好看，推荐！质量很差，不推荐购买。",
    "Привет мир, это тест. Ελληνικά γράμματα και αριθμοί 123",
    "emoji 😀 test 👍🏽 and ﬁ ligature, İstanbul ß ǅ",
    "tab\tnew\nline  double  space goal goal goal",
    "مرحبا بالعالم هذا اختبار",
]
EXAMPLES = 400
_count = {"cases": 0}

# every code point, surrogates included (st.text() leaves them out by default)
ANY_CHAR = st.characters(codec=None, exclude_categories=())
TEXTS = st.one_of(
    st.text(alphabet=ANY_CHAR, max_size=200),
    st.text(alphabet=st.sampled_from("".join(CORPUS) + " \t\n\u00a0\u200b\u0301\ud800\udfff"), max_size=200),
    st.lists(st.sampled_from(" ".join(CORPUS).split()), max_size=30).map(" ".join),
)


@pytest.fixture(scope="module")
def fitted_all() -> dict[str, tuple[Any, Any]]:
    return {a: fit(FeatureConfig(analyzer=a, min_df=1), CORPUS) for a in ("word", "char")}


def _check(vec: Any, sk: Any, text: str) -> None:
    ids, weights = vec.transform([text])
    assert np.all(np.isfinite(weights))
    norm = float(np.sqrt((weights.astype(np.float64) ** 2).sum()))
    assert norm == 0.0 or abs(norm - 1.0) < 1e-5
    ref_ids, ref_weights = csr_to_padded(sparse.csr_matrix(sk.transform([text])))
    np.testing.assert_array_equal(ids, ref_ids)
    assert float(np.abs(weights - ref_weights).max()) <= 1e-6


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=TEXTS)
@pytest.mark.parametrize("analyzer", ["word", "char"])
def test_vectorizer_any_unicode_finite_and_equal_to_sklearn(
    fitted_all: dict[str, tuple[Any, Any]], analyzer: str, text: str
) -> None:
    vec, sk = fitted_all[analyzer]
    _count["cases"] += 1
    _check(vec, sk, text)


def test_vectorizer_property_case_count(figures: dict[str, Any]) -> None:
    figures["cases"] += _count["cases"]
    figures["details"] = {"analyzers": ["word", "char"], "examples_per_analyzer": EXAMPLES}
    assert _count["cases"] >= 2 * EXAMPLES * 0.9, _count


@pytest.mark.parametrize(
    "text", ["\ud800", "a\udfffb goal", "\x00", "\u0301" * 50, "ǅ" * 10, "ﬁ" * 3, " " * 1000]
)
def test_vectorizer_edge_strings_equal_sklearn(fitted_all: dict[str, tuple[Any, Any]], text: str) -> None:
    for vec, sk in fitted_all.values():
        _check(vec, sk, text)
