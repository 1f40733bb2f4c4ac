"""datalayer client over a real `sgtm serve` on loopback: sgtm.js caching and compression, CORS,
the 1 MiB body limit, and events reaching a real fake vendor through the delivery engine."""

from __future__ import annotations

import gzip
import json
import textwrap
from collections.abc import Iterator

import httpx
import pytest
from sgtm_plugins.datalayer import script

from tests.servers import FakeVendor, Received, SgtmServer

ORIGIN = "https://www.shop.example"
LIMIT = 1024 * 1024  # the server's default body limit (SGTM_MAX_BODY_BYTES)


def check_event(got: Received) -> str | None:
    """The http_request tag's default body: the event data as a JSON object."""
    try:
        event = json.loads(got.body)
    except ValueError:
        return "body is not JSON"
    if not isinstance(event, dict) or not isinstance(event.get("event_name"), str):
        return "no event_name"
    return None


@pytest.fixture(scope="module")
def vendor() -> Iterator[FakeVendor]:
    with FakeVendor(check=check_event) as fake:
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, vendor: FakeVendor) -> Iterator[SgtmServer]:
    config = tmp_path_factory.mktemp("datalayer") / "web.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            origins: [{ORIGIN}]
            clients:
              - name: web
                type: datalayer
                # The server's own limit is what these tests reach (the client's default is
                # 64 KiB: tests/plugins/test_datalayer.py).
                settings: {{max_body_bytes: 1048576}}
            triggers:
              everything: {{all: []}}
            tags:
              - name: vendor
                type: http_request
                triggers: [everything]
                settings: {{url: "{vendor.url}/collect"}}
            """
        )
    )
    with SgtmServer(config) as proc:
        yield proc


def test_script_over_http_gzip_etag_304(server: SgtmServer) -> None:
    url = f"{server.url}/sgtm.js"
    first = httpx.get(url, headers={"accept-encoding": "gzip"})
    assert first.status_code == 200
    assert first.headers["content-encoding"] == "gzip"
    assert first.content == script.SOURCE  # httpx decompressed it
    assert int(first.headers["content-length"]) == len(gzip.compress(script.SOURCE, 9))
    assert first.headers["content-type"] == "application/javascript; charset=utf-8"
    assert first.headers["cache-control"] == "public, max-age=3600"
    etag = first.headers["etag"]
    again = httpx.get(url, headers={"accept-encoding": "gzip", "if-none-match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    plain = httpx.get(url, headers={"accept-encoding": "identity"})
    assert plain.content == script.SOURCE and plain.headers["etag"] != etag
    head = httpx.head(url, headers={"accept-encoding": "identity"})
    assert (head.status_code, head.content, head.headers["etag"]) == (
        200,
        b"",
        plain.headers["etag"],
    )


def test_script_requested_with_cors_varies_on_both(server: SgtmServer) -> None:
    response = httpx.get(f"{server.url}/sgtm.js", headers={"origin": ORIGIN})
    assert response.headers["vary"] == "Accept-Encoding, Origin"
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_preflight_and_credentialed_post(server: SgtmServer, vendor: FakeVendor) -> None:
    preflight = httpx.options(
        f"{server.url}/data",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    other = httpx.options(f"{server.url}/data", headers={"origin": "https://evil.example"})
    assert other.status_code == 404 and "access-control-allow-origin" not in other.headers

    before = len(vendor.received)
    response = httpx.post(
        f"{server.url}/data",
        content=json.dumps([{"event": "http_a", "event_id": "id-a"}, {"event": "http_b"}]),
        headers={"origin": ORIGIN, "content-type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 200
    assert response.json()["events"] == 2
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["set-cookie"].startswith("_dcid=dcid.1.")
    got = vendor.wait_for(before + 2)
    sent = sorted(json.loads(r.body)["event_name"] for r in got[before:])
    assert sent == ["http_a", "http_b"]
    assert vendor.errors == []


def test_body_at_the_limit_is_accepted_and_over_it_refused(server: SgtmServer) -> None:
    head = b'{"event": "big", "pad": "'
    tail = b'"}'
    at_limit = head + b"x" * (LIMIT - len(head) - len(tail)) + tail
    assert len(at_limit) == LIMIT
    response = httpx.post(f"{server.url}/data", content=at_limit, timeout=30)
    assert response.status_code == 200 and response.json()["events"] == 1
    over = httpx.post(f"{server.url}/data", content=at_limit + b" ", timeout=30)
    assert over.status_code == 413
    assert over.text == f"request body over the {LIMIT}-byte limit\n"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for _ in range(17):
            yield b" " * 65536

    chunked = httpx.post(f"{server.url}/data", content=chunks(), timeout=30)
    assert chunked.status_code == 413


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"\xff\xfe\x00", 400),
        (b"[" * 200_000, 400),
        (b'{"event": 1}', 400),
        (b"[]", 400),
    ],
)
def test_hostile_bodies_over_http_never_500(
    server: SgtmServer, content: bytes, status: int
) -> None:
    response = httpx.post(f"{server.url}/data", content=content)
    assert response.status_code == status, response.text


def test_data_tag_pixel_over_http(server: SgtmServer) -> None:
    response = httpx.get(f"{server.url}/data", params={"v": "2", "event": "page_view"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content[:6] == b"GIF89a"
