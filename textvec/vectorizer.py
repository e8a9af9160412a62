"""The one TF-IDF transform shared by training and the sidecar (one vectorizer, two users).

Training fits scikit-learn's ``TfidfVectorizer`` and freezes it into :class:`Vectorizer`; the sidecar
only ever calls :meth:`Vectorizer.transform`. The analyzers below reproduce scikit-learn's ``word`` and
``char`` analyzers term for term, so the numbers equal ``TfidfVectorizer.transform`` (a test proves it to
1e-6) without importing scikit-learn or scipy at serving time, and without its per-call overhead.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson

from contracts.signature import pad
from textvec import segment

try:  # the default word analyzer compiled (setup.py); absent where no C compiler was at install
    from textvec import _fastvec
except ImportError:  # pragma: no cover - the pure-Python path below gives the same numbers, slower
    _fastvec = None  # type: ignore[assignment]

# Whether this installation has the compiled transform (the sidecar logs it at start-up).
COMPILED = _fastvec is not None

FORMAT = "textvec-tfidf/1"
DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_WHITE_SPACES = re.compile(r"\s\s+")

# "char+words": character n-grams plus n-grams of segmented words (textvec.segment), in one vocabulary;
# for Chinese, where characters alone miss words and a segmenter alone misses its own mistakes.
Analyzer = Literal["word", "char", "char+words"]
ANALYZERS = ("word", "char", "char+words")


class VectorizerError(ValueError):
    """A vectorizer.json that cannot be trusted: wrong format, inconsistent, or tampered with."""


# scikit-learn's default pattern. For ``findall`` it finds the same tokens as ``\w\w+`` (a greedy run of
# word characters always ends at a word boundary, and after a match or a failed one-letter word the scan
# resumes on a non-word character, so every match starts at a boundary too); the shorter pattern runs
# about 30% faster, so the default is compiled as that. Any other pattern is used as given.
_FAST_PATTERNS = {DEFAULT_TOKEN_PATTERN: r"(?u)\w\w+"}
# For ASCII text, Unicode \w is exactly ASCII \w ([A-Za-z0-9_]), which the regex engine matches
# without a character-database lookup per character (~25% faster on English text).
_ASCII_DEFAULT = re.compile(r"\w\w+", re.ASCII)


def _word_ngrams(tokens: list[str], min_n: int, max_n: int) -> list[str]:
    if max_n == 1:
        return tokens
    out = list(tokens) if min_n == 1 else []
    n_tokens = len(tokens)
    for n in range(max(min_n, 2), min(max_n, n_tokens) + 1):
        # zip of shifted slices + " ".join in C: the n-grams in scikit-learn's order, ~2x a Python loop
        out.extend(map(" ".join, zip(*(tokens[k:] for k in range(n)), strict=False)))
    return out


def _char_ngrams(text: str, min_n: int, max_n: int) -> list[str]:
    text = _WHITE_SPACES.sub(" ", text)
    out = list(text) if min_n == 1 else []
    text_len = len(text)
    for n in range(max(min_n, 2), min(max_n, text_len) + 1):
        out.extend(text[i : i + n] for i in range(text_len - n + 1))
    return out


@dataclass(frozen=True)
class Vectorizer:
    """A fitted, immutable TF-IDF transform: analyzer settings, vocabulary and idf weights."""

    analyzer: Analyzer
    ngram_range: tuple[int, int]
    vocabulary: tuple[str, ...]
    idf: np.ndarray
    lowercase: bool = True
    token_pattern: str = DEFAULT_TOKEN_PATTERN
    sublinear_tf: bool = True
    fingerprint: str = ""
    # only for "char+words": the word n-gram range and the segmenter ("jieba 0.42.1") it was fitted with
    word_ngram_range: tuple[int, int] | None = None
    segmenter: str | None = None
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    # the default word analyzer's tokens never contain a space, so each n-gram term "a b" is also
    # reachable as the tuple ("a", "b"): zip's tuples are looked up as they are, no string is joined
    _tuple_index: dict[str | tuple[str, ...], int] | None = field(init=False, repr=False, compare=False)
    # the same analyzer compiled (textvec/_fastvec.c): tokens, n-gram lookups, counts and weights in C
    _compiled: _fastvec.Table | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.analyzer not in ANALYZERS:
            raise VectorizerError(f"analyzer must be one of {', '.join(ANALYZERS)}, got {self.analyzer!r}")
        for rng in (self.ngram_range, self.word_ngram_range or (1, 1)):
            if not 1 <= rng[0] <= rng[1]:
                raise VectorizerError(f"an n-gram range must satisfy 1 <= min <= max, got {rng}")
        if (self.analyzer == "char+words") != (self.word_ngram_range is not None and bool(self.segmenter)):
            raise VectorizerError(
                "word_ngram_range and segmenter go with the 'char+words' analyzer, and only it"
            )
        if self.segmenter:
            self._check_segmenter(self.segmenter)
        if len(self.idf) != len(self.vocabulary):
            raise VectorizerError(f"{len(self.vocabulary)} vocabulary terms but {len(self.idf)} idf weights")
        if not np.all(np.isfinite(self.idf)):
            raise VectorizerError("idf weights must be finite")
        index = {term: i for i, term in enumerate(self.vocabulary)}
        if len(index) != len(self.vocabulary):
            raise VectorizerError("vocabulary has duplicate terms")
        object.__setattr__(self, "idf", np.asarray(self.idf, dtype=np.float64))
        object.__setattr__(self, "_index", index)
        object.__setattr__(
            self, "_pattern", re.compile(_FAST_PATTERNS.get(self.token_pattern, self.token_pattern))
        )
        tuples = self.analyzer == "word" and self.token_pattern == DEFAULT_TOKEN_PATTERN
        tuple_index: dict[str | tuple[str, ...], int] | None = (
            {(tuple(t.split(" ")) if " " in t else t): i for t, i in index.items()} if tuples else None
        )
        object.__setattr__(self, "_tuple_index", tuple_index)
        compiled = None
        if tuples and _fastvec is not None:
            lo, hi = self.ngram_range
            compiled = _fastvec.Table(self.vocabulary, self.idf.tolist(), lo, hi, self.sublinear_tf)
        object.__setattr__(self, "_compiled", compiled)
        expected = self.compute_fingerprint()
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", expected)
        elif self.fingerprint != expected:
            raise VectorizerError("fingerprint does not match the content: the file is corrupt or was edited")

    @staticmethod
    def _check_segmenter(wanted: str) -> None:
        try:
            installed = segment.version()
        except segment.SegmenterError as exc:
            raise VectorizerError(str(exc)) from exc
        if wanted != installed:
            raise VectorizerError(
                f"fitted with the segmenter {wanted!r} but {installed!r} is installed: words, and so "
                "features, could differ from training's"
            )
        segment.warm_up()

    @property
    def n_features(self) -> int:
        return len(self.vocabulary)

    # --- analysis -------------------------------------------------------------------------------
    def terms(self, text: str) -> list[str]:
        """The n-gram terms of one text, exactly as scikit-learn's analyzer yields them."""
        if self.lowercase:
            text = text.lower()
        lo, hi = self.ngram_range
        if self.analyzer == "char":
            return _char_ngrams(text, lo, hi)
        if self.analyzer == "char+words":
            assert self.word_ngram_range is not None
            out = _char_ngrams(text, lo, hi)
            out.extend(_word_ngrams(segment.words(text), *self.word_ngram_range))
            return out
        return _word_ngrams(self._pattern.findall(text), lo, hi)

    def transform_one(self, text: str) -> tuple[list[int], list[float]]:
        """Sparse TF-IDF of one text: term ids (ascending) and L2-normalised weights.

        The sidecar calls this once per request, so it is written for speed: the dictionary lookups
        run in C (``map`` over ``dict.get``), and counting, sorting and weighting are a handful of
        numpy calls instead of a Python loop per term (~2x faster on a 400-word document). The default
        word analyzer runs compiled where the extension is built (another ~5x)."""
        if self._compiled is not None:
            return self._compiled.transform(text.lower() if self.lowercase else text)
        return self.transform_one_python(text)

    @property
    def compiled(self) -> bool:
        """Whether :meth:`transform_one` runs the compiled analyzer for this vectorizer."""
        return self._compiled is not None

    def transform_one_python(self, text: str) -> tuple[list[int], list[float]]:
        """:meth:`transform_one` without the compiled extension: the fallback, and its reference."""
        if self._tuple_index is not None:
            return self._weigh(self._default_word_ids(text))
        return self.transform_terms(self.terms(text))

    def transform_terms(self, terms: list[str]) -> tuple[list[int], list[float]]:
        """:meth:`transform_one` of a text whose :meth:`terms` are already known (training analyses
        each text once, for fitting and for transforming)."""
        return self._weigh(
            np.fromiter(map(self._index.get, terms, repeat(-1)), dtype=np.int64, count=len(terms))
        )

    def _weigh(self, found: np.ndarray) -> tuple[list[int], list[float]]:
        """Term ids (-1: out of vocabulary) in any order to sorted ids and L2-normalised TF-IDF."""
        if not len(found):
            return [], []
        ids, counts = np.unique(found, return_counts=True)  # sorted ids, term frequency of each
        if ids[0] < 0:  # -1 stands for every out-of-vocabulary term
            ids, counts = ids[1:], counts[1:]
            if not len(ids):
                return [], []
        if self.sublinear_tf:
            raw = np.log(counts)
            raw += 1.0
        else:
            raw = counts.astype(np.float64)
        raw *= self.idf[ids]
        raw /= math.sqrt(float(raw @ raw))
        return ids.tolist(), raw.tolist()

    def _default_word_ids(self, text: str) -> np.ndarray:
        """The vocabulary id of every term of the default word analyzer (-1 when out of vocabulary),
        in :meth:`terms`'s order, without building the n-gram strings."""
        assert self._tuple_index is not None
        if self.lowercase:
            text = text.lower()
        tokens = (_ASCII_DEFAULT if text.isascii() else self._pattern).findall(text)
        get = self._tuple_index.get
        lo, hi = self.ngram_range
        keys: list[Iterable[str | tuple[str, ...]]] = [tokens] if lo == 1 else []
        keys += [zip(*(tokens[k:] for k in range(n)), strict=False) for n in range(max(lo, 2), hi + 1)]
        return np.fromiter(map(get, chain.from_iterable(keys), repeat(-1)), dtype=np.int64)

    def transform(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Padded batch tensors for the serving signature: ``token_ids`` int64 and ``token_weights``
        float32, both ``[len(texts), k]`` where k is the largest number of non-zeros (at least 1);
        padding is id 0 with weight 0, which adds nothing to the first layer's weighted sum."""
        rows = [self.transform_one(t) for t in texts]
        return pad(rows)

    # --- persistence ----------------------------------------------------------------------------
    def _content(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "analyzer": self.analyzer,
            "ngram_range": list(self.ngram_range),
            "lowercase": self.lowercase,
            "token_pattern": self.token_pattern,
            "sublinear_tf": self.sublinear_tf,
            "norm": "l2",
            "vocabulary": list(self.vocabulary),
            "idf": [float(x) for x in self.idf],
        }
        if self.analyzer == "char+words":  # absent otherwise, so older vectorizers keep their fingerprint
            assert self.word_ngram_range is not None
            doc["word_ngram_range"] = list(self.word_ngram_range)
            doc["segmenter"] = self.segmenter
        return doc

    def compute_fingerprint(self) -> str:
        blob = orjson.dumps(self._content(), option=orjson.OPT_SORT_KEYS)
        return "sha256:" + hashlib.sha256(blob).hexdigest()

    def to_json(self) -> bytes:
        doc = self._content()
        doc["n_features"] = self.n_features
        doc["fingerprint"] = self.fingerprint
        return orjson.dumps(doc)

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_json())

    @classmethod
    def from_json(cls, data: bytes | str) -> Vectorizer:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise VectorizerError(f"not valid JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise VectorizerError(f"unknown vectorizer format (expected {FORMAT!r})")
        if doc.get("norm") != "l2":
            raise VectorizerError("only l2 normalisation is supported")
        try:
            return cls(
                analyzer=doc["analyzer"],
                ngram_range=(int(doc["ngram_range"][0]), int(doc["ngram_range"][1])),
                vocabulary=tuple(doc["vocabulary"]),
                idf=np.asarray(doc["idf"], dtype=np.float64),
                lowercase=bool(doc["lowercase"]),
                token_pattern=str(doc["token_pattern"]),
                sublinear_tf=bool(doc["sublinear_tf"]),
                fingerprint=str(doc["fingerprint"]),
                word_ngram_range=(
                    (int(doc["word_ngram_range"][0]), int(doc["word_ngram_range"][1]))
                    if doc.get("word_ngram_range") is not None
                    else None
                ),
                segmenter=doc.get("segmenter"),
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise VectorizerError(f"vectorizer.json is missing or has a malformed field: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> Vectorizer:
        try:
            return cls.from_json(Path(path).read_bytes())
        except VectorizerError as exc:
            raise VectorizerError(f"{path}: {exc}") from exc
