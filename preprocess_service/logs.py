"""Structured JSON logs, one object per line, with the request id when there is one; and the request
id of the request being served, which the upstream clients forward to TF Serving."""

from __future__ import annotations

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


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access log carries the request id instead
