"""sgtm/ingress.py: Host rules, routing, and the HitRequest both `serve` and `emulate` build."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from sgtm.app import create_app
from sgtm.config import ContainerSpec, load_text
from sgtm.container import Container, HandleResult
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.emulate import Emulator, InputError, RequestLine
from sgtm.ingress import BadHost, HostRouter, hit_request, host_name, merge_headers, request_host
from sgtm.privacy import PrivacyPolicy, parse_networks
from tests.asgi import call
from tests.installed import registry

LB = PrivacyPolicy(trusted_proxies=parse_networks(["10.0.0.0/8"]))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("shop.example", "shop.example"),
        ("Shop.EXAMPLE", "shop.example"),
        ("shop.example.", "shop.example"),
        ("shop.example.:8443", "shop.example"),
        ("shop.example:", "shop.example"),
        (" shop.example ", "shop.example"),
        ("sgtm_1.shop-x.example", "sgtm_1.shop-x.example"),
        ("203.0.113.9:8080", "203.0.113.9"),
        ("[::1]:8080", "[::1]"),
        ("[2001:DB8::1]", "[2001:db8::1]"),
        ("localhost", "localhost"),
    ],
)
def test_host_name(value: str, expected: str) -> None:
    assert host_name(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        ".",
        ":443",
        "shop.example:https",
        "shop.example:44 3",
        "shop.example:٤٤٣",  # Unicode digits are not a port
        "shop example",
        "shop.example/admin",
        "shop.example, evil.example",
        "user@shop.example",
        "lojã.example",
        "shop.example\r\nx: y",
        "[::1",
        "[::1]x",
        "[zz::1]",
        "[1.2.3.4]",
        "[fe80::1%25eth0]",
        "a" * 300,
    ],
)
def test_host_name_refuses_what_is_not_a_host(value: str) -> None:
    with pytest.raises(BadHost):
        host_name(value)


def test_request_host_refuses_two_host_headers() -> None:
    assert request_host([("Host", "shop.example."), ("accept", "*/*")]) == "shop.example"
    assert request_host([("accept", "*/*")]) is None
    assert request_host([("host", "  ")]) is None
    with pytest.raises(BadHost, match="more than one Host"):
        request_host([("host", "shop.example"), ("HOST", "shop.example")])


def spec(text: str, name: str = "shop") -> ContainerSpec:
    return load_text(textwrap.dedent(text), f"{name}.yaml", registry(), environ={})


SHOP = """\
    version: 1
    hosts: [shop.example, "[::1]"]
    privacy: {trusted_proxies: [10.0.0.0/8]}
    clients: [{name: ga4, type: ga4}]
    """
OTHER = "version: 1\nname: other\n"


def test_router_routes_normalized_hosts_and_falls_back_to_the_default() -> None:
    shop = Container(spec(SHOP), RecorderDelivery(), None)  # type: ignore[arg-type]
    other = Container(spec(OTHER, "other"), RecorderDelivery(), None)  # type: ignore[arg-type]
    router = HostRouter([shop, other])
    assert router.route(host_name("SHOP.example.:443")) is shop
    assert router.route(host_name("[::1]:8080")) is shop
    assert router.route("elsewhere.example") is other
    assert router.route(None) is other
    assert HostRouter([shop]).route("elsewhere.example") is None


def test_config_hosts_are_normalized_like_requests() -> None:
    assert spec("version: 1\nhosts: [Shop.Example., 'b.example:8443']\n").hosts == (
        "shop.example",
        "b.example",
    )


def test_merge_headers_joins_repeats() -> None:
    merged = merge_headers([("Cookie", "a=1"), ("X-A", "1"), ("cookie", "b=2"), ("x-a", "2")])
    assert merged == {"cookie": "a=1; b=2", "x-a": "1, 2"}


def request(privacy: PrivacyPolicy = LB, **given: Any) -> Any:
    args: dict[str, Any] = {
        "method": "post",
        "target": "/g/collect?v=2&en=x%20y",
        "headers": [],
        "body": b"",
        "peer": "203.0.113.9",
        "scheme": "http",
        "host": "shop.example",
    }
    return hit_request(privacy, **{**args, **given})


def test_hit_request_fields() -> None:
    hit = request(target="/a%20b/c?x=%2F&y", headers=[("User-Agent", "t")], body=b"z")
    assert (hit.method, hit.path, hit.query_string) == ("POST", "/a b/c", "x=%2F&y")
    assert hit.query == {"x": "/", "y": ""}
    assert hit.headers == {"user-agent": "t"} and hit.body == b"z"
    assert (hit.client_ip, hit.scheme, hit.host) == ("203.0.113.9", "http", "shop.example")
    assert hit.trusted_sender is False
    assert request(target="").path == "/"


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client_ip", "trusted_sender"),
    [
        ("203.0.113.9", None, "203.0.113.9", False),
        ("203.0.113.9", "10.0.0.7", "203.0.113.9", False),  # an untrusted peer's header is ignored
        ("10.0.0.1", "198.51.100.4", "198.51.100.4", False),  # a browser behind the LB
        ("10.0.0.1", None, "10.0.0.1", True),  # a server in the trusted list, directly
        ("10.0.0.1", "10.0.0.7", "10.0.0.7", True),  # ... or through trusted hops only
        ("10.0.0.1", "10.0.0.7, 198.51.100.4", "198.51.100.4", False),
        (None, None, None, False),
    ],
)
def test_trusted_sender_is_the_resolved_client_not_the_peer(
    peer: str | None, forwarded_for: str | None, client_ip: str | None, trusted_sender: bool
) -> None:
    headers = [("x-forwarded-for", forwarded_for)] if forwarded_for else []
    hit = request(peer=peer, headers=headers)
    assert (hit.client_ip, hit.trusted_sender) == (client_ip, trusted_sender)


def test_client_ip_is_anonymized_after_trust_is_decided() -> None:
    policy = PrivacyPolicy(anonymize_ip=True, trusted_proxies=parse_networks(["10.0.0.7"]))
    hit = request(policy, peer="10.0.0.7")
    assert (hit.client_ip, hit.trusted_sender) == ("10.0.0.0", True)


@pytest.mark.parametrize(
    ("peer", "proto", "scheme"),
    [
        ("10.0.0.1", "https", "https"),
        ("10.0.0.1", "HTTPS, http", "https"),
        ("10.0.0.1", "javascript", "http"),  # only a scheme sgtm could have been reached by
        ("10.0.0.1", "", "http"),
        ("203.0.113.9", "https", "http"),  # not from a trusted proxy
    ],
)
def test_forwarded_proto_only_from_a_trusted_peer(peer: str, proto: str, scheme: str) -> None:
    assert request(peer=peer, headers=[("X-Forwarded-Proto", proto)]).scheme == scheme


# -- serve and emulate build the same request ---------------------------------------------------


def spy(container: Container, seen: list[Any]) -> None:
    async def handle(request: Any, *, trace: bool = False) -> HandleResult:
        seen.append(request)
        return await Container.handle(container, request, trace=trace)

    container.handle = handle  # type: ignore[method-assign]


async def test_serve_and_emulate_build_the_same_request() -> None:
    specs = [spec(SHOP)]
    app = create_app(specs, RecorderDelivery())
    emulator = Emulator(specs, now=1_700_000_000)
    served: list[Any] = []
    emulated: list[Any] = []
    spy(app.state.live.current.containers[0], served)
    spy(emulator.containers[0], emulated)
    headers = {
        "Host": "Shop.Example.",
        "X-Forwarded-For": "198.51.100.4",
        "X-Forwarded-Proto": "https",
        "Cookie": "_ga=GA1.1.1.2",
        "Content-Length": "4",
    }
    target = "/g/collect?v=2&tid=G-1&cid=1.2&en=page_view&dl=x%2Fy"
    answer = await call(
        app, "POST", target, list(headers.items()), [b"en=a"], client=("10.0.0.1", 1)
    )
    assert answer.status == 200
    await emulator.request(
        RequestLine(url=target, method="post", headers=headers, body="en=a", ip="10.0.0.1")
    )
    assert served == emulated
    (hit,) = served
    assert (hit.scheme, hit.host, hit.client_ip) == ("https", "shop.example", "198.51.100.4")


async def test_emulate_routes_like_serve() -> None:
    emulator = Emulator([spec(SHOP)], now=1_700_000_000)
    for url in ("https://shop.example./g/collect", "https://user@SHOP.example:443/g/collect"):
        await emulator.request(RequestLine(url=url + "?v=2&tid=G-1&en=x"))
    with pytest.raises(InputError, match=r"no container serves host 'b\.example'"):
        await emulator.request(RequestLine(url="/g/collect", host="b.example"))
    with pytest.raises(InputError, match="not a host"):
        await emulator.request(RequestLine(url="/g/collect", host="bad host"))


@pytest.mark.parametrize(
    ("headers", "status", "body"),
    [
        ([("host", "shop.example."), ("host", "shop.example.")], 400, b"more than one Host"),
        ([("host", "shop.example, other.example")], 400, b"not a host"),
        ([("host", "shop.example.")], 200, b""),
        ([("host", "elsewhere.example")], 404, b"unknown host"),
    ],
)
async def test_server_refuses_bad_or_repeated_hosts(
    headers: list[tuple[str, str]], status: int, body: bytes
) -> None:
    app = create_app([spec(SHOP)], RecorderDelivery())
    answer = await call(app, "GET", "/g/collect?v=2&tid=G-1&cid=1.2&en=x", headers)
    assert answer.status == status
    assert body in answer.body
