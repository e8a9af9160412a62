"""The compiled default word analyzer (textvec/_fastvec.c) equals the pure-Python path it replaces.

The sidecar uses the compiled transform wherever the extension is built; the pure-Python path stays as
the fallback for installations without a C compiler. Both must give the same ids and weights (to 1e-6)
as each other, and so as scikit-learn (tests/training/test_vectorizer_parity.py checks the served
path against scikit-learn on both corpora)."""

from __future__ import annotations

import re
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textvec import Vectorizer
from textvec import vectorizer as vectorizer_module
from training.cleaning import clean
from training.datasets import load_dataset
from training.features import FeatureConfig, fit


def test_the_extension_is_built() -> None:
    # not a skip: without the extension the sidecar silently runs the ~5x slower path
    assert vectorizer_module.COMPILED, (
        "textvec._fastvec is not built: `make install` (pip install -e .) compiles it and needs a C "
        "compiler (gcc) and the Python headers"
    )


def _same(vec: Vectorizer, text: str) -> None:
    ids, weights = vec.transform_one(text)
    ref_ids, ref_weights = vec.transform_one_python(text)
    assert ids == ref_ids
    assert all(isinstance(i, int) for i in ids) and all(isinstance(w, float) for w in weights)
    assert np.abs(np.asarray(weights) - np.asarray(ref_weights)).max(initial=0.0) <= 1e-6


def test_compiled_equals_python_on_bbc_news() -> None:
    ds = clean(load_dataset("bbc-news"))
    vec, _ = fit(FeatureConfig(analyzer="word"), ds.texts[1::3])
    served = Vectorizer.from_json(vec.to_json())
    assert served.compiled
    for text in ds.texts[::3]:
        _same(served, text)


VOCAB = (
    "the",
    "cup",
    "the cup",
    "cup final",
    "the cup final",
    "final",
    "héllo",
    "héllo wörld",
    "wörld",
    "a1 b2",
    "b2",
    "_x",
    "٣٤",
    "i̇stanbul",
    "😀x",
    "straße",
)
WORDS = ["the", "cup", "final", "héllo", "wörld", "a1", "b2", "x", "_x", "٣٤", "İstanbul", "STRASSE"]
TEXTS = st.one_of(
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=200),
    st.lists(st.sampled_from([*WORDS, " ", "!", "\n", "😀", "\u0301", "\ud800"]), max_size=40).map("".join),
    st.lists(st.sampled_from(WORDS), max_size=40).map(" ".join),
)


@pytest.mark.parametrize(
    ("ngram_range", "sublinear_tf", "lowercase"),
    [((1, 2), True, True), ((1, 3), False, True), ((2, 3), True, False), ((1, 1), True, True)],
)
@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(text=TEXTS)
def test_compiled_equals_python_on_any_text(
    ngram_range: tuple[int, int], sublinear_tf: bool, lowercase: bool, text: str
) -> None:
    idf = np.linspace(1.0, 3.0, len(VOCAB))
    vec = Vectorizer(
        analyzer="word",
        ngram_range=ngram_range,
        vocabulary=VOCAB,
        idf=idf,
        sublinear_tf=sublinear_tf,
        lowercase=lowercase,
    )
    assert vec.compiled
    _same(vec, text)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(text=TEXTS)
def test_compiled_tokens_are_the_default_patterns(text: str) -> None:
    """The C scan decides \\w as the re module does, for every code point (surrogates included)."""
    vec = Vectorizer(analyzer="word", ngram_range=(1, 1), vocabulary=VOCAB, idf=np.ones(len(VOCAB)))
    assert vec._compiled.tokens(text) == re.findall(vectorizer_module.DEFAULT_TOKEN_PATTERN, text)


def test_every_code_point_is_a_word_character_exactly_when_re_says_so() -> None:
    vec = Vectorizer(analyzer="word", ngram_range=(1, 1), vocabulary=("ab",), idf=np.ones(1))
    # each code point doubled is one token exactly when it is a word character
    chars = "".join(chr(c) * 2 + " " for c in range(0x110000))
    assert vec._compiled.tokens(chars) == re.findall(r"(?u)\b\w\w+\b", chars)


