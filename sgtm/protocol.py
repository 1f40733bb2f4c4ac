"""The HTTP/1.1 protocol `sgtm serve` gives uvicorn: uvicorn's httptools protocol plus the
deadlines and caps it lacks on what a client makes a connection hold.

uvicorn times out idle keep-alive connections, but nothing else before a request reaches the app:
a client that connects and sends nothing, or a header byte every few seconds, holds its connection
forever, and httptools keeps any amount of header bytes in memory. Here a timer starts when a
connection opens (or when a read holding the first bytes of a following request ends without its
complete headers: most requests never need one) and stops when the headers are complete; when it
fires the client gets 408 (or, if it sent nothing, just a close). A request's header bytes past
the size limit get 431. The body deadline is the app's (sgtm/app.py): it is where the body is read.

Pipelining (requests sent without waiting for answers) is where a client makes a connection hold
the most. uvicorn queues a request that arrives while another is answered and pauses reading, but
resumes on every answer, and parses the whole of every read (up to 256 KiB: thousands of small
requests). Here a read is parsed in slices of `SLICE` bytes, and once `max_pipelined` requests
wait (or a waiting request's body passes uvicorn's 64 KiB mark) the rest of the read is kept
unparsed and reading stays paused until the queue drains. A client that sends and never reads
its answers fills the socket: the transport pauses writing, and if it does not resume within
`write_timeout` the connection is aborted (requests answered were processed; those waiting are
not, and get no answer). The same deadline holds for a connection closed with answer bytes the
client never takes. A refusal (408, 431, invalid HTTP) of a request that follows others still
being answered waits for them: they are answered, then the refusal, then the connection closes.
Responses made here are plain text with `nosniff`, like the app's.

The class is named by its import path in uvicorn's options, so `--workers` processes load it too;
each process reads the limits from the same environment.
"""

from __future__ import annotations

import asyncio
import functools
import http
import logging
from typing import Any

from uvicorn.protocols.http.flow_control import (
    HIGH_WATER_LIMIT,
    FlowControl,
    service_unavailable,
)
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from sgtm.limits import ServerLimits, limits_from_env
from sgtm.metrics import Metrics

log = logging.getLogger("sgtm.request")

# Reads longer than this are parsed a slice at a time, so that reading can stop between slices.
# It bounds what one slice can add to a full queue (a few hundred minimal requests at worst) and
# how far a request's header count can be over (the count includes the bytes before it in the
# slice it began in); a read of one request, nearly every read, is parsed whole.
SLICE = 4096


@functools.cache
def _limits() -> ServerLimits:
    return limits_from_env()


class _Flow(FlowControl):
    """uvicorn's flow control with reading that can be held paused: uvicorn resumes reading on
    every answer and every body read, which would let a pipelining client queue without end."""

    held = False

    def hold(self) -> None:
        self.held = True
        self.pause_reading()

    def release(self) -> None:
        self.held = False
        self.resume_reading()

    def resume_reading(self) -> None:
        if not self.held:
            super().resume_reading()


class SgtmHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = _limits()
        self.header_timeout = limits.header_timeout
        self.max_header_bytes = limits.max_header_bytes
        self.write_timeout = limits.write_timeout
        self.max_pipelined = limits.max_pipelined
        self.header_timer: asyncio.TimerHandle | None = None
        self.write_timer: asyncio.TimerHandle | None = None
        self.request_begun = False  # from a request's first byte until its headers are complete
        self.header_bytes = 0  # of the request begun, counted per read (slice) it spans
        self.unparsed = b""  # the rest of a read, while reading stops for requests waiting
        self.refusal: bytes | None = None  # an answer and close, once the requests before it are
        self.answering: RequestResponseCycle | None = None  # the request whose app runs (or ran)
        self.reading: _Flow = None  # type: ignore[assignment]

    # -- connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = self.reading = _Flow(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.write_timer is not None:
            self.write_timer.cancel()
            self.write_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refusal is not None:
            return  # the connection ends once the requests before the refused one are answered
        if self.unparsed:  # (reading is paused meanwhile; a read already under way joins them)
            self.unparsed += data
            return
        if len(data) > SLICE:
            self._parse_slices(data)
        else:
            super().data_received(data)
            if self.request_begun:
                self._count(len(data))
        if self.transport.is_closing() or self.refusal is not None:
            return
        if self.pipeline and self._backlogged():
            # Until the queue drains (on_response_complete) this client waits on us, not we on
            # it: no header deadline meanwhile.
            self.reading.hold()
            self._disarm()
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

    def _parse_slices(self, data: bytes) -> None:
        """Parse a long read a slice at a time, keeping the rest once enough requests wait."""
        view = memoryview(data)
        for start in range(0, len(data), SLICE):
            if self.transport.is_closing() or self.refusal is not None:
                return
            if self.pipeline and self._backlogged():
                self.unparsed = bytes(view[start:])
                return
            piece = view[start : start + SLICE]
            super().data_received(piece)  # type: ignore[arg-type]  # httptools takes any buffer
            if self.request_begun:
                self._count(len(piece))

    def _count(self, size: int) -> None:
        """Count a read (or slice) that ended inside a request's headers, all of it: a body never
        counts, and the limit holds per request to within the slice the request began in."""
        if self.refusal is None and not self.transport.is_closing():
            self.header_bytes += size
            if self.header_bytes > self.max_header_bytes:
                self._refuse(431, "header_too_large", "request headers too large\n")

    def _idle(self) -> bool:
        """No request is being answered or waiting to be (the newest one has its answer)."""
        return self.cycle is None or self.cycle.response_complete

    def _backlogged(self) -> bool:
        """As many requests wait as a connection may queue, or the newest waiting one holds
        more body than uvicorn lets a request buffer before its app reads it."""
        waiting = len(self.pipeline)
        return waiting > 0 and (
            waiting >= self.max_pipelined or len(self.cycle.body) > HIGH_WATER_LIMIT
        )

    # -- parser callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.request_begun = True  # the deadline is armed after this read (data_received)
        self.header_bytes = 0

    def on_headers_complete(self) -> None:
        self._disarm()
        self.request_begun = False
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # starts the next waiting request, if any
        if self.transport.is_closing():
            self._watch_close()
        elif self.refusal is not None:
            if self._idle():
                self._unset_keepalive_if_required()
                self.transport.write(self.refusal)
                self._close()
        elif self.reading.held and not self._backlogged():
            self.reading.release()
            unparsed, self.unparsed = self.unparsed, b""
            if unparsed:
                self.data_received(unparsed)  # (which drops the keep-alive timer armed above)
            elif self.request_begun and self.header_timer is None:
                self._arm()  # a request's headers were incomplete when reading stopped

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self.answering = cycle
        # uvicorn swaps the app for its 503 when `limit_concurrency` is reached: use ours.
        super()._start_asgi_task(cycle, _unavailable if app is service_unavailable else app)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to a request httptools could not parse.
        self._refuse(400, "invalid_http", "invalid HTTP request\n")

    def timeout_keep_alive_handler(self) -> None:
        super().timeout_keep_alive_handler()
        self._watch_close()

    def shutdown(self) -> None:
        super().shutdown()
        self._watch_close()

    # -- the header deadline ------------------------------------------------------------------

    def _arm(self) -> None:
        self.header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_late(self) -> None:
        self.header_timer = None
        if self.transport.is_closing() or self.refusal is not None:
            return
        if self.request_begun:
            self._refuse(408, "header_timeout", "request headers not received in time\n")
        elif self._idle():
            self._close()  # opened and never used: nothing to answer

    def _refuse(self, status: int, reason: str, text: str) -> None:
        """Answer `status` and close, after the requests before this one are answered; this one
        never reaches the app, and nothing more is read."""
        if self.refusal is not None or self.transport.is_closing():
            return  # refused already (an invalid request may be over the size limit too)
        self._disarm()
        self.reading.hold()
        self.unparsed = b""
        answer = _plain_response(status, text)
        if self._idle():
            self.transport.write(answer)
            self._close()
        else:
            self.refusal = answer
        metrics = _metrics(self.app_state)
        if metrics is not None:
            metrics.inc("sgtm_dropped_total", reason=reason)
            metrics.inc("sgtm_requests_total", container="-", client="-", status=str(status))
        log.info("request refused", extra={"status": status, "reason": reason})

    # -- the write deadline -------------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.write_timer is None:
            self.write_timer = self.loop.call_later(self.write_timeout, self._write_late)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.write_timer is not None:
            self.write_timer.cancel()
            self.write_timer = None
        self._watch_close()

    def _close(self) -> None:
        self.transport.close()
        self._watch_close()

    def _watch_close(self) -> None:
        """A closing transport waits for its buffer to be sent, forever if the client never reads:
        the write deadline bounds that wait too."""
        if (
            self.write_timer is None
            and self.transport.is_closing()
            and self.transport.get_write_buffer_size()
        ):
            self.write_timer = self.loop.call_later(self.write_timeout, self._write_late)

    def _write_late(self) -> None:
        self.write_timer = None
        if self.answering is not None:
            # uvicorn learns of the disconnect a loop turn after the abort, and the abort lets
            # a send waiting for the client go on first: it must drop its answer, not write it
            # to a closed transport (a traceback).
            self.answering.disconnected = True
        self.transport.abort()  # close() would wait for the unsent answers
        metrics = _metrics(self.app_state)
        if metrics is not None:
            metrics.inc("sgtm_dropped_total", reason="write_timeout")
        log.info("connection closed", extra={"reason": "write_timeout"})


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
