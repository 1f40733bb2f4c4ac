"""Wrong admin tokens are throttled per client, on every surface that takes the token (the admin
API, the UI's login form, /metrics), with one table: on a real server, the client as the hit
path resolves it (X-Forwarded-For only from a trusted proxy). The table's bounds: pure code,
below."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sgtm.admin.auth import TokenThrottle, client_key
from tests.servers import SgtmServer
from tests.test_admin import TOKEN

RIGHT = {"authorization": f"Bearer {TOKEN}"}


def serve(tmp_path: Path, privacy: str = "") -> SgtmServer:
    config = tmp_path / "shop.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            {privacy}
            clients:
              - {{name: ga4, type: ga4}}
            """
        )
    )
    env = {"SGTM_ADMIN_TOKEN": TOKEN, "SGTM_DATA_DIR": str(tmp_path / "data")}
    return SgtmServer(config, env)


@pytest.fixture
def server(tmp_path) -> Iterator[SgtmServer]:
    with serve(tmp_path) as running:
        yield running


@pytest.fixture
def behind_proxy(tmp_path) -> Iterator[SgtmServer]:
    """A server whose container trusts its loopback peer as a load balancer."""
    with serve(tmp_path, "privacy: {trusted_proxies: [127.0.0.1/32]}") as running:
        yield running


def health(server: SgtmServer, headers: dict[str, Any]) -> httpx.Response:
    return httpx.get(f"{server.url}/_sgtm/api/health", headers=headers)


def metrics(server: SgtmServer, headers: dict[str, Any]) -> httpx.Response:
    return httpx.get(f"{server.url}/metrics", headers=headers)


def login(server: SgtmServer, token: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}/_sgtm/login", data={"token": token}, headers=headers)


def assert_locked(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert 1 <= int(answer.headers["retry-after"]) <= 60
    assert "set-cookie" not in answer.headers


@pytest.mark.parametrize("surface", [health, metrics])
def test_wrong_bearer_tokens_are_throttled_and_then_even_the_right_one_waits(server, surface):
    codes = [surface(server, {"authorization": f"Bearer guess{n}"}).status_code for n in range(10)]
    assert codes == [401] * 10
    assert_locked(surface(server, {"authorization": "Bearer guess10"}))
    # Locked: the token is not even compared, so the right one tells nothing either.
    assert_locked(surface(server, RIGHT))


def test_one_throttle_for_the_api_the_login_form_and_metrics(server):
    for n in range(4):
        assert health(server, {"authorization": f"Bearer a{n}"}).status_code == 401
        assert metrics(server, {"authorization": f"Bearer m{n}"}).status_code == 401
    assert login(server, "form0").status_code == 401
    assert login(server, "form1").status_code == 401  # the tenth
    assert_locked(login(server, TOKEN))
    assert_locked(health(server, RIGHT))
    assert_locked(metrics(server, RIGHT))
    # What proves no knowledge of the token is not a guess and is answered as always.
    assert health(server, {}).status_code == 401
    assert metrics(server, {}).status_code == 401
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_requests_without_a_token_or_with_a_bad_cookie_are_not_counted(server):
    for _ in range(12):
        assert health(server, {}).status_code == 401
        assert health(server, {"cookie": "sgtm_admin=1.2.3"}).status_code == 401
        assert metrics(server, {}).status_code == 401
    assert health(server, RIGHT).status_code == 200
    assert metrics(server, RIGHT).status_code == 200


def test_a_login_session_keeps_working_while_its_address_is_locked(server):
    client = httpx.Client(base_url=server.url)
    assert client.post("/_sgtm/login", data={"token": TOKEN}).status_code == 303
    for n in range(10):
        assert health(server, {"authorization": f"Bearer guess{n}"}).status_code == 401
    assert_locked(health(server, RIGHT))
    assert client.get("/_sgtm/api/health").status_code == 200


def test_without_a_trusted_proxy_x_forwarded_for_does_not_change_the_client(server):
    """A client rotating X-Forwarded-For values is still its socket's address."""
    for n in range(10):
        spoof = {"authorization": f"Bearer guess{n}", "x-forwarded-for": f"198.51.100.{n}"}
        assert health(server, spoof).status_code == 401
    assert_locked(health(server, {**RIGHT, "x-forwarded-for": "198.51.100.77"}))
    assert_locked(metrics(server, {**RIGHT, "x-forwarded-for": "203.0.113.1"}))


def test_behind_a_trusted_proxy_each_client_is_locked_alone(behind_proxy):
    server = behind_proxy
    attacker = {"x-forwarded-for": "198.51.100.7"}
    for n in range(10):
        assert health(server, {**attacker, "authorization": f"Bearer g{n}"}).status_code == 401
    assert_locked(health(server, {**attacker, **RIGHT}))
    assert_locked(login(server, TOKEN, attacker))
    # Everyone else reaches sgtm through the same load balancer and is not locked out.
    operator = {"x-forwarded-for": "203.0.113.5"}
    assert health(server, {**operator, **RIGHT}).status_code == 200
    assert metrics(server, {**operator, **RIGHT}).status_code == 200
    assert login(server, TOKEN, operator).status_code == 303
    # The proxy's own requests (no X-Forwarded-For) are a client of their own.
    assert health(server, RIGHT).status_code == 200
    # The client is the first untrusted hop from the right: a forged left part changes nothing.
    forged = {"x-forwarded-for": "203.0.113.5, 198.51.100.7", **RIGHT}
    assert_locked(health(server, forged))


def test_a_host_the_hit_path_refuses_trusts_no_proxy(behind_proxy):
    server = behind_proxy
    for n in range(10):  # the load balancer's own address, locked out
        assert health(server, {"authorization": f"Bearer g{n}"}).status_code == 401
    for host in ("not a host", "shop.example:x"):
        hostile = {"host": host, "x-forwarded-for": "203.0.113.5", **RIGHT}
        assert_locked(health(server, hostile))
    assert health(server, {"x-forwarded-for": "203.0.113.5", **RIGHT}).status_code == 200


def test_an_ipv6_client_is_its_slash_64(behind_proxy):
    server = behind_proxy
    for n in range(10):
        hop = {"x-forwarded-for": f"2001:db8:1:2::{n + 1:x}", "authorization": f"Bearer g{n}"}
        assert health(server, hop).status_code == 401
    assert_locked(health(server, {"x-forwarded-for": "2001:db8:1:2:ffff::1", **RIGHT}))
    assert health(server, {"x-forwarded-for": "2001:db8:1:3::1", **RIGHT}).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer " + "a" * 60_000,  # oversized
        "Bearer \xe9\xff".encode("latin-1"),  # not ASCII
        "Basic " + TOKEN,  # another scheme
        "Bearer",  # no token
        "",
    ],
)
def test_hostile_authorization_headers_are_wrong_tokens_not_errors(server, authorization):
    answers = [metrics(server, {"authorization": authorization}) for _ in range(10)]
    assert {a.status_code for a in answers} == {401}
    assert_locked(health(server, {"authorization": authorization}))


