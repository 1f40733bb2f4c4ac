"""A hit that names its own client IP (GA4 `_uip`, an event's `ip_override`) is believed only from
a trusted sender or a client configured to trust it; the core settles it once, for every client."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from sgtm.config import load_text
from sgtm.emulate import Emulator, RequestLine
from sgtm.yamlsource import ConfigErrors
from tests.installed import registry

GA4 = "/g/collect?v=2&tid=G-1&cid=1.2&en=page_view&_uip=8.8.4.4"


def emulator(anonymize: bool = False) -> Emulator:
    text = f"""\
        version: 1
        privacy: {{trusted_proxies: [10.0.0.0/8], anonymize_ip: {str(anonymize).lower()}}}
        clients:
          - {{name: ga4, type: ga4}}
          - {{name: web, type: datalayer, settings: {{script_path: null}}}}
          - name: s2s
            type: datalayer
            trust_hit_ip: true
            settings: {{path: /s2s, script_path: null}}
        """
    spec = load_text(textwrap.dedent(text), "shop.yaml", registry(), environ={})
    return Emulator([spec], now=1_700_000_000)


async def ips(emu: Emulator, line: RequestLine) -> list[Any]:
    result = await emu.request(line)
    assert result["response"]["status"] == 200, result
    return [e["data"].get("ip_override", "<absent>") for e in result["events"]]


def datalayer(path: str, ip: str, **line: Any) -> RequestLine:
    body = json.dumps([{"event": "a", "ip_override": "8.8.4.4"}, {"event": "b"}])
    headers = {"content-type": "application/json"}
    return RequestLine(url=path, method="POST", headers=headers, body=body, ip=ip, **line)


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),  # an untrusted peer
        ("10.0.0.1", "198.51.100.4", "198.51.100.4"),  # a browser behind the trusted LB
        ("10.0.0.1", None, "8.8.4.4"),  # a trusted server calling directly
        ("10.0.0.1", "10.0.0.2", "8.8.4.4"),  # ... or through trusted proxies only
    ],
)
async def test_ga4_uip_only_from_a_trusted_sender(
    peer: str, forwarded_for: str | None, expected: str
) -> None:
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    line = RequestLine(url=GA4, headers=headers, ip=peer)
    assert await ips(emulator(), line) == [expected]


async def test_datalayer_ip_override_is_replaced_for_every_event_of_an_untrusted_hit() -> None:
    emu = emulator()
    assert await ips(emu, datalayer("/data", "203.0.113.9")) == ["203.0.113.9"] * 2
    reason = "web.untrusted_hit_ip"
    assert (
        emu.containers[0].metrics.value("sgtm_dropped_total", container="shop", reason=reason) == 1
    )


async def test_a_client_configured_to_trust_hit_ips_keeps_them() -> None:
    got = await ips(emulator(), datalayer("/s2s", "203.0.113.9"))
    assert got == ["8.8.4.4", "203.0.113.9"]


async def test_believed_and_replaced_ips_are_both_anonymized() -> None:
    emu = emulator(anonymize=True)
    assert await ips(emu, RequestLine(url=GA4, ip="10.0.0.1")) == ["8.8.4.0"]
    assert await ips(emu, RequestLine(url=GA4, ip="203.0.113.9")) == ["203.0.113.0"]
    assert await ips(emu, datalayer("/s2s", "203.0.113.9")) == ["8.8.4.0", "203.0.113.0"]


async def test_without_a_client_ip_a_claimed_ip_is_removed() -> None:
    assert await ips(emulator(), RequestLine(url=GA4, ip=None)) == ["<absent>"]


def test_trust_hit_ip_must_be_a_boolean() -> None:
    text = "version: 1\nclients:\n  - {name: s2s, type: datalayer, trust_hit_ip: 'yes'}\n"
    with pytest.raises(ConfigErrors) as caught:
        load_text(text, "shop.yaml", registry(), environ={})
    (error,) = caught.value.errors
    assert str(error) == "shop.yaml:3:48: clients[0].trust_hit_ip: Expected `bool`, got `str`"
