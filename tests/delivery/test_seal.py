"""Sealing secrets and filling credentials: placeholders are bound to their job's nonce, rewrite
URL, headers and body, and nothing else; text from a hit is never filled."""

from __future__ import annotations

import msgspec
import pytest

from sgtm import placeholders
from sgtm.delivery.credentials import fill, needs_credential
from sgtm.delivery.seal import SecretSeal
from sgtm.plugin import BuildContext, ContainerInfo, Credential, Outbound

SECRET = "sk_live_9f8e7d6c"
NONCE = "a1b2c3d4e5f6"


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
    sealed, found = seal.seal(original, NONCE)
    assert found
    assert SECRET not in msgspec.json.encode(sealed).decode()
    assert sealed.url == "https://v.example/c?key={{secret.API_SECRET@" + NONCE + "}}"
    unchanged = ("method", "destination", "idempotency_key", "timeout", "batch_item", "batch_key")
    for name in unchanged:
        assert getattr(sealed, name) == getattr(original, name), name
    assert seal.unseal(sealed, {NONCE}) == original


def test_seal_without_a_secret_changes_nothing_and_needs_no_nonce():
    seal = SecretSeal({SECRET: "API_SECRET"})
    original = outbound("https://v.example/c", "Bearer x", b"{}")
    assert seal.seal(original, NONCE) == (original, "")


def test_a_nonce_is_drawn_only_when_a_secret_is_found_and_once_per_request():
    seal = SecretSeal({SECRET: "API_SECRET"})
    draws: list[str] = []

    def draw() -> str:
        draws.append(NONCE)
        return NONCE

    plain = outbound("https://v.example/c", "Bearer x", b"{}")
    assert seal.seal(plain, draw) == (plain, "")
    assert draws == []
    secretive = outbound(f"https://v.example/c?key={SECRET}", f"Bearer {SECRET}", SECRET.encode())
    sealed, bound = seal.seal(secretive, draw)
    assert (bound, draws) == (NONCE, [NONCE])
    assert sealed == seal.seal(secretive, NONCE)[0]
    assert seal.unseal(sealed, {NONCE}) == secretive


def test_encoded_forms_are_sealed_and_restored_in_the_same_form():
    secret = "a b/c+d"
    seal = SecretSeal({secret: "S"})
    original = outbound("https://v.example/?k=a%20b%2Fc%2Bd&j=a+b%2Fc%2Bd", secret, b"a b/c+d")
    sealed, _ = seal.seal(original, NONCE)
    assert "a%20b" not in sealed.url and "a+b" not in sealed.url
    assert seal.unseal(sealed, {NONCE}) == original


@pytest.mark.parametrize(
    "smuggled",
    [
        "{{secret.API_SECRET}}",
        "{{secret.API_SECRET|url}}",
        "{{secret.API_SECRET@" + NONCE[:-1] + "0}}",  # a guessed nonce
        "{{secret.API_SECRET@}}",
    ],
)
def test_placeholder_text_from_a_hit_is_never_unsealed(smuggled):
    """A hit's value that looks like a placeholder stays text: it lacks the job's nonce."""
    seal = SecretSeal({SECRET: "API_SECRET"})
    original = outbound(f"https://v.example/c?uid={smuggled}", smuggled, smuggled.encode())
    sealed, _ = seal.seal(original, NONCE)
    sent = seal.unseal(sealed, {NONCE})
    assert SECRET not in msgspec.json.encode(sent).decode()
    assert sent == original


def test_a_job_without_a_nonce_fills_nothing():
    seal = SecretSeal({SECRET: "API_SECRET"})
    smuggled = outbound("https://v.example/{{secret.API_SECRET}}", "{{credential}}", b"")
    assert seal.unseal(smuggled, set()) == smuggled
    assert not needs_credential(smuggled, set())


def test_jobs_stored_before_nonces_existed_are_still_delivered():
    seal = SecretSeal({SECRET: "API_SECRET"})
    legacy = outbound("https://v.example/c?key={{secret.API_SECRET}}", "Bearer {{credential}}", b"")
    nonces = {placeholders.LEGACY}
    assert seal.unseal(legacy, nonces).url == f"https://v.example/c?key={SECRET}"
    filled = fill(legacy, Credential(token="tok-1"), nonces)
    assert filled.headers == {"Authorization": "Bearer tok-1"}


def build_context() -> BuildContext:
    return BuildContext(tag_name="t", container=ContainerInfo(name="c"), now=0.0)


def test_fill_replaces_credentials_and_keeps_every_other_field():
    ctx = build_context()
    template = outbound(
        f"https://v.example/{ctx.credential('instance')}/c", f"Bearer {ctx.credential()}", b"x"
    )
    assert needs_credential(template, {ctx.nonce})
    filled = fill(template, Credential(token="tok-1", values={"instance": "eu7"}), {ctx.nonce})
    assert filled.url == "https://v.example/eu7/c"
    assert filled.headers == {"Authorization": "Bearer tok-1"}
    assert msgspec.structs.replace(filled, url=template.url, headers=template.headers) == template


def test_credential_placeholder_text_from_a_hit_is_never_filled():
    ctx = build_context()
    body = b'{"uid": "{{credential}}", "x": "{{credential.instance}}"}'
    template = outbound("https://v.example/c", f"Bearer {ctx.credential()}", body)
    filled = fill(template, Credential(token="tok-1", values={"instance": "eu7"}), {ctx.nonce})
    assert filled.headers == {"Authorization": "Bearer tok-1"}
    assert filled.body == body


def test_each_build_draws_its_own_nonce_once():
    first, second = build_context(), build_context()
    assert first.credential() == first.credential()
    assert first.nonce and second.credential() and first.nonce != second.nonce
    assert len(first.nonce) == 2 * placeholders.NONCE_BYTES


def test_display_drops_nonces():
    ctx = build_context()
    text = f"Bearer {ctx.credential()} {ctx.credential('instance_url')} " + placeholders.secret(
        "abc", "X", "|url"
    )
    shown = "Bearer {{credential}} {{credential.instance_url}} {{secret.X|url}}"
    assert placeholders.for_display(text) == shown
