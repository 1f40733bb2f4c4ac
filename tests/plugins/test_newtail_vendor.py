"""`newtail` against a fake Newtail on loopback that checks every request against Newtail's
documented event API: the real `sgtm serve` with the beacon client (ad events, conversions,
hostile URLs, dedupe, retries, a 422 dead letter) and classification of real answers.

The fake's checks (`problems`) are VTEX Ads' docs as code (reference destinations/newtail.md,
vtex/vtexads-api-docs 5.6-events.md and old_doc/reference_evento-de-conversao.md): ad events are
a POST to the signed URL with `{session_id, user_id}`; conversions carry every required field,
items with `sku`, `quantity`, unit `price` and `promotional_price`, hashes as SHA-256 hex.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from sgtm_plugins.newtail import NewtailTag

from tests.servers import SGTM, FakeVendor, Received, Reply, SgtmProcess

TAG = NewtailTag()
HOST = "events.newtail-media.newtail.com.br"
SIGN = "9f" * 32
FAST_ENV = {
    "SGTM_DELIVERY_POLL_INTERVAL": "100ms",
    "SGTM_DELIVERY_BACKOFF_BASE": "100ms",
    "SGTM_DELIVERY_BACKOFF_CAP": "500ms",
    "SGTM_DELIVERY_DISCOVER_INTERVAL": "200ms",
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def signed(kind: str, ad: str, host: str = HOST) -> str:
    return (
        f"https://{host}/v1/beacon/{kind}/{ad}?publisher_id=pub-1&ad_type=product&campaign_id=c-9"
        f"&context=search&event_id=e-{ad}&request_id=r-1&session_id=s-1&requested_at=1700000000000"
        f"&sign={SIGN}"
    )


# -- the fake Newtail: its documented schema -----------------------------------------------------

REQUIRED = (
    "publisher_id",
    "user_id",
    "session_id",
    "order_id",
    "created_at",
    "items",
    "channel",
    "email_hashed",
)
HASHED = (
    "email_hashed",
    "phone_hashed",
    "social_id_hashed",
    "first_name_hashed",
    "last_name_hashed",
)
OPTIONAL = ("brand", "gender", "uf", "city", "is_company", *HASHED[1:])
ITEM_KEYS = {"sku", "quantity", "price", "promotional_price", "seller_id", "product_id"}
AD_PATH = re.compile(r"/v1/beacon/(impression|view|click)/[^/]+")
UTC_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
HEX64 = re.compile(r"[0-9a-f]{64}")


def problems(got: Received) -> str | None:
    found = _problems(got)
    return "; ".join(found) if found else None


def _problems(got: Received) -> list[str]:
    if got.method != "POST":
        return [f"{got.method}: not POST"]
    if got.headers.get("content-type", "").split(";")[0] != "application/json":
        return ["Content-Type must be application/json"]
    try:
        body = msgspec.json.decode(got.body)
    except msgspec.DecodeError:
        return ["body is not JSON"]
    if not isinstance(body, dict):
        return ["body must be an object"]
    if got.path == "/v1/beacon/conversion":
        return _conversion_problems(body)
    if AD_PATH.fullmatch(got.path):
        out = []
        if f"sign={SIGN}" not in got.query:
            out.append("the signed URL's query was not kept")
        if set(body) - {"session_id", "user_id"}:
            out.append(f"unknown fields {sorted(set(body) - {'session_id', 'user_id'})}")
        if not _text(body.get("session_id")):
            out.append("must have required property 'session_id'")
        if "user_id" in body and not _text(body["user_id"]):
            out.append("user_id must be a non-empty string")
        return out
    return [f"no such endpoint {got.path}"]


def _conversion_problems(body: dict[str, Any]) -> list[str]:
    out = [f"must have required property '{k}'" for k in REQUIRED if k not in body]
    out += [f"unknown field {k!r}" for k in body if k not in REQUIRED and k not in OPTIONAL]
    for key in ("publisher_id", "user_id", "session_id", "order_id", "channel"):
        if key in body and not _text(body[key]):
            out.append(f"{key} must be a non-empty string")
    if "created_at" in body and not UTC_DATE_TIME.fullmatch(str(body["created_at"])):
        out.append("created_at must be ISO 8601 in UTC (…Z)")
    for key in HASHED:
        if key in body and not HEX64.fullmatch(str(body[key])):
            out.append(f"{key} must be a lowercase SHA-256 hex digest")
    if body.get("gender") not in ("F", "M", "O", None):
        out.append("gender must be F, M, O or null")
    if "is_company" in body and not isinstance(body["is_company"], bool):
        out.append("is_company must be a boolean")
    for key in ("brand", "uf", "city"):
        if key in body and not isinstance(body[key], str):
            out.append(f"{key} must be a string")
    items = body.get("items")
    if not isinstance(items, list) or not items:
        return [*out, "items must be a non-empty list"]
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            out.append(f"items[{i}] must be an object")
            continue
        out += [
            f"items[{i}]: must have '{k}'"
            for k in sorted(ITEM_KEYS - {"seller_id", "product_id"})
            if k not in item
        ]
        out += [f"items[{i}]: unknown field {k!r}" for k in item if k not in ITEM_KEYS]
        if "sku" in item and not _text(item["sku"]):
            out.append(f"items[{i}].sku must be a non-empty string")
        if "quantity" in item and not (_number(item["quantity"]) and item["quantity"] > 0):
            out.append(f"items[{i}].quantity must be a number above 0")
        for key in ("price", "promotional_price"):
            if key in item and not (_number(item[key]) and item[key] >= 0):
                out.append(f"items[{i}].{key} must be a number of at least 0")
    return out


def _text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def reply(got: Received, status: int) -> bytes:
    """Newtail's 202: `{"messages": ["<kind> will be processed soon"]}`."""
    if status != 202:
        return b""
    kind = "conversion" if got.path.endswith("/conversion") else got.path.split("/")[3]
    return msgspec.json.encode({"messages": [f"{kind} will be processed soon"]})


