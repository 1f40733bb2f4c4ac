"""Client IP resolution and anonymization: pure functions, stdlib `ipaddress` only.

The ingress (sgtm/ingress.py) calls `PrivacyPolicy.sender(peer, x_forwarded_for)` once per
request; the result is what clients see as `HitRequest.client_ip` and whether the hit may carry
an IP of its own. Trusted proxy networks are parsed once, at config load (`parse_networks`),
never per request.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field
from typing import TypeAlias

from sgtm.memo import remember

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv4-mapped IPv6 space (::ffff:a.b.c.d): dual-stack sockets report IPv4 peers this way.
_MAPPED_PREFIXLEN = 96


def parse_networks(values: list[str]) -> tuple[IPNetwork, ...]:
    """Parse CIDRs and single addresses ("10.0.0.0/8", "::1") into networks.

    Raises ValueError naming the offending value. Host bits must be clear ("10.0.0.1/8" is
    rejected): in a trust list a typo should fail loudly, not silently widen or narrow trust.
    """
    networks: list[IPNetwork] = []
    for value in values:
        if not isinstance(value, str):  # YAML may hand us ints; ip_network(10) is 0.0.0.10/32
            raise ValueError(f"invalid network {value!r}: expected a string")
        try:
            net = ipaddress.ip_network(value.strip())
        except ValueError as exc:
            raise ValueError(f"invalid network {value!r}: {exc}") from None
        # Addresses are matched after mapped -> IPv4 conversion, so convert mapped networks too,
        # otherwise "::ffff:10.0.0.0/104" would silently never match anything.
        mapped = net.network_address.ipv4_mapped if net.version == 6 else None
        if mapped is not None and net.prefixlen >= _MAPPED_PREFIXLEN:
            net = ipaddress.IPv4Network((mapped, net.prefixlen - _MAPPED_PREFIXLEN))
        networks.append(net)
    return tuple(networks)


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit()


# Pure functions of one string, called for every hit with the same few addresses (a visitor's,
# a proxy's): cached, bounded. ipaddress objects are immutable, so sharing them is safe.
@functools.lru_cache(maxsize=8192)
def _parse_ip(value: str | None) -> IPAddress | None:
    """Parse one address as it appears in a socket peer or a forwarding header.

    Accepts "1.2.3.4", "1.2.3.4:5678", "2001:db8::1", "[2001:db8::1]:443", "fe80::1%eth0".
    IPv4-mapped IPv6 comes back as IPv4 so one address has one spelling and matches v4 networks.
    """
    if value is None:
        return None
    text = value.strip()
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :]
        if end == -1 or (rest and not (rest[0] == ":" and _is_port(rest[1:]))):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # exactly one colon: IPv4 with a port (bare IPv6 has >= 2)
        text, _, port = text.partition(":")
        if not _is_port(port):
            return None
    if ":" in text:  # zone ids only exist on IPv6; "1.2.3.4%x" stays invalid
        text = text.partition("%")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_trusted(ip: IPAddress, trusted: tuple[IPNetwork, ...]) -> bool:
    # `in` is simply False across IP versions, so mixed v4/v6 lists need no special casing.
    return any(ip in net for net in trusted)


def normalize_ip(ip: str | None) -> str | None:
    """Canonical form of an address (port, brackets, zone stripped; mapped -> IPv4), or None."""
    parsed = _parse_ip(ip)
    return None if parsed is None else str(parsed)


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted: tuple[IPNetwork, ...]
) -> str | None:
    """The client's address, given the socket peer and the X-Forwarded-For header.

    X-Forwarded-For is only believed when the peer is a trusted proxy. Each proxy appends the
    address it received the request from, so the header is written right to left by hops we
    can vouch for, while everything left of the first untrusted hop is whatever the client sent.
    Hence: walk from the right, skipping trusted proxies; the first untrusted address is the
    client. A non-address entry means the hop that wrote it is broken or the value was forged,
    and nothing left of it is reliable, so we stop and answer the nearest trusted hop reached.
    If every entry is trusted, the leftmost is the best we know.
    """
    current = _parse_ip(peer)
    if current is None:
        return None
    if not forwarded_for or not _is_trusted(current, trusted):
        return str(current)
    for entry in reversed(forwarded_for.split(",")):
        hop = _parse_ip(entry)
        if hop is None:
            break
        current = hop
        if not _is_trusted(hop, trusted):
            break
    return str(current)


@functools.lru_cache(maxsize=8192)
def anonymize_ip(ip: str | None) -> str | None:
    """Truncate an address: IPv4 to /24 (a.b.c.0), IPv6 to /64. None when invalid."""
    parsed = _parse_ip(ip)
    if parsed is None:
        return None
    if isinstance(parsed, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Address(int(parsed) & 0xFFFFFF00))
    return str(ipaddress.IPv6Address(int(parsed) & ~((1 << 64) - 1)))


@dataclass(frozen=True, slots=True)
class PrivacyPolicy:
    anonymize_ip: bool = False
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # Answers by (peer, X-Forwarded-For) and trust by address: requests come from the same few
    # peers (a visitor, a load balancer) with the same few X-Forwarded-For values. Kept on the
    # policy, not in a cache keyed by it: hashing the policy hashes each network in Python,
    # which cost as much as the answer. Bounded memos (sgtm/memo.py).
    _senders: dict[tuple[str | None, str | None], tuple[str | None, bool]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _trusted: dict[str | None, bool] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str | None:
        return self.sender(peer, forwarded_for)[0]

    def sender(self, peer: str | None, forwarded_for: str | None) -> tuple[str | None, bool]:
        """The client IP as clients see it (anonymized when asked), and whether the sender itself
        is in `trusted_proxies`.

        A sender is trusted when the request came *from* a trusted address, not merely through
        one: behind a trusted load balancer, a browser's request resolves to the browser's
        (untrusted) address, while a server in the trusted list that calls sgtm directly, or
        through trusted proxies only, is trusted. Only a trusted sender's hit may name its own
        client IP (GA4 `_uip`, an event's `ip_override`).
        """
        key = (peer, forwarded_for)
        answer = self._senders.get(key)
        if answer is None:
            ip = client_ip(peer, forwarded_for, self.trusted_proxies)
            answer = (anonymize_ip(ip) if self.anonymize_ip else ip), self.is_trusted(ip)
            # A longer header, a client's invention, is resolved uncached.
            if forwarded_for is None or len(forwarded_for) <= _MAX_CACHED_FORWARDED_FOR:
                remember(self._senders, key, answer, _MAX_CACHED)
        return answer

    def is_trusted(self, address: str | None) -> bool:
        """Whether an address (a socket peer: then we believe its X-Forwarded-* headers) is in
        `trusted_proxies`."""
        if not self.trusted_proxies:
            return False
        trusted = self._trusted.get(address)
        if trusted is None:
            parsed = _parse_ip(address)
            trusted = parsed is not None and _is_trusted(parsed, self.trusted_proxies)
            if address is None or len(address) <= _MAX_CACHED_FORWARDED_FOR:
                remember(self._trusted, address, trusted, _MAX_CACHED)
        return trusted


_MAX_CACHED_FORWARDED_FOR = 256
_MAX_CACHED = 4096
