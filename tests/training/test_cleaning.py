"""Near-duplicate cleaning: texts that differ only in Unicode form, case, spacing, punctuation or emoji
collide; one representative stays; groups seen under two labels go; every count is reported."""

from __future__ import annotations

import pytest

from training.cleaning import clean, describe, near_key, normalize
from training.datasets import Dataset, load_dataset


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("这本书很好！", "这本书很好!!"),  # full-width and repeated punctuation
        ("这本书 很好", "这本书很好"),  # a space between Chinese characters means nothing
        ("ＡＢＣ质量好", "abc质量好"),  # full-width letters (NFKC) and case (case-fold)
        ("Great   phone\n", "great phone"),  # whitespace collapsed, case folded
        ("好评👍👍", "好评"),  # emoji
        ("Love it ❤️", "love it"),  # emoji with a variation selector
        ("Straße", "STRASSE"),  # case-fold, not lower(): ß folds to ss
        ("¡Hola, mundo!", "hola mundo"),
    ],
)
def test_variants_normalise_to_the_same_key(a: str, b: str) -> None:
    assert normalize(a) == normalize(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [("这本书很好", "这本书不好"), ("great phone", "greatphone"), ("4 stars", "5 stars")],
)
def test_different_texts_keep_different_keys(a: str, b: str) -> None:
    assert normalize(a) != normalize(b)


def _ds(texts: list[str], labels: list[str]) -> Dataset:
    return Dataset("t", texts, labels, [f"f:{i + 1}" for i in range(len(texts))])


def test_clean_keeps_first_of_near_duplicates_and_drops_conflicting_groups() -> None:
    out = clean(
        _ds(
            ["好评！", "好评!!", "好评", "差评", "差评", "太慢了。", "太慢了", "一般", "一般😐"],
            ["pos", "pos", "pos", "neg", "neg", "neg", "pos", "neg", "neg"],
        )
    )
    # "好评！" stays for its group; "太慢了" carries both labels after normalising: both rows go
    assert out.texts == ["好评！", "差评", "一般"]
    assert out.origins == ["f:1", "f:4", "f:8"]
    s = out.stats
    assert (s["rows_loaded"], s["duplicates_removed"], s["near_duplicates_removed"]) == (9, 1, 3)
    assert (s["near_conflicting_label_texts"], s["near_conflicting_label_rows_removed"]) == (1, 2)
    assert (s["conflicting_label_texts"], s["conflicting_label_rows_removed"], s["rows_kept"]) == (0, 0, 3)
    line = describe(s)
    assert "1 exact duplicates removed" in line and "3 near-duplicates removed" in line, line


def test_texts_of_only_punctuation_or_emoji_do_not_all_collide() -> None:
    out = clean(_ds(["!!!", "👍", "???", "ok"], ["a", "b", "a", "b"]))
    assert out.texts == ["!!!", "👍", "???", "ok"]
    assert out.stats["near_duplicates_removed"] == 0


def test_builtin_chinese_reviews_near_duplicates_are_counted() -> None:
    out = clean(load_dataset("chinese-reviews"))
    s = out.stats
    assert s["duplicates_removed"] == 17_535 and s["conflicting_label_rows_removed"] == 225
    # the corpora are pinned packages: the counts are facts about them, not estimates
    assert s["near_duplicates_removed"] == 26, s
    assert (s["near_conflicting_label_texts"], s["near_conflicting_label_rows_removed"]) == (4, 9), s
    assert s["rows_kept"] == 17_328
    keys = [near_key(t) for t in out.texts]
    assert len(set(keys)) == len(keys), "a near-duplicate survived cleaning"
