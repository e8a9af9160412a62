"""The JSON log formatter's direct path gives exactly the line python-json-logger's general path gives."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import orjson
import pytest
from pythonjsonlogger.orjson import OrjsonFormatter

from preprocess_service.logs import JsonFormatter, TurnBufferedHandler


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


class CountingStream:
    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass


def handler_logger(name: str) -> tuple[logging.Logger, CountingStream, TurnBufferedHandler]:
    stream = CountingStream()
    handler = TurnBufferedHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream, handler


def test_lines_logged_in_one_loop_turn_are_written_together_at_its_end() -> None:
    logger, stream, _ = handler_logger("turn.buffered")

    async def main() -> list[str]:
        for i in range(5):
            logger.info("request %d", i)
        held = list(stream.writes)  # nothing written yet within the turn
        await asyncio.sleep(0)
        logger.info("next turn")
        await asyncio.sleep(0)
        return held

    assert asyncio.run(main()) == []
    assert stream.writes == ["".join(f"INFO request {i}\n" for i in range(5)), "INFO next turn\n"]


def test_warnings_and_lines_off_the_loop_are_written_at_once_after_what_is_held() -> None:
    logger, stream, handler = handler_logger("turn.urgent")

    async def main() -> None:
        logger.info("a")
        logger.error("b")  # written at once, after the held line, in order
        assert stream.writes == ["INFO a\nERROR b\n"]
        logger.info("c")

    asyncio.run(main())
    logger.info("d")  # no loop on this thread now: at once
    assert stream.writes[-1] == "INFO d\n" and "".join(stream.writes) == "INFO a\nERROR b\nINFO c\nINFO d\n"

    async def held_at_exit() -> None:
        logger.info("e")

    loop = asyncio.new_event_loop()
    loop.run_until_complete(held_at_exit())  # the scheduled write may not run before the loop closes
    loop.close()
    handler.flush()  # what logging.shutdown does at exit
    assert "".join(stream.writes).endswith("INFO e\n")
