"""Loaders and data hygiene: bad data is refused with the file and line to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.cleaning import deduplicate
from training.datasets import Dataset, DatasetError, check_trainable, load_dataset


def test_builtin_bbc_news_has_2225_articles_in_5_classes() -> None:
    ds = load_dataset("bbc-news")
    assert len(ds) == 2225
    assert sorted(set(ds.labels)) == ["business", "entertainment", "politics", "sports", "tech"]


def test_builtin_chinese_reviews_loads_both_polarities() -> None:
    ds = load_dataset("chinese-reviews")
    assert 34_000 < len(ds) < 36_000
    assert set(ds.labels) == {"positive", "negative"}


def test_deduplicate_removes_copies_and_conflicting_labels() -> None:
    ds = Dataset(
        "t", ["a", "a ", "b", "b", "c", "d"], ["x", "x", "x", "y", "y", "x"], [str(i) for i in range(6)]
    )
    out = deduplicate(ds)
    assert out.texts == ["a", "c", "d"]
    assert out.stats["duplicates_removed"] == 1
    assert out.stats["conflicting_label_texts"] == 1
    assert out.stats["conflicting_label_rows_removed"] == 2


def test_builtin_bbc_news_duplicates_are_counted() -> None:
    out = deduplicate(load_dataset("bbc-news"))
    assert out.stats["duplicates_removed"] == 98
    assert len(out) == 2127


def test_csv_with_custom_columns_loads(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text('body,queue\n"hello, world",a\nsecond text,b\n', encoding="utf-8")
    ds = load_dataset(str(f), text_column="body", label_column="queue")
    assert ds.texts == ["hello, world", "second text"] and ds.labels == ["a", "b"]
    assert ds.origins == [f"{f}:2", f"{f}:3"]


def test_tsv_and_jsonl_load(tmp_path: Path) -> None:
    tsv = tmp_path / "d.tsv"
    tsv.write_text("text\tlabel\none\tx\ntwo\ty\n", encoding="utf-8")
    assert load_dataset(str(tsv)).labels == ["x", "y"]
    jl = tmp_path / "d.jsonl"
    jl.write_text('{"text": "one", "label": 1}\n\n{"text": "二", "label": 2}\n', encoding="utf-8")
    ds = load_dataset(str(jl))
    assert ds.labels == ["1", "2"] and ds.origins[1].endswith(":3")


def test_folder_dataset_loads_one_label_per_subfolder(tmp_path: Path) -> None:
    for label in ("pos", "neg"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "1.txt").write_text(f"{label} text", encoding="utf-8")
    ds = load_dataset(str(tmp_path))
    assert sorted(ds.labels) == ["neg", "pos"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"text,category\nhi,a\n", "no column 'label'"),
        (b"text,label\nhi,a\n   ,b\n", ":3: empty text"),
        (b"text,label\nhi,a\ncaf\xe9,b\n", ":3: bytes that are not UTF-8"),
        (b"text,label\n", "no rows"),
    ],
)
def test_bad_csv_names_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_bytes(content)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(str(f))
    assert str(f) in str(info.value)


def test_bad_jsonl_line_is_named(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "ok", "label": "a"}\n{"text": "oops"\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2: not valid JSON"):
        load_dataset(str(f))


def test_single_class_is_refused() -> None:
    ds = Dataset("one", ["a", "b", "c", "d", "e"], ["x"] * 5, [f"f:{i}" for i in range(5)])
    with pytest.raises(DatasetError, match="only one label"):
        check_trainable(ds)


def test_label_with_too_few_examples_names_where_it_is() -> None:
    ds = Dataset(
        "few", [str(i) for i in range(8)], ["x"] * 6 + ["y"] * 2, [f"f.csv:{i + 2}" for i in range(8)]
    )
    with pytest.raises(DatasetError, match=r"label 'y' has 2 example\(s\) \(at f\.csv:8, f\.csv:9\)"):
        check_trainable(ds)


def test_unknown_dataset_is_explained() -> None:
    with pytest.raises(DatasetError, match="not a built-in dataset"):
        load_dataset("no-such-thing")
