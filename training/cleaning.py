"""Corpus hygiene before any split: a duplicate on both sides of a train/test split inflates test
accuracy, and a text carrying two labels teaches the model noise.

Two passes: exact copies first, then near-duplicates, texts that differ only in Unicode form, case,
spacing, punctuation or emoji ("这本书很好！" and "这本书很好!!" and "这本书 很好"). The second pass
matters most for short reviews, where such variants are common and would otherwise land on both
sides of the split."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable

from training.datasets import Dataset

# Scripts written without spaces (Han, kana, Hangul syllables are spaced but kept out: Korean uses
# spaces): a space next to one of these characters carries no meaning, so it is dropped.
_UNSPACED = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACE_NEAR_UNSPACED = re.compile(rf"(?<=[{_UNSPACED}])\s+|\s+(?=[{_UNSPACED}])")
# Variation selectors (emoji presentation) are marks, not symbols; the rest of emoji are symbols (So, Sk).
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")


def _drop(ch: str) -> bool:
    cat = unicodedata.category(ch)
    # P*: punctuation, S*: symbols (emoji, currency, maths), Cf: format characters such as the
    # zero-width joiner inside emoji sequences
    return cat[0] in "PS" or cat == "Cf"


def normalize(text: str) -> str:
    """The key under which near-duplicates collide: NFKC (full-width forms become ASCII), case-fold,
    punctuation, symbols and emoji replaced by spaces, whitespace collapsed, and spaces next to
    Chinese or Japanese characters removed. Not used for features: only to find duplicates."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _VARIATION_SELECTORS.sub("", text)
    text = "".join(" " if _drop(ch) else ch for ch in text)
    text = " ".join(text.split())
    return _SPACE_NEAR_UNSPACED.sub("", text)


def _group(ds: Dataset, key: Callable[[str], str]) -> tuple[list[int], int, int, int]:
    """Indices to keep (first of each group, in corpus order), copies removed, conflicting groups and
    the rows in them (every copy of a text seen under two labels goes: neither label can be trusted)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(ds.texts):
        groups[key(text)].append(i)
    keep: list[int] = []
    copies = conflicting_texts = conflicting_rows = 0
    for idxs in groups.values():
        if len({ds.labels[i] for i in idxs}) > 1:
            conflicting_texts += 1
            conflicting_rows += len(idxs)
            continue
        keep.append(idxs[0])
        copies += len(idxs) - 1
    keep.sort()
    return keep, copies, conflicting_texts, conflicting_rows


def _subset(ds: Dataset, keep: list[int], stats: dict[str, int]) -> Dataset:
    return Dataset(
        ds.name,
        [ds.texts[i] for i in keep],
        [ds.labels[i] for i in keep],
        [ds.origins[i] for i in keep],
        stats,
    )


def near_key(text: str) -> str:
    # a text that is only punctuation or emoji keeps its exact form, so that all of them do not collide
    return normalize(text) or "\0" + text.strip()


def deduplicate(ds: Dataset) -> Dataset:
    """Keep the first copy of each exact text (compared after stripping surrounding whitespace);
    drop every copy of a text that appears with more than one label. Counts go into ``stats``."""
    keep, copies, conflicts, conflict_rows = _group(ds, str.strip)
    stats = dict(ds.stats)
    stats.update(
        rows_loaded=len(ds),
        duplicates_removed=copies,
        conflicting_label_texts=conflicts,
        conflicting_label_rows_removed=conflict_rows,
        rows_kept=len(keep),
    )
    return _subset(ds, keep, stats)


def deduplicate_near(ds: Dataset) -> Dataset:
    """The near-duplicate pass over an exactly de-duplicated dataset: texts equal under
    :func:`normalize` keep one representative (the first); groups seen under two labels go whole."""
    keep, copies, conflicts, conflict_rows = _group(ds, near_key)
    stats = dict(ds.stats)
    stats.update(
        near_duplicates_removed=copies,
        near_conflicting_label_texts=conflicts,
        near_conflicting_label_rows_removed=conflict_rows,
        rows_kept=len(keep),
    )
    return _subset(ds, keep, stats)


def clean(ds: Dataset) -> Dataset:
    """Exact duplicates, then near-duplicates: what training does before the split."""
    return deduplicate_near(deduplicate(ds))


def describe(stats: dict[str, int]) -> str:
    """The cleaning counts as one log line."""
    s = stats
    return (
        f"{s['rows_loaded']} rows, {s['duplicates_removed']} exact duplicates removed, "
        f"{s.get('near_duplicates_removed', 0)} near-duplicates removed (same text after NFKC, case-fold, "
        f"whitespace, punctuation and emoji), {s['conflicting_label_rows_removed']} + "
        f"{s.get('near_conflicting_label_rows_removed', 0)} rows whose exact + near text carries two labels "
        f"removed ({s['conflicting_label_texts']} + {s.get('near_conflicting_label_texts', 0)} texts); "
        f"{s['rows_kept']} kept"
    )
