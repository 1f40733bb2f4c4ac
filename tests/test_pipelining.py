"""The real `sgtm serve` against pipelining clients (issue #8's redteam findings): a client that
sends without reading its answers, or reads them at a trickle, is disconnected at the write
deadline, requests queued per connection stay capped, and a refusal of a pipelined request comes
after the answers before it, intact.

Raw sockets, as an HTTP client library neither pipelines nor stops reading. Deadlines are 1 s;
every wait polls with bounds far above them, and nothing asserts how fast anything went. The
readers below pace their reads, which only bounds their rate from above: a slow machine makes
the trickle slower still, and the steady reader reads about eight times the minimum rate.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import FakeVendor, SgtmProcess, wait_until
from tests.test_slow_clients import delivered_values, hook_container, read_until_closed

pytestmark = pytest.mark.e2e

TOKEN = "pipeline-admin-token"
MAX_PIPELINED = 4
MIN_WRITE_RATE = 64 * 1024  # bytes a second, over each 1 s write period
LIMITS = {
    "SGTM_HEADER_TIMEOUT": "1s",
    "SGTM_KEEPALIVE_TIMEOUT": "1s",
    "SGTM_WRITE_TIMEOUT": "1s",
    "SGTM_MAX_PIPELINED": str(MAX_PIPELINED),
    "SGTM_MIN_WRITE_RATE": str(MIN_WRITE_RATE),
    "SGTM_MAX_HEADER_BYTES": "8192",
    "SGTM_ADMIN_TOKEN": TOKEN,
}


def hit(event: str = "page_view", value: int = 0, extra: str = "") -> bytes:
    return (
        f"GET /g/collect?v=2&tid=G-TEST01&cid=1.2&en={event}&epn.value={value} HTTP/1.1\r\n"
        f"host: shop.example\r\n{extra}\r\n"
    ).encode()


PADDED = hit(extra=f"x-pad: {'p' * 300}\r\n")
BIG = b"GET /healthz HTTP/1.1\r\nhost: shop.example\r\nx-big: " + b"a" * 20_000


@pytest.fixture(scope="module")
def vendor() -> Iterator[FakeVendor]:
    with FakeVendor() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, vendor: FakeVendor) -> Iterator[SgtmProcess]:
    config = hook_container(tmp_path_factory.mktemp("pipelining") / "shop.yaml", vendor.url)
    with SgtmProcess(config, LIMITS) as proc:
        yield proc


def connect(server: SgtmProcess, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # before connect, so the window never grows past it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(20)  # far above every deadline: reaching it fails the test
    sock.connect(("127.0.0.1", server.port))
    return sock


def statuses(answers: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answers)]


def dropped(server: SgtmProcess, reason: str) -> float:
    """A connection-level drop: counted before any container is known, so without one."""
    text = httpx.get(f"{server.url}/metrics", headers={"authorization": f"Bearer {TOKEN}"}).text
    prefix = f'sgtm_dropped_total{{reason="{reason}"}} '
    line = next((x for x in text.splitlines() if x.startswith(prefix)), prefix + "0")
    return float(line.removeprefix(prefix))


def rss_kib(server: SgtmProcess) -> int:
    with open(f"/proc/{server.proc.pid}/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1])


def errors(server: SgtmProcess) -> list[dict[str, object]]:
    """Log records of errors: tracebacks, uvicorn's complaints about the app."""
    return [
        r
        for r in server.log_records()
        if r.get("level") == "error" or "exc_info" in r or "Traceback" in str(r)
    ]


