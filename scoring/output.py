"""Scored rows out, as JSON Lines or CSV, one row at a time (nothing is held back)."""

from __future__ import annotations

import csv
from typing import IO, Any, Protocol

import orjson

from preprocess_service.postprocess import Answer

FIELDS = ("id", "label", "score", "abstained", "top_k", "model", "version")


def row(ident: str, a: Answer, model: str, version: int) -> dict[str, Any]:
    return {
        "id": ident,
        "label": a.label,
        "score": a.score,
        "abstained": a.abstained,
        "top_k": [{"label": lbl, "score": s} for lbl, s in a.top_k or []],
        "model": model,
        "version": version,
    }


class Writer(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...


class JsonlWriter:
    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh

    def write(self, record: dict[str, Any]) -> None:
        self.fh.write(orjson.dumps(record) + b"\n")


class CsvWriter:
    """``top_k`` is a JSON array in its cell: a CSV cell holds one value."""

    def __init__(self, fh: IO[str]) -> None:
        self.out = csv.writer(fh)
        self.out.writerow(FIELDS)

    def write(self, record: dict[str, Any]) -> None:
        cells = {**record, "top_k": orjson.dumps(record["top_k"]).decode(), "label": record["label"] or ""}
        self.out.writerow([cells[f] for f in FIELDS])
