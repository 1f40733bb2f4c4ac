"""HTTP transport for deliveries: keep-alive HTTP/1.1 connection pools, one per destination.

sgtm's own client (sgtm/delivery/http1.py on the wire), not aiohttp: a send costs the event loop
a fraction of what aiohttp's does, and the event loop is what a worker that also ingests hits
runs short of (bench/transport.py; figures and the decision in bench/README.md). It does what
sending to vendors needs and nothing else:

- a pool of keep-alive connections per scheme, host and port, at most `per_host` open to one
  destination and `connections` in all; a send waits for a free one within its time limit, so a
  slow vendor holds only its own connections;
- one time limit per send covering connect, TLS, writing and the whole answer;
- TLS through the ssl module with certificate and host name checks (the system's CA store, or
  SSL_CERT_FILE / SSL_CERT_DIR);
- answers cut at `max_response` bytes; redirects returned to the tag as answers, never followed;
- a keep-alive connection the server closed while idle is noticed, and a request that finds its
  reused connection closed before any answer byte goes once more on a new connection (the same
  request, so the same idempotency key).

Tags never see the transport: they build `Outbound`s and classify responses.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import socket
import ssl
from urllib.parse import quote, unquote, urlsplit

from sgtm.delivery.http1 import Connection, Response, TransportError, encode_request

__all__ = ["MAX_RESPONSE_BYTES", "Response", "Transport", "TransportError"]

MAX_RESPONSE_BYTES = 1024 * 1024  # a vendor response larger than this is cut: we only classify it
IDLE_TIMEOUT = 15.0  # an idle keep-alive connection older than this is closed, not reused

Origin = tuple[str, str, int]  # scheme, host, port


class _Pool:
    """The connections to one destination."""

    __slots__ = ("idle", "open", "waiters")

    def __init__(self) -> None:
        self.idle: collections.deque[Connection] = collections.deque()
        self.open = 0  # connected or connecting, idle or busy
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()


class Transport:
    def __init__(
        self,
        *,
        connections: int = 256,
        per_host: int = 64,
        max_response: int = MAX_RESPONSE_BYTES,
        idle_timeout: float = IDLE_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connections = connections
        self.per_host = per_host
        self.max_response = max_response
        self.idle_timeout = idle_timeout
        self._ssl = ssl_context
        self._pools: dict[Origin, _Pool] = {}
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._all: set[Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def open_connections(self) -> int:
        """Connections open or opening, idle or busy."""
        return self._open

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._ssl is None:
            # Loading the CA store takes milliseconds: once, off the event loop.
            self._ssl = await asyncio.to_thread(ssl.create_default_context)

    async def close(self) -> None:
        for connection in list(self._all):
            connection.close()
        self._all.clear()
        for pool in self._pools.values():
            pool.idle.clear()
        self._loop = None

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes, time_limit: float
    ) -> Response:
        loop = self._loop
        assert loop is not None, "transport not started"
        origin, host_header, target, auth = split_url(url)
        if auth is not None and not any(k.lower() == "authorization" for k in headers):
            headers = {**headers, "Authorization": auth}
        request = encode_request(method, target, host_header, headers, body)
        deadline = loop.time() + time_limit
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _Pool()
        for attempt in (1, 2):
            connection, reused = await self._acquire(origin, pool, deadline, fresh=attempt == 2)
            try:
                response = await connection.exchange(
                    request, head=method == "HEAD", limit=self.max_response, deadline=deadline
                )
            except TransportError as exc:
                stale = reused and exc.kind == "disconnected" and not connection.got_bytes
                if attempt == 1 and stale:
                    continue
                raise
            except BaseException:
                connection.close()  # cancelled mid-answer: the connection cannot be reused
                raise
            if connection.reusable and connection.open:
                self._idle(pool, connection)
            return response
        raise AssertionError("unreachable")

    # -- connections ----------------------------------------------------------------------

    async def _acquire(
        self, origin: Origin, pool: _Pool, deadline: float, *, fresh: bool = False
    ) -> tuple[Connection, bool]:
        """An idle connection to `origin` (reused: True) or a new one, within the deadline;
        `fresh`: a new one (the server just closed one of its idle connections under us)."""
        assert self._loop is not None
        while True:
            now = self._loop.time()
            while pool.idle and not fresh:
                connection = pool.idle.pop()  # the most recently used: the likeliest alive
                if connection.open and now - connection.idle_since < self.idle_timeout:
                    return connection, True
                connection.close()
            if pool.open < self.per_host:
                if self._open >= self.connections:
                    self._close_an_idle_connection()
                if self._open < self.connections:
                    return await self._connect(origin, pool, deadline), False
            # At a limit: wait for a connection of this destination to come back (per host),
            # or for any to close (in all).
            waiters = pool.waiters if pool.open >= self.per_host else self._waiters
            await self._wait(waiters, deadline)

    async def _connect(self, origin: Origin, pool: _Pool, deadline: float) -> Connection:
        assert self._loop is not None
        loop = self._loop
        scheme, host, port = origin
        pool.open += 1
        self._open += 1

        def closed(connection: Connection) -> None:
            self._all.discard(connection)
            if connection in pool.idle:
                pool.idle.remove(connection)
            pool.open -= 1
            self._open -= 1
            _wake(pool.waiters)
            _wake(self._waiters)

        tls = self._ssl if scheme == "https" else None
        try:
            async with asyncio.timeout_at(deadline):
                _, connection = await loop.create_connection(
                    lambda: Connection(loop, closed),
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                )
        except BaseException as exc:
            pool.open -= 1
            self._open -= 1
            _wake(pool.waiters)
            _wake(self._waiters)
            if isinstance(exc, TimeoutError):
                raise TransportError("timeout", "connecting") from None
            if isinstance(exc, ssl.SSLError | ssl.CertificateError):
                raise TransportError("tls", type(exc).__name__) from None
            if isinstance(exc, socket.gaierror):
                raise TransportError("dns", host) from None
            if isinstance(exc, OSError):
                raise TransportError("connect", type(exc).__name__) from None
            raise
        self._all.add(connection)
        return connection

    def _idle(self, pool: _Pool, connection: Connection) -> None:
        assert self._loop is not None
        now = self._loop.time()
        connection.idle_since = now
        pool.idle.append(connection)
        while pool.idle and now - pool.idle[0].idle_since >= self.idle_timeout:
            pool.idle.popleft().close()
        _wake(pool.waiters)
        if self._waiters:
            _wake(self._waiters)  # a send held by the overall limit may close this one

    def _close_an_idle_connection(self) -> None:
        """Make room under the overall limit: close the longest idle connection of any pool."""
        oldest: Connection | None = None
        for pool in self._pools.values():
            if pool.idle and (oldest is None or pool.idle[0].idle_since < oldest.idle_since):
                oldest = pool.idle[0]
        if oldest is not None:
            oldest.close()  # counted out, and a waiter woken, once the close completes

    async def _wait(
        self, waiters: collections.deque[asyncio.Future[None]], deadline: float
    ) -> None:
        assert self._loop is not None
        waiter = self._loop.create_future()
        waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except TimeoutError:
            raise TransportError("timeout", "waiting for a connection") from None
        finally:
            if waiter in waiters:
                waiters.remove(waiter)


def _wake(waiters: collections.deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return


def split_url(url: str) -> tuple[Origin, str, str, str | None]:
    """(scheme, host, port), the Host header, the request target as sent, and a Basic
    Authorization value when the URL carries user info.

    The target is the URL's own bytes when they are valid on the wire, so a vendor that signs
    its URLs (retail media event URLs) gets every escape as written (`%7e` stays `%7e`); a URL
    with spaces or non-ASCII text is percent-encoded as UTF-8. The fragment is never sent."""
    scheme_sep = url.find("://")
    start = scheme_sep + 3
    cut = len(url)
    for mark in "/?#":
        index = url.find(mark, start)
        if index != -1 and index < cut:
            cut = index
    if scheme_sep == -1:
        raise TransportError("invalid_request", "URL must be http(s)://host/...")
    prefix = url[:cut]
    where = _origins.get(prefix)
    if where is None:
        where = _origin(prefix)
        if len(_origins) >= 1024:  # lanes send to few origins; a bound all the same
            _origins.clear()
        _origins[prefix] = where
    target = url[cut:].partition("#")[0]
    if not target.startswith("/"):
        target = "/" + target
    if not (target.isascii() and target.isprintable() and " " not in target):
        target = quote(target, safe="!#$%&'()*+,/:;=?@[]~")
    origin, host_header, auth = where
    return origin, host_header, target, auth


_origins: dict[str, tuple[Origin, str, str | None]] = {}


def _origin(prefix: str) -> tuple[Origin, str, str | None]:
    """The destination, Host header and Basic credentials of `scheme://[user@]host[:port]`."""
    try:
        parts = urlsplit(prefix)
        port = parts.port
    except ValueError as exc:
        raise TransportError("invalid_request", f"URL: {exc}") from None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("http", "https") or not host:
        raise TransportError("invalid_request", "URL must be http(s)://host/...")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise TransportError("invalid_request", "host name cannot be encoded") from None
    default = 443 if scheme == "https" else 80
    port = port or default
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default else f"{shown}:{port}"
    auth = None
    if parts.username is not None or parts.password is not None:
        credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        auth = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
    return (scheme, host, port), host_header, auth