def received(path: str, body: Any, query: str = "") -> Received:
    raw = msgspec.json.encode(body)
    return Received("POST", path, query, {"content-type": "application/json"}, raw)


GOOD_CONVERSION = {
    "publisher_id": "pub-1",
    "user_id": "u-7",
    "session_id": "s-1",
    "order_id": "ORD-1",
    "created_at": "2024-05-01T12:30:00Z",
    "items": [{"sku": "SKU-1", "quantity": 3, "price": 25.0, "promotional_price": 19.9}],
    "channel": "ecommerce",
    "email_hashed": sha("ana@example.com"),
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"user_id": None}, "must have required property 'user_id'"),
        ({"email_hashed": "ana@example.com"}, "email_hashed must be a lowercase SHA-256"),
        ({"created_at": "2024-05-01 12:30"}, "created_at must be ISO 8601 in UTC"),
        ({"items": []}, "items must be a non-empty list"),
        ({"items": [{"sku": "A", "quantity": 0, "price": 1, "promotional_price": 1}]},
         "quantity must be a number above 0"),
        ({"items": [{"sku": "A", "quantity": 1, "price": 1}]}, "must have 'promotional_price'"),
        ({"gender": "female"}, "gender must be F, M, O or null"),
        ({"value": 59.7}, "unknown field 'value'"),
    ],
)  # fmt: skip
def test_fake_refuses_what_newtail_refuses(change, problem):
    body = {k: v for k, v in {**GOOD_CONVERSION, **change}.items() if v is not None}
    found = problems(received("/v1/beacon/conversion", body))
    assert found is not None and problem in found
    assert problems(received("/v1/beacon/conversion", GOOD_CONVERSION)) is None
    item = {**GOOD_CONVERSION["items"][0], "seller_id": None}  # Newtail's own example
    assert problems(received("/v1/beacon/conversion", {**GOOD_CONVERSION, "items": [item]})) is None
    ad = received("/v1/beacon/view/AD-1", {"session_id": "s-1"}, f"sign={SIGN}")
    assert problems(ad) is None
    assert "session_id" in problems(received("/v1/beacon/view/AD-1", {}, f"sign={SIGN}"))
    assert "query was not kept" in problems(received("/v1/beacon/view/AD-1", {"session_id": "s"}))


