"""Hostile input: the worst CPU cost of one request over issue #8's hostile corpus, as a ratio to a
normal GA4 hit measured in the same run.

    .venv/bin/python bench/hostile.py [--min-seconds 0.2] [--json]

In process, like bench/ingest_profile.py: the ASGI app of `sgtm serve` (create_app, its middleware
included) is called directly with each request, no sockets or uvicorn, and the CPU time of the
process (time.process_time) is taken around each call. The container has the ga4, datalayer and
beacon clients and the server-to-server webhook, meta_leadgen and ga4_mp clients (whose requests
the bench signs, so their JSON is parsed, not only refused); its triggers and regex_table
variable use the catastrophic pattern of issue #8, and its http_request tags template hit values
into URLs, headers and bodies, so every hostile value goes through parse, triggers, variables,
templates and `build`. Delivery is a stub that
drops what it is given (the outbox is bench/delivery.py's business); logs go to /dev/null through
sgtm's JSON handler, so their formatting counts.

Each input runs until it has used --min-seconds of CPU (at least 3 times); the figure is the
median CPU time per request. The target from the issue: no hostile request costs more than 20
normal ones. Requests that carry many events legitimately cost about that many hits, so the
corpus also has the largest normal batch (100 events) as a reference, and a request is judged
against a normal request with as many events: the hit, plus each further event at what one more
event costs in that batch. `--check` exits 1 when the target is not met.
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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest import BROWSER_HEADERS, build_mix  # noqa: E402

CATASTROPHIC = r"^(https?://)?([a-z0-9]+\.)*shop\.example(/.*)*$"
MIB = 1024 * 1024

CONTAINER_YAML = r"""
version: 1
name: hostile
origins: [https://www.shop.example]
privacy: {anonymize_ip: true}
clients:
  - {name: ga4, type: ga4}
  - {name: datalayer, type: datalayer}
  - {name: beacon, type: beacon}
  - name: crm
    type: webhook
    settings:
      path: /webhooks/crm
      signature: {secret: "${CRM_WEBHOOK_SECRET}"}
      event_name_field: type
      map: {user_data.email_address: lead.email, page_location: lead.page, value: lead.value}
      rate_limit: null  # the bench is one sender sending the same request over and over
  - name: leads
    type: meta_leadgen
    settings: {verify_token: "${META_VERIFY_TOKEN}", app_secret: "${META_APP_SECRET}"}
  - name: mp
    type: ga4_mp
    settings: {api_secrets: ["${MP_SECRET}"]}
variables:
  section:
    type: regex_table
    input: page_location
    patterns:
      - {match: '^(https?://)?([a-z0-9]+\.)*shop\.example(/.*)*$', value: shop}
      - {match: '^https://[^/]+/p/([^/?#]+)', value: 'product:$1'}
    default: other
  ua: {type: request_header, name: user-agent}
  session: {type: cookie, name: session}
  email: {type: event_data, key: user_data.email_address}
triggers:
  everything: {all: []}
  pii_list: {var: event_name, equals: pii_list}
  tid_flood: {var: event_name, equals: tid_flood}
  shop_page: {var: page_location, matches: '^(https?://)?([a-z0-9]+\.)*shop\.example(/.*)*$'}
tags:
  - name: collector
    type: http_request
    triggers: [everything]
    settings:
      url: https://collector.example.invalid/e/{{event_name}}?page={{page_location}}
      headers: {X-Section: "{{section}}", X-UA: "ua {{ua}}", X-Session: "s {{session}}"}
  - name: shop_hook
    type: http_request
    triggers: [shop_page]
    settings:
      url: https://hooks.example.invalid/shop
      body:
        event: "{{event_name}}"
        email: "{{email}}"
        section: "{{section}}"
        value: "{{event.value}}"
        items: "{{event.items}}"
  # The tags that hash lists of personal data, for the `pii_list` events only (normal requests
  # fire none of them, so those events are judged against cheaper ones).
  - {name: ga4_forward, type: ga4, triggers: [pii_list]}
  # Forwards whatever stream a `tid_flood` hit names: each line of such a batch names another.
  - {name: ga4_streams, type: ga4, triggers: [tid_flood]}
  - name: ga4_server
    type: ga4_mp
    triggers: [pii_list]
    settings: {measurement_id: G-HOSTILE01, api_secret: "${MP_SECRET}"}
  - name: meta
    type: meta_capi
    triggers: [pii_list]
    settings: {pixel_id: "1234567890123456", access_token: "${META_CAPI_TOKEN}"}
  - name: tiktok
    type: tiktok
    triggers: [pii_list]
    settings: {pixel_code: C4A1B2C3D4E5F6G7H8I9, access_token: "${TIKTOK_TOKEN}"}
"""


# The server-to-server clients' secrets (the bench signs its requests with them).
SECRETS = {
    "CRM_WEBHOOK_SECRET": "bench-webhook-secret-0123456789",
    "META_VERIFY_TOKEN": "bench-meta-verify-token-0123",
    "META_APP_SECRET": "bench-meta-app-secret-0123",
    "MP_SECRET": "bench-mp-secret-0123",
    "META_CAPI_TOKEN": "bench-meta-capi-token-0123",
    "TIKTOK_TOKEN": "bench-tiktok-token-0123",
}
CLIENTS = ("ga4", "datalayer", "beacon", "crm", "leads", "mp")


class DropDelivery:
    """Takes submissions and forgets them; counts them so a run shows the tags fired."""

    def __init__(self) -> None:
        self.submitted = 0

    async def start(self) -> None:
        pass

    async def submit(self, submissions: list[Any]) -> None:
        self.submitted += len(submissions)

    async def close(self) -> None:
        pass


@dataclass(frozen=True)
class Request:
    name: str
    method: str
    path: str
    query: str = ""
    headers: tuple[tuple[str, str], ...] = tuple(BROWSER_HEADERS)
    body: bytes = b""
    truncated: bool = False  # the client sends half the body, then disconnects

    @property
    def size(self) -> int:
        header_bytes = sum(len(k) + len(v) for k, v in self.headers)
        return len(self.path) + len(self.query) + header_bytes + len(self.body)

    def scope(self) -> dict[str, Any]:
        headers = [(b"host", b"sgtm.shop.example")]
        headers += [(k.lower().encode(), v.encode("utf-8")) for k, v in self.headers]
        if self.body or self.method == "POST":
            headers.append((b"content-length", str(len(self.body)).encode()))
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8080),
            "client": ("127.0.0.1", 50123),
            "scheme": "https",
            "method": self.method,
            "root_path": "",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": self.query.encode("latin-1", "replace"),
            "headers": headers,
            "state": {},
        }


def qs(params: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='._')}={quote(v, safe='')}" for k, v in params)


def ga4(name: str, extra: list[tuple[str, str]], **kw: Any) -> Request:
    base = [("v", "2"), ("tid", "G-HOSTILE01"), ("cid", "555.1700000000"), ("en", "page_view")]
    base.append(("dl", "https://www.shop.example/p/sock"))
    given = {key for key, _ in extra}  # a key of `extra` replaces the base's
    base = [(key, value) for key, value in base if key not in given]
    return Request(name, kw.pop("method", "GET"), "/g/collect", qs(base + extra), **kw)


def datalayer(name: str, body: bytes, **kw: Any) -> Request:
    headers = (*BROWSER_HEADERS, ("Content-Type", "text/plain;charset=UTF-8"))
    return Request(name, "POST", "/data", kw.pop("query", ""), headers, body, **kw)


def beacon(name: str, kind: str, body: bytes) -> Request:
    headers = (*BROWSER_HEADERS, ("Content-Type", "text/plain;charset=UTF-8"))
    return Request(name, "POST", f"/beacon/{kind}", "", headers, body)


def signed(
    name: str, path: str, header: str, secret: str, body: bytes, *, right: bool = True
) -> Request:
    """A server-to-server POST whose body is signed (HMAC-SHA256, `sha256=` hex) as its client
    checks, or with a wrong signature of the right shape."""
    digest = hmac.new(SECRETS[secret].encode(), body, hashlib.sha256).hexdigest()
    headers = (
        ("Content-Type", "application/json"),
        (header, "sha256=" + (digest if right else "0" * 64)),
    )
    return Request(name, "POST", path, "", headers, body)


def webhook(name: str, doc: Any, *, right: bool = True) -> Request:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return signed(
        name, "/webhooks/crm", "X-Webhook-Signature", "CRM_WEBHOOK_SECRET", body, right=right
    )


def leadgen(name: str, changes: list[Any], *, right: bool = True) -> Request:
    doc = {"object": "page", "entry": [{"id": "77", "time": 1700000000, "changes": changes}]}
    body = json.dumps(doc).encode()
    return signed(
        name, "/webhooks/meta-ads", "X-Hub-Signature-256", "META_APP_SECRET", body, right=right
    )


def mp(name: str, body: bytes, secret: str = SECRETS["MP_SECRET"]) -> Request:
    query = qs([("measurement_id", "G-HOSTILE01"), ("api_secret", secret)])
    return Request(
        name, "POST", "/mp/collect", query, (("Content-Type", "application/json"),), body
    )


def fill(line: bytes, size: int = MIB - 64) -> bytes:
    """`line` repeated up to `size` bytes: a body just under the 1 MiB limit."""
    return line * (size // len(line))


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def normal_requests() -> list[Request]:
    (page_view, *_) = [h for h in build_mix() if h.kind == "page_view"]
    path, _, query = page_view.target.partition("?")
    push = {"event": "page_view", "page_location": "https://www.shop.example/p/sock"}
    impression = {
        "session_id": "s-1",
        "impression_url": "https://ads.example/impression/abc?sig=1",
        "page_location": "https://www.shop.example/p/sock",
    }
    lines = [qs([("en", "scroll"), ("epn.percent_scrolled", "90")]) for _ in range(100)]
    return [
        Request("normal GA4 page_view (baseline)", "GET", path, query, page_view.headers),
        datalayer("normal datalayer push", json.dumps(push).encode()),
        beacon("normal beacon impression", "impression", json.dumps(impression).encode()),
        ga4("normal GA4 batch of 100 events", [], method="POST", body="\n".join(lines).encode()),
    ]


def hostile_requests() -> list[Request]:
    digits = "1" * 8000 + "x"
    dl = "https://www.shop.example" + "/" * 30 + "\n/"
    placeholders = "{{secret.CRM_WEBHOOK_SECRET}} {{credential}} ${HOOK_SECRET} {{event.x}}"
    escaped_quotes = '"' + '\\"' * 1024
    deep = '{"a":' * 31 + "1" + "}" * 31  # MAX_DEPTH is 32
    big_item = {"item_id": "x" * 100, "item_name": "y" * 100, "price": 1.5, "quantity": 2}
    params = {**{f"p{j}": placeholders for j in range(23)}, "items": [{"item_id": "i"}] * 150}
    full_mp = json.dumps(
        {"client_id": "123.456", "events": [{"name": "purchase", "params": params}] * 25}
    ).encode()
    return [
        # GA4 /g/collect
        ga4("ga4: 8,000-digit epn value", [("epn.x", digits)]),
        ga4(
            "ga4: 1 MiB POST of 8,000-digit epn lines",
            [],
            method="POST",
            body=fill(f"en=scroll&epn.x={digits}\n".encode()),
        ),
        ga4("ga4: catastrophic regex dl (30 slashes, newline)", [("dl", dl)]),
        ga4(
            "ga4: catastrophic dl, 8 KiB of slashes",
            [("dl", "https://shop.example" + "/" * 8100 + "\n/")],
        ),
        ga4(
            "ga4: em of 430 digests (hashing tags)",
            [("en", "pii_list"), ("em", "tv.1" + "".join(f"~em.{n:043d}" for n in range(430)))],
        ),
        ga4("ga4: placeholder syntax in values", [("ep.uid", placeholders), ("dt", placeholders)]),
        ga4("ga4: 1,000 params", [(f"ep.p{i}", "v" * 8) for i in range(1000)]),
        ga4("ga4: 20,000 params (over the cap)", [(f"ep.p{i}", "v") for i in range(20000)]),
        ga4("ga4: 100 values of 8,192 chars", [(f"ep.p{i}", "v" * 8192) for i in range(100)]),
        ga4(
            "ga4: 200 items, every field",
            [
                (
                    f"pr{i}",
                    "~".join(f"{k}{'z' * 30}" for k in ("id", "nm", "br", "ca", "c2", "va", "cp"))
                    + "~pr9.99~qt2",
                )
                for i in range(1, 201)
            ],
        ),
        ga4("ga4: 5,000 items (over the cap)", [(f"pr{i}", "idA~pr1") for i in range(1, 5001)]),
        ga4(
            "ga4: unicode and control chars",
            [("dt", "\u202e\u0000\r\n\ufeff😀" * 500), ("ep.x", "%ff%fe" * 500)],
        ),
        ga4(
            "ga4: 1 MiB POST of broken escapes",
            [],
            method="POST",
            body=fill(b"en=x&ep.a=%E0%A4%zz%" + b"%" * 200 + b"\n"),
        ),
        ga4("ga4: 1 MiB POST of 10,000+ lines", [], method="POST", body=fill(b"en=scroll\n")),
        # Issue #8's lane flood: every event names another stream (the tag's lane key).
        ga4(
            "ga4: 100 lines, each another well-formed tid",
            [],
            method="POST",
            body="\n".join(f"en=tid_flood&tid=G-{n:010d}" for n in range(100)).encode(),
        ),
        ga4(
            "ga4: 100 lines, each a malformed 600-char tid",
            [],
            method="POST",
            body="\n".join(f"en=tid_flood&tid=g-{n:0600d}" for n in range(100)).encode(),
        ),
        ga4(
            "ga4: 1 MiB POST of one line",
            [],
            method="POST",
            body=b"en=x&ep.a=" + b"a" * (MIB - 100),
        ),
        ga4(
            "ga4: truncated POST (client disconnects)",
            [],
            method="POST",
            body=fill(b"en=scroll\n", 64 * 1024),
            truncated=True,
        ),
        # Headers
        ga4(
            "headers: 32 KiB quoted cookie of backslashes",
            [],
            headers=(*BROWSER_HEADERS, ("Cookie", 'session="' + "\\" * 32768 + '"')),
        ),
        ga4(
            "headers: 64 KiB Cookie of 4,000 cookies",
            [],
            headers=(
                *BROWSER_HEADERS,
                ("Cookie", "; ".join(f"c{i}=v{'x' * 10}" for i in range(4000))),
            ),
        ),
        ga4(
            "headers: Sec-CH-UA of escaped quotes",
            [],
            headers=(
                *[h for h in BROWSER_HEADERS if h[0] != "sec-ch-ua"],
                ("sec-ch-ua", escaped_quotes),
            ),
        ),
        ga4(
            "headers: 64 KiB User-Agent",
            [],
            headers=(
                *[h for h in BROWSER_HEADERS if h[0] != "User-Agent"],
                ("User-Agent", "Mozilla/5.0 " * 5500),
            ),
        ),
        ga4(
            "headers: 1,000 headers",
            [],
            headers=(*BROWSER_HEADERS, *((f"X-H{i}", "v" * 20) for i in range(1000))),
        ),
        # datalayer /data
        datalayer(
            "datalayer: 1 MiB string value",
            json.dumps({"event": "x", "page_location": "a" * (MIB - 100)}).encode(),
        ),
        datalayer("datalayer: nested 100,000 deep", nested(100_000).encode()),
        datalayer("datalayer: nested at the depth limit", deep.encode()),
        datalayer("datalayer: 20,000 pushes", json.dumps([{"event": "e"}] * 20000).encode()),
        datalayer(
            "datalayer: 60,000 keys",
            json.dumps({"event": "e", **{f"k{i}": i for i in range(60000)}}).encode(),
        ),
        datalayer(
            "datalayer: 3,000 items",
            json.dumps(
                {
                    "event": "purchase",
                    "value": 1,
                    "currency": "EUR",
                    "ecommerce": {"items": [big_item] * 3000},
                }
            ).encode(),
        ),
        datalayer(
            "datalayer: numbers at the edges",
            b'{"event":"purchase","value":1e309,"tax":-0,"n":'
            + b"9" * 4000
            + b',"ecommerce":{"value":1e-400}}',
        ),
        datalayer(
            "datalayer: catastrophic page_location",
            json.dumps({"event": "page_view", "page_location": dl * 200}).encode(),
        ),
        datalayer(
            "datalayer: placeholder syntax in values",
            json.dumps(
                {
                    "event": "purchase",
                    "user_data": {"email_address": placeholders},
                    "page_location": placeholders,
                }
            ).encode(),
        ),
        datalayer(
            "datalayer: 2,600 emails and phones (hashing tags)",
            json.dumps(
                {
                    "event": "pii_list",
                    "page_location": "https://www.shop.example/p/sock",
                    "user_data": {
                        "email_address": [f"u{n}@shop.example" for n in range(2_000)],
                        "phone_number": [f"+55119{n:08d}" for n in range(600)],
                    },
                }
            ).encode(),
        ),
        datalayer(
            "datalayer: lone surrogates and controls",
            b'{"event":"x","page_location":"\\ud800\\u0000\\u202e' + b"\\udfff" * 2000 + b'"}',
        ),
        datalayer(
            "datalayer: truncated JSON", b'{"event":"purchase","items":[' + b'{"a":1},' * 10000
        ),
        datalayer(
            "datalayer: Data Tag GET, 100 KiB dtdc",
            b"",
            query="v=2&event=page_view&dtdc=" + "eyJh" * 25000,
        ),
        # beacon
        beacon("beacon: 60 KiB of nesting", "impression", nested(30000).encode()),
        beacon(
            "beacon: 500 items conversion",
            "conversion",
            json.dumps(
                {
                    "session_id": "s",
                    "order_id": "o",
                    "items": [{"sku": "x" * 50, "quantity": 1, "price": 1.0}] * 500,
                }
            ).encode(),
        ),
        beacon(
            "beacon: 4 KiB URL of slashes",
            "click",
            json.dumps(
                {"session_id": "s", "click_url": "https://a.example/" + "/" * 4000 + "\n"}
            ).encode(),
        ),
        beacon(
            "beacon: 4,000 invalid fields",
            "conversion",
            json.dumps({f"f{i}": [i] for i in range(4000)}).encode(),
        ),
        # Server-to-server clients, at their body limits (webhook 256 KiB, meta_leadgen 1 MiB,
        # ga4_mp 130,000 bytes); signed, so the JSON behind the check is parsed.
        webhook(
            "webhook: 256 KiB, 16,000 keys",
            {"type": "generate_lead", "lead": {f"k{i}": i for i in range(16000)}},
        ),
        webhook(
            "webhook: 100 leads, placeholder syntax",
            [{"type": "generate_lead", "lead": {"email": placeholders, "page": dl}}] * 100,
        ),
        webhook("webhook: 256 KiB of nesting", nested(120_000).encode()),
        webhook(
            "webhook: 256 KiB, wrong signature",
            {"type": "x", "lead": {"page": "a" * (256 * 1024 - 100)}},
            right=False,
        ),
        leadgen(
            "meta_leadgen: 500 leads (repeats: duplicates)",
            [
                {"field": "leadgen", "value": {"leadgen_id": 10**14 + i, "page_id": 77}}
                for i in range(500)
            ],
        ),
        leadgen(
            "meta_leadgen: 1 MiB of other changes",
            [{"field": "feed", "value": {"message": "m" * 200}}] * 4250,
        ),
        leadgen(
            "meta_leadgen: 1 MiB, wrong signature",
            [{"field": "leadgen", "value": {"x": "y" * (MIB - 200)}}],
            right=False,
        ),
        mp("ga4_mp: 25 events of 25 params and 150 items", full_mp),
        mp(
            "ga4_mp: 130,000 bytes of numbers at the edges",
            b'{"client_id":"1.2","events":[{"name":"x","params":{"v":' + b"9" * 129_000 + b"}}]}",
        ),
        mp("ga4_mp: 25 full events, wrong api_secret", full_mp, secret="guess"),
    ]


async def call(app: Any, request: Request) -> int:
    status = 0
    sent = False
    body = request.body[: len(request.body) // 2] if request.truncated else request.body

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            if request.truncated:
                return {"type": "http.disconnect"}
            await asyncio.sleep(3600)  # http.disconnect never comes within the request
        sent = True
        return {"type": "http.request", "body": body, "more_body": request.truncated}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    try:
        await app(request.scope(), receive, send)
    except Exception as exc:  # the server would answer 500; report it as such
        print(f"  {request.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 500
    return status


def events_total(app: Any) -> float:
    metrics = app.state.metrics
    return sum(
        metrics.value("sgtm_events_total", container="hostile", client=client) for client in CLIENTS
    )


async def measure(app: Any, request: Request, min_seconds: float) -> dict[str, Any]:
    """Median CPU seconds per request, the status, and how many events one request made."""
    before = events_total(app)
    status = await call(app, request)
    events = int(events_total(app) - before)
    times: list[float] = []
    spent = 0.0
    while spent < min_seconds or len(times) < 3:
        started = time.process_time()
        await call(app, request)
        took = time.process_time() - started
        times.append(took)
        spent += took
    return {"seconds": statistics.median(times), "status": status, "events": events}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from sgtm.app import create_app
    from sgtm.config import load_containers
    from sgtm.plugins import load_registry

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "hostile.yaml"
        config.write_text(CONTAINER_YAML)
        delivery = DropDelivery()
        specs = load_containers([config], load_registry(), environ=dict(SECRETS))
        app = create_app(specs, delivery=delivery)
    normal, hostile = normal_requests(), hostile_requests()
    for request in normal:  # warm up, and check the normal requests do what they should
        status = await call(app, request)
        if status not in (200, 202, 204):
            raise SystemExit(f"{request.name}: status {status}")
    if not delivery.submitted:
        raise SystemExit("the normal requests fired no tag: the container is wrong")
    measured = {r.name: await measure(app, r, args.min_seconds) for r in [*normal, *hostile]}
    hit = measured[normal[0].name]
    batch = measured[normal[-1].name]
    # What one more event costs in a normal batch: a request with n events is fairly worth
    # hit + (n - 1) * per_event, the figure the `x for its events` column divides by.
    per_event = (batch["seconds"] - hit["seconds"]) / max(1, batch["events"] - 1)
    rows = []
    for request in [*normal, *hostile]:
        m = measured[request.name]
        fair = hit["seconds"] + max(0, m["events"] - 1) * per_event
        rows.append(
            {
                "name": request.name,
                "bytes": request.size,
                "events": m["events"],
                "us": m["seconds"] * 1e6,
                "ratio": m["seconds"] / hit["seconds"],
                "ratio_for_events": m["seconds"] / fair,
                "status": m["status"],
                "hostile": request in hostile,
            }
        )
    return {"baseline_us": hit["seconds"] * 1e6, "per_event_us": per_event * 1e6, "rows": rows}


def report(result: dict[str, Any], target: float) -> bool:
    """Prints the table and the verdict; whether the target is met (and no answer was a 5xx)."""
    print(
        f"{'request':50} {'bytes':>8} {'events':>6} {'µs CPU':>8} {'x hit':>6} "
        f"{'x for its events':>16} status"
    )
    for row in result["rows"]:
        print(
            f"{row['name'][:50]:50} {row['bytes']:8d} {row['events']:6d} {row['us']:8.0f} "
            f"{row['ratio']:6.1f} {row['ratio_for_events']:16.1f} {row['status']}"
        )
    hostile = [r for r in result["rows"] if r["hostile"]]
    worst = max(hostile, key=lambda r: r["ratio_for_events"])
    single = max((r for r in hostile if r["events"] <= 1), key=lambda r: r["ratio"])
    largest = max(hostile, key=lambda r: r["ratio"])
    errors = [r for r in hostile if r["status"] >= 500]
    met = worst["ratio_for_events"] <= target and not errors
    print(
        f"\nnormal hit: {result['baseline_us']:.0f} µs CPU; each further event of a normal batch:"
        f" {result['per_event_us']:.0f} µs"
    )
    # The verdict: no hostile request costs more than `target` normal requests carrying as many
    # events. A request of n events is as many events as n hits (or a normal batch of n): it
    # buys an attacker no more work per event than sending them apart, and the clients cap n.
    print(
        f"worst hostile request for its events: {worst['name']}: "
        f"{worst['ratio_for_events']:.1f} times a normal request with as many events "
        f"({worst['events']}); target <= {target:g}: {'met' if met else 'NOT met'}"
    )
    print(
        f"  of requests of at most one event: {single['name']}: {single['ratio']:.1f} normal hits"
    )
    print(
        f"  the most CPU of one request: {largest['name']}: {largest['ratio']:.1f} normal hits,"
        f" for its {largest['events']} events"
    )
    if errors:
        print(f"5xx answers: {', '.join(r['name'] for r in errors)}")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-seconds", type=float, default=0.2, help="CPU per input (>= 3 runs)")
    parser.add_argument("--target", type=float, default=20.0, help="the issue's ratio goal")
    parser.add_argument("--log-level", default=os.environ.get("SGTM_LOG_LEVEL", "info"))
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the target is not met (else: on a 5xx)"
    )
    args = parser.parse_args()
    from sgtm import logs

    logs.setup(args.log_level)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
        ok = all(r["status"] < 500 for r in result["rows"])
    else:
        met = report(result, args.target)
        ok = met or (not args.check and all(r["status"] < 500 for r in result["rows"]))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
