"""The ASGI app in-process: what every response carries, the admin token, CORS variance, and
requests that end early (the real-server versions are in tests/test_slow_clients.py)."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from sgtm.app import bearer_matches, create_app
from sgtm.config import ContainerSpec, load_text
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.limits import ServerLimits
from tests.asgi import Answer, call
from tests.installed import registry

TOKEN = "m3trics-t0ken"
HIT = "/g/collect?v=2&tid=G-1&cid=1.2&en=purchase"
ORIGIN = "https://www.shop.example"


def shop() -> ContainerSpec:
    text = f"""\
        version: 1
        hosts: [shop.example]
        origins: [{ORIGIN}]
        clients:
          - {{name: ga4, type: ga4}}
          - {{name: web, type: datalayer}}
        triggers: {{all: {{all: []}}}}
        tags:
          - {{name: hook, type: http_request, triggers: [all], settings: {{url: "https://h.example/"}}}}
        """
    return load_text(textwrap.dedent(text), "shop.yaml", registry(), environ={})


def app(delivery: Any = None, **limits: Any) -> Any:
    return create_app([shop()], delivery or RecorderDelivery(), limits=ServerLimits(**limits))


HOST = [("host", "shop.example")]


def assert_plain_and_nosniff(answer: Answer) -> None:
    assert answer.all("content-type") == ["text/plain; charset=utf-8"], answer
    assert answer.all("x-content-type-options") == ["nosniff"], answer


class Exploding(RecorderDelivery):
    async def submit(self, submissions: list[Any]) -> None:
        raise RuntimeError("a bug")


@pytest.mark.parametrize(
    ("method", "target", "headers", "chunks", "status"),
    [
        ("GET", "/healthz", [], None, 200),
        ("GET", "/readyz", [], None, 503),  # no lifespan ran
        ("GET", "/metrics", [], None, 404),  # no admin token set
        ("GET", HIT, [("host", "elsewhere.example")], None, 404),
        ("GET", HIT, [("host", "a.example"), ("host", "a.example")], None, 400),
        ("GET", "/nothing-claims-this", HOST, None, 404),
        ("POST", HIT, [*HOST, ("content-length", str(2 << 20))], [b"x"], 413),
        ("POST", "/g/collect?v=2&tid=G-1&en=x", [*HOST, ("content-length", "3")], [b"\xff"], 200),
    ],
)
async def test_every_response_has_a_content_type_and_nosniff(
    method: str, target: str, headers: list[tuple[str, str]], chunks: Any, status: int
) -> None:
    answer = await call(app(), method, target, headers, chunks)
    assert answer.status == status
    assert_plain_and_nosniff(answer)


async def test_a_response_with_its_own_type_keeps_it() -> None:
    answer = await call(app(), "GET", "/sgtm.js", HOST)
    assert answer.status == 200
    assert answer.all("content-type") == ["application/javascript; charset=utf-8"]
    assert answer.all("x-content-type-options") == ["nosniff"]


async def test_an_unexpected_error_is_a_plain_500() -> None:
    answer = Answer()
    with pytest.raises(RuntimeError, match="a bug"):  # raised on, for the server's log
        await call(app(Exploding()), "GET", HIT, HOST, into=answer)
    assert (answer.status, answer.body) == (500, b"internal error\n")
    assert_plain_and_nosniff(answer)


async def test_an_unread_body_closes_the_connection_after_the_answer() -> None:
    unread = await call(app(), "GET", "/healthz", [("content-length", "5")], [b"hello"])
    assert (unread.status, unread.header("connection")) == (200, "close")
    read = await call(app(), "POST", HIT, [*HOST, ("content-length", "5")], [b"en=x"])
    assert (read.status, read.header("connection")) == (200, None)


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ([("origin", ORIGIN)], True),
        ([("origin", "https://evil.example")], False),
        ([], False),
    ],
)
async def test_tagging_answers_vary_on_origin_whatever_the_origin(
    headers: list[tuple[str, str]], allowed: bool
) -> None:
    for method, target in (("GET", HIT), ("OPTIONS", HIT), ("GET", "/nothing")):
        answer = await call(app(), method, target, [*HOST, *headers])
        assert answer.all("vary") == ["Origin"], (method, target, answer)
        assert (answer.header("access-control-allow-origin") is not None) == allowed
    script = await call(app(), "GET", "/sgtm.js", [*HOST, *headers])
    assert script.all("vary") == ["Accept-Encoding, Origin"]


@pytest.mark.parametrize(
    ("authorization", "ok"),
    [
        ([f"Bearer {TOKEN}"], True),
        ([f"bearer {TOKEN}"], True),  # the scheme name is case-insensitive (RFC 9110)
        ([f"Bearer   {TOKEN}"], True),
        ([TOKEN], False),  # no scheme
        ([f"Basic {TOKEN}"], False),
        ([f"Bearer{TOKEN}"], False),
        ([f"Bearer {TOKEN}x"], False),
        ([f"Bearer {TOKEN[:-1]}"], False),
        ([f"Bearer {TOKEN} {TOKEN}"], False),
        (["Bearer "], False),
        ([f"Bearer {TOKEN}", f"Bearer {TOKEN}"], False),  # one header, not two
        ([], False),
        (["Bearer \xe9\xff"], False),
    ],
)
def test_bearer_matches(authorization: list[str], ok: bool) -> None:
    assert bearer_matches(authorization, TOKEN) is ok


async def test_metrics_need_the_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SGTM_ADMIN_TOKEN", TOKEN)
    server = app()
    refused = await call(server, "GET", "/metrics", [("authorization", TOKEN)])
    assert refused.status == 401 and refused.header("www-authenticate") == "Bearer"
    assert_plain_and_nosniff(refused)
    ok = await call(server, "GET", "/metrics", [("authorization", f"Bearer {TOKEN}")])
    assert (
        ok.status == 200 and ok.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    )


async def test_a_body_cut_short_is_dropped_without_an_answer() -> None:
    delivery = RecorderDelivery()
    headers = [*HOST, ("content-length", "5000")]
    server = app(delivery)
    answer = await call(server, "POST", HIT, headers, [b"en=a\n"], disconnect=True)
    metrics = server.state.metrics
    assert answer.status is None
    assert delivery.submitted == []
    assert metrics.value("sgtm_dropped_total", container="shop", reason="client_disconnect") == 1
    assert metrics.value("sgtm_requests_total", container="shop", client="-", status="499") == 1


async def test_a_body_too_slow_gets_408_and_is_not_processed() -> None:
    delivery = RecorderDelivery()
    headers = [*HOST, ("content-length", "5000")]
    slow = app(delivery, body_timeout=0.05)
    answer = await call(slow, "POST", HIT, headers, [b"en=a\n"], stall=True)
    assert answer.status == 408 and answer.header("connection") == "close"
    assert_plain_and_nosniff(answer)
    assert delivery.submitted == []


async def test_a_request_without_a_body_is_complete_with_its_headers() -> None:
    # Its client may already be gone: nothing of the hit is missing, so it is delivered.
    delivery = RecorderDelivery()
    answer = await call(app(delivery), "GET", HIT, HOST, disconnect=True)
    assert answer.status == 200
    assert len(delivery.submitted) == 1


async def test_hits_and_starlette_routes_carry_the_same_request_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The raw hit path and the middleware of Starlette's routes: one access line each, the same
    fields, a request id in the answer (the caller's own when it is a plain token)."""
    caplog.set_level("INFO", logger="sgtm.request")
    hit = await call(app(), "GET", HIT, [*HOST, ("x-request-id", "edge-42")])
    health = await call(app(), "GET", "/healthz", HOST)
    assert hit.header("x-request-id") == "edge-42"
    generated = health.header("x-request-id")
    assert generated is not None and len(generated) == 32 and int(generated, 16) >= 0
    lines = [r.__dict__ for r in caplog.records if r.getMessage() == "request"]
    keys = ("request_id", "method", "host", "path", "status", "container", "client", "events")
    assert [{k: line[k] for k in keys} for line in lines] == [
        {
            "request_id": "edge-42",
            "method": "GET",
            "host": "shop.example",
            "path": "/g/collect",
            "status": 200,
            "container": "shop",
            "client": "ga4",
            "events": 1,
        },
        {
            "request_id": generated,
            "method": "GET",
            "host": "",
            "path": "/healthz",
            "status": 200,
            "container": "-",
            "client": "-",
            "events": 0,
        },
    ]


