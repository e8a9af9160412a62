"""Structured JSON logs, one object per line, with the request id when there is one; and the request
id of the request being served, which the upstream clients forward to TF Serving."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

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

    _second = -1
    _second_text = ""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        log_data["level"] = str(log_data.get("level", "")).lower()
        return log_data

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        # the same text as logging's, with the date formatted once a second rather than once a line
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._second_text, record.msecs)

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


class TurnBufferedHandler(logging.StreamHandler):
    """A stream handler that writes the lines logged during one turn of the event loop together, at
    the end of the turn: the access log's line per request was a ``write`` system call per request
    (the images run Python unbuffered). Lines logged off the loop's thread, and warnings and errors,
    are written at once (after what is held, so the order is kept); ``flush`` (``logging.shutdown``)
    writes what is held, so nothing waits longer than the turn or is lost at exit."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop() if record.levelno < logging.WARNING else None
        except RuntimeError:  # not on a loop's thread
            loop = None
        if loop is None:
            self._write("".join(self._held) + line if self._held else line)
            self._held.clear()
            return
        if not self._held:
            loop.call_soon(self.flush)
        self._held.append(line)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            super().flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": "log write failed"}))

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._held:
                text = "".join(self._held)
                self._held.clear()
                self._write(text)
            else:
                super().flush()


def configure(level: str) -> None:
    handler = TurnBufferedHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access log carries the request id instead
