"""sgtm's log lines: what `logs.line` writes directly is what the logging machinery writes."""

from __future__ import annotations

import io
import json
import logging

import pytest

from sgtm import logs


@pytest.fixture
def own_handler():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.setup("info")
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


def test_a_direct_line_is_the_line_a_record_makes(own_handler: io.StringIO) -> None:
    log = logging.getLogger("sgtm.test_logs")
    fields = {"request_id": "r1", "status": 200, "ms": 1.25, "tags": ["a"], "odd": object}
    logs.line(log, logging.INFO, "request", fields)
    log.info("request", extra=fields)
    logs.line(log, logging.DEBUG, "not at info", {})
    direct, through_logging = [json.loads(x) for x in own_handler.getvalue().splitlines()]
    assert direct.pop("ts")[:19] == through_logging.pop("ts")[:19]
    assert list(direct.items()) == list(through_logging.items())
    assert direct["odd"] == str(object)


def test_another_handler_gets_a_record(
    own_handler: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sgtm.test_logs")
    logs.line(logging.getLogger("sgtm.test_logs"), logging.INFO, "seen", {"n": 1})
    (record,) = [r for r in caplog.records if r.getMessage() == "seen"]
    assert record.__dict__["n"] == 1
    assert json.loads(own_handler.getvalue())["n"] == 1  # and sgtm's own handler its line


def test_timestamps_are_utc_with_milliseconds() -> None:
    assert logs._timestamp(1767225600.25) == "2026-01-01T00:00:00.250Z"
    assert logs._timestamp(1767225601.999) == "2026-01-01T00:00:01.999Z"
