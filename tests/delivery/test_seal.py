"""Sealing secrets and filling credentials rewrite URL, headers and body, and nothing else."""

from __future__ import annotations

import msgspec

from sgtm.delivery.credentials import fill
from sgtm.delivery.seal import SecretSeal
from sgtm.plugin import CREDENTIAL, Credential, Outbound

SECRET = "sk_live_9f8e7d6c"


def outbound(url: str, header: str, body: bytes) -> Outbound:
    return Outbound(
        method="POST",
        url=url,
        headers={"Authorization": header},
        body=body,
        destination="acct-1",
        idempotency_key="event-1",
        timeout=3.0,
        batch_item={"n": 1},
        batch_key="client-7",
    )


def test_seal_round_trip_keeps_every_other_field():
    seal = SecretSeal({SECRET: "API_SECRET"})
    original = outbound(f"https://v.example/c?key={SECRET}", f"Bearer {SECRET}", SECRET.encode())
    sealed = seal.seal(original)
    assert SECRET not in msgspec.json.encode(sealed).decode()
    assert sealed.url == "https://v.example/c?key={{secret.API_SECRET}}"
    unchanged = ("method", "destination", "idempotency_key", "timeout", "batch_item", "batch_key")
    for name in unchanged:
        assert getattr(sealed, name) == getattr(original, name), name
    assert seal.unseal(sealed) == original


def test_fill_replaces_credentials_and_keeps_every_other_field():
    template = outbound("https://v.example/{{credential.instance}}/c", f"Bearer {CREDENTIAL}", b"x")
    filled = fill(template, Credential(token="tok-1", values={"instance": "eu7"}))
    assert filled.url == "https://v.example/eu7/c"
    assert filled.headers == {"Authorization": "Bearer tok-1"}
    assert msgspec.structs.replace(filled, url=template.url, headers=template.headers) == template
