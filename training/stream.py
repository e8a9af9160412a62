"""The dataset formats of :mod:`training.datasets` (CSV, TSV, JSON Lines, a folder of ``.txt`` files),
read as a stream of records for scoring: one row at a time, in constant memory, with the same per-row
checks and ``file:line`` messages as the training loaders. A bad row is yielded as :class:`Rejected`
(the caller counts it, or stops); a bad file (missing, unreadable, no text column) raises
:class:`DatasetError` as the loaders do. Labels are not needed: scoring input usually has none."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from training.datasets import DatasetError, _check_text

TABLES = (".csv", ".tsv", ".tab")
JSONL = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class Record:
    id: str
    text: str
    where: str  # file:line (a folder's file: its path)


@dataclass(frozen=True)
class Rejected:
    where: str
    reason: str  # the loaders' message, which starts with ``where``


Item = Record | Rejected


def _not_utf8(where: str, text: str) -> str | None:
    # csv reads with surrogateescape so one bad line cannot end the file; its bytes show up here
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        return f"{where}: bytes that are not UTF-8; re-save the file as UTF-8"
    return None


def _record(ident: object, text: object, where: str) -> Item:
    try:
        checked = _check_text(text, where)
    except DatasetError as exc:
        return Rejected(where, str(exc))
    bad = _not_utf8(where, checked)
    return Rejected(where, bad) if bad else Record(str(ident), checked, where)


def _jsonl(path: Path, text_column: str, id_column: str) -> Iterator[Item]:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            where = f"{path}:{lineno}"
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8-sig" if lineno == 1 else "utf-8"))
            except UnicodeDecodeError:
                yield Rejected(where, f"{where}: bytes that are not UTF-8; re-save the file as UTF-8")
                continue
            except json.JSONDecodeError as exc:
                yield Rejected(where, f"{where}: not valid JSON: {exc.msg}")
                continue
            if not isinstance(row, dict):
                yield Rejected(where, f"{where}: expected a JSON object per line")
            elif text_column not in row:
                yield Rejected(
                    where, f"{where}: no field {text_column!r} (fields: {', '.join(map(str, row))})"
                )
            else:
                yield _record(row.get(id_column, lineno), row[text_column], where)


def _table(path: Path, text_column: str, id_column: str) -> Iterator[Item]:
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    csv.field_size_limit(sys.maxsize)  # a long article is one field; csv's default cap is 128 KiB
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration as exc:
            raise DatasetError(f"{path}: the file is empty") from exc
        if text_column not in header:
            raise DatasetError(
                f"{path}:1: header has no column {text_column!r} (columns: {', '.join(header)}); "
                "choose the column with --text-column"
            )
        ti = header.index(text_column)
        ii = header.index(id_column) if id_column in header else None
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                where = f"{path}:{reader.line_num}"
                yield Rejected(where, f"{where}: not valid {path.suffix[1:].upper()}: {exc}")
                continue
            where = f"{path}:{reader.line_num}"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(ti, ii or 0):
                yield Rejected(where, f"{where}: {len(row)} columns, the header has {len(header)}")
                continue
            yield _record(row[ii] if ii is not None else reader.line_num, row[ti], where)


def _folder(root: Path) -> Iterator[Item]:
    """Every ``.txt`` file under the folder (sub-folders too, so a training layout scores as is); the
    id is the path relative to the folder."""
    for f in sorted(root.rglob("*.txt")):
        if any(part.startswith(".") for part in f.relative_to(root).parts):
            continue
        where = str(f)
        try:
            text = f.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            yield Rejected(where, f"{where}:{exc.start}: bytes that are not UTF-8; re-save the file as UTF-8")
            continue
        except OSError as exc:
            yield Rejected(where, f"{where}: cannot read: {exc.strerror}")
            continue
        yield _record(f.relative_to(root).as_posix(), text, where)


def iter_records(path: Path, text_column: str = "text", id_column: str = "id") -> Iterator[Item]:
    """Records of a CSV/TSV/JSONL file or a folder, in file order, lazily."""
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_dir():
        return _folder(path)
    suffix = path.suffix.lower()
    if suffix in JSONL:
        return _jsonl(path, text_column, id_column)
    if suffix in TABLES:
        return _table(path, text_column, id_column)
    raise DatasetError(f"{path}: unsupported file type {suffix!r}; use .csv, .tsv, .jsonl or a folder")
