"""Structured logging: one JSON object per line on stderr.

Fields passed with `extra=` become top-level keys. Nothing here adds an IP address or a query
string; callers keep PII out of what they log.

`line()` is for the lines written per request (the access line, dry-run requests): when sgtm's
own handler is the only one that would see the line, it encodes the object with msgspec and
writes it itself, a few microseconds instead of the tens a LogRecord and its formatting cost.
Any other handler or filter on the way (a test's capture, an embedding application's logging)
gets an ordinary record, with the same fields.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import msgspec

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured duplicate of msg
}


_second = -1
_second_text = ""


def _timestamp(created: float) -> str:
    """`2026-12-07T03:43:09.123Z`; the part up to the second is formatted once a second."""
    global _second, _second_text
    second = int(created)
    if second != _second:
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = second
    return f"{_second_text}.{int((created - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return msgspec.json.encode(out, enc_hook=str).decode()


_encoder = msgspec.json.Encoder(enc_hook=str)
_LEVEL_NAMES = {level: logging.getLevelName(level).lower() for level in (10, 20, 30, 40, 50)}
_own_handler: logging.StreamHandler[Any] | None = None


def line(logger: logging.Logger, level: int, msg: str, fields: dict[str, Any]) -> None:
    """`logger.log(level, msg, extra=fields)`, written directly when only sgtm's handler (from
    `setup`) would see it; the line is the same either way."""
    if not logger.isEnabledFor(level):
        return
    handler = _own_handler
    if handler is None or not _only_own_handler(logger, handler, level):
        logger.log(level, msg, extra=fields)
        return
    created = time.time()
    out = {"ts": _timestamp(created), "level": _LEVEL_NAMES[level], "logger": logger.name}
    out["msg"] = msg
    out.update(fields)
    text = _encoder.encode(out).decode() + "\n"
    with handler.lock:  # type: ignore[union-attr]  # a StreamHandler always has its lock
        handler.stream.write(text)
        handler.stream.flush()


def _only_own_handler(logger: logging.Logger, handler: logging.Handler, level: int) -> bool:
    if level < handler.level or handler.filters:
        return False
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters or node.disabled:
            return False
        if node.handlers:
            return node.parent is None and node.handlers == [handler]  # the root, ours alone
        if not node.propagate:
            return False
        node = node.parent
    return False


def setup(level: str = "info") -> None:
    global _own_handler
    # Records never need the caller's file and line, thread or process names: skip finding them.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Written synchronously: a queue and a writer thread were measured (bench/ingest.py) to add
    # no throughput, only to defer the writes, with the backlog growing in memory under load.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    _own_handler = handler
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Access logs would carry client IPs and query strings: sgtm writes its own request line.
    logging.getLogger("uvicorn.access").disabled = True