def test_only_the_default_word_analyzer_is_compiled() -> None:
    word = Vectorizer(analyzer="word", ngram_range=(1, 2), vocabulary=("ab",), idf=np.ones(1))
    other_pattern = Vectorizer(
        analyzer="word", ngram_range=(1, 2), vocabulary=("ab",), idf=np.ones(1), token_pattern=r"\S+"
    )
    char = Vectorizer(analyzer="char", ngram_range=(1, 2), vocabulary=("ab",), idf=np.ones(1))
    assert word.compiled and not other_pattern.compiled and not char.compiled
    assert other_pattern.transform_one("ab ab!")[0] == [0]  # its tokens "ab" and "ab!": only "ab" is known


def test_empty_vocabulary_and_empty_text() -> None:
    empty = Vectorizer(analyzer="word", ngram_range=(1, 2), vocabulary=(), idf=np.ones(0))
    assert empty.compiled and empty.transform_one("the cup") == ([], [])
    vec = Vectorizer(analyzer="word", ngram_range=(1, 2), vocabulary=VOCAB, idf=np.ones(len(VOCAB)))
    assert vec.transform_one("") == ([], []) == vec.transform_one("a ! x")


def _long_text(words: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice([*WORDS, "!", "😀"], size=words))


def test_long_texts_released_from_the_gil_equal_the_python_path() -> None:
    # a text of at least 2,048 code points is scanned without the GIL (textvec/_fastvec.c)
    vec = Vectorizer(analyzer="word", ngram_range=(1, 3), vocabulary=VOCAB, idf=np.linspace(1, 3, len(VOCAB)))
    for words in (500, 2_000, 20_000):
        text = _long_text(words, words)
        assert len(text) >= 2048
        _same(vec, text)


def test_threads_vectorizing_at_once_get_their_own_answers() -> None:
    """While one thread scans without the GIL, another thread's call must not share its scratch."""
    ds = clean(load_dataset("bbc-news"))
    vec, _ = fit(FeatureConfig(analyzer="word"), ds.texts[1::3])
    served = Vectorizer.from_json(vec.to_json())
    texts = [" ".join(ds.texts[i : i + 8]) for i in range(0, 160, 8)]  # ~15,000 characters each
    assert min(map(len, texts)) >= 2048
    expected = [served.transform_one_python(t) for t in texts]
    errors: list[str] = []

    def work(offset: int) -> None:
        for round_ in range(10):
            for k in range(len(texts)):
                i = (k + offset + round_) % len(texts)
                ids, weights = served.transform_one(texts[i])
                if ids != expected[i][0] or np.abs(np.subtract(weights, expected[i][1])).max() > 1e-6:
                    errors.append(f"thread {offset}, text {i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []


def test_a_long_scan_lets_other_threads_run() -> None:
    """The event loop's thread must not wait for a whole large text's scan (the `/healthz` during a
    flood of maximum-size requests in docs/bench.md). With a switch interval of 1 s, a thread that kept
    the GIL through the call would let no other thread run between the two time stamps around it; with
    the GIL released, the waiting main thread runs at once."""
    vec = Vectorizer(analyzer="word", ngram_range=(1, 3), vocabulary=VOCAB, idf=np.ones(len(VOCAB)))
    text = _long_text(400_000, 7)  # a scan of tens of milliseconds
    span: list[float] = []
    done = threading.Event()

    def scan() -> None:
        t0 = time.perf_counter()
        vec.transform_one(text)
        span.extend((t0, time.perf_counter()))
        done.set()

    samples: list[float] = []
    before = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    try:
        worker = threading.Thread(target=scan)
        worker.start()
        while not done.is_set():
            samples.append(time.perf_counter())
        worker.join()
    finally:
        sys.setswitchinterval(before)
    t0, t1 = span
    assert any(t0 < s < t1 for s in samples), "the main thread did not run during the scan"
