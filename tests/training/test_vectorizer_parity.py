"""One vectorizer: the shared transform equals scikit-learn's TfidfVectorizer on both built-in corpora."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from tests.reference import csr_to_padded
from textvec import Vectorizer, VectorizerError
from training.cleaning import clean
from training.datasets import load_dataset
from training.features import FeatureConfig, fit, fit_rows


@pytest.mark.parametrize(
    ("dataset", "analyzer"),
    [("bbc-news", "auto"), ("chinese-reviews", "char"), ("chinese-reviews", "auto")],
)
def test_transform_equals_sklearn_on_builtin_corpus(dataset: str, analyzer: str) -> None:
    ds = clean(load_dataset(dataset))
    texts = ds.texts[::3]  # fit on two thirds, compare on unseen texts too
    vec, sk = fit(FeatureConfig(analyzer=analyzer), [t for i, t in enumerate(ds.texts) if i % 3])
    detected = {"bbc-news": "word", "chinese-reviews": "char+words"}[dataset]
    assert vec.analyzer == (detected if analyzer == "auto" else analyzer)
    # the sidecar loads the JSON, not this object: compare what it would compute
    served = Vectorizer.from_json(vec.to_json())
    ids, weights = served.transform(texts)
    ref_ids, ref_weights = csr_to_padded(sparse.csr_matrix(sk.transform(texts)))
    assert ids.shape == ref_ids.shape
    np.testing.assert_array_equal(ids, ref_ids)
    assert float(np.abs(weights - ref_weights).max()) <= 1e-6


@pytest.mark.parametrize("analyzer", ["word", "char+words"])
def test_training_rows_equal_the_served_vectorizer(analyzer: str) -> None:
    """Training analyses each text once (fit_rows); its rows must be the sidecar's rows to 1e-6."""
    ds = clean(load_dataset("chinese-reviews" if analyzer == "char+words" else "bbc-news"))
    parts = {"train": ds.texts[:1500:2], "test": ds.texts[1:1500:2]}
    vec, rows = fit_rows(FeatureConfig(analyzer=analyzer), parts)
    served = Vectorizer.from_json(vec.to_json())
    for name, texts in parts.items():
        for text, (ids, weights) in zip(texts, rows[name], strict=True):
            s_ids, s_weights = served.transform_one(text)
            assert s_ids == ids
            assert np.abs(np.asarray(s_weights) - np.asarray(weights)).max(initial=0.0) <= 1e-6


def test_char_plus_words_terms_hold_characters_and_segmented_words() -> None:
    vec, _ = fit(FeatureConfig(analyzer="char+words", min_df=1), ["这本书非常好看", "质量很差，不推荐"])
    terms = vec.terms("这本书非常好看")
    assert {"这", "这本", "这本书"} <= set(terms)  # character 1-3-grams
    assert {"非常", "好看", "非常 好看"} <= set(terms)  # jieba words and word bigrams
    assert vec.segmenter is not None and vec.segmenter.startswith("jieba ")


def test_vectorizer_fitted_with_another_segmenter_is_refused() -> None:
    vec, _ = fit(FeatureConfig(analyzer="char+words", min_df=1), ["这本书非常好看", "质量很差"])
    other = vec.to_json().replace(vec.segmenter.encode(), b"jieba 0.0.1")  # type: ignore[union-attr]
    with pytest.raises(VectorizerError, match=r"segmenter 'jieba 0.0.1'"):
        Vectorizer.from_json(other)


def test_vectorizer_json_roundtrip_keeps_fingerprint() -> None:
    vec, _ = fit(FeatureConfig(min_df=1), ["the cat sat", "the dog ran", "a cat ran"])
    again = Vectorizer.from_json(vec.to_json())
    assert again.fingerprint == vec.fingerprint
    assert again.transform_one("the cat ran") == vec.transform_one("the cat ran")


def test_vectorizer_tampered_json_is_refused() -> None:
    vec, _ = fit(FeatureConfig(min_df=1), ["the cat sat", "the dog ran", "a cat ran"])
    tampered = vec.to_json().replace(b'"cat"', b'"cow"')
    with pytest.raises(VectorizerError, match="fingerprint"):
        Vectorizer.from_json(tampered)


def test_transform_unknown_and_empty_text_gives_padding_row() -> None:
    vec, _ = fit(FeatureConfig(min_df=1), ["the cat sat", "the dog ran"])
    ids, weights = vec.transform(["zzz qqq", ""])
    assert ids.shape == (2, 1) and ids.dtype == np.int64 and weights.dtype == np.float32
    assert weights.sum() == 0.0


def test_detect_analyzer_chooses_char_for_chinese_and_word_for_english() -> None:
    from textvec import detect_analyzer

    assert detect_analyzer(["这本书非常好看，推荐！", "质量很差"]) == "char"
    assert detect_analyzer(["The quick brown fox", "jumps over the lazy dog"]) == "word"
