"""The CPU cost of the server-to-server clients, in process, as ratios to a GA4 web hit.

    .venv/bin/python bench/s2s_ingest.py [--requests 20000]

One container (written here, not to a file) with the `ga4`, `webhook`, `meta_leadgen` and
`ga4_mp` clients and the same two dry-run `http_request` tags on every event, so each request
goes through claim, the sender's rate, parse, sender-side dedupe, triggers, templates and
`build`, and nothing is sent. Each kind of request is driven alone through the ASGI app of
`sgtm serve` (bench/ingest_profile.py's driver: no sockets), one event per request, every
request distinct (so no id is deduplicated away), and its microseconds of CPU per request are
printed (the median of `--rounds` interleaved rounds, after a warm-up) with the ratio to the GA4
hit measured in the same run:

- `ga4`: a GA4 `/g/collect` GET with one event (the baseline);
- `webhook_hmac`: a signed JSON lead (HMAC-SHA256 of the raw body), `map` of 6 paths, `id_field`;
- `webhook_key`: the same lead with an API key instead of a signature (two keys configured);
- `meta_leadgen`: a signed Meta notification with one leadgen change;
- `mp`: a Measurement Protocol `/mp/collect` POST with one event, api_secret checked.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import os
import statistics
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest import Hit  # noqa: E402
from ingest_profile import NoDelivery, drive  # noqa: E402

SECRET = "bench-webhook-secret-0123456789"
KEYS = ("bench-key-old-0123456789", "bench-key-new-0123456789")
APP_SECRET = "bench-meta-app-secret-0123"
MP_SECRET = "bench-mp-secret"

CONTAINER = f"""
version: 1
name: bench_s2s
clients:
  - {{name: ga4, type: ga4}}
  - name: crm
    type: webhook
    settings:
      path: /webhooks/crm
      signature: {{secret: "{SECRET}"}}
      event_name: generate_lead
      map: &map
        user_data.email_address: lead.email
        user_data.phone_number: lead.phone
        user_data.address.first_name: lead.first_name
        user_data.address.last_name: lead.last_name
        value: deal.amount
        lead_source: lead.source
      id_field: lead.id
      rate_limit: 1000000/second
  - name: forms
    type: webhook
    settings:
      path: /webhooks/forms
      api_keys: ["{KEYS[0]}", "{KEYS[1]}"]
      event_name: generate_lead
      map: *map
      id_field: lead.id
      rate_limit: 1000000/second
  - name: meta_ads
    type: meta_leadgen
    settings: {{verify_token: bench-verify-token, app_secret: "{APP_SECRET}"}}
  - name: mp
    type: ga4_mp
    settings: {{api_secrets: ["{MP_SECRET}"]}}
triggers:
  all_events: {{all: []}}
tags:
  - name: collector
    type: http_request
    triggers: [all_events]
    dry_run: true
    settings: {{url: "https://collector.example.invalid/events"}}
  - name: crm_hook
    type: http_request
    triggers: [all_events]
    dry_run: true
    settings:
      url: https://crm.example.invalid/hooks
      body: {{event: "{{{{event_name}}}}", email: "{{{{event.user_data.email_address}}}}"}}
"""


def ga4_hits(count: int, start: int = 0) -> list[Hit]:
    out = []
    for i in range(start, start + count):
        query = (
            f"v=2&tid=G-BENCH01&cid={100000 + i}.1700000000&sid=1700000000&en=generate_lead"
            f"&dl={quote('https://www.shop.example/contact')}&ep.user_data.email={quote(f'u{i}@example.com')}"
        )
        out.append(Hit("ga4", "GET", f"/g/collect?{query}", (), b"", 1))
    return out


def lead(i: int) -> bytes:
    body = {
        "lead": {
            "id": f"L-{i}",
            "email": f"u{i}@example.com",
            "phone": "+55 11 91234-5678",
            "first_name": "Ana",
            "last_name": "Silva",
            "source": "site",
        },
        "deal": {"amount": 1500},
    }
    return json.dumps(body).encode()


def webhook_hits(count: int, signed: bool, start: int = 0) -> list[Hit]:
    out = []
    for i in range(start, start + count):
        body = lead(i)
        headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
        if signed:
            digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            headers += (("X-Webhook-Signature", f"sha256={digest}"),)
            path = "/webhooks/crm"
        else:
            headers += (("X-API-Key", KEYS[1]),)
            path = "/webhooks/forms"
        out.append(Hit("webhook", "POST", path, headers, body, 1))
    return out


def meta_hits(count: int, start: int = 0) -> list[Hit]:
    out = []
    for i in range(start, start + count):
        value = {"leadgen_id": 10**11 + i, "page_id": 1, "form_id": 2, "created_time": 1700000000}
        change = {"field": "leadgen", "value": value}
        body = json.dumps({"object": "page", "entry": [{"id": "1", "changes": [change]}]}).encode()
        digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = (
            ("Content-Type", "application/json"),
            ("X-Hub-Signature-256", f"sha256={digest}"),
        )
        out.append(Hit("meta", "POST", "/webhooks/meta-ads", headers, body, 1))
    return out


def mp_hits(count: int, start: int = 0) -> list[Hit]:
    out = []
    for i in range(start, start + count):
        body = {
            "client_id": f"{100000 + i}.1700000000",
            "events": [
                {"name": "generate_lead", "params": {"session_id": 1700000000, "value": 10}}
            ],
        }
        target = f"/mp/collect?measurement_id=G-BENCH01&api_secret={MP_SECRET}"
        headers = (("Content-Type", "application/json"),)
        out.append(Hit("mp", "POST", target, headers, json.dumps(body).encode(), 1))
    return out


async def run(requests: int, rounds: int) -> dict[str, float]:
    from sgtm.app import create_app
    from sgtm.config import load_text
    from sgtm.plugins import load_registry

    spec = load_text(CONTAINER, "bench_s2s.yaml", load_registry())
    app: Any = create_app([spec], delivery=NoDelivery())
    kinds = {
        "ga4": lambda n, start: ga4_hits(n, start),
        "webhook_hmac": lambda n, start: webhook_hits(n, True, start),
        "webhook_key": lambda n, start: webhook_hits(n, False, start),
        "meta_leadgen": lambda n, start: meta_hits(n, start),
        "mp": lambda n, start: mp_hits(n, start),
    }
    warm = min(2000, requests)
    for make in kinds.values():  # warm every path up before any is measured
        await drive(app, make(warm, 0), warm)
    samples: dict[str, list[float]] = {name: [] for name in kinds}
    for round_ in range(rounds):  # rounds interleave the kinds, so load drifts hit them alike
        for name, make in kinds.items():
            hits = make(requests, warm + round_ * requests)  # fresh ids: none is deduplicated
            seconds, statuses = await drive(app, hits, requests)
            bad = {s: n for s, n in statuses.items() if s >= 300}
            if bad:
                raise SystemExit(f"{name}: unexpected statuses {bad}")
            samples[name].append(seconds / requests * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 0 < args.requests <= 200_000:
        parser.error("--requests must be in (0, 200000]")
    from sgtm import logs

    logs.setup("warning")
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    results = asyncio.run(run(args.requests, args.rounds))
    base = results["ga4"]
    if args.json:
        print(
            json.dumps(
                {k: {"us": round(v, 1), "ratio": round(v / base, 2)} for k, v in results.items()}
            )
        )
        return
    for name, us in results.items():
        print(f"{name:14} {us:7.1f} us CPU/request   x{us / base:.2f} of a GA4 hit")


if __name__ == "__main__":
    main()
