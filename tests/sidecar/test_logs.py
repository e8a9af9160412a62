"""The JSON log formatter's direct path gives exactly the line python-json-logger's general path gives."""

from __future__ import annotations

import io
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from pythonjsonlogger.orjson import OrjsonFormatter

from preprocess_service import logs
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


# logs.access: the line it writes itself is the ordinary path's, and any other setup takes that path.

FIELDS: dict[str, Any] = {
    "request_id": "0123456789abcdef0123456789abcdef",
    "method": "POST",
    "path": "/v1/classify",
    "status": 200,
    "duration_ms": 3.14,
    "texts": 2,
}
ACCESS = logging.getLogger("preprocess_service.access")


@contextmanager
def configured(level: str = "INFO") -> Iterator[io.StringIO]:
    """``logs.configure(level)`` writing to a buffer, then the logging setup as it was. A context
    manager within the test rather than a fixture: pytest swaps its own handlers on the root logger
    between a test's setup, call and teardown, and putting back the setup's would leave them behind."""
    root = logging.getLogger()
    names = ("preprocess_service", "uvicorn", "uvicorn.error", "uvicorn.access")
    loggers = [ACCESS, *(logging.getLogger(n) for n in names)]
    handlers, level_before, handler, formatter = root.handlers[:], root.level, logs._handler, logs._formatter
    saved = [(lg, lg.handlers[:], lg.filters[:], lg.level, lg.propagate, lg.disabled) for lg in loggers]
    try:
        logs.configure(level)
        assert logs._handler is not None
        buf = io.StringIO()
        logs._handler.setStream(buf)
        yield buf
    finally:
        root.handlers[:] = handlers
        root.setLevel(level_before)
        logs._handler, logs._formatter = handler, formatter
        for lg, lg_handlers, filters, lg_level, propagate, disabled in saved:
            lg.handlers[:], lg.filters[:] = lg_handlers, filters
            lg.setLevel(lg_level)
            lg.propagate, lg.disabled = propagate, disabled


EDGES = (
    1_700_000_000.9995,
    1_700_000_000.0004,
    1_700_000_000.999999,
    1_700_000_001.0,
    1_700_000_000.001,
    1_700_000_000.5,
    1_780_086_399.9999,
    1_780_086_399.9999998,  # within a float step (2.4e-7) of the next second
    1_796_049_687.4103215,
)


@pytest.mark.parametrize("created", EDGES)
@pytest.mark.parametrize("fields", [FIELDS, *EXTRAS])
def test_access_writes_the_ordinary_path_s_line(fields: dict[str, Any], created: float) -> None:
    with configured() as buf, pytest.MonkeyPatch.context() as mp:
        mp.setattr(time, "time", lambda: created)  # both paths, the same instant
        ACCESS.info("request", extra=fields)
        ordinary = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        mp.setattr(ACCESS, "makeRecord", None)  # the direct path, not the ordinary one
        logs.access(ACCESS, "request", fields)
        assert buf.getvalue() == ordinary
    assert ordinary.endswith("}\n") and ordinary.count("\n") == 1
    line = orjson.loads(ordinary)
    assert list(line) == ["ts", "level", "logger", "message", *fields]
    assert line["ts"] == logging.Formatter.formatTime(JsonFormatter(), record({}, created=created))[:23] + "Z"


def test_access_takes_the_direct_path_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    with configured() as buf:
        monkeypatch.setattr(ACCESS, "makeRecord", None)  # the ordinary path would fail on it
        logs.access(ACCESS, "request", FIELDS)
        logs.access(ACCESS, "ünïcödé ✓", {"texts": None, "path": "/ö/😀", "error": None})
    first, second = (orjson.loads(line) for line in buf.getvalue().splitlines())
    assert first["request_id"] == FIELDS["request_id"] and first["level"] == "info"
    assert second["message"] == "ünïcödé ✓" and second["path"] == "/ö/😀"
    assert second["texts"] is None and second["error"] is None


