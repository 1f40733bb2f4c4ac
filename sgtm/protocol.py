"""The HTTP/1.1 protocol `sgtm serve` gives uvicorn: uvicorn's httptools protocol plus the header
deadline and header size limit it lacks.

uvicorn times out idle keep-alive connections, but nothing else before a request reaches the app:
a client that connects and sends nothing, or a header byte every few seconds, holds its connection
forever, and httptools keeps any amount of header bytes in memory. Here a timer starts when a
connection opens (or when a read holding the first bytes of a following request ends without its
complete headers: most requests never need one) and stops when the headers are complete; when it
fires the client gets 408 (or, if it sent nothing, just a close). Headers growing past the size
limit get 431. The body deadline is the app's (sgtm/app.py): it is
where the body is read. Responses made here are plain text with `nosniff`, like the app's.

The class is named by its import path in uvicorn's options, so `--workers` processes load it too;
each process reads the limits from the same environment.
"""

from __future__ import annotations

import asyncio
import functools
import http
import logging
from typing import Any

from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from sgtm.limits import ServerLimits, limits_from_env
from sgtm.metrics import Metrics

log = logging.getLogger("sgtm.request")


@functools.cache
def _limits() -> ServerLimits:
    return limits_from_env()


class SgtmHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = _limits()
        self.header_timeout = limits.header_timeout
        self.max_header_bytes = limits.max_header_bytes
        self.header_timer: asyncio.TimerHandle | None = None
        self.awaiting_headers = True  # from connection or response until the next headers
        self.request_begun = False  # a byte of the next request arrived
        self.header_bytes = 0

    # -- connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        counted = self.awaiting_headers
        super().data_received(data)
        if self.transport.is_closing():
            return
        # Bytes are counted only for chunks that arrived while headers were awaited and did not
        # complete them, so a body never counts; the limit holds to within one read.
        if counted and self.awaiting_headers:
            self.header_bytes += len(data)
            if self.header_bytes > self.max_header_bytes:
                self._refuse(431, "header_too_large", "request headers too large\n")
                return
        if self.header_timer is not None:
            return
        if self.request_begun:
            # A request began in these bytes or earlier and its headers are not complete: the
            # deadline runs from here. Armed after the read rather than at the request's first
            # byte (microseconds earlier), so that headers arriving in one read, nearly all of
            # them, cost no timer.
            self._arm()
        elif (self.cycle is None or self.cycle.response_complete) and (
            self.timeout_keep_alive_task is None
        ):
            # Bytes that began no request (blank lines may precede a request line): uvicorn
            # dropped its keep-alive timer on them, so the header deadline takes over.
            self._arm()

    # -- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.awaiting_headers = True
        self.request_begun = True  # the deadline is armed after this read (data_received)

    def on_headers_complete(self) -> None:
        self._disarm()
        self.awaiting_headers = False
        self.request_begun = False
        self.header_bytes = 0
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # uvicorn swaps the app for its 503 when `limit_concurrency` is reached: use ours.
        super()._start_asgi_task(cycle, _unavailable if app is service_unavailable else app)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to a request httptools could not parse.
        self._refuse(400, "invalid_http", "invalid HTTP request\n")

    # -- the header deadline ------------------------------------------------------------------

    def _arm(self) -> None:
        self.header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_late(self) -> None:
        self.header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request stalls behind one still being answered: finish that one,
            # then close instead of waiting for the rest.
            self.cycle.keep_alive = False
        elif self.request_begun:
            self._refuse(408, "header_timeout", "request headers not received in time\n")
        else:
            self.transport.close()  # opened and never used: nothing to answer

    def _refuse(self, status: int, reason: str, text: str) -> None:
        """Answer `status` and close; the request never reaches the app."""
        self._disarm()
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_plain_response(status, text))
        self.transport.close()
        metrics = _metrics(self.app_state)
        if metrics is not None:
            metrics.inc("sgtm_dropped_total", reason=reason)
            metrics.inc("sgtm_requests_total", container="-", client="-", status=str(status))
        log.info("request refused", extra={"status": status, "reason": reason})


def _metrics(app_state: Any) -> Metrics | None:
    """The app's counters, which its lifespan puts in the state uvicorn shares with the protocol
    (None before the lifespan ran, or for an app that is not sgtm's)."""
    found = app_state.get("sgtm.metrics") if isinstance(app_state, dict) else None
    return found if isinstance(found, Metrics) else None


def _plain_response(status: int, text: str) -> bytes:
    body = text.encode()
    return (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
        "content-type: text/plain; charset=utf-8\r\n"
        "x-content-type-options: nosniff\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode() + body


async def _unavailable(scope: Any, receive: Any, send: Any) -> None:
    body = b"over the connection limit\n"
    metrics = _metrics(scope.get("state"))
    if metrics is not None:
        metrics.inc("sgtm_dropped_total", reason="connection_limit")
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"x-content-type-options", b"nosniff"),
                (b"retry-after", b"1"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