def send_in_background(
    sock: socket.socket, chunks: list[bytes], failures: list[OSError] | None = None
) -> threading.Thread:
    """Send `chunks` on a thread (the server stops reading while we do not read), ending quietly
    when the server closes the connection (the error kept in `failures`, if given)."""

    def run() -> None:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError as exc:  # reset or broken pipe: the server closed it
            if failures is not None:
                failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_client_that_never_reads_is_disconnected_at_the_write_deadline(
    server: SgtmProcess,
) -> None:
    before = dropped(server, "write_timeout")
    start_rss = rss_kib(server)
    # 60,000 small hits in one stream: their answers (~14 MB) fill every buffer on the way.
    sock = connect(server, receive_buffer=4096)
    sender = send_in_background(sock, [hit() * 1000] * 60)
    peak = start_rss

    def closed_for_not_reading() -> bool:
        nonlocal peak
        peak = max(peak, rss_kib(server))
        # Meanwhile the server answers everyone else.
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        return any(r.get("reason") == "write_timeout" for r in server.log_records())

    wait_until(closed_for_not_reading, "the write deadline closed the connection", 60)
    sender.join(timeout=20)
    assert not sender.is_alive(), "the client could still send: the connection is open"
    read_until_closed(sock)  # what was sent before the deadline, then the close
    assert dropped(server, "write_timeout") == before + 1
    # The requests waiting were capped, so memory stayed bounded: queued without a cap, the
    # same stream held ~140 MB in one connection.
    assert peak - start_rss < 40 * 1024, f"RSS grew {peak - start_rss} KiB"
    assert errors(server) == [], str(errors(server)[0])


def read_paced(sock: socket.socket, size: int, pause: float) -> tuple[bytes, str]:
    """Read `size` bytes at a time, `pause` seconds apart, until the server ends the connection:
    what was read, and how it ended ("reset", or "closed" when it ended cleanly)."""
    out = b""
    with sock:
        while True:
            try:
                data = sock.recv(size)
            except ConnectionResetError:
                return out, "reset"
            if not data:
                return out, "closed"
            out += data
            time.sleep(pause)


def test_a_client_reading_a_trickle_is_disconnected(server: SgtmProcess) -> None:
    # 1 KiB every 25 ms is at most 40 KiB a second, under the minimum rate. (Taking answers now
    # and then resumes writing: the deadline that restarted on every resume never ended.)
    before = dropped(server, "write_timeout")
    sock = connect(server, receive_buffer=4096)
    failures: list[OSError] = []
    sender = send_in_background(sock, [hit() * 1000] * 60, failures)
    answers, ending = read_paced(sock, 1024, 0.025)
    sender.join(timeout=20)
    # Aborted with a reset (which the sender may be the one to see); what it read before is
    # whole answers and a part of one.
    assert ending == "reset" or any(isinstance(x, ConnectionResetError) for x in failures)
    assert set(statuses(answers)) == {200}
    assert len(statuses(answers)) < 60_000
    assert dropped(server, "write_timeout") == before + 1
    assert errors(server) == [], str(errors(server)[0])


