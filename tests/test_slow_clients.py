"""The real `sgtm serve` against clients that stop halfway: bodies cut short by a disconnect are
never delivered, and slow or idle connections are answered 408 (or closed) at their deadlines.

Raw sockets, because an HTTP client library would neither cut a body short nor dawdle. Deadlines
are set to 1 s here; every wait is bounded by a socket timeout well above them.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import FakeVendor, SgtmProcess, wait_until

# A real browser (or real sockets and timing): the end-to-end set.
pytestmark = pytest.mark.e2e

TOKEN = "edge-admin-token"
LIMITS = {
    "SGTM_HEADER_TIMEOUT": "1s",
    "SGTM_BODY_TIMEOUT": "1s",
    "SGTM_KEEPALIVE_TIMEOUT": "1s",
    "SGTM_MAX_HEADER_BYTES": "8192",
    "SGTM_ADMIN_TOKEN": TOKEN,
}
HIT = "/g/collect?v=2&tid=G-TEST01&cid=1.2&en=purchase&epn.value={value}"


@pytest.fixture(scope="module")
def vendor() -> Iterator[FakeVendor]:
    with FakeVendor() as fake:
        yield fake


def hook_container(path: Path, vendor_url: str) -> Path:
    """A GA4 client and one tag posting each purchase's value to the vendor's /hook."""
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            clients: [{{name: ga4, type: ga4}}]
            triggers: {{purchase: {{event_name: purchase}}}}
            tags:
              - name: hook
                type: http_request
                triggers: [purchase]
                settings:
                  url: {vendor_url}/hook
                  body: {{value: "{{{{event.value}}}}"}}
            """
        )
    )
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, vendor: FakeVendor) -> Iterator[SgtmProcess]:
    config = hook_container(tmp_path_factory.mktemp("edge") / "shop.yaml", vendor.url)
    with SgtmProcess(config, LIMITS) as proc:
        yield proc


def connect(server: SgtmProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.settimeout(10)  # far above every deadline: reaching it fails the test
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    with sock:
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:  # closed with our unread bytes in its buffer
                return out
            if not data:
                return out
            out += data


def status_of(answer: bytes) -> int | None:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


def metric(server: SgtmProcess, reason: str) -> float:
    text = httpx.get(f"{server.url}/metrics", headers={"authorization": f"Bearer {TOKEN}"}).text
    prefix = f'sgtm_dropped_total{{container="shop",reason="{reason}"}} '
    line = next((x for x in text.splitlines() if x.startswith(prefix)), prefix + "0")
    return float(line.removeprefix(prefix))


def delivered_values(vendor: FakeVendor) -> list[object]:
    return [json.loads(r.body)["value"] for r in vendor.received]


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        ("content-length: 5000\r\n", b"en=purchase&epn.value=1\n" * 2),
        ("transfer-encoding: chunked\r\n", b"30\r\n" + b"en=purchase&epn.value=1\n" * 2 + b"\r\n"),
    ],
    ids=["content-length", "chunked"],
)
def test_a_body_cut_short_is_never_delivered(
    server: SgtmProcess, vendor: FakeVendor, framing: str, body: bytes
) -> None:
    before = metric(server, "client_disconnect")
    sent = len(vendor.received)
    sock = connect(server)
    head = f"POST {HIT.format(value=1)} HTTP/1.1\r\nhost: shop.example\r\n{framing}\r\n"
    sock.sendall(head.encode() + body)
    sock.close()  # before the promised end of the body
    # The server's request line for it says the client went away ...
    server.wait_for_log(
        lambda r: r.get("status") == 499 and r.get("path") == "/g/collect", "a 499 request line"
    )
    # ... and a complete hit after it, on the same tag's lane, is the next thing delivered.
    assert httpx.get(server.url + HIT.format(value=2)).status_code == 200
    vendor.wait_for(sent + 1)
    assert delivered_values(vendor)[sent:] == [2]
    assert metric(server, "client_disconnect") == before + 1