# -- the real server: beacons in, Newtail requests out -------------------------------------------


def _container(tmp_path: Path, vendor_url: str, extra: str = "") -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            clients:
              - {{name: beacon, type: beacon, settings: {{currency: BRL}}}}
            triggers:
              newtail_events:
                var: event_name
                in: [ad_impression, ad_view, ad_click, purchase]
            tags:
              - name: newtail
                type: newtail
                triggers: [newtail_events]
                settings:
                  publisher_id: pub-1
                  allowed_event_hosts: [{HOST}, newtail-media.newtail.com.br]
                  phone_country_code: "55"
                  endpoint: "{vendor_url}"
                  event_endpoint: "{vendor_url}"
            """
        )
        + extra
    )
    return path


def _beacon(server: SgtmProcess, kind: str, body: dict[str, Any]) -> None:
    response = httpx.post(
        f"{server.url}/beacon/{kind}",
        content=json.dumps(body),
        headers={"content-type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 202, response.text


CONVERSION = {
    "publisher_id": "pub-1",
    "user_id": "u-7",
    "session_id": "s-1",
    "order_id": "ORD-1001",
    "created_at": "2024-05-01T09:30:00-03:00",
    "channel": "ecommerce",
    "email": " Ana@Example.com ",
    "phone": "(11) 91234-5678",
    "items": [  # optional fields sent as null, as Newtail's own example does
        {"sku": "SKU-1", "quantity": 3, "price": 25.0, "promotional_price": 19.9,
         "seller_id": None, "product_id": None},
        {"sku": "SKU-2", "quantity": 1, "price": 40, "promotional_price": 40, "seller_id": "s9"},
    ],
    "gender": None,
    "brand": None,
}  # fmt: skip


def _tag_outcomes(server: SgtmProcess) -> dict[str, float]:
    """sgtm_tags_total of the newtail tag, by outcome, from /metrics."""
    text = httpx.get(f"{server.url}/metrics", headers={"authorization": "Bearer adm"}).text
    found = re.findall(r'sgtm_tags_total\{[^}]*outcome="(\w+)"[^}]*tag="newtail"\} (\S+)', text)
    return {outcome: float(count) for outcome, count in found}


def test_serve_forwards_signed_urls_and_sends_conversions(tmp_path):
    env = {**FAST_ENV, "SGTM_DATA_DIR": str(tmp_path / "var"), "SGTM_ADMIN_TOKEN": "adm"}
    vendor = FakeVendor(default_status=202, check=problems, reply=reply)
    with vendor, SgtmProcess(_container(tmp_path, vendor.url), env) as server:
        ids = {"session_id": "s-1", "user_id": "u-7"}
        # a hostile URL first: had it been queued, it would be sent first in the same lane
        _beacon(
            server,
            "impression",
            {**ids, "impression_url": signed("impression", "EVIL", "evil.example")},
        )
        _beacon(server, "impression", {**ids, "impression_url": signed("impression", "AD-1")})
        _beacon(server, "impression", {**ids, "impression_url": signed("impression", "AD-1")})
        _beacon(server, "view", {"session_id": "s-1", "view_url": signed("view", "AD-1")})
        _beacon(server, "click", {**ids, "click_url": signed("click", "AD-1")})
        _beacon(server, "click", {**ids, "click_url": signed("click", "AD-1")})
        _beacon(server, "conversion", CONVERSION)
        _beacon(server, "conversion", CONVERSION)  # the same order again
        # the tag's decisions are made before each beacon is answered: final now
        outcomes = _tag_outcomes(server)
        got = vendor.wait_for(4)
    assert outcomes == {"fired": 4, "dedupe": 3, "invalid": 1}
    assert vendor.errors == []
    by_path = {r.path: r for r in got}
    assert sorted(by_path) == [
        "/v1/beacon/click/AD-1",
        "/v1/beacon/conversion",
        "/v1/beacon/impression/AD-1",
        "/v1/beacon/view/AD-1",
    ]
    assert len(got) == 4
    for kind in ("impression", "view", "click"):
        request = by_path[f"/v1/beacon/{kind}/AD-1"]
        assert request.query == signed(kind, "AD-1").split("?", 1)[1]  # byte for byte
        assert request.headers["content-type"] == "application/json"
    assert msgspec.json.decode(by_path["/v1/beacon/impression/AD-1"].body) == {
        "session_id": "s-1",
        "user_id": "u-7",
    }
    assert msgspec.json.decode(by_path["/v1/beacon/view/AD-1"].body) == {"session_id": "s-1"}
    conversion = msgspec.json.decode(by_path["/v1/beacon/conversion"].body)
    assert conversion == {
        "publisher_id": "pub-1",
        "user_id": "u-7",
        "session_id": "s-1",
        "order_id": "ORD-1001",
        "created_at": "2024-05-01T12:30:00Z",
        "items": [  # unit prices, as sent: never multiplied by quantity
            {"sku": "SKU-1", "quantity": 3, "price": 25, "promotional_price": 19.9},
            {"sku": "SKU-2", "quantity": 1, "price": 40, "promotional_price": 40,
             "seller_id": "s9"},
        ],
        "channel": "ecommerce",
        "email_hashed": sha("ana@example.com"),
        "phone_hashed": sha("+5511912345678"),
    }  # fmt: skip


def test_serve_gives_ad_events_and_conversions_one_session_and_user_id(tmp_path):
    # Defaults everywhere: sgtm.js leaves the session id to the server and the page passes no
    # ids. Ad events (beacon), a gtag purchase (ga4) and a dataLayer purchase (datalayer) from
    # one browser reach Newtail with the same session id, and the same user id where known.
    env = {**FAST_ENV, "SGTM_DATA_DIR": str(tmp_path / "var")}
    config = tmp_path / "ids.yaml"
    config.write_text(
        textwrap.dedent(
            """\
            version: 1
            clients:
              - {name: beacon, type: beacon, settings: {currency: BRL}}
              - {name: ga4, type: ga4}
              - {name: web, type: datalayer}
            triggers:
              newtail_events:
                var: event_name
                in: [ad_impression, ad_view, ad_click, purchase]
            tags:
              - name: newtail
                type: newtail
                triggers: [newtail_events]
                settings:
                  publisher_id: pub-1
                  endpoint: "URL"
                  event_endpoint: "URL"
            """
        )
    )
    vendor = FakeVendor(default_status=202, check=problems, reply=reply)
    with vendor:
        config.write_text(config.read_text().replace("URL", vendor.url))
        with SgtmProcess(config, env) as server:
            browsers = {"ga": "_ga=GA1.1.1111.2222; _dcid=dcid.1.1700000000000.1", "dcid": ""}
            # the second browser has no GA: sgtm's own _dcid, set on its first dataLayer hit
            first = httpx.post(f"{server.url}/data", content='{"event": "page_view"}')
            browsers["dcid"] = f"_dcid={first.cookies['_dcid']}"
            for name, cookie in browsers.items():
                headers = {"cookie": cookie, "content-type": "text/plain"}
                view = {"view_url": signed("view", f"AD-{name}"), "user_id": "u-7"}
                response = httpx.post(f"{server.url}/beacon/view", json=view, headers=headers)
                assert response.status_code == 202, response.text
                purchase = {
                    "event": "purchase",
                    "transaction_id": f"D-{name}",
                    "user_id": "u-7",
                    "items": [{"item_id": "SKU-1", "price": 10, "quantity": 1}],
                    "user_data": {"email_address": "ana@example.com"},
                }
                response = httpx.post(f"{server.url}/data", json=purchase, headers=headers)
                assert response.status_code == 200, response.text
            hit = (
                "/g/collect?v=2&tid=G-1&cid=1111.2222&en=purchase&uid=u-7&ep.transaction_id=G-ga"
                "&ep.user_data.email=ana%40example.com&pr1=idSKU-1~pr10~qt1"
            )
            ga_cookie = {"cookie": browsers["ga"]}
            assert httpx.get(server.url + hit, headers=ga_cookie).status_code == 200
            got = vendor.wait_for(5)
    assert vendor.errors == []
    sent = {(r.path, msgspec.json.decode(r.body).get("order_id")): r for r in got}
    ids = {key: msgspec.json.decode(r.body) for key, r in sent.items()}
    dcid = browsers["dcid"].split("=", 1)[1]
    assert {key: (body["session_id"], body["user_id"]) for key, body in ids.items()} == {
        ("/v1/beacon/view/AD-ga", None): ("1111.2222", "u-7"),
        ("/v1/beacon/conversion", "D-ga"): ("1111.2222", "u-7"),
        ("/v1/beacon/conversion", "G-ga"): ("1111.2222", "u-7"),
        ("/v1/beacon/view/AD-dcid", None): (dcid, "u-7"),
        ("/v1/beacon/conversion", "D-dcid"): (dcid, "u-7"),
    }


def test_serve_retries_a_conversion_with_the_same_body(tmp_path):
    env = {**FAST_ENV, "SGTM_DATA_DIR": str(tmp_path / "var")}
    vendor = FakeVendor(default_status=202, responses=[503], check=problems, reply=reply)
    with vendor, SgtmProcess(_container(tmp_path, vendor.url), env) as server:
        _beacon(server, "conversion", CONVERSION)
        first, second = vendor.wait_for(2, timeout=30)
    assert vendor.errors == []
    assert first.body == second.body and first.path == second.path == "/v1/beacon/conversion"


AJV_422 = [
    {
        "instancePath": "",
        "keyword": "required",
        "message": "must have required property 'user_id'",
        "params": {"missingProperty": "user_id"},
        "schemaPath": "#/required",
    },
    {
        "instancePath": "/items/0/quantity",
        "keyword": "type",
        "message": "must be number",
        "params": {"type": "number"},
        "schemaPath": "#/properties/items/items/properties/quantity/type",
    },
]
AJV_REASON = (
    "Newtail refused the event (422): / must have required property 'user_id'; "
    "/items/0/quantity must be number"
)


def test_serve_dead_letters_a_422_with_newtails_error_list(tmp_path):
    env = {**FAST_ENV, "SGTM_DATA_DIR": str(tmp_path / "var")}
    refused = Reply(422, {"content-type": "application/json"}, msgspec.json.encode(AJV_422))
    data = tmp_path / "dlq"
    with FakeVendor(default_status=202, responses=[refused], check=problems) as vendor:
        config = _container(tmp_path, vendor.url, f"delivery: {{path: '{data}'}}\n")
        with SgtmProcess(config, env) as server:
            _beacon(server, "conversion", CONVERSION)
            vendor.wait_for(1)
            letters = _dead_letters(config)
    (letter,) = letters
    assert letter["reason"] == AJV_REASON
    assert letter["status"] == 422 and letter["attempts"] == 1
    assert len(vendor.received) == 1  # never retried


def _dead_letters(config: Path) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = subprocess.run(
            [SGTM, "dlq", "list", "-c", str(config), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": ""},
        )
        if done.returncode == 0 and done.stdout.strip().startswith("["):
            letters = json.loads(done.stdout)
            if letters:
                return letters  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError("no dead letter")


@pytest.mark.parametrize(
    ("answer", "outcome", "reason"),
    [
        (Reply(202, body=b'{"messages": ["conversion will be processed soon"]}'), "done", ""),
        (Reply(422, body=msgspec.json.encode(AJV_422)), "dead", AJV_REASON),
        (Reply(429), "retry", "HTTP 429"),
        (Reply(500), "retry", "HTTP 500"),
        (Reply(404, body=b"ad not found"), "dead", "HTTP 404: ad not found"),
    ],
)
def test_answers_are_classified(answer, outcome, reason):
    with FakeVendor(responses=[answer]) as vendor:
        response = httpx.post(f"{vendor.url}/v1/beacon/conversion", json=GOOD_CONVERSION)
    verdict = TAG.classify(response.status_code, dict(response.headers), response.content)
    assert (verdict.outcome, verdict.reason) == (outcome, reason)
