"""`sgtm emulate --now T` prints the same bytes on every run, for every built-in client: the ids
clients generate (the datalayer and GA4 first-party ids, Meta's _fbp) and the ids tags draw
come from `--seed` (fixed when `--now` is given)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from tests.cli import run_cli

ENV = {
    "HOOK_KEY": "hook-api-key-0000001",
    "META_VERIFY_TOKEN": "verify-token-1",
    "META_APP_SECRET": "meta-app-secret-1",
    "MP_SECRET": "mp-secret-0001",
    "META_TOKEN": "meta-access-token-1",
}

CONTAINER = """\
version: 1
hosts: [sgtm.shop.example]
clients:
  - {name: ga4, type: ga4, priority: 10, settings: {client_id: server, meta_cookies: true}}
  - {name: datalayer, type: datalayer, priority: 5, settings: {meta_cookies: true}}
  - {name: beacon, type: beacon, settings: {meta_cookies: true}}
  - name: crm
    type: webhook
    settings: {path: /webhooks/crm, api_keys: ["${HOOK_KEY}"], event_name: generate_lead}
  - name: meta_ads
    type: meta_leadgen
    settings: {verify_token: "${META_VERIFY_TOKEN}", app_secret: "${META_APP_SECRET}"}
  - {name: mp, type: ga4_mp, settings: {api_secrets: ["${MP_SECRET}"]}}
triggers:
  all_events: {all: []}
tags:
  - name: hook                      # no event_id: its idempotency key is a generated id
    type: http_request
    triggers: [all_events]
    settings: {url: "https://hooks.example.invalid/x", body: {client: "{{event.client_id}}"}}
  - name: meta
    type: meta_capi
    triggers: [all_events]
    settings: {pixel_id: "1234567890", access_token: "${META_TOKEN}"}
"""

LEAD = json.dumps(
    {
        "object": "page",
        "entry": [
            {
                "id": 1,
                "time": 1438292065,
                "changes": [{"field": "leadgen", "value": {"leadgen_id": 7, "form_id": 8}}],
            }
        ],
    }
)
UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"
PAGE = "https://www.shop.example/checkout/done"

# One request per built-in client, each as `--requests` reads it.
REQUESTS = {
    "ga4": {
        "url": f"/g/collect?v=2&tid=G-ABC123XYZ9&cid=1.2&en=purchase&epn.value=10&dl={PAGE}",
        "headers": {"user-agent": UA},
    },
    "datalayer": {
        "url": "/data",
        "method": "POST",
        "headers": {"content-type": "text/plain", "user-agent": UA},
        "body": json.dumps({"event": "add_to_cart", "page_location": PAGE}),
    },
    "beacon": {
        "url": "/beacon/click",
        "method": "POST",
        "headers": {"content-type": "text/plain", "user-agent": UA},
        "body": json.dumps({"click_url": "https://ads.example/c?x=1", "session_id": "s-1"}),
    },
    "crm": {
        "url": "/webhooks/crm",
        "method": "POST",
        "headers": {"content-type": "application/json", "x-api-key": ENV["HOOK_KEY"]},
        "body": json.dumps({"email": "ana@example.com"}),
    },
    "meta_ads": {
        "url": "/webhooks/meta-ads",
        "method": "POST",
        "headers": {
            "content-type": "application/json",
            "x-hub-signature-256": "sha256="
            + hmac.new(ENV["META_APP_SECRET"].encode(), LEAD.encode(), hashlib.sha256).hexdigest(),
        },
        "body": LEAD,
    },
    "mp": {
        "url": f"/mp/collect?measurement_id=G-ABC123XYZ9&api_secret={ENV['MP_SECRET']}",
        "method": "POST",
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"client_id": "1.2", "events": [{"name": "purchase"}]}),
    },
}


def emulate(config: Path, line: dict, *extra: str) -> str:
    done = run_cli(
        "emulate", "-c", str(config), "--requests", "-", *extra,
        stdin=json.dumps(line) + "\n", env=ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("client", sorted(REQUESTS))
def test_emulate_with_now_prints_the_same_bytes_every_run(tmp_path, client):
    config = tmp_path / "shop.yaml"
    config.write_text(CONTAINER)
    first = emulate(config, REQUESTS[client], "--now", "2026-01-01T00:00:00Z")
    second = emulate(config, REQUESTS[client], "--now", "2026-01-01T00:00:00Z")
    assert first == second
    (result,) = [json.loads(line) for line in first.splitlines()]
    assert result["client"] == client
    assert result["events"], result  # the request was taken, so the ids were really drawn
    # Another seed draws other ids: the seed is what makes the output repeat.
    other = emulate(config, REQUESTS[client], "--now", "2026-01-01T00:00:00Z", "--seed", "7")
    if client in ("ga4", "datalayer", "beacon"):  # these generate cookies or ids per visitor
        assert other != first


def test_generated_ids_come_from_the_seed(tmp_path):
    config = tmp_path / "shop.yaml"
    config.write_text(CONTAINER)
    line = REQUESTS["datalayer"]
    now = ("--now", "1767225600")
    out = json.loads(emulate(config, line, *now))
    client_id = out["events"][0]["data"]["client_id"]
    assert client_id.startswith("dcid.1.1767225600000.")
    assert json.loads(emulate(config, line, *now, "--seed", "0")) == out
    assert json.loads(emulate(config, line, *now, "--seed", "1")) != out
    # Without --now the clock and the seed vary: a new visitor gets a new id each run.
    ids = {json.loads(emulate(config, line))["events"][0]["data"]["client_id"] for _ in range(3)}
    assert len(ids) == 3


def test_pretty_prints_indented_json(tmp_path):
    config = tmp_path / "shop.yaml"
    config.write_text(CONTAINER)
    line = REQUESTS["ga4"]
    plain = emulate(config, line, "--now", "1767225600")
    pretty = emulate(config, line, "--now", "1767225600", "--pretty")
    assert pretty.startswith('{\n  "client": "ga4",\n')
    assert json.loads(pretty) == json.loads(plain)


def test_a_stream_seeded_on_use_draws_what_random_random_draws() -> None:
    import random

    from sgtm.emulate import SeededOnUse

    stream = SeededOnUse()
    for seed in ("1/1/client", "1/2/client", "7/1/client"):
        stream.seed_on_use("never drawn from")
        stream.seed_on_use(seed)  # the stream of the input after one that drew nothing
        plain = random.Random(seed)
        for draw in (
            lambda r: r.getrandbits(128),
            lambda r: r.randrange(2_147_483_647),
            lambda r: r.random(),
            lambda r: r.choice("abcdef"),
            lambda r: r.randbytes(5),
            lambda r: r.gauss(0, 1),
        ):
            assert draw(stream) == draw(plain)
        stream.seed_on_use(seed)
        assert stream.getstate() == random.Random(seed).getstate()