def test_request_ids_are_unique_and_differ_between_processes() -> None:
    from sgtm.middleware import request_id

    scope: dict[str, Any] = {"headers": [(b"x-request-id", b"{{secret.X}}")]}  # not a token
    ids = [request_id(scope) for _ in range(1000)]
    assert len(set(ids)) == 1000 and all(len(i) == 32 for i in ids)
    assert len({i[:16] for i in ids}) == 1  # the process's prefix
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a forked worker draws its own prefix
        os.write(write, request_id({"headers": []}).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert len(child) == 32 and child[:16] != ids[0][:16]


async def test_a_body_over_the_limit_while_reading_is_413_without_a_length() -> None:
    chunks = [b"en=x&" * 100, b"en=y&" * 100]
    answer = await call(
        app(max_body_bytes=600), "POST", HIT, [*HOST, ("transfer-encoding", "chunked")], chunks
    )
    assert (answer.status, answer.body) == (413, b"request body over the 600-byte limit\n")
    assert answer.header("connection") == "close"
    assert_plain_and_nosniff(answer)


async def test_each_app_counts_in_its_own_metrics() -> None:
    """Metrics are handed to an app, not kept in a module: two apps never see each other's."""
    first, second = app(), app()
    headers = [*HOST, ("content-length", "5000")]
    await call(first, "POST", HIT, headers, [b"en=a\n"], disconnect=True)
    dropped = {"container": "shop", "reason": "client_disconnect"}
    assert first.state.metrics.value("sgtm_dropped_total", **dropped) == 1
    assert second.state.metrics.value("sgtm_dropped_total", **dropped) == 0
    assert "sgtm_dropped_total" not in second.state.metrics.render()
