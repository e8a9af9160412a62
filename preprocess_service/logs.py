"""Structured JSON logs, one object per line, with the request id when there is one; and the request
id of the request being served, which the upstream clients forward to TF Serving."""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

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

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        log_data["level"] = str(log_data.get("level", "")).lower()
        return log_data


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