def test_a_slow_client_reading_steadily_gets_all_its_answers(server: SgtmProcess) -> None:
    # Through a small receive window, 4 KiB at a time: at most ~800 KiB a second (about 550 on
    # this project's machine), slower than the server answers (so writing pauses once the
    # kernel's buffer is full), far above the minimum rate.
    count = 25_000
    sock = connect(server, receive_buffer=4096)
    sender = send_in_background(sock, [hit() * (count // 4)] * 4)
    answers = b""
    seen = 0  # answers begun, counted per read (with the end of the read before)
    while seen < count:
        data = sock.recv(4096)
        assert data, f"closed after {seen} answers"
        seen += (answers[-8:] + data).count(b"HTTP/1.1 ")
        answers += data
        time.sleep(0.005)
    sender.join(timeout=20)
    sock.close()
    assert statuses(answers) == [200] * count


def test_pipelined_hits_beyond_the_cap_are_all_answered_and_delivered(
    server: SgtmProcess, vendor: FakeVendor
) -> None:
    # 25 times as many requests as may wait, in one write of many slices: parsing stops and
    # resumes as the queue drains, and every hit is answered once and delivered.
    count = MAX_PIPELINED * 25
    sent = len(vendor.received)
    sock = connect(server)
    pad = f"x-pad: {'p' * 300}\r\n"
    sock.sendall(b"".join(hit("purchase", value, pad) for value in range(count)))
    answers = b""
    while len(statuses(answers)) < count:
        data = sock.recv(65536)
        assert data, f"closed after {len(statuses(answers))} answers"
        answers += data
    sock.close()
    assert statuses(answers) == [200] * count
    vendor.wait_for(sent + count)
    assert sorted(delivered_values(vendor)[sent:]) == list(range(count))  # type: ignore[type-var]


def test_a_long_keep_alive_connection_never_trips_the_header_limit(server: SgtmProcess) -> None:
    # Header bytes are counted per request: 2,000 requests of ~650 header bytes each (1.3 MB,
    # 160 times the 8 KiB limit), written in pieces that end mid-headers, are all answered.
    count = 2000
    stream = hit(extra=f"x-pad: {'p' * 500}\r\n") * count
    sock = connect(server)
    sender = send_in_background(
        sock, [stream[i : i + 10_000] for i in range(0, len(stream), 10_000)]
    )
    answers = b""
    while len(statuses(answers)) < count:
        data = sock.recv(65536)
        assert data, f"closed after {statuses(answers)[-3:]} ({len(statuses(answers))} answers)"
        answers += data
    sender.join(timeout=20)
    sock.close()
    assert set(statuses(answers)) == {200}


@pytest.mark.parametrize(
    ("writes", "expected"),
    [
        ([hit() + BIG], [200, 431]),  # in one read with the request still being answered
        ([hit() * 3 + BIG], [200, 200, 200, 431]),  # behind several waiting ones
        ([hit(), BIG], [200, 431]),  # after the first answer, in a read of its own
        ([hit() + b"GET /healthz HTTP/1.1\r\nhost: shop.example\r\nx-slow: "], [200, 408]),
        ([hit() + b"GET /healthz HTTP/1.1\r\nho\x00st: x\r\n\r\n"], [200, 400]),
        # Past the cap, in a write of many slices: the rest waits unparsed, then its deadline runs.
        ([PADDED * 20 + b"GET /healthz HTTP/1.1\r\nhost: shop.example\r\n"], [200] * 20 + [408]),
    ],
    ids=["431-one-write", "431-behind-three", "431-later", "408", "400", "408-past-the-cap"],
)
def test_a_refused_pipelined_request_is_answered_after_those_before_it(
    server: SgtmProcess, writes: list[bytes], expected: list[int]
) -> None:
    sock = connect(server)
    answers = b""
    for data in writes:
        sock.sendall(data)
        if len(writes) > 1:  # wait for the answer before sending the next
            while b"\r\n\r\n" not in answers:
                answers += sock.recv(65536)
    answers += read_until_closed(sock)
    assert statuses(answers) == expected
    assert answers.endswith(b"\n") and b"connection: close\r\n" in answers
    assert errors(server) == [], str(errors(server)[0])


@pytest.mark.parametrize(
    ("before", "expected"),
    [(b"", [431]), (hit() * 3, [200, 200, 200, 431])],
    ids=["alone", "behind"],
)
def test_a_refusal_reaches_a_client_still_sending(
    server: SgtmProcess, before: bytes, expected: list[int]
) -> None:
    # Headers over the limit and 200 KB more, in one write: the server refuses after its first
    # read, with the rest still arriving. Closed with those bytes unread, the connection ended in
    # a reset; now the client reads the refusal, then a clean end.
    sock = connect(server)
    sender = send_in_background(sock, [before + BIG + b"b" * 200_000])
    answers, ending = read_paced(sock, 65536, 0)
    sender.join(timeout=20)
    assert (statuses(answers), ending) == (expected, "closed")
    assert answers.endswith(b"\r\n\r\nrequest headers too large\n")
    assert errors(server) == [], str(errors(server)[0])


def test_pipelined_requests_with_large_bodies_are_answered_in_order(server: SgtmProcess) -> None:
    # A waiting request's body past uvicorn's 64 KiB mark stops parsing too (else each waiting
    # request could buffer a body up to the body limit): the bodies over the ga4 client's limit
    # get 413 and the hits after them 200, in order.
    body = b"en=page_view&x=" + b"y" * 100_000
    post = (
        b"POST /g/collect?v=2&tid=G-TEST01&cid=1.2 HTTP/1.1\r\nhost: shop.example\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    ) + body
    sock = connect(server)
    sender = send_in_background(sock, [hit() + post * 3 + hit() * 5])
    answers = b""
    while len(statuses(answers)) < 9:
        data = sock.recv(65536)
        assert data, f"closed after {statuses(answers)}"
        answers += data
    sender.join(timeout=20)
    sock.close()
    assert statuses(answers) == [200] + [413] * 3 + [200] * 5
    assert errors(server) == [], str(errors(server)[0])
