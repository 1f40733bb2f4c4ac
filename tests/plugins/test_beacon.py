"""Beacon client: every path and content type, the event data, Ajv-style 422 lists, hostile input,
Meta cookies and consent, through the real pipeline (Container + RecorderDelivery) and over HTTP."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from sgtm_plugins.beacon import BeaconClient, BeaconSettings
from sgtm_plugins.beacon.mapping import ad_id_from
from sgtm_plugins.beacon.schema import MAX_ITEMS, MAX_URL_CHARS

from sgtm.config import load_text
from sgtm.container import Container, HandleResult
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.request import HitRequest
from sgtm.yamlsource import ConfigErrors
from tests.installed import registry
from tests.servers import FakeVendor, SgtmServer

NOW = 1_700_000_000.0
UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"
SIGNED = (
    "https://events.newtail-media.newtail.com.br/v1/beacon/{kind}/AD-42"
    "?publisher_id=p1&ad_type=product&campaign_id=c9&context=search"
    "&event_id=0b3a1e7c-3f4b-4f43-9c8e-2f3e7b0c1d2e&session_id=s-1&requested_at=1700000000000"
    "&sign=" + "a" * 64
)
SHA = "4d5e9b2f0c1a3e6d7b8c9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"
ORDER: dict[str, Any] = {
    "publisher_id": "pub-1",
    "user_id": "u-7",
    "session_id": "s-1",
    "order_id": "ORD-1001",
    "created_at": "2024-05-01T12:30:00.000Z",
    "channel": "ecommerce",
    "email_hashed": SHA.upper(),
    "items": [
        {"sku": "SKU-1", "quantity": 3, "price": 25.0, "promotional_price": 19.9},
        {"sku": "SKU-2", "quantity": 1.5, "price": 10, "promotional_price": 10, "seller_id": "s9"},
    ],
}


def container(settings: str = "{}", consent_default: str = "granted") -> Container:
    text = textwrap.dedent(
        f"""\
        version: 1
        origins: [https://www.shop.example]
        consent: {{default: {consent_default}}}
        clients:
          - name: beacon
            type: beacon
            settings: {settings}
        triggers:
          ads: {{var: event_name, starts_with: ad_}}
        tags:
          - name: hook
            type: http_request
            triggers: [ads]
            settings: {{url: "http://127.0.0.1:9/hook"}}
        """
    )
    spec = load_text(text, "beacon.yaml", registry())
    return Container(spec, RecorderDelivery(), MemoryDedupe(), clock=lambda: NOW)


async def post(
    target: Container,
    path: str,
    body: Any,
    content_type: str | None = "text/plain;charset=UTF-8",
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> HandleResult:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"user-agent": UA, **(headers or {})}
    if content_type is not None:
        all_headers["content-type"] = content_type
    request = HitRequest(
        method=method,
        path=path,
        headers=all_headers,
        body=raw,
        client_ip="203.0.113.7",
        host="sgtm.shop.example",
    )
    return await target.handle(request, trace=True)


def data(result: HandleResult) -> dict[str, Any]:
    assert result.response.status == 202, result.response.body
    assert result.response.body == b""
    (event,) = result.events
    return event.data


def errors(result: HandleResult) -> list[dict[str, Any]]:
    assert result.response.status == 422, result.response.body
    assert result.response.headers["content-type"] == "application/json"
    assert result.events == []
    decoded: list[dict[str, Any]] = json.loads(result.response.body)
    return decoded


def ajv(path: str, keyword: str, message: str, schema_path: str, **params: Any) -> dict[str, Any]:
    return {
        "instancePath": path,
        "keyword": keyword,
        "message": message,
        "params": params,
        "schemaPath": schema_path,
    }


# --- claim ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "path", "claimed"),
    [
        ("/beacon", "/beacon/impression", True),
        ("/beacon", "/beacon/view", True),
        ("/beacon", "/beacon/click", True),
        ("/beacon", "/beacon/conversion", True),
        ("/beacon", "/beacon/click/", True),
        ("/beacon", "/beacon/purchase", False),
        ("/beacon", "/beacon", False),
        ("/beacon", "/beacons/click", False),
        ("/beacon", "/x/beacon/click", False),
        ("/beacon", "/g/collect", False),
        ("/rm/events/", "/rm/events/view", True),
        ("/rm/events", "/beacon/view", False),
    ],
)
def test_claim(prefix: str, path: str, claimed: bool) -> None:
    settings = BeaconSettings(prefix=prefix)
    assert BeaconClient().claim(HitRequest(method="POST", path=path), settings) is claimed


# --- ad events --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["impression", "view", "click"])
@pytest.mark.parametrize(
    "content_type",
    ["text/plain;charset=UTF-8", "application/json", "Application/JSON; charset=utf-8", None],
)
async def test_ad_event_data(kind: str, content_type: str | None) -> None:
    url = SIGNED.format(kind=kind)
    body = {"session_id": "s-1", "user_id": "u-7", f"{kind}_url": url}
    event = data(await post(container(), f"/beacon/{kind}", body, content_type))
    event_id = event.pop("event_id")
    assert event == {
        "event_name": f"ad_{kind}",
        "ad_event_type": kind,
        "ad_event_url": url,
        "ad_id": "AD-42",
        "session_id": "s-1",
        "user_id": "u-7",
        "user_agent": UA,
        "ip_override": "203.0.113.7",
    }
    assert len(event_id) == 36


async def test_ad_event_reaches_the_tag_with_its_data() -> None:
    target = container()
    url = SIGNED.format(kind="click")
    await post(target, "/beacon/click", {"session_id": "s-1", "url": url})
    (submission,) = target.delivery.submitted  # type: ignore[attr-defined]
    sent = msgspec.json.decode(submission.outbound.body)
    assert (sent["event_name"], sent["ad_event_url"], sent["session_id"]) == (
        "ad_click",
        url,
        "s-1",
    )


async def test_generic_url_and_the_specific_one_wins() -> None:
    target = container()
    specific, generic = SIGNED.format(kind="view"), "https://ads.example/v/1"
    only_generic = data(await post(target, "/beacon/view", {"session_id": "s", "url": generic}))
    assert only_generic["ad_event_url"] == generic
    both = {"session_id": "s", "url": generic, "view_url": specific}
    assert data(await post(target, "/beacon/view", both))["ad_event_url"] == specific


async def test_event_id_kept_or_stable_per_kind_and_url() -> None:
    target = container()
    url = SIGNED.format(kind="view")
    given = data(
        await post(target, "/beacon/view", {"session_id": "s", "url": url, "event_id": "e1"})
    )
    assert given["event_id"] == "e1"
    first = data(await post(target, "/beacon/view", {"session_id": "s", "url": url}))
    again = data(await post(target, "/beacon/view", {"session_id": "other", "url": url}))
    click = data(await post(target, "/beacon/click", {"session_id": "s", "url": url}))
    assert first["event_id"] == again["event_id"] != click["event_id"]


async def test_optional_page_and_consent_are_kept_and_unknown_keys_ignored() -> None:
    body = {
        "session_id": "s",
        "url": "https://ads.example/i",
        "page_location": "https://www.shop.example/search?q=tv",
        "consent_state": {"ad_storage": "granted", "analytics_storage": False},
        "whatever": {"deep": [1, 2, 3]},
    }
    event = data(await post(container(), "/beacon/impression", body))
    assert event["page_location"] == body["page_location"]
    assert event["consent_state"] == body["consent_state"]
    assert "whatever" not in event and "user_id" not in event


@pytest.mark.parametrize(
    ("url", "ad_id"),
    [
        (SIGNED.format(kind="impression"), "AD-42"),
        ("https://newtail-media.newtail.com.br/v1/beacon/click/77?sign=x", "77"),
        ("https://ads.example/track?id=1", None),
        ("https://ads.example/", None),
        ("http://[::1", None),
    ],
)
def test_ad_id_from_url(url: str, ad_id: str | None) -> None:
    assert ad_id_from(url) == ad_id


URL_SCHEMA = "#/properties/impression_url"
URL_PATTERN = "^https?://[A-Za-z0-9.:\\[\\]-]+([/?#][!-~]*)?$"


@pytest.mark.parametrize(
    "bad_url",
    [
        "javascript:alert(1)",
        "data:text/html,x",
        "ftp://ads.example/x",
        "file:///etc/passwd",
        "//ads.example/x",
        "https://",
        "https://user:pw@ads.example/x",
        "https://ads.example/x y",
        "https://ads.example/x\n",
        "https://ads.example/\x00",
        "https://adś.example/x",
    ],
)
async def test_event_url_must_be_plain_http_or_https(bad_url: str) -> None:
    body = {"session_id": "s", "impression_url": bad_url}
    assert errors(await post(container(), "/beacon/impression", body)) == [
        ajv(
            "/impression_url",
            "pattern",
            f'must match pattern "{URL_PATTERN}"',
            f"{URL_SCHEMA}/pattern",
            pattern=URL_PATTERN,
        )
    ]


async def test_absurdly_long_event_url() -> None:
    url = "https://ads.example/" + "a" * MAX_URL_CHARS
    assert errors(
        await post(container(), "/beacon/impression", {"session_id": "s", "url": url})
    ) == [
        ajv(
            "/url",
            "maxLength",
            f"must NOT have more than {MAX_URL_CHARS} characters",
            "#/properties/url/maxLength",
            limit=MAX_URL_CHARS,
        )
    ]


async def test_ad_event_names_every_problem_at_once() -> None:
    body = {"user_id": 7, "session_id": "", "event_id": [], "consent_state": {"ad_storage": 1}}
    assert errors(await post(container(), "/beacon/click", body)) == [
        ajv(
            "",
            "required",
            "must have required property 'click_url'",
            "#/required",
            missingProperty="click_url",
        ),
        ajv(
            "/session_id",
            "minLength",
            "must NOT have fewer than 1 characters",
            "#/properties/session_id/minLength",
            limit=1,
        ),
        ajv("/user_id", "type", "must be string", "#/properties/user_id/type", type="string"),
        ajv("/event_id", "type", "must be string", "#/properties/event_id/type", type="string"),
        ajv(
            "/consent_state/ad_storage",
            "type",
            "must be boolean,string",
            "#/properties/consent_state/additionalProperties/type",
            type="boolean,string",
        ),
    ]


@pytest.mark.parametrize("body", [[], [{"session_id": "s"}], "s", 1, None, True])
async def test_body_that_is_not_an_object(body: Any) -> None:
    assert errors(await post(container(), "/beacon/view", body)) == [
        ajv("", "type", "must be object", "#/type", type="object")
    ]


# --- conversions ------------------------------------------------------------------------------


async def test_conversion_becomes_a_purchase() -> None:
    event = data(await post(container("{currency: BRL}"), "/beacon/conversion", ORDER))
    assert event == {
        "event_name": "purchase",
        "transaction_id": "ORD-1001",
        "user_id": "u-7",
        "session_id": "s-1",
        "publisher_id": "pub-1",
        "channel": "ecommerce",
        "created_at": "2024-05-01T12:30:00.000Z",
        "currency": "BRL",
        # 19.9 * 3 + 10 * 1.5, in decimal: not 74.69999999999999
        "value": 74.7,
        "items": [
            {
                "item_id": "SKU-1",
                "quantity": 3,
                "price": 19.9,
                "item_list_price": 25.0,
                "discount": 5.1,
            },
            {
                "item_id": "SKU-2",
                "quantity": 1.5,
                "price": 10,
                "item_list_price": 10,
                "seller_id": "s9",
            },
        ],
        "user_data": {"sha256_email_address": SHA},
        "user_agent": UA,
        "ip_override": "203.0.113.7",
    }


async def test_conversion_optional_fields() -> None:
    body = {
        **ORDER,
        "email": "Ana@Example.com",
        "phone": "+5511999990000",
        "phone_hashed": SHA,
        "first_name_hashed": SHA,
        "last_name_hashed": SHA,
        "social_id_hashed": SHA,
        "uf": "SP",
        "city": "São Paulo",
        "gender": None,
        "is_company": False,
        "brand": "loja",
        "currency": "USD",
        "value": 12.5,
        "event_id": "evt-9",
    }
    event = data(await post(container("{currency: BRL}"), "/beacon/conversion", body))
    assert event["user_data"] == {
        "email_address": "Ana@Example.com",
        "sha256_email_address": SHA,
        "phone_number": "+5511999990000",
        "sha256_phone_number": SHA,
        "sha256_social_id": SHA,
        "address": {
            "sha256_first_name": SHA,
            "sha256_last_name": SHA,
            "region": "SP",
            "city": "São Paulo",
        },
    }
    assert (event["currency"], event["value"], event["event_id"]) == ("USD", 12.5, "evt-9")
    assert (event["is_company"], event["brand"]) == (False, "loja")
    assert "gender" not in event  # null: unidentified, the same as not sent


# Newtail's own conversion example (vtexads-api-docs 5.6-events.md, examples/EVENTS_CONVERSION_*):
# optional fields sent as null, as its reference JavaScript does (`seller_id: i.sellerId || null`).
NEWTAIL_EXAMPLE = {
    "channel": "ecommerce",
    "publisher_id": "xxx",
    "user_id": "6f92d1e9-00b6-4f8b-9645-faeab321e1cc",
    "session_id": "5898b8d1-c250-4bb5-931b-8b9d0ee7b499",
    "order_id": "123",
    "email_hashed": SHA,
    "items": [
        {"sku": "12221", "seller_id": "1234", "product_id": "4567", "quantity": 1,
         "price": 2000.00, "promotional_price": 1899.00},
        {"sku": "12222", "seller_id": None, "product_id": "4568", "quantity": 2,
         "price": 500.00, "promotional_price": 400.00},
    ],
    "created_at": "2023-01-01T09:20:00Z",
}  # fmt: skip


async def test_newtails_own_example_with_null_fields_is_accepted() -> None:
    event = data(await post(container(), "/beacon/conversion", NEWTAIL_EXAMPLE))
    first, second = event["items"]
    assert first["seller_id"] == "1234" and "seller_id" not in second
    assert second == {"item_id": "12222", "quantity": 2, "price": 400.0, "item_list_price": 500.0,
                      "discount": 100, "product_id": "4568"}  # fmt: skip


async def test_every_optional_field_takes_null() -> None:
    optional = ["brand", "gender", "uf", "city", "is_company", "phone", "phone_hashed", "email",
                "social_id_hashed", "first_name_hashed", "last_name_hashed", "currency", "value",
                "event_id", "page_location", "consent_state"]  # fmt: skip
    nulls = dict.fromkeys(optional)
    event = data(await post(container(), "/beacon/conversion", {**ORDER, **nulls}))
    assert not (set(nulls) - {"value"}) & set(event)
    assert event["user_data"] == {"sha256_email_address": SHA}
    assert event["value"] == 74.7  # null value: computed from the items, as when left out
    ad = {"session_id": "s", "user_id": None, "event_id": None, "click_url": None,
          "url": "https://events.example/v1/beacon/click/A"}  # fmt: skip
    event = data(await post(container(), "/beacon/click", ad))
    assert "user_id" not in event and event["ad_event_url"] == ad["url"]


async def test_a_required_field_that_is_null_is_missing() -> None:
    assert errors(await post(container(), "/beacon/conversion", {**ORDER, "user_id": None})) == [
        ajv("", "required", "must have required property 'user_id'", "#/required",
            missingProperty="user_id"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("cookie", "session_id"),
    [
        ("_ga=GA1.1.1111.2222; _dcid=dcid.1.5.6", "1111.2222"),  # GA's client id first
        ("_dcid=dcid.1.1700000000000.123456789", "dcid.1.1700000000000.123456789"),
    ],
)
async def test_a_session_id_left_to_sgtm_is_the_visitors_persistent_id(
    cookie: str, session_id: str
) -> None:
    headers = {"cookie": cookie}
    ad = {"view_url": "https://events.example/v1/beacon/view/A"}
    event = data(await post(container(), "/beacon/view", ad, headers=headers))
    assert event["session_id"] == session_id
    order = {k: v for k, v in ORDER.items() if k != "session_id"}
    event = data(await post(container(), "/beacon/conversion", order, headers=headers))
    assert event["session_id"] == session_id
    # the page's own session id always wins
    event = data(
        await post(container(), "/beacon/view", {**ad, "session_id": "s"}, headers=headers)
    )
    assert event["session_id"] == "s"


async def test_no_session_id_and_no_visitor_cookie_is_still_refused() -> None:
    ad = {"view_url": "https://events.example/v1/beacon/view/A", "session_id": None}
    assert errors(await post(container(), "/beacon/view", ad, headers={"cookie": "_ga=junk"})) == [
        ajv("", "required", "must have required property 'session_id'", "#/required",
            missingProperty="session_id"),
    ]  # fmt: skip


async def test_plain_email_stands_in_for_email_hashed() -> None:
    body = {k: v for k, v in ORDER.items() if k != "email_hashed"}
    event = data(await post(container(), "/beacon/conversion", {**body, "email": "a@b.co"}))
    assert event["user_data"] == {"email_address": "a@b.co"}
    assert "currency" not in event  # no body currency and no default


async def test_conversion_names_every_missing_and_mistyped_field() -> None:
    body = {
        "order_id": 1001,
        "created_at": "2024-02-30T10:00:00Z",
        "items": [
            {"sku": "A", "quantity": "2", "price": 10, "promotional_price": -1},
            {"quantity": 0, "price": True},
            "SKU-3",
        ],
        "gender": "female",
        "currency": "brl",
        "is_company": "no",
    }
    item = "#/properties/items/items"
    assert errors(await post(container(), "/beacon/conversion", body)) == [
        *(
            ajv(
                "",
                "required",
                f"must have required property '{name}'",
                "#/required",
                missingProperty=name,
            )
            for name in ("publisher_id", "user_id", "session_id", "channel", "email_hashed")
        ),
        ajv("/order_id", "type", "must be string", "#/properties/order_id/type", type="string"),
        ajv(
            "/created_at",
            "format",
            'must match format "date-time"',
            "#/properties/created_at/format",
            format="date-time",
        ),
        ajv(
            "/items/0/quantity",
            "type",
            "must be number",
            f"{item}/properties/quantity/type",
            type="number",
        ),
        ajv(
            "/items/0/promotional_price",
            "minimum",
            "must be >= 0",
            f"{item}/properties/promotional_price/minimum",
            comparison=">=",
            limit=0,
        ),
        ajv(
            "/items/1",
            "required",
            "must have required property 'sku'",
            f"{item}/required",
            missingProperty="sku",
        ),
        ajv(
            "/items/1",
            "required",
            "must have required property 'promotional_price'",
            f"{item}/required",
            missingProperty="promotional_price",
        ),
        ajv(
            "/items/1/quantity",
            "exclusiveMinimum",
            "must be > 0",
            f"{item}/properties/quantity/exclusiveMinimum",
            comparison=">",
            limit=0,
        ),
        ajv(
            "/items/1/price",
            "type",
            "must be number",
            f"{item}/properties/price/type",
            type="number",
        ),
        ajv("/items/2", "type", "must be object", f"{item}/type", type="object"),
        ajv(
            "/gender",
            "enum",
            "must be equal to one of the allowed values",
            "#/properties/gender/enum",
            allowedValues=["F", "M", "O", None],
        ),
        ajv(
            "/is_company", "type", "must be boolean", "#/properties/is_company/type", type="boolean"
        ),
        ajv(
            "/currency",
            "pattern",
            'must match pattern "^[A-Z]{3}$"',
            "#/properties/currency/pattern",
            pattern="^[A-Z]{3}$",
        ),
    ]


async def test_newtail_example_error() -> None:
    body = {k: v for k, v in ORDER.items() if k != "user_id"}
    assert errors(await post(container(), "/beacon/conversion", body)) == [
        {
            "instancePath": "",
            "keyword": "required",
            "message": "must have required property 'user_id'",
            "params": {"missingProperty": "user_id"},
            "schemaPath": "#/required",
        }
    ]


@pytest.mark.parametrize(
    ("items", "keyword"),
    [([], "minItems"), ([ORDER["items"][0]] * (MAX_ITEMS + 1), "maxItems"), ({}, "type")],
)
async def test_items_bounds(items: Any, keyword: str) -> None:
    (error,) = errors(await post(container(), "/beacon/conversion", {**ORDER, "items": items}))
    assert (error["instancePath"], error["keyword"]) == ("/items", keyword)


@pytest.mark.parametrize(
    ("created_at", "valid"),
    [
        ("2024-05-01T12:30:00Z", True),
        ("2024-05-01T12:30:00.123456+00:00", True),
        ("2024-05-01 12:30:00-0300", True),
        ("2024-05-01T12:30:00", False),  # no zone: ambiguous
        ("2024-05-01", False),
        ("2024-13-01T00:00:00Z", False),
        ("2024-05-01T25:00:00Z", False),
        ("1714566600", False),
        ("2024-05-01T12:30:00Z\n", False),
    ],
)
async def test_created_at_format(created_at: str, valid: bool) -> None:
    result = await post(container(), "/beacon/conversion", {**ORDER, "created_at": created_at})
    assert (result.response.status == 202) is valid


# --- hostile input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, b"body is not valid JSON"),
        (b'{"session_id": "s", "url": "https://a.b/"', 400, b"body is not valid JSON"),
        (b'{"a": NaN}', 400, b"body is not valid JSON"),
        (b'{"a": 1e999}', 400, b"body is not valid JSON"),
        (b'{"a": "\\ud800"}', 400, b"body is not valid JSON"),
        (b'{"a": "\xff\xfe"}', 400, b"body is not UTF-8 (byte 7)"),
        (b"", 400, b"empty body"),
        (b"  \n", 400, b"empty body"),
        (b"[" * 30000 + b"]" * 30000, 400, b"body is not valid JSON: nested deeper than 32 levels"),
        (
            b'{"a":' * 10000 + b"1" + b"}" * 10000,
            400,
            b"body is not valid JSON: nested deeper than 32 levels",
        ),
        # Parsed fine, but deeper than any event: refused before a tag walks it.
        (b'{"a":' * 33 + b"1" + b"}" * 33, 400, b"body is not valid JSON: nested deeper than 32"),
        (b'{"session_id": "' + b"x" * 70000 + b'"}', 413, b"body over 65536 bytes"),
    ],
)
async def test_hostile_bodies_get_a_clear_4xx(body: bytes, status: int, message: bytes) -> None:
    result = await post(container(), "/beacon/view", body)
    assert result.response.status == status
    assert result.response.body.startswith(message), result.response.body
    assert result.events == []


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/html"],
)
async def test_other_content_types_get_415(content_type: str) -> None:
    result = await post(container(), "/beacon/view", {"session_id": "s"}, content_type)
    assert result.response.status == 415
    assert b"send text/plain or application/json" in result.response.body


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS"])
async def test_other_methods_get_405(method: str) -> None:
    result = await post(container(), "/beacon/click", {"session_id": "s"}, method=method)
    assert (result.response.status, result.response.headers["allow"]) == (405, "POST")


def _garbage(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(8 if depth < 4 else 5)
    if choice == 0:
        return rng.choice([None, True, False, 0, -1, 1.5, 2**70, ""])
    if choice == 1:
        return rng.choice(["s", "https://a.b/c", "javascript:x", "2024-01-01T00:00:00Z", "\x00"])
    if choice == 2:
        return rng.uniform(-1e9, 1e9)
    if choice in (3, 4):
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(8)))
    if choice == 5:
        return [_garbage(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = [*ORDER, "url", "view_url", "consent_state", "sku", "quantity", "price", "x"]
    return {rng.choice(keys): _garbage(rng, depth + 1) for _ in range(rng.randrange(10))}


async def test_random_bodies_never_fail_the_server() -> None:
    rng = random.Random(20240501)
    target = container("{meta_cookies: true}")
    statuses: set[int] = set()
    for _ in range(400):
        kind = rng.choice(["impression", "view", "click", "conversion"])
        body = _garbage(rng)
        if isinstance(body, dict) and rng.random() < 0.5:
            body = {
                **(ORDER if kind == "conversion" else {"session_id": "s", "url": "https://a.b/"}),
                **body,
            }
        result = await post(target, f"/beacon/{kind}", body)
        statuses.add(result.response.status)
        assert result.response.status in (202, 400, 422), result.response.body
        if result.response.status == 422:
            assert all(
                set(e) == {"instancePath", "keyword", "message", "params", "schemaPath"}
                for e in json.loads(result.response.body)
            )
    assert statuses == {202, 422}


# --- cookies, consent, CORS -------------------------------------------------------------------


async def test_meta_cookies_from_the_page_fbclid() -> None:
    body = {
        "session_id": "s",
        "url": "https://ads.example/c",
        "page_location": "https://www.shop.example/p?fbclid=IwAR-Case_Sensitive123",
    }
    result = await post(container("{meta_cookies: true}"), "/beacon/click", body)
    event = data(result)
    assert event["x-fb-ck-fbc"] == "fb.1.1700000000000.IwAR-Case_Sensitive123"
    assert event["x-fb-ck-fbp"].startswith("fb.1.1700000000000.")
    names = [(c.name, c.value, c.domain, c.max_age) for c in result.response.cookies]
    assert names == [
        ("_fbp", event["x-fb-ck-fbp"], "shop.example", 7776000),
        ("_fbc", event["x-fb-ck-fbc"], "shop.example", 7776000),
    ]


@pytest.mark.parametrize(
    ("consent_default", "consent_state", "cookies"),
    [
        ("granted", None, True),
        ("granted", {"ad_storage": False}, False),
        ("granted", {"ad_storage": "denied", "analytics_storage": "granted"}, False),
        ("denied", None, False),
        ("denied", {"ad_storage": True}, True),
    ],
)
async def test_meta_cookies_follow_ad_storage_consent(
    consent_default: str, consent_state: dict[str, Any] | None, cookies: bool
) -> None:
    body: dict[str, Any] = {"session_id": "s", "url": "https://ads.example/i"}
    if consent_state is not None:
        body["consent_state"] = consent_state
    result = await post(
        container("{meta_cookies: true}", consent_default), "/beacon/impression", body
    )
    event = data(result)
    assert bool(result.response.cookies) is cookies
    assert ("x-fb-ck-fbp" in event) is cookies


async def test_no_cookies_unless_asked_and_cors_for_allowed_origins() -> None:
    origin = {"origin": "https://www.shop.example"}
    body = {"session_id": "s", "url": "https://ads.example/i"}
    result = await post(container(), "/beacon/impression", body, headers=origin)
    assert result.response.status == 202 and result.response.cookies == []
    assert result.response.headers["access-control-allow-origin"] == "https://www.shop.example"
    assert result.response.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("{prefix: beacon}", "prefix: must be a path"),
        ("{prefix: '/a b'}", "prefix: must be a path"),
        ("{currency: brl}", "currency: must be an ISO 4217 code"),
        ("{max_body_bytes: 10}", "max_body_bytes: must be between"),
        ("{cookies: {domain: com.br}}", "is a public suffix"),
        ("{cookies: {same_site: None, secure: false}}", "same_site: None needs secure: true"),
        ("{meta_cookie: true}", "settings.meta_cookie: unknown key"),
    ],
)
def test_settings_errors(settings: str, message: str) -> None:
    with pytest.raises(ConfigErrors) as info:
        container(settings)
    assert message in str(info.value)


# --- a real server ----------------------------------------------------------------------------


def test_real_server_beacons(tmp_path: Path) -> None:
    with FakeVendor() as vendor:
        config = tmp_path / "beacon.yaml"
        config.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                origins: [https://www.shop.example]
                clients:
                  - {{name: beacon, type: beacon, settings: {{meta_cookies: true}}}}
                triggers:
                  all: {{all: []}}
                tags:
                  - name: hook
                    type: http_request
                    triggers: [all]
                    settings: {{url: "{vendor.url}/hook"}}
                """
            )
        )
        with SgtmServer(config) as server:
            url = SIGNED.format(kind="view")
            ok = httpx.post(
                f"{server.url}/beacon/view",
                content=json.dumps({"session_id": "s-1", "view_url": url}),
                headers={"content-type": "text/plain;charset=UTF-8", "host": "sgtm.shop.example"},
            )
            assert (ok.status_code, ok.content) == (202, b"")
            assert [c.split("=")[0] for c in ok.headers.get_list("set-cookie")] == ["_fbp"]
            assert "Domain=shop.example" in ok.headers["set-cookie"]

            bad = httpx.post(f"{server.url}/beacon/conversion", content=b"{}")
            assert bad.status_code == 422
            assert bad.headers["content-type"] == "application/json"
            assert len(bad.json()) == 8

            huge = httpx.post(f"{server.url}/beacon/view", content=b"x" * (1024 * 1024 + 1))
            assert huge.status_code == 413

            (received,) = vendor.wait_for(1)
            sent = json.loads(received.body)
            assert (sent["event_name"], sent["ad_event_url"], sent["ad_id"]) == (
                "ad_view",
                url,
                "AD-42",
            )
            assert sent["ip_override"] == "127.0.0.1"


async def test_a_body_with_an_error_per_item_lists_the_first_twenty() -> None:
    """Refusing a 500-item body must not cost an error object per item."""
    items = [{"sku": "x", "quantity": 1, "price": 1.0}] * 500  # no promotional_price
    body = {"session_id": "s", "order_id": "o", "items": items}
    result = await post(container(), "/beacon/conversion", body)
    assert result.response.status == 422 and result.events == []
    errors = json.loads(result.response.body)
    assert len(errors) == 20
    assert errors[-1]["instancePath"].startswith("/items/")
