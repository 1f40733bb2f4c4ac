"""HTTP/1.1 on one keep-alive connection: the wire half of the delivery transport.

A request is encoded once into bytes and written whole; the response is parsed by httptools
(llhttp, Node.js's parser, in C), which frames bodies by Content-Length, chunked encoding or the
connection's end, and knows that 1xx, 204 and 304 answers have none. What llhttp cannot know it
is told here: a HEAD answer has no body whatever its headers say. One request at a time per
connection (no pipelining), so bytes that arrive while no request waits mean the connection can
no longer be trusted and it is closed.

Limits: the status line and headers within MAX_HEADER_BYTES (more is a `too_large` failure); a
body is kept up to the transport's limit, then the answer is complete as far as sgtm cares (a
tag only classifies it) and the connection is closed rather than read to the end. Redirects are
answers like any other: the tag classifies a 3xx; nothing is fetched from a Location a vendor
names.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httptools

MAX_HEADER_BYTES = 64 * 1024

# RFC 9110 tokens (header names, methods); a linear character class, no backtracking.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BREAKS = re.compile(r"[\r\n\0]")
# Set by sgtm from the request itself: a caller's copy would frame the body twice or change the
# connection's fate under it.
_FRAMING = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade", "expect"}
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes


class TransportError(Exception):
    """No usable HTTP response. Always retryable. `kind` says what went wrong:

    - `timeout`: no complete answer within the request's time limit (connect included)
    - `dns`: the host name did not resolve
    - `connect`: the connection was refused or the host unreachable
    - `tls`: the TLS handshake failed (an untrusted or mismatched certificate)
    - `disconnected`: the connection closed or was reset before the whole answer arrived
    - `protocol`: the answer is not HTTP/1.x as the standard writes it
    - `too_large`: the answer's headers exceed MAX_HEADER_BYTES
    - `invalid_request`: the request cannot be written (URL, method or header not allowed)
    """

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


def encode_request(
    method: str, target: str, host: str, headers: dict[str, str], body: bytes
) -> bytes:
    """The request's bytes: request line, headers (Host, User-Agent and Accept unless given;
    Content-Length from the body), blank line, body. Raises TransportError(invalid_request) for
    a method or header name that is not a token, or a value holding CR, LF or NUL."""
    if method not in _GOOD_NAMES:
        _check_token(method, "method")
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    given: set[str] = set()
    for name, value in headers.items():
        if name not in _GOOD_NAMES:
            _check_token(name, "header name")
        lower = name.lower()
        if lower in _FRAMING:
            continue
        given.add(lower)
        lines.append(f"{name}: {value}\r\n")
    if _BREAKS.search("".join(headers.values())):
        raise TransportError("invalid_request", "a header value holds CR, LF or NUL")
    if "host" not in given:
        lines.append(f"Host: {host}\r\n")
    if "user-agent" not in given:
        lines.append("User-Agent: sgtm\r\n")
    if "accept" not in given:
        lines.append("Accept: */*\r\n")
    if body or method in _BODY_METHODS:
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    head = "".join(lines).encode("utf-8")
    return head + body if body else head


_GOOD_NAMES: set[str] = set()  # methods and header names already checked: few, and they repeat


def _check_token(name: str, what: str) -> None:
    if not _TOKEN.fullmatch(name):
        raise TransportError("invalid_request", f"{what} {name[:40]!r} is not a token")
    if len(_GOOD_NAMES) < 4096:
        _GOOD_NAMES.add(name)


class _Stop(Exception):
    """Raised from a parser callback to stop reading: the answer is complete or refused."""


class Connection(asyncio.Protocol):
    """One keep-alive connection; `exchange()` sends a request and waits for its answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_close: Callable[[Connection], None]):
        self.loop = loop
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.idle_since = 0.0
        self.reusable = False  # after an exchange: whether the connection may carry another
        self.got_bytes = False  # during an exchange: whether any answer byte arrived
        self._future: asyncio.Future[Response] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._head = False
        self._limit = 0
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._received = 0
        self._body = bytearray()
        self._framed = True  # the body's end is known (length, chunks, or none at all)
        self._headers_done = False

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they do implement it.
        self.transport = cast(asyncio.Transport, transport)
        self.open = True

    def data_received(self, data: bytes) -> None:
        future = self._future
        if future is None or future.done():
            self.close()  # unsolicited bytes: nothing after them can be trusted
            return
        self.got_bytes = True
        self._received += len(data)
        assert self._parser is not None
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _Stop):
                self._fail("protocol", "callback error")
        except httptools.HttpParserUpgrade:
            self._fail("protocol", "the server switched protocols")
        except httptools.HttpParserError as exc:
            self._fail("protocol", str(exc)[:100])
        else:
            # Checked on bytes received, not on parsed headers: httptools holds a header's
            # value until it ends, so an endless one would otherwise grow unseen.
            if not self._headers_done and self._received > MAX_HEADER_BYTES:
                self._fail("too_large", "response headers")

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        future = self._future
        if future is not None and not future.done():
            if self._headers_done and not self._framed:
                self._complete(reusable=False)  # a body that ends with the connection
            else:
                self._fail("disconnected", type(exc).__name__ if exc else "closed by the server")
        self.on_close(self)

    # -- one request ------------------------------------------------------------------------

    def exchange(
        self, request: bytes, *, head: bool, limit: int, deadline: float
    ) -> asyncio.Future[Response]:
        """Write the request; the future resolves with the answer or fails with TransportError.
        At `deadline` (loop time) it fails with `timeout` and the connection closes."""
        assert self.transport is not None
        future = self.loop.create_future()
        self._future = future
        self._parser = httptools.HttpResponseParser(self)
        self._head = head
        self._limit = limit
        self._received = 0
        self._reset_message()
        self.reusable = False
        self.got_bytes = False
        self._timer = self.loop.call_at(deadline, self._fail, "timeout", "")
        self.transport.write(request)
        return future

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.transport.close()
        self.open = False

    # -- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset_message()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            self._fail("too_large", "response headers")
            raise _Stop
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self._status = self._parser.get_status_code()
        if self._status < 200:
            return  # an interim answer (100, 103): the real one follows
        self._headers_done = True
        if self._head:
            self._complete(reusable=self._parser.should_keep_alive())
            raise _Stop
        framed = self._status in (204, 304)
        for name, value in self._headers:
            lower = name.lower()
            if lower == b"content-length" or (
                lower == b"transfer-encoding" and b"chunked" in value.lower()
            ):
                framed = True
        self._framed = framed

    def on_body(self, body: bytes) -> None:
        room = self._limit - len(self._body)
        if len(body) <= room:
            self._body += body
            return
        self._body += body[:room]
        self._complete(reusable=False)  # cut: the rest is never read, so the socket goes
        raise _Stop

    def on_message_complete(self) -> None:
        if self._status < 200:
            return
        assert self._parser is not None
        self._complete(reusable=self._parser.should_keep_alive())
        raise _Stop

    # -- outcome ----------------------------------------------------------------------------

    def _reset_message(self) -> None:
        self._status = 0
        self._headers = []
        self._header_bytes = 0
        self._body = bytearray()
        self._framed = True
        self._headers_done = False

    def _complete(self, *, reusable: bool) -> None:
        future = self._future
        if future is None or future.done():
            return
        if self._timer is not None:
            self._timer.cancel()
        headers: dict[str, str] = {}
        for raw_name, raw_value in self._headers:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        body = decode_body(bytes(self._body), headers.get("content-encoding", ""), self._limit)
        self.reusable = reusable and self.open
        future.set_result(Response(status=self._status, headers=headers, body=body))
        if not self.reusable:
            self.close()

    def _fail(self, kind: str, detail: str) -> None:
        future = self._future
        if future is not None and not future.done():
            if self._timer is not None:
                self._timer.cancel()
            future.set_exception(TransportError(kind, detail))
        self.reusable = False
        self.close()  # a connection left mid-answer cannot carry another request


def decode_body(body: bytes, encoding: str, limit: int) -> bytes:
    """A gzip or deflate body inflated up to `limit` bytes (a vendor that compresses although
    sgtm never asks); as received when it is not compressed or does not inflate."""
    encoding = encoding.strip().lower()
    if not body or encoding not in ("gzip", "x-gzip", "deflate"):
        return body
    # wbits 47: a gzip or zlib header, detected; raw deflate (a common server bug) as fallback.
    for wbits in (47, -15):
        try:
            return zlib.decompressobj(wbits).decompress(body, limit)
        except zlib.error:
            continue
    return body
