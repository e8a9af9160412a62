"""Structured JSON logs, one object per line, with the request id when there is one; and the request
id of the request being served, which the upstream clients forward to TF Serving."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, TextIO

import orjson
from pythonjsonlogger.orjson import OrjsonFormatter

# Set by the request middleware for the task serving the request (and the tasks it starts); a batched
# upstream call carries the ids of the requests in its batch.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_HEADER = "x-request-id"
MAX_FORWARDED_IDS = 8  # a batched call names at most this many requests (a header stays small)


class JsonFormatter(OrjsonFormatter):
    """python-json-logger's, through orjson: ``ts`` (UTC, ms), ``level``, ``logger``, ``message``, then the
    record's extra fields (``request_id``, ...) and ``exception`` when there is one."""

    converter = staticmethod(time.gmtime)  # UTC
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def __init__(self) -> None:
        super().__init__(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger", "exc_info": "exception"},
            json_default=str,
        )
        self._plain_keys: set[str] = set()  # extra keys info_line() has found a record takes as they are

    _second = -1
    _second_text = ""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        log_data["level"] = str(log_data.get("level", "")).lower()
        return log_data

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self._time_text(record.created, record.msecs)

    def _time_text(self, created: float, msecs: float) -> str:
        # the same text as logging's, with the date formatted once a second rather than once a line;
        # the cache is the formatter's state, so callers hold the handler's lock as emit() does
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._second_text, msecs)

    def format(self, record: logging.LogRecord) -> str:
        """The parent's output, built directly for the common record (a message and extra fields, no
        exception or stack): the access log writes one per request, and the parent's general path
        was half its cost. ``tests/sidecar/test_logs.py`` holds the two equal."""
        if record.exc_info or record.exc_text or record.stack_info or isinstance(record.msg, dict):
            return super().format(record)
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        data = {
            "ts": record.asctime,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.message,
        }
        skip = self._skip_fields
        for key, value in record.__dict__.items():
            if key not in skip and not key.startswith("_"):
                data[key] = value
        return orjson.dumps(data, default=self.json_default, option=orjson.OPT_NON_STR_KEYS).decode()

    def info_line(self, name: str, message: str, created: float, fields: Mapping[str, Any]) -> str | None:
        """format()'s line for the record ``logging.getLogger(name).info(message, extra=fields)`` would
        make at ``created`` (``time.time()``), built without the record; None where that record would not
        be the common one (the caller then logs the ordinary way). Call it under the handler's lock."""
        if self.datefmt is not None:
            return None
        # LogRecord.__init__'s own formula (3.11), so the milliseconds are the ordinary path's; without
        # its "+ 0.0": "%03d" writes the int as it writes that float, and formats an int faster
        msecs = int((created - int(created)) * 1000)
        data = {
            "ts": self._time_text(created, msecs),
            "level": logging.getLevelName(logging.INFO).lower(),
            "logger": name,
            "message": message,
        }
        plain = self._plain_keys
        if not plain.issuperset(fields):  # one C call for the keys seen before, not a loop per line
            skip = self._skip_fields
            for key in fields:
                # a record attribute makes makeRecord raise, a key that is not a str makes format() raise,
                # and format() drops a key with a leading "_": the ordinary path does all of that
                if type(key) is not str or key in skip or key.startswith("_"):
                    return None
            if len(plain) < 1024:
                plain.update(fields)
        data.update(fields)  # as format(): a field named like a leading key replaces its value in place
        return orjson.dumps(data, default=self.json_default, option=orjson.OPT_NON_STR_KEYS).decode()


# The handler configure() installed on the root logger, and its formatter: while the logging setup is
# still exactly that one, access() writes the line itself.
_handler: logging.StreamHandler[TextIO] | None = None
_formatter: JsonFormatter | None = None


def _direct(logger: logging.Logger, handler: logging.StreamHandler[TextIO]) -> bool:
    """Whether ``logger.info`` would reach only ``handler``, unfiltered, through a plain LogRecord."""
    if (
        type(logger) is not logging.Logger  # a subclass may make or handle records its own way
        or logger.filters
        or not logger.isEnabledFor(logging.INFO)  # cached by logging; False when disabled
        or logging.getLogRecordFactory() is not logging.LogRecord
    ):
        return False
    root = logging.root
    node: logging.Logger | None = logger
    while node is not root:  # the loggers a record propagates through on its way to the root
        if node is None or node.handlers or not node.propagate:
            return False
        node = node.parent
    handlers = root.handlers
    return (
        len(handlers) == 1
        and handlers[0] is handler
        and not root.filters
        and not handler.filters
        and handler.level <= logging.INFO
        and handler.formatter is _formatter
    )


def access(logger: logging.Logger, message: str, fields: dict[str, Any]) -> None:
    """``logger.info(message, extra=fields)``, the same bytes at a fraction of the CPU: while logging is
    set up as configure() left it, the line is formatted and written here, as StreamHandler.emit
    would, without a LogRecord or the walk through Logger and Handler (the access log writes one line
    per request). Any other setup (caplog, another handler, a filter, a level above INFO) takes the
    ordinary path."""
    handler, formatter = _handler, _formatter
    if handler is None or formatter is None or type(message) is not str or not _direct(logger, handler):
        logger.info(message, extra=fields)
        return
    created = time.time()
    line: str | None = None
    handler.acquire()  # emit() runs under the lock, and the formatter's date cache relies on it
    try:
        try:
            line = formatter.info_line(logger.name, message, created, fields)
        except Exception:  # e.g. a value orjson refuses: the ordinary path reports it as it would
            line = None
        if line is not None:
            try:
                handler.stream.write(line + handler.terminator)
                handler.flush()
            except RecursionError:  # as emit() does (issue 36272)
                raise
            except Exception:
                handler.handleError(_record(logger, message, fields))
    finally:
        handler.release()
    if line is None:
        logger.info(message, extra=fields)


def _record(logger: logging.Logger, message: str, fields: dict[str, Any]) -> logging.LogRecord:
    # the record Logger._log would have made, for handleError's report (which names the caller)
    fn, lno, func, sinfo = logger.findCaller(False, 3)  # past this function and access()
    return logger.makeRecord(logger.name, logging.INFO, fn, lno, message, (), None, func, fields, sinfo)


def configure(level: str) -> None:
    global _handler, _formatter
    handler = logging.StreamHandler(sys.stdout)
    formatter = JsonFormatter()
    handler.setFormatter(formatter)
    _handler, _formatter = handler, formatter
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access log carries the request id instead