def spy(make: Any, made: list[logging.LogRecord]) -> Any:
    """``make`` (a logger's makeRecord), noting each record it makes."""

    def wrapper(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made.append(make(*args, **kwargs))
        return made[-1]

    return wrapper


@pytest.mark.parametrize(
    ("fields", "direct"),
    [
        ({"texts": None, "error": None}, True),
        ({"path": "/ö/😀", "note": "é\u2028\u0000\U0010ffff ß", "list": ["ü", None]}, True),
        ({"level": "shadowed", "ts": "also"}, True),  # replaces the value in place, as format() does
        ({"_private": 1, "status": 200}, False),  # format() drops it: left to the ordinary path
    ],
)
def test_access_non_ascii_none_and_odd_keys(
    fields: dict[str, Any], direct: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    with configured() as buf:
        monkeypatch.setattr(time, "time", lambda: 1_700_000_000.9995)
        ACCESS.info("ünïcödé", extra=fields)
        ordinary = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        made: list[logging.LogRecord] = []
        monkeypatch.setattr(ACCESS, "makeRecord", spy(ACCESS.makeRecord, made))
        logs.access(ACCESS, "ünïcödé", fields)
        assert buf.getvalue() == ordinary
        assert len(made) == (0 if direct else 1)  # a record only on the ordinary path
    assert "_private" not in orjson.loads(ordinary)


def test_access_falls_back_for_a_value_orjson_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    reported: list[logging.LogRecord] = []
    with configured() as buf:
        assert logs._handler is not None
        monkeypatch.setattr(logs._handler, "handleError", reported.append)
        ACCESS.info("request", extra={"lone": "\udcff"})  # not UTF-8: format() raises, emit reports it
        logs.access(ACCESS, "request", {"lone": "\udcff"})
        assert buf.getvalue() == ""
    assert [r.lone for r in reported] == ["\udcff"] * 2  # type: ignore[attr-defined]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_access_falls_back_to_caplog_and_other_handlers(caplog: pytest.LogCaptureFixture) -> None:
    before = logging.getLogger().handlers[:]
    with configured() as buf:
        logging.getLogger().addHandler(caplog.handler)  # configure() took pytest's away
        logs.access(ACCESS, "request", FIELDS)
        (rec,) = [r for r in caplog.records if r.name == ACCESS.name]
        assert rec.getMessage() == "request" and rec.status == 200  # type: ignore[attr-defined]
        assert orjson.loads(buf.getvalue())["status"] == 200  # and the configured handler still writes
        logging.getLogger().removeHandler(caplog.handler)

        extra = Records()
        ACCESS.addHandler(extra)  # on the access logger itself
        logs.access(ACCESS, "request", FIELDS)
        ACCESS.removeHandler(extra)
        logging.getLogger("preprocess_service").addHandler(extra)  # on a logger between it and the root
        logs.access(ACCESS, "request", FIELDS)
        logging.getLogger("preprocess_service").removeHandler(extra)
        assert [r.path for r in extra.records] == ["/v1/classify"] * 2  # type: ignore[attr-defined]
        assert len(buf.getvalue().splitlines()) == 3
    assert logging.getLogger().handlers == before and caplog.handler in before  # pytest's, put back


def test_access_falls_back_when_filtered_or_above_info() -> None:
    with configured("WARNING") as buf:
        logs.access(ACCESS, "request", FIELDS)
        assert buf.getvalue() == ""  # nothing written, as logger.info writes nothing
    with configured() as buf:
        ACCESS.addFilter(lambda r: False)
        logs.access(ACCESS, "request", FIELDS)
        assert buf.getvalue() == ""
    with configured() as buf:
        seen: list[logging.LogRecord] = []

        def note(rec: logging.LogRecord) -> bool:  # a filter that sees every record and passes it
            seen.append(rec)
            return True

        ACCESS.addFilter(note)
        logs.access(ACCESS, "request", FIELDS)
        assert len(seen) == 1 and orjson.loads(buf.getvalue())["path"] == "/v1/classify"
    with configured() as buf:
        assert logs._handler is not None
        logs._handler.addFilter(lambda r: False)
        logs.access(ACCESS, "request", FIELDS)
        assert buf.getvalue() == ""
    with configured() as buf:
        ACCESS.disabled = True
        logs.access(ACCESS, "request", FIELDS)
        assert buf.getvalue() == ""
    with configured() as buf:
        ACCESS.propagate = False
        logs.access(ACCESS, "request", FIELDS)
        assert buf.getvalue() == ""


def test_access_falls_back_for_a_custom_record_factory() -> None:
    default = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        rec = default(*args, **kwargs)
        rec.added = "by the factory"
        return rec

    with configured() as buf:
        logging.setLogRecordFactory(factory)
        try:
            logs.access(ACCESS, "request", FIELDS)
        finally:
            logging.setLogRecordFactory(default)
    assert orjson.loads(buf.getvalue())["added"] == "by the factory"


def test_access_falls_back_for_fields_a_record_refuses() -> None:
    with configured() as buf:
        with pytest.raises(KeyError, match="overwrite"):
            logs.access(ACCESS, "request", {"message": "no"})  # as logger.info raises
        with pytest.raises(KeyError, match="overwrite"):
            logs.access(ACCESS, "request", {"created": 1})
        assert buf.getvalue() == ""


def test_access_reports_a_write_error_as_emit_does(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError("disk full")

    reported: list[logging.LogRecord] = []
    with configured():
        assert logs._handler is not None
        logs._handler.setStream(Broken())
        monkeypatch.setattr(logs._handler, "handleError", reported.append)
        logs.access(ACCESS, "request", FIELDS)
    (rec,) = reported
    assert rec.getMessage() == "request" and rec.path == "/v1/classify"  # type: ignore[attr-defined]
    assert rec.funcName == "test_access_reports_a_write_error_as_emit_does" and rec.filename == "test_logs.py"
