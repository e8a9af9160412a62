"""One vectorizer: the shared transform equals scikit-learn's TfidfVectorizer on both built-in corpora."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from tests.reference import csr_to_padded
from textvec import Vectorizer, VectorizerError
from training.cleaning import deduplicate
from training.datasets import load_dataset
from training.features import FeatureConfig, fit


@pytest.mark.parametrize(("dataset", "analyzer"), [("bbc-news", "word"), ("chinese-reviews", "char")])
def test_transform_equals_sklearn_on_builtin_corpus(dataset: str, analyzer: str) -> None:
    ds = deduplicate(load_dataset(dataset))
    texts = ds.texts[::3]  # fit on two thirds, compare on unseen texts too
    vec, sk = fit(FeatureConfig(), [t for i, t in enumerate(ds.texts) if i % 3])
    assert vec.analyzer == analyzer
    ids, weights = vec.transform(texts)
    ref_ids, ref_weights = csr_to_padded(sparse.csr_matrix(sk.transform(texts)))
    assert ids.shape == ref_ids.shape
    np.testing.assert_array_equal(ids, ref_ids)
    assert float(np.abs(weights - ref_weights).max()) <= 1e-6


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
