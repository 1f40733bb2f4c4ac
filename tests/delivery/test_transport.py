"""sgtm's HTTP/1.1 transport against real servers on loopback, under asyncio and uvloop.

Each test scripts a raw TCP (or TLS) server byte by byte, so the answers include what
well-behaved servers never send: chunks spread over slow writes, bodies cut short, interim
answers, oversized headers, bytes nobody asked for, answers that never come.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import trustme

from sgtm.delivery.transport import Transport, TransportError, split_url
from tests.servers import FakeVendor, free_port

pytestmark = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])


@dataclass
class RawRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int  # which connection of the server (1, 2, ...) it came on


# An answer script: given the request and the connection's writer, write whatever it likes;
# return False to close the connection afterwards.
Script = Callable[[RawRequest, asyncio.StreamWriter], Awaitable[bool]]


def reply(raw: bytes, *, keep: bool = True) -> Script:
    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        writer.write(raw)
        await writer.drain()
        return keep

    return answer


OK = reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@dataclass
class RawServer:
    """A loopback server answering each request with `script`; counts connections."""

    script: Script = OK
    tls: ssl.SSLContext | None = None
    requests: list[RawRequest] = field(default_factory=list)
    connections: int = 0
    closed: int = 0  # connections that ended
    port: int = 0

    async def __aenter__(self) -> RawServer:
        self._handlers: set[asyncio.Task[None]] = set()
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.connections += 1
        number = self.connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                line, *lines = head.decode("latin-1").split("\r\n")
                method, target, _ = line.split(" ", 2)
                headers = {}
                for header in lines:
                    if header:
                        name, _, value = header.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = RawRequest(method, target, headers, body, number)
                self.requests.append(request)
                if not await self.script(request, writer):
                    return
        finally:
            self.closed += 1
            writer.close()


async def started(**options: object) -> Transport:
    transport = Transport(**options)  # type: ignore[arg-type]
    await transport.start()
    return transport


async def send(transport: Transport, url: str, method: str = "POST", **options: object):
    headers = options.pop("headers", {"Content-Type": "application/json"})
    body = options.pop("body", b'{"n": 1}')
    limit = options.pop("time_limit", 5.0)
    return await transport.send(method, url, headers, body, limit)  # type: ignore[arg-type]


async def kind_of(coro: Awaitable[object]) -> str:
    with pytest.raises(TransportError) as caught:
        await coro
    return caught.value.kind


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


# -- requests as written ----------------------------------------------------------------------


async def test_a_request_arrives_as_built_with_framing_set_by_sgtm():
    async with RawServer() as server:
        transport = await started()
        try:
            response = await send(
                transport,
                server.url + "/v1/e?sig=ab%7e%2fcd#frag",
                headers={
                    "Content-Type": "application/json",
                    "X-Key": "k1",
                    "Content-Length": "999",  # framing is sgtm's: a caller's copy is dropped
                    "Connection": "close",
                },
            )
        finally:
            await transport.close()
    assert (response.status, response.body) == (200, b"ok")
    (got,) = server.requests
    assert (got.method, got.target, got.body) == ("POST", "/v1/e?sig=ab%7e%2fcd", b'{"n": 1}')
    assert got.headers["host"] == f"127.0.0.1:{server.port}"
    assert got.headers["content-length"] == "8"
    assert got.headers["x-key"] == "k1"
    assert got.headers["user-agent"] == "sgtm"
    assert "connection" not in got.headers


async def test_fake_vendor_gets_get_and_empty_post():
    with FakeVendor() as vendor:
        transport = await started()
        try:
            await send(transport, vendor.url + "/a?x=1", "GET", body=b"", headers={})
            await send(transport, vendor.url + "/b", "POST", body=b"", headers={})
        finally:
            await transport.close()
    first, second = vendor.received
    assert (first.method, first.path, first.query, first.body) == ("GET", "/a", "x=1", b"")
    assert "content-length" not in first.headers
    assert (second.method, second.headers["content-length"]) == ("POST", "0")


async def test_urls_split_for_the_wire():  # async only to share the module's mark
    origin, host, target, auth = split_url("HTTPS://User:p%40ss@Bücher.example/ä b?q=1#x")
    assert origin == ("https", "xn--bcher-kva.example", 443)
    assert host == "xn--bcher-kva.example"
    assert target == "/%C3%A4%20b?q=1"
    assert auth == "Basic VXNlcjpwQHNz"  # User:p@ss
    assert split_url("http://[::1]:8080?a=b")[:3] == (("http", "::1", 8080), "[::1]:8080", "/?a=b")


@pytest.mark.parametrize(
    ("method", "url", "headers"),
    [
        ("POST", "ftp://vendor.example/e", {}),
        ("POST", "http:///nohost", {}),
        ("POST", "http://vendor.example:99999/e", {}),
        ("POST", "vendor.example/e", {}),
        ("POST", "http://vendor.example/e", {"X-A": "1\r\nX-Injected: 1"}),
        ("POST", "http://vendor.example/e", {"X-A": "nul\0"}),
        ("POST", "http://vendor.example/e", {"Bad Name": "1"}),
        ("PO ST", "http://vendor.example/e", {}),
    ],
)
async def test_requests_that_cannot_be_written_are_refused(method, url, headers):
    transport = await started()
    try:
        kind = await kind_of(transport.send(method, url, headers, b"", 1.0))
    finally:
        await transport.close()
    assert kind == "invalid_request"


# -- answers ----------------------------------------------------------------------------------


async def slow_chunks(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n")
    for piece in (b"5\r\nhel", b"lo\r\n", b"6\r\n world\r\n", b"0\r\n", b"\r\n"):
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(piece)
    await writer.drain()
    return True


async def test_chunked_answer_over_slow_writes_then_keep_alive():
    async with RawServer(slow_chunks) as server:
        transport = await started()
        try:
            first = await send(transport, server.url + "/e")
            second = await send(transport, server.url + "/e")
        finally:
            await transport.close()
    assert first.body == second.body == b"hello world"
    assert first.headers["x-a"] == "1, 2"
    assert server.connections == 1


async def test_keep_alive_connections_are_reused():
    async with RawServer() as server:
        transport = await started()
        try:
            for _ in range(5):
                assert (await send(transport, server.url + "/e")).status == 200
        finally:
            await transport.close()
    assert (len(server.requests), server.connections) == (5, 1)


@pytest.mark.parametrize(
    ("method", "raw"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
        ("POST", b"HTTP/1.1 204 No Content\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"),
        ("POST", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ],
)
async def test_answers_without_a_body_leave_the_connection_usable(method, raw):
    async with RawServer(reply(raw)) as server:
        transport = await started()
        try:
            first = await send(transport, server.url + "/e", method, body=b"")
            second = await send(transport, server.url + "/e", method, body=b"")
        finally:
            await transport.close()
    assert first.body == second.body == b""
    assert first.status == int(raw.rsplit(b"HTTP/1.1 ", 1)[1][:3])
    assert server.connections == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ],
)
async def test_a_server_that_closes_gets_a_new_connection(raw):
    async with RawServer(reply(raw, keep=False)) as server:
        transport = await started()
        try:
            for _ in range(2):
                assert (await send(transport, server.url + "/e")).body == b"ok"
        finally:
            await transport.close()
    assert server.connections == 2


async def test_a_body_that_ends_with_the_connection():
    async with RawServer(reply(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", keep=False)) as server:
        transport = await started()
        try:
            response = await send(transport, server.url + "/e")
        finally:
            await transport.close()
    assert response.body == b"until the end"


async def test_gzip_answers_are_inflated():
    packed = gzip.compress(b'{"ok": true}')
    raw = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed)
    async with RawServer(reply(raw + packed)) as server:
        transport = await started()
        try:
            response = await send(transport, server.url + "/e")
        finally:
            await transport.close()
    assert response.body == b'{"ok": true}'


async def test_a_compressed_answer_inflates_only_up_to_the_limit():
    bomb = gzip.compress(b"\0" * 10_000_000)  # 10 MB of zeros in about 10 KB
    raw = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    async with RawServer(reply(raw + bomb)) as server:
        transport = await started(max_response=50_000)
        try:
            response = await send(transport, server.url + "/e")
        finally:
            await transport.close()
    assert response.body == b"\0" * 50_000


async def test_redirects_are_answers_not_followed():
    raw = (
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n"
    )
    async with RawServer(reply(raw)) as server:
        transport = await started()
        try:
            response = await send(transport, server.url + "/e")
        finally:
            await transport.close()
    assert (response.status, response.headers["location"]) == (302, "http://127.0.0.1:9/elsewhere")
    assert len(server.requests) == 1


async def test_a_large_answer_is_cut_at_the_limit_and_its_connection_dropped():
    body = b"x" * 5000
    raw = b"HTTP/1.1 500 Oops\r\nContent-Length: 5000\r\n\r\n" + body
    async with RawServer(reply(raw)) as server:
        transport = await started(max_response=1000)
        try:
            first = await send(transport, server.url + "/e")
            second = await send(transport, server.url + "/e")
        finally:
            await transport.close()
    assert (first.status, first.body, second.body) == (500, body[:1000], body[:1000])
    assert server.connections == 2


async def test_bytes_nobody_asked_for_end_the_connection():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def chatty(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        writer.write(raw)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno")  # unsolicited
        await writer.drain()
        return True

    async with RawServer(chatty) as server:
        transport = await started()
        try:
            assert (await send(transport, server.url + "/e")).body == b"ok"
            await until(lambda: server.closed == 1)
            assert (await send(transport, server.url + "/e")).body == b"ok"
        finally:
            await transport.close()
    assert server.connections == 2


# -- failures ---------------------------------------------------------------------------------


async def test_refused_connection_and_unknown_host():
    transport = await started()
    try:
        refused = await kind_of(send(transport, f"http://127.0.0.1:{free_port()}/e"))
        unknown = await kind_of(send(transport, "http://nothing.invalid/e"))
    finally:
        await transport.close()
    assert (refused, unknown) == ("connect", "dns")


async def never(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    await asyncio.sleep(30)
    return False


async def headers_then_stall(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    await writer.drain()
    await asyncio.sleep(30)
    return False


async def cut_mid_body(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    await writer.drain()
    return False


async def chunks_cut(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    await writer.drain()
    return False


@pytest.mark.parametrize(
    ("script", "kind"),
    [
        (never, "timeout"),
        (headers_then_stall, "timeout"),
        (cut_mid_body, "disconnected"),
        (chunks_cut, "disconnected"),
        (reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", keep=False), "disconnected"),
        (reply(b"", keep=False), "disconnected"),
        (reply(b"SMTP ready\r\n\r\n"), "protocol"),
        (reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"), "protocol"),
        (reply(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"), "too_large"),
        (reply(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000), "too_large"),
    ],
)
async def test_failures_are_classified(script, kind):
    async with RawServer(script) as server:
        transport = await started()
        try:
            got = await kind_of(send(transport, server.url + "/e", time_limit=0.5))
            await until(lambda: transport.open_connections == 0)  # never reused
        finally:
            await transport.close()
    assert got == kind


async def test_a_keep_alive_connection_closed_under_a_request_is_retried_once_on_a_new_one():
    async def close_second(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        if len(server.requests) == 2:
            return False  # as if its keep-alive timer ran out just as the request came
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        return True

    async with RawServer(close_second) as server:
        transport = await started()
        try:
            await send(transport, server.url + "/e")
            response = await send(transport, server.url + "/e")
        finally:
            await transport.close()
    assert response.body == b"ok"
    assert [r.connection for r in server.requests] == [1, 1, 2]  # the same request, resent


async def test_a_cancelled_send_closes_its_connection():
    async with RawServer(never) as server:
        transport = await started()
        try:
            task = asyncio.create_task(send(transport, server.url + "/e"))
            await until(lambda: len(server.requests) == 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await until(lambda: transport.open_connections == 0)
        finally:
            await transport.close()


# -- pools ------------------------------------------------------------------------------------


async def test_a_destination_gets_at_most_per_host_connections():
    async def slow(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return True

    async with RawServer(slow) as server:
        transport = await started(per_host=2)
        try:
            answers = await asyncio.gather(*(send(transport, server.url + "/e") for _ in range(6)))
        finally:
            await transport.close()
    assert [a.status for a in answers] == [200] * 6
    assert server.connections == 2


async def test_a_slow_destination_never_holds_back_another():
    release = asyncio.Event()

    async def held(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        await release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return True

    async with RawServer(held) as slow, RawServer() as fast:
        transport = await started(per_host=1, connections=2)
        try:
            stuck = [asyncio.create_task(send(transport, slow.url + "/e")) for _ in range(3)]
            await until(lambda: len(slow.requests) == 1)
            assert (await send(transport, fast.url + "/e")).status == 200
            assert not any(task.done() for task in stuck)
            release.set()
            assert [(await task).status for task in stuck] == [200] * 3
        finally:
            await transport.close()


async def test_waiting_for_a_connection_counts_against_the_time_limit():
    async with RawServer(never) as server:
        transport = await started(per_host=1)
        try:
            first = asyncio.create_task(send(transport, server.url + "/e", time_limit=2.0))
            await until(lambda: len(server.requests) == 1)
            second = await kind_of(send(transport, server.url + "/e", time_limit=0.2))
            first.cancel()
        finally:
            await transport.close()
    assert second == "timeout"


# -- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_tls_with_a_trusted_certificate(ca):
    async with RawServer(tls=server_context(ca, "127.0.0.1")) as server:
        transport = await started(ssl_context=trusting(ca))
        try:
            for _ in range(2):
                assert (await send(transport, server.url + "/e")).body == b"ok"
        finally:
            await transport.close()
    assert server.connections == 1


async def test_tls_refuses_an_unknown_issuer_and_a_wrong_name(ca):
    async with RawServer(tls=server_context(ca, "vendor.example")) as server:
        default = await started()  # the system's CA store: the test CA is not in it
        named = await started(ssl_context=trusting(ca))
        try:
            unknown_issuer = await kind_of(send(default, server.url + "/e"))
            wrong_name = await kind_of(send(named, server.url + "/e"))
        finally:
            await default.close()
            await named.close()
    assert (unknown_issuer, wrong_name) == ("tls", "tls")
    assert server.requests == []
