"""The JSON log formatter's direct path gives exactly the line python-json-logger's general path gives."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import pytest
from pythonjsonlogger.orjson import OrjsonFormatter

from preprocess_service.logs import JsonFormatter


class Opaque:
    def __str__(self) -> str:
        return "opaque!"


EXTRAS: list[dict[str, Any]] = [
    {},
    {
        "request_id": "abc",
        "method": "POST",
        "path": "/v1/classify",
        "status": 200,
        "duration_ms": 1.25,
        "texts": 3,
    },
    {"texts": None, "nested": {"a": [1, 2.5, None]}, "opaque": Opaque(), "unicode": "é\u2028😀"},
    {"version": 7, "error": "UpstreamTimeout: late"},
]


def record(
    extra: dict[str, Any], msg: Any = "request", args: Any = None, created: float | None = None
) -> logging.LogRecord:
    logger = logging.getLogger("preprocess_service.access")
    rec = logger.makeRecord(logger.name, logging.INFO, __file__, 1, msg, args, None, extra=extra)
    if created is not None:
        rec.created = created
        rec.msecs = (created - int(created)) * 1000
    return rec


@pytest.mark.parametrize("extra", EXTRAS)
def test_direct_path_equals_the_general_one(extra: dict[str, Any]) -> None:
    fmt = JsonFormatter()
    for msg, args in (("request", None), ("answered %d texts in %s", (3, "1 ms"))):
        rec = record(extra, msg, args)
        direct = fmt.format(rec)
        general = OrjsonFormatter.format(fmt, record(extra, msg, args, created=rec.created))
        assert direct == general
        line = orjson.loads(direct)
        assert list(line)[:4] == ["ts", "level", "logger", "message"] and line["level"] == "info"


def test_time_is_logging_s_own_text_across_seconds() -> None:
    fmt = JsonFormatter()
    for created in (
        1_780_000_000.0,
        1_780_000_000.999,
        1_780_000_001.0005,
        1_780_000_000.5,
        1_780_086_400.25,
    ):
        rec = record({}, created=created)
        assert fmt.formatTime(rec) == logging.Formatter.formatTime(fmt, rec)
    assert fmt.formatTime(record({}, created=1_780_000_000.5)) == "2026-05-28T20:26:40.500Z"


def test_records_with_an_exception_or_a_dict_message_take_the_general_path() -> None:
    fmt = JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        rec = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = orjson.loads(fmt.format(rec))
    assert line["level"] == "error" and "ValueError: boom" in line["exception"]
    line = orjson.loads(fmt.format(record({}, msg={"event": "d", "n": 1})))
    assert line["event"] == "d" and line["n"] == 1