def test_slow_and_idle_connections_meet_their_deadlines(server: SgtmProcess) -> None:
    late_headers = connect(server)
    late_headers.sendall(b"GET /healthz HTTP/1.1\r\nhost: shop.example\r\nx-slow: ")
    late_body = connect(server)
    late_body.sendall(
        f"POST {HIT.format(value=3)} HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nen=".encode()
    )
    idle = connect(server)
    kept_alive = connect(server)
    kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nhost: shop.example\r\n\r\n")

    answer = read_until_closed(late_headers)
    assert status_of(answer) == 408
    assert b"content-type: text/plain; charset=utf-8\r\n" in answer
    assert b"x-content-type-options: nosniff\r\n" in answer
    assert status_of(read_until_closed(late_body)) == 408
    assert read_until_closed(idle) == b""  # it never asked: closed without an answer
    answer = read_until_closed(kept_alive)  # answered, then closed once idle for 1 s
    assert status_of(answer) == 200 and answer.endswith(b"ok\n")
    assert metric(server, "body_timeout") >= 1


def test_headers_over_the_limit_are_refused(server: SgtmProcess) -> None:
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: shop.example\r\nx-big: " + b"a" * 20_000)
    answer = read_until_closed(sock)
    assert status_of(answer) == 431 and answer.endswith(b"request headers too large\n")


def test_a_refused_client_that_keeps_sending_is_closed(server: SgtmProcess) -> None:
    # After a refusal sgtm reads and drops what the client still sends (so that the refusal is
    # not lost to a reset), but only for a bounded while: a client sending on holds nothing.
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: shop.example\r\nx-big: " + b"a" * 20_000)
    answer = b""
    while not answer.endswith(b"request headers too large\n"):
        data = sock.recv(65536)
        assert data, answer
        answer += data
    assert status_of(answer) == 431
    assert sock.recv(65536) == b""  # sgtm's side is shut at once; ours is still open

    def gone() -> bool:
        try:
            sock.sendall(b"a" * 100)
        except OSError:  # reset, or broken pipe: the connection is closed
            return True
        return False

    wait_until(gone, "the close after the refusal", 20)
    sock.close()


def test_many_connections_dripping_header_bytes_are_all_closed(server: SgtmProcess) -> None:
    """A scaled-down slowloris: every connection sends one header byte every 0.2 s, forever."""
    selector = selectors.DefaultSelector()
    received: dict[socket.socket, bytes] = {}
    for _ in range(200):
        sock = connect(server)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: shop.example\r\nx-drip: ")
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        received[sock] = b""
    dripping = set(received)
    deadline = time.monotonic() + 10
    while dripping and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            received[sock] += data
            if not data:  # closed by the server
                selector.unregister(sock)
                dripping.discard(sock)
        for sock in dripping:
            with contextlib.suppress(OSError):
                sock.send(b"a")
        # Meanwhile the server answers everyone else.
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    selector.close()
    for sock in received:
        sock.close()
    assert not dripping, f"{len(dripping)} of {len(received)} dripping connections still open"
    assert {status_of(answer) for answer in received.values()} == {408}


def test_blank_lines_between_requests_do_not_keep_a_connection(server: SgtmProcess) -> None:
    # A blank line before a request line is allowed and starts no request, so uvicorn's
    # keep-alive timer, dropped on any byte, would never come back.
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: shop.example\r\n\r\n")
    answer = b""
    while not answer.endswith(b"ok\n"):
        answer += sock.recv(65536)
    sock.settimeout(0.2)
    deadline = time.monotonic() + 10
    closed = False
    while not closed and time.monotonic() < deadline:
        try:
            sock.sendall(b"\r\n")
            closed = sock.recv(65536) == b""
        except TimeoutError:
            continue
        except OSError:  # reset, or broken pipe: closed all the same
            closed = True
    sock.close()
    assert closed, "a connection sending blank lines stayed open"
