from __future__ import annotations

import ipaddress
import re

import pytest

from sgtm.privacy import (
    PrivacyPolicy,
    anonymize_ip,
    client_ip,
    normalize_ip,
    parse_networks,
)

TRUSTED = parse_networks(["10.0.0.0/8", "192.168.1.5", "::1", "fd00::/8"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("  1.2.3.4  ", "1.2.3.4"),
        ("1.2.3.4:5678", "1.2.3.4"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0DB8:0000::0001", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[fe80::1%eth0]:443", "fe80::1"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("::ffff:102:304", "1.2.3.4"),
        ("[::ffff:1.2.3.4]:80", "1.2.3.4"),
        ("::1", "::1"),
        # invalid
        (None, None),
        ("", None),
        ("   ", None),
        ("abc", None),
        ("unknown", None),
        ("999.1.1.1", None),
        ("1.2.3", None),
        ("1.2.3.4:", None),
        ("1.2.3.4:http", None),
        ("1.2.3.4%eth0", None),
        ("[2001:db8::1", None),
        ("[2001:db8::1]443", None),
        ("[2001:db8::1]:x", None),
        ("[1.2.3.4:80]", None),
    ],
)
def test_normalize_ip(raw: str | None, expected: str | None) -> None:
    assert normalize_ip(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1.2.3.4", "1.2.3.0"),
        ("1.2.3.4:5678", "1.2.3.0"),
        ("255.255.255.255", "255.255.255.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3:8d3::"),
        ("[2001:db8:85a3:8d3:1319:8a2e:370:7348]:443", "2001:db8:85a3:8d3::"),
        ("fe80::1%eth0", "fe80::"),
        ("::1", "::"),
        ("::ffff:1.2.3.4", "1.2.3.0"),
        ("[::ffff:1.2.3.4]:80", "1.2.3.0"),
        (None, None),
        ("", None),
        ("abc", None),
        ("999.1.1.1", None),
        ("1.2.3", None),
    ],
)
def test_anonymize_ip(raw: str | None, expected: str | None) -> None:
    assert anonymize_ip(raw) == expected


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # no proxies involved
        ("1.2.3.4", None, "1.2.3.4"),
        ("1.2.3.4:5678", "", "1.2.3.4"),
        ("::ffff:1.2.3.4", None, "1.2.3.4"),
        # invalid peer: nothing to report, whatever the header says
        (None, "1.2.3.4", None),
        ("", "1.2.3.4", None),
        ("abc", None, None),
        # untrusted peer: a spoofed header is ignored entirely
        ("1.2.3.4", "6.6.6.6", "1.2.3.4"),
        ("1.2.3.4", "6.6.6.6, 10.0.0.1", "1.2.3.4"),
        ("2001:db8::1", "6.6.6.6", "2001:db8::1"),
        # trusted peer without a usable header: the peer itself
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", "", "10.0.0.1"),
        # trusted peer, one hop
        ("10.0.0.1", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.1:443", " 1.2.3.4:5555 ", "1.2.3.4"),
        ("192.168.1.5", "1.2.3.4", "1.2.3.4"),
        ("::ffff:10.0.0.1", "::ffff:1.2.3.4", "1.2.3.4"),
        # client-supplied entries left of the real client are ignored
        ("10.0.0.1", "6.6.6.6, 1.2.3.4", "1.2.3.4"),
        # chain of trusted proxies is skipped from the right
        ("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.3, 10.0.0.2", "1.2.3.4"),
        ("10.0.0.1", "1.2.3.4,10.0.0.2", "1.2.3.4"),
        # all trusted: leftmost
        ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),
        ("10.0.0.1", "192.168.1.5", "192.168.1.5"),
        # garbage stops the walk at the nearest trusted hop reached
        ("10.0.0.1", "unknown", "10.0.0.1"),
        ("10.0.0.1", "1.2.3.4, garbage", "10.0.0.1"),
        ("10.0.0.1", "1.2.3.4, unknown, 10.0.0.2", "10.0.0.2"),
        ("10.0.0.1", "1.2.3.4, , 10.0.0.2", "10.0.0.2"),
        ("10.0.0.1", "1.2.3.4, 10.0.0.2,", "10.0.0.1"),
        ("10.0.0.1", "999.1.1.1, 10.0.0.2", "10.0.0.2"),
        # garbage left of the client is never reached
        ("10.0.0.1", "garbage, 1.2.3.4", "1.2.3.4"),
        # IPv6 proxies
        ("::1", "2001:db8::1", "2001:db8::1"),
        ("[fd00::2]:443", "[2001:db8::1]:1234, fd12::1", "2001:db8::1"),
        ("fd00::2", "1.2.3.4, fd00::3", "1.2.3.4"),
        ("10.0.0.1", "2001:db8::1, fd00::3", "2001:db8::1"),
        ("fd00::2", "fd00::4, fd00::3", "fd00::4"),
        ("fe80::1%eth0", "1.2.3.4", "fe80::1"),
    ],
)
def test_client_ip(peer: str | None, xff: str | None, expected: str | None) -> None:
    assert client_ip(peer, xff, TRUSTED) == expected


