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
its answers fills the socket: the transport pauses writing. From then until its answers are all
sent, the client must take `min_write_rate` bytes a second, measured over each `write_timeout`
(a reader of a trickle resumes writing now and then, so a deadline that restarted on every resume
would never end); below it the connection is aborted (requests answered were processed; those
waiting are not, and get no answer), with a reset that frees what the kernel holds for it too.
The same holds for a connection closed with answer bytes the client does not take. A refusal
(408, 431, invalid HTTP) of a request that follows others still being answered waits for them:
they are answered, then the refusal. A refusal closes as nginx does (a lingering close): the write
side is shut, then what the client still sends is read and dropped for a short bounded while, as
closing with its bytes unread would send a reset, which can destroy the answer unread. Responses
made here are plain text with `nosniff`, like the app's.

The class is named by its import path in uvicorn's options, so `--workers` processes load it too;
each process reads the limits from the same environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import http
import logging
import socket
import struct
import termios
from typing import Any, cast

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

# A refusal's lingering close: what the client sends after it is read and dropped for at most
# this long and this much (a browser request's headers and body are within it), then the close.
LINGER_SECONDS = 2.0
LINGER_BYTES = 256 * 1024


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


class _Counted:
    """The connection's transport, counting the bytes written to it, to tell how many of them
    the client has taken."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)
        self.transport.write(data)

    def sent(self) -> int:
        """Bytes the client acknowledged: written, less those in our buffer and in the kernel's.
        (The kernel takes bytes in bursts of a third of its buffer, which grows to megabytes: what
        it took says little of how fast the client reads.)"""
        return self.written - self.transport.get_write_buffer_size() - _unacknowledged(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class SgtmHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = _limits()
        self.header_timeout = limits.header_timeout
        self.max_header_bytes = limits.max_header_bytes
        self.write_timeout = limits.write_timeout
        self.min_write_rate = limits.min_write_rate
        self.max_pipelined = limits.max_pipelined
        self.header_timer: asyncio.TimerHandle | None = None
        self.write_timer: asyncio.TimerHandle | None = None
        self.write_mark = 0  # bytes sent when the current write period began
        self.linger_timer: asyncio.TimerHandle | None = None
        self.lingering: int | None = None  # bytes still to drop, once a refusal is written
        self.counted: _Counted = None  # type: ignore[assignment]
        self.request_begun = False  # from a request's first byte until its headers are complete
        self.header_bytes = 0  # of the request begun, counted per read (slice) it spans
        self.unparsed = b""  # the rest of a read, while reading stops for requests waiting
        self.refusal: bytes | None = None  # an answer and close, once the requests before it are;
        # set from the refusal on: nothing after it is parsed
        self.answering: RequestResponseCycle | None = None  # the request whose app runs (or ran)
        self.reading: _Flow = None  # type: ignore[assignment]

    # -- connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = self.reading = _Flow(transport)
        # The answers (uvicorn's request cycles take the protocol's transport) are counted.
        self.counted = _Counted(transport)
        self.transport = cast(asyncio.Transport, self.counted)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        for timer in (self.write_timer, self.linger_timer):
            if timer is not None:
                timer.cancel()
        self.write_timer = self.linger_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.lingering is not None:  # after a refusal: dropped, up to a bound
            self.lingering -= len(data)
            if self.lingering < 0:
                self._close()
            return
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
            self._watch_writes()
        elif self.refusal is not None:
            if self._idle() and self.lingering is None:
                self.transport.write(self.refusal)
                self._linger()
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
        self._watch_writes()

    def shutdown(self) -> None:
        super().shutdown()
        self._watch_writes()

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
        self.refusal = _plain_response(status, text)
        if self._idle():
            self.transport.write(self.refusal)
            self._linger()
        metrics = _metrics(self.app_state)
        if metrics is not None:
            metrics.inc("sgtm_dropped_total", reason=reason)
            metrics.inc("sgtm_requests_total", container="-", client="-", status=str(status))
        log.info("request refused", extra={"status": status, "reason": reason})

    def _linger(self) -> None:
        """Close after a refusal as nginx does: the answer, then the write side shut (a FIN),
        then the client's bytes read and dropped until it closes too, for at most LINGER_SECONDS
        and LINGER_BYTES. Closing with bytes of the client unread makes the kernel send a reset,
        which can destroy the answer before the client reads it."""
        self._unset_keepalive_if_required()
        if not self.transport.can_write_eof():
            self._close()
            return
        self.transport.write_eof()  # sent once the bytes before it are
        self.lingering = LINGER_BYTES
        self.linger_timer = self.loop.call_later(LINGER_SECONDS, self._close)
        self.reading.release()
        self._watch_writes()  # a client not taking the answer is bound by the write rate still

    # -- the write rate -----------------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch_writes()

    # (resume_writing is uvicorn's: a resume does not end the period measured, or a client taking
    # just enough to resume writing now and then would hold its connection at a trickle forever.)

    def _close(self) -> None:
        self.transport.close()
        self._watch_writes()

    def _watch_writes(self) -> None:
        """Once answers wait to be sent (writing paused, or a closing transport's last ones),
        measure how fast the client takes them, over periods of `write_timeout`. A closing
        transport waits for its buffer to be sent, forever if the client never reads: this
        bounds that wait too."""
        if self.write_timer is None and self.transport.get_write_buffer_size():
            self.write_mark = self.counted.sent()
            self.write_timer = self.loop.call_later(self.write_timeout, self._write_period_end)

    def _write_period_end(self) -> None:
        self.write_timer = None
        if not self.transport.get_write_buffer_size():
            return  # the client caught up; the next pause begins a new period
        if self.counted.sent() - self.write_mark >= self.min_write_rate * self.write_timeout:
            self._watch_writes()  # slow, but not too slow: measured again
            return
        if self.answering is not None:
            # uvicorn learns of the disconnect a loop turn after the abort, and the abort lets
            # a send waiting for the client go on first: it must drop its answer, not write it
            # to a closed transport (a traceback).
            self.answering.disconnected = True
        # Reset rather than close (SO_LINGER 0): the kernel drops the answers it holds for this
        # client at once instead of resending them until it gives up on it.
        with contextlib.suppress(OSError, AttributeError):
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()  # close() would wait for the unsent answers
        metrics = _metrics(self.app_state)
        if metrics is not None:
            metrics.inc("sgtm_dropped_total", reason="write_timeout")
        log.info("connection closed", extra={"reason": "write_timeout"})


def _unacknowledged(transport: _Counted) -> int:
    """Bytes the kernel holds for a socket that its peer has not acknowledged (SIOCOUTQ, Linux);
    0 where that cannot be asked, as if the kernel held none."""
    try:
        fd = transport.get_extra_info("socket").fileno()
        queued = fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0")  # SIOCOUTQ on a socket
        return int(struct.unpack("i", queued)[0])
    except (OSError, AttributeError, ValueError):
        return 0


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
