"""Pure ASGI middleware (Starlette's advice: BaseHTTPMiddleware breaks contextvars and costs more)
for the routes Starlette serves (/healthz, /readyz, /metrics). Tagging requests take the raw hit
path (sgtm/app.py, `TaggingApp`), which does the same in one pass with the helpers below
(`request_id`, `stamped`, `log_request`), so the two cannot drift apart.

- AccessLogMiddleware: a request id, the `x-request-id` response header, and one JSON log line per
  request with no PII (no IP, no query string).
- ResponseHeadersMiddleware: every response gets a content type (`text/plain; charset=utf-8`
  unless it has one) and `X-Content-Type-Options: nosniff`, and `Connection: close` when the
  request's body was not read to its end; an exception before the response becomes a plain 500.
- BodyLimitMiddleware: refuses bodies over the limit with 413, by Content-Length or while reading.

Non-HTTP scopes pass straight through.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sgtm import logs
from sgtm.metrics import Metrics

log = logging.getLogger("sgtm.request")

_REQUEST_ID_RE = re.compile(rb"^[A-Za-z0-9._\-]{1,64}$")

# Request ids correlate log lines, they protect nothing: a random prefix per process and a
# counter (32 hex characters, as a uuid4's) is unique across workers and restarts without
# drawing 16 random bytes per request. A forked worker draws its own prefix.
_id_prefix = ""
_id_counter = itertools.count()


def _new_id_prefix() -> None:
    global _id_prefix, _id_counter
    _id_prefix = secrets.token_hex(8)
    _id_counter = itertools.count()


_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)


def request_id(scope: Scope) -> str:
    """The request's own `X-Request-Id` when it is a plain token, else a new id."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if _REQUEST_ID_RE.match(value):
                given: str = value.decode()
                return given
            break
    return f"{_id_prefix}{next(_id_counter):016x}"


def log_request(
    metrics: Metrics, scope: Scope, info: dict[str, Any], status: int, started: float
) -> None:
    """The request's metric and its one access line (no IP, no query string)."""
    container = info.get("container", "-")
    client = info.get("client") or "-"
    metrics.inc("sgtm_requests_total", container=container, client=client, status=str(status))
    logs.line(
        log,
        logging.INFO,
        "request",
        {
            "request_id": info["request_id"],
            "method": scope["method"],
            "host": info.get("host", ""),
            "path": scope["path"],
            "status": status,
            "ms": round((time.perf_counter() - started) * 1000, 2),
            "container": container,
            "client": client,
            "events": info.get("events", 0),
        },
    )


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info: dict[str, Any] = scope.setdefault("sgtm", {})
        info["request_id"] = rid = request_id(scope)
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # No response: the app says why (499, the client went away), else it failed.
            log_request(self.metrics, scope, info, status or info.get("status", 500), started)


PLAIN_TEXT = b"text/plain; charset=utf-8"
_NO_BODY = frozenset((204, 304))


class ResponseHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_read = not has_body(scope)
        started = False

        async def tracking_receive() -> Message:
            nonlocal body_read
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_read = True
            return message

        async def stamping_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = stamped(list(message.get("headers", [])), message["status"], body_read)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, tracking_receive, stamping_send)
        except Exception:
            if not started:
                body = b"internal error\n"
                await stamping_send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-length", str(len(body)).encode())],
                    }
                )
                await send({"type": "http.response.body", "body": body})
            raise  # for the server's log, which then sends nothing more


def stamped(
    headers: list[tuple[bytes, bytes]], status: int, body_read: bool
) -> list[tuple[bytes, bytes]]:
    """`headers` (lower-case names) with what every answer carries, added when missing."""
    names = {name.lower() for name, _ in headers}
    if b"content-type" not in names and status not in _NO_BODY:
        headers.append((b"content-type", PLAIN_TEXT))
    if b"x-content-type-options" not in names:
        headers.append((b"x-content-type-options", b"nosniff"))
    if not body_read and b"connection" not in names:
        # The unread rest of the body would keep the connection busy (a client can trickle it
        # for as long as it likes): answer, then close.
        headers.append((b"connection", b"close"))
    return headers


def has_body(scope: Scope) -> bool:
    """Whether the request announces a body (a non-zero Content-Length, or chunks)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await _too_large(send, self.max_bytes)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, self.max_bytes)


def too_large_body(limit: int) -> bytes:
    return f"request body over the {limit}-byte limit\n".encode()


async def _too_large(send: Send, limit: int) -> None:
    body = too_large_body(limit)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PLAIN_TEXT),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