def test_two_authorization_headers_count_as_a_wrong_token(server):
    both = [("authorization", f"Bearer {TOKEN}"), ("authorization", f"Bearer {TOKEN}")]
    for _ in range(10):
        assert httpx.get(f"{server.url}/metrics", headers=both).status_code == 401
    assert_locked(metrics(server, RIGHT))


def test_the_proxies_trusted_are_those_of_the_container_the_host_routes_to(tmp_path):
    """As for a hit: `Host: shop.example` routes to the container that trusts the load balancer,
    any other host to the default container, which trusts no one."""
    (tmp_path / "shop.yaml").write_text(
        "version: 1\nhosts: [shop.example]\nprivacy: {trusted_proxies: [127.0.0.1/32]}\n"
    )
    (tmp_path / "other.yaml").write_text("version: 1\n")
    env = {"SGTM_ADMIN_TOKEN": TOKEN, "SGTM_DATA_DIR": str(tmp_path / "data")}
    with SgtmServer(tmp_path, env) as server:
        for n in range(10):
            other = {"host": "other.example", "x-forwarded-for": f"198.51.100.{n}"}
            assert metrics(server, {**other, "authorization": f"Bearer g{n}"}).status_code == 401
        # Through the default container all ten were the load balancer's own address...
        assert_locked(metrics(server, {"host": "other.example", **RIGHT}))
        assert_locked(metrics(server, {"host": "shop.example", **RIGHT}))
        # ...which the shop's container sees past, to each client.
        shop = {"host": "shop.example", "x-forwarded-for": "198.51.100.1", **RIGHT}
        assert metrics(server, shop).status_code == 200
        assert health(server, shop).status_code == 200


# -- the table ----------------------------------------------------------------------------------


def test_the_lock_lasts_per_seconds_from_the_failure_that_made_it():
    throttle = TokenThrottle(limit=3, per=60.0)
    assert not throttle.failed("a", 0.0)
    assert not throttle.failed("a", 10.0)
    assert throttle.failed("a", 20.0)
    assert throttle.wait("a", 20.0) == 60.0
    assert throttle.wait("a", 79.5) == 0.5
    assert throttle.wait("a", 80.0) == 0.0
    assert throttle.wait("b", 30.0) == 0.0
    assert len(throttle) == 0  # an ended lock leaves the table


def test_failures_older_than_per_are_forgotten():
    throttle = TokenThrottle(limit=3, per=60.0)
    assert not throttle.failed("a", 0.0)
    assert not throttle.failed("a", 30.0)
    assert not throttle.failed("a", 61.0)  # the first is a minute old: two in the window
    assert throttle.wait("a", 61.0) == 0.0
    assert throttle.failed("a", 62.0)


def test_the_table_is_bounded_and_rotating_addresses_keeps_recent_lockouts():
    throttle = TokenThrottle(limit=10, per=60.0, size=10_000)
    for n in range(10):
        throttle.failed("198.51.100.7", float(n) / 100)
    assert throttle.wait("198.51.100.7", 1.0) > 0
    # An attacker rotating through 20,000 addresses, one wrong token each, within the minute.
    for n in range(20_000):
        throttle.failed(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", 1.0 + n / 1_000_000)
        assert len(throttle) <= 10_001
    assert throttle.wait("198.51.100.7", 30.0) > 0  # still locked
    # The addresses counted are the most recent ones: the oldest were forgotten first.
    assert "10.0.0.0" not in throttle._failing and "10.0.78.31" in throttle._failing


def test_locks_are_bounded_too_and_the_oldest_goes_first():
    throttle = TokenThrottle(limit=1, per=60.0, size=100)
    for n in range(150):
        assert throttle.failed(f"c{n}", n / 1000)
    assert len(throttle) == 100
    assert throttle.wait("c0", 1.0) == 0.0 and throttle.wait("c149", 1.0) > 0


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        (None, "-"),
    ],
)
def test_client_keys(ip, key):
    assert client_key(ip) == key