def test_client_ip_without_trusted_proxies_ignores_header() -> None:
    assert client_ip("10.0.0.1", "1.2.3.4", ()) == "10.0.0.1"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], ()),
        (["10.0.0.0/8"], (ipaddress.IPv4Network("10.0.0.0/8"),)),
        (["192.168.1.5"], (ipaddress.IPv4Network("192.168.1.5/32"),)),
        ([" 192.168.1.5 "], (ipaddress.IPv4Network("192.168.1.5/32"),)),
        (["::1"], (ipaddress.IPv6Network("::1/128"),)),
        (["fd00::/8"], (ipaddress.IPv6Network("fd00::/8"),)),
        # mapped networks become IPv4, since mapped addresses are matched as IPv4
        (["::ffff:10.0.0.0/104"], (ipaddress.IPv4Network("10.0.0.0/8"),)),
        (["::ffff:1.2.3.4"], (ipaddress.IPv4Network("1.2.3.4/32"),)),
        (
            ["10.0.0.0/8", "::1"],
            (ipaddress.IPv4Network("10.0.0.0/8"), ipaddress.IPv6Network("::1/128")),
        ),
    ],
)
def test_parse_networks(values: list[str], expected: tuple[object, ...]) -> None:
    assert parse_networks(values) == expected


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "999.1.1.1", "1.2.3", "10.0.0.0/33", "10.0.0.1/8", "fd00::/129", "1.2.3.4:80"],
)
def test_parse_networks_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"invalid network {bad!r}")):
        parse_networks(["10.0.0.0/8", bad])


def test_parse_networks_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="invalid network 10: expected a string"):
        parse_networks([10])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("policy", "peer", "xff", "expected"),
    [
        (PrivacyPolicy(), "1.2.3.4", "6.6.6.6", "1.2.3.4"),
        (PrivacyPolicy(anonymize_ip=True), "1.2.3.4", "6.6.6.6", "1.2.3.0"),
        (PrivacyPolicy(trusted_proxies=TRUSTED), "10.0.0.1", "1.2.3.4", "1.2.3.4"),
        (
            PrivacyPolicy(anonymize_ip=True, trusted_proxies=TRUSTED),
            "10.0.0.1",
            "2001:db8:85a3:8d3:1319:8a2e:370:7348",
            "2001:db8:85a3:8d3::",
        ),
        (PrivacyPolicy(anonymize_ip=True), None, None, None),
        (PrivacyPolicy(anonymize_ip=True), "abc", None, None),
    ],
)
def test_policy_resolve(
    policy: PrivacyPolicy, peer: str | None, xff: str | None, expected: str | None
) -> None:
    assert policy.resolve(peer, xff) == expected


def test_policy_is_frozen() -> None:
    with pytest.raises(AttributeError):
        PrivacyPolicy().anonymize_ip = True  # type: ignore[misc]
