"""`meta_capi`: the mapping from event data to Meta server events, validation, user_data
normalization through Meta's own normalizer (including its official cases), merge, dedupe and
response classification. The fake vendor and end-to-end runs are in test_meta_capi_vendor.py."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sgtm_plugins.meta_capi import MetaCapiTag, appsecret_proof, register_tag_types
from sgtm_plugins.meta_capi.mapping import EVENT_MAP, HASHED_FIELDS
from sgtm_plugins.meta_capi.settings import (
    DEFAULT_API_VERSION,
    MARKETING_API_VERSIONS,
    MetaCapiSettings,
)

from sgtm.config import load_text
from sgtm.container import Container
from sgtm.dedupe import MemoryDedupe
from sgtm.delivery.recorder import RecorderDelivery
from sgtm.plugin import BuildContext, ContainerInfo, InvalidEvent, Outbound, Verdict
from tests.installed import registry
from tests.plugins import test_meta_normalize as official

NOW = 1_790_000_000.0  # 2026-09-21T14:13:20Z
NOW_MS = int(NOW * 1000)
DAY = 86400
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36"
PIXEL = "1234567890123456"
TAG = MetaCapiTag()
CTX = BuildContext(tag_name="meta", container=ContainerInfo(name="shop"), now=NOW)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def settings(**overrides: Any) -> MetaCapiSettings:
    return msgspec.convert(
        {"pixel_id": PIXEL, "access_token": "tok", **overrides}, MetaCapiSettings
    )


def base(event_name: str = "page_view", **extra: Any) -> dict[str, Any]:
    return {
        "event_name": event_name,
        "client_id": "555.1790000000",
        "page_location": "https://www.shop.example/p/1",
        "user_agent": UA,
        "ip_override": "203.0.113.7",
        "x-sst-system_properties": {"request_start_time_ms": NOW_MS - 1500},
        **extra,
    }


def build(event: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The one server event the tag builds for `event`."""
    (outbound,) = TAG.build(event, settings(**overrides), CTX)
    body = msgspec.json.decode(outbound.body)
    assert len(body["data"]) == 1
    assert body["data"][0] == outbound.batch_item
    return body["data"][0]  # type: ignore[no-any-return]


def invalid(event: dict[str, Any], **overrides: Any) -> str:
    with pytest.raises(InvalidEvent) as info:
        TAG.build(event, settings(**overrides), CTX)
    return str(info.value)


SOCK = {
    "item_id": "SKU-1",
    "item_name": "Running Sock",
    "item_brand": "Acme",
    "item_category": "Socks",
    "price": 9.9,
    "quantity": 2,
}
CAP = {"item_id": "SKU-2", "item_name": "Cap", "price": 25, "quantity": 1}
SOCK_CONTENT = {
    "id": "SKU-1",
    "quantity": 2,
    "item_price": 9.9,
    "title": "Running Sock",
    "brand": "Acme",
    "category": "Socks",
}
CAP_CONTENT = {"id": "SKU-2", "quantity": 1, "item_price": 25, "title": "Cap"}


# -- one event of each kind ---------------------------------------------------------------------

EVENT_CASES = [
    ("page_view", {}, "PageView", None),
    (
        "view_item",
        {"currency": "BRL", "value": 19.8, "items": [SOCK]},
        "ViewContent",
        {
            "contents": [SOCK_CONTENT],
            "content_ids": ["SKU-1"],
            "content_type": "product",
            "content_name": "Running Sock",
            "content_category": "Socks",
            "value": 19.8,
            "currency": "BRL",
        },
    ),
    (
        "add_to_cart",
        {"currency": "brl", "value": 25, "items": [CAP]},
        "AddToCart",
        {
            "contents": [CAP_CONTENT],
            "content_ids": ["SKU-2"],
            "content_type": "product",
            "content_name": "Cap",
            "value": 25,
            "currency": "BRL",
        },
    ),
    (
        "begin_checkout",
        {"currency": "EUR", "value": 44.8, "items": [SOCK, CAP]},
        "InitiateCheckout",
        {
            "contents": [SOCK_CONTENT, CAP_CONTENT],
            "content_ids": ["SKU-1", "SKU-2"],
            "content_type": "product",
            "value": 44.8,
            "currency": "EUR",
            "num_items": 3,
        },
    ),
    (
        "add_payment_info",
        {"currency": "EUR", "value": 44.8, "payment_type": "card", "items": [SOCK, CAP]},
        "AddPaymentInfo",
        {
            "contents": [SOCK_CONTENT, CAP_CONTENT],
            "content_ids": ["SKU-1", "SKU-2"],
            "content_type": "product",
            "value": 44.8,
            "currency": "EUR",
        },
    ),
    (
        "purchase",
        {"currency": "EUR", "value": 49.8, "transaction_id": "T-1001", "items": [SOCK, CAP]},
        "Purchase",
        {
            "contents": [SOCK_CONTENT, CAP_CONTENT],
            "content_ids": ["SKU-1", "SKU-2"],
            "content_type": "product",
            "value": 49.8,
            "currency": "EUR",
            "order_id": "T-1001",
        },
    ),
    (
        "generate_lead",
        {"currency": "USD", "value": 120, "lead_source": "footer form"},
        "Lead",
        {"value": 120, "currency": "USD"},
    ),
    ("sign_up", {"method": "Google"}, "CompleteRegistration", None),
    ("search", {"search_term": "wool socks"}, "Search", {"search_string": "wool socks"}),
]


@pytest.mark.parametrize(
    ("ga4_name", "extra", "meta_name", "custom_data"), EVENT_CASES, ids=[c[0] for c in EVENT_CASES]
)
def test_event_types(ga4_name, extra, meta_name, custom_data):
    event = base(ga4_name, event_id=f"ev-{ga4_name}", **extra)
    out = build(event)
    expected: dict[str, Any] = {
        "event_name": meta_name,
        "event_time": int((NOW_MS - 1500) // 1000),
        "event_id": f"ev-{ga4_name}",
        "action_source": "website",
        "event_source_url": "https://www.shop.example/p/1",
        "user_data": {"client_ip_address": "203.0.113.7", "client_user_agent": UA},
    }
    if custom_data is not None:
        expected["custom_data"] = custom_data
    assert out == expected


def test_request_shape():
    (outbound,) = TAG.build(base(event_id="e1"), settings(test_event_code="TEST123"), CTX)
    assert outbound.method == "POST"
    assert outbound.url == f"https://graph.facebook.com/v27.0/{PIXEL}/events?access_token=tok"
    assert outbound.headers == {"Content-Type": "application/json"}
    assert (outbound.destination, outbound.batch_key) == (PIXEL, "test:TEST123")
    assert outbound.idempotency_key == f"{PIXEL}:PageView:e1"
    body = msgspec.json.decode(outbound.body)
    assert set(body) == {"data", "test_event_code"}
    assert body["test_event_code"] == "TEST123"


def test_endpoint_version_partner_agent_and_appsecret_proof():
    (outbound,) = TAG.build(
        base(),
        settings(
            endpoint="http://127.0.0.1:9/meta/",
            api_version="v24.0",
            partner_agent="sgtm-shop",
            appsecret_proof=True,
            app_secret="s3cret",
        ),
        CTX,
    )
    proof = hmac.new(b"s3cret", b"tok", hashlib.sha256).hexdigest()
    assert appsecret_proof("s3cret", "tok") == proof
    assert outbound.url == (
        f"http://127.0.0.1:9/meta/v24.0/{PIXEL}/events?access_token=tok&appsecret_proof={proof}"
    )
    assert msgspec.json.decode(outbound.body)["partner_agent"] == "sgtm-shop"
    assert outbound.destination == PIXEL


def test_access_token_is_url_encoded():
    (outbound,) = TAG.build(base(), settings(access_token="a/b+c&d=e"), CTX)
    assert outbound.url.endswith("?access_token=a%2Fb%2Bc%26d%3De")


def test_event_test_code_wins_over_settings():
    (outbound,) = TAG.build(base(test_event_code=" TEST9 "), settings(test_event_code="TEST1"), CTX)
    assert msgspec.json.decode(outbound.body)["test_event_code"] == "TEST9"
    # The event's code groups its request, in the pixel's one lane: a hit opens no lane.
    assert (outbound.destination, outbound.batch_key) == (PIXEL, "test:TEST9")


# -- event names -------------------------------------------------------------------------------


@pytest.mark.parametrize(("ga4_name", "meta_name"), sorted(EVENT_MAP.items()))
def test_event_map(ga4_name, meta_name):
    extra = {"currency": "EUR", "value": 1} if meta_name == "Purchase" else {}
    assert build(base(ga4_name, **extra))["event_name"] == meta_name


def test_the_nine_universal_events_map_as_the_reference_table():
    assert {name: EVENT_MAP[name] for name in (
        "page_view", "view_item", "add_to_cart", "begin_checkout", "add_payment_info",
        "purchase", "sign_up", "generate_lead", "search",
    )} == {
        "page_view": "PageView",
        "view_item": "ViewContent",
        "add_to_cart": "AddToCart",
        "begin_checkout": "InitiateCheckout",
        "add_payment_info": "AddPaymentInfo",
        "purchase": "Purchase",
        "sign_up": "CompleteRegistration",
        "generate_lead": "Lead",
        "search": "Search",
    }  # fmt: skip


def test_unknown_names_pass_through_and_event_map_overrides():
    assert build(base("video_complete"))["event_name"] == "video_complete"
    assert (
        build(base("video_complete"), event_map={"video_complete": "ViewContent"})["event_name"]
        == "ViewContent"
    )
    assert build(base("sign_up"), event_map={"sign_up": "Subscribe"})["event_name"] == "Subscribe"


# -- time --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, int(NOW) - 2),  # request_start_time_ms, floored
        ({"event_time": int(NOW) - 3600}, int(NOW) - 3600),
        ({"event_time": str(int(NOW) - 60)}, int(NOW) - 60),
        ({"event_time": (NOW - 120) * 1000}, int(NOW) - 120),  # milliseconds
        ({"event_time": "2026-09-21T13:13:20Z"}, int(NOW) - 3600),
        ({"event_time": "2026-09-21T13:13:20"}, int(NOW) - 3600),  # naive: UTC
        ({"event_time": "2026-09-21T15:13:20+02:00"}, int(NOW) - 3600),
        ({"event_time": int(NOW) + 3600}, int(NOW)),  # the future is clamped to now
        ({"event_time": int(NOW) - 7 * DAY + 1}, int(NOW) - 7 * DAY + 1),
    ],
)
def test_event_time(extra, expected):
    assert build(base(**extra))["event_time"] == expected


def test_event_time_falls_back_to_now():
    event = base()
    del event["x-sst-system_properties"]
    assert build(event)["event_time"] == int(NOW)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"event_time": int(NOW) - 8 * DAY}, "event_time is 8.0 days old; Meta refuses website "
         "events older than 7 days"),
        ({"event_time": 0}, "days old"),
        ({"event_time": "yesterday"}, "event_time 'yesterday' is not a Unix time or ISO 8601"),
        ({"event_time": [1]}, "is not a Unix time"),
        ({"event_time": int(NOW) - 63 * DAY, "action_source": "physical_store"},
         "older than 62 days"),
    ],
)  # fmt: skip
def test_old_or_bad_event_time_is_invalid(extra, message):
    assert message in invalid(base(**extra))


def test_physical_store_events_may_be_62_days_old():
    out = build(base(event_time=int(NOW) - 60 * DAY, action_source="physical_store"))
    assert out["event_time"] == int(NOW) - 60 * DAY and out["action_source"] == "physical_store"


# -- event_id ----------------------------------------------------------------------------------


def test_event_id_sources():
    assert build(base(event_id="abc-1"))["event_id"] == "abc-1"
    assert build(base(event_id=12345))["event_id"] == "12345"
    purchase = base("purchase", currency="EUR", value=1, transaction_id="T-9")
    assert build(purchase)["event_id"] == "T-9"
    assert build({**purchase, "event_id": "E-9"})["event_id"] == "E-9"
    # transaction_id is an event id only for purchases
    assert build(base("add_payment_info", transaction_id="T-9"))["event_id"] != "T-9"


def test_generated_event_id_is_deterministic_and_distinct():
    first = build(base())["event_id"]
    assert re.fullmatch(r"sgtm-[0-9a-f]{32}", first)
    assert build(base())["event_id"] == first  # the same event data: the same id
    assert build(base(page_location="https://www.shop.example/p/2"))["event_id"] != first
    later = base(**{"x-sst-system_properties": {"request_start_time_ms": NOW_MS}})
    assert build(later)["event_id"] != first
    no_time = base()
    del no_time["x-sst-system_properties"]
    (a,) = TAG.build(no_time, settings(), CTX)
    (b,) = TAG.build(no_time, settings(), BuildContext("meta", CTX.container, NOW + 1))
    assert a.batch_item["event_id"] != b.batch_item["event_id"]  # no time of its own: now counts


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({**base(), "event_name": ""}, "no event_name"),
        ({**base(), "event_name": None}, "no event_name"),
        ({k: v for k, v in base().items() if k != "page_location"},
         "action_source website needs event_source_url: the event has no http(s) page_location"),
        (base(page_location="javascript:alert(1)"), "needs event_source_url"),
        ({k: v for k, v in base().items() if k != "user_agent"},
         "action_source website needs client_user_agent: the event has no user_agent"),
        (base(action_source="web"), "action_source 'web' is not one of: app, business_messaging"),
        (base(action_source=["website"]), "is not one of"),
        (base("purchase", value=10), "Purchase needs a currency: the event has no currency"),
        (base("purchase", currency="EUR"),
         "Purchase needs a value: the event has no value or item prices"),
        (base("purchase", currency="EUR", items=[{"item_id": "A"}]), "Purchase needs a value"),
        (base(currency="R$"), "currency 'R$' is not an ISO 4217 code such as EUR"),
        (base(currency="EURO", value=1), "is not an ISO 4217 code"),
        (base(currency=978), "is not an ISO 4217 code"),
        (base(value="12,50"), "value '12,50' is not a number"),
        (base(value="NaN"), "is not a number"),
        (base(value="1_000"), "is not a number"),
        (base(**{"x-fb-cd-contents": "[object Object]"}),
         "custom_data.contents must be a list (JSON array)"),
        (base(**{"x-fb-cd-content_ids": "SKU-1"}), "custom_data.content_ids must be a list"),
        (base(data_processing_options=["XYZ"]), 'data_processing_options must be [] or ["LDU"]'),
        (base(data_processing_options=["LDU"], data_processing_options_country=44),
         "data_processing_options_country must be one of (0, 1), got 44"),
    ],
)  # fmt: skip
def test_invalid_events(event, message):
    assert message in invalid(event)


def test_other_action_sources_need_no_url_or_agent_but_some_user_data():
    event = {
        "event_name": "purchase",
        "currency": "EUR",
        "value": 5,
        "action_source": "system_generated",
    }
    assert invalid(event) == "no user_data: Meta needs at least one customer information field"
    out = build({**event, "user_data": {"email_address": "a@b.co"}})
    assert out["user_data"] == {"em": sha("a@b.co")} and "event_source_url" not in out


# -- app events and opt_out ----------------------------------------------------------------------

EXTINFO = ["i2", "com.shop.app", "2.1", "2.1 (77)", "17.4.1", "iPhone15,2", "pt_BR", "BRT",
           "Vivo", 1179, 2556, 3.0, 6, 128, 41, "America/Sao_Paulo"]  # fmt: skip
APP_EVENT = {
    "event_name": "purchase",
    "event_id": "A-1",
    "action_source": "app",
    "currency": "BRL",
    "value": 10,
    "madid": "38400000-8cf0-11bd-b23e-10b96e40000d",
}


def test_app_events_carry_app_data_built_from_event_data():
    out = build({**APP_EVENT, "app_data": {"advertiser_tracking_enabled": 1,
                                           "application_tracking_enabled": "false",
                                           "extinfo": EXTINFO, "campaign_ids": "c-1"}})  # fmt: skip
    assert out["app_data"] == {
        "advertiser_tracking_enabled": True,
        "application_tracking_enabled": False,
        "extinfo": ["i2", "com.shop.app", "2.1", "2.1 (77)", "17.4.1", "iPhone15,2", "pt_BR",
                    "BRT", "Vivo", "1179", "2556", "3", "6", "128", "41", "America/Sao_Paulo"],
        "campaign_ids": "c-1",
    }  # fmt: skip
    assert "event_source_url" not in out and out["user_data"] == {"madid": APP_EVENT["madid"]}
    # the same keys at the top level; extinfo by name, the rest filled with empty strings
    named = {"ext_info_version": "a2", "os_version": "14", "app_package_name": "com.shop"}
    out = build({**APP_EVENT, "advertiser_tracking_enabled": False, "extinfo": named})
    assert out["app_data"]["advertiser_tracking_enabled"] is False
    assert out["app_data"]["extinfo"] == ["a2", "com.shop", "", "", "14"] + [""] * 11
    assert "application_tracking_enabled" not in out["app_data"]
    # short lists are padded to Meta's 16 entries
    short = {**APP_EVENT, "advertiser_tracking_enabled": True, "extinfo": ["a2", "", "", "", "13"]}
    assert build(short)["app_data"]["extinfo"][4:] == ["13"] + [""] * 11
    # app_data is only for app events
    assert "app_data" not in build(base(app_data={"advertiser_tracking_enabled": True}))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "action_source app needs app_data.advertiser_tracking_enabled"),
        ({"advertiser_tracking_enabled": True}, "action_source app needs app_data.extinfo"),
        ({"advertiser_tracking_enabled": "maybe", "extinfo": EXTINFO},
         "advertiser_tracking_enabled must be true or false"),
        ({"advertiser_tracking_enabled": 2, "extinfo": EXTINFO},
         "advertiser_tracking_enabled must be true or false"),
        ({"app_data": "yes"}, "app_data must be an object"),
        ({"advertiser_tracking_enabled": True, "extinfo": ["w2", "", "", "", "1"]},
         "app_data.extinfo[0] must be a2 (Android) or i2 (iOS), got 'w2'"),
        ({"advertiser_tracking_enabled": True, "extinfo": ["a2"]},
         "app_data.extinfo[4] (os_version) is required"),
        ({"advertiser_tracking_enabled": True, "extinfo": [*EXTINFO, "x"]},
         "app_data.extinfo has 17 entries; Meta takes 16"),
        ({"advertiser_tracking_enabled": True, "extinfo": ["a2", "", "", "", {"v": 1}]},
         "app_data.extinfo[4] (os_version) is not text"),
        ({"advertiser_tracking_enabled": True, "extinfo": ["a2", "x" * 2000, "", "", "1"]},
         "app_data.extinfo[1] (app_package_name) is not text"),
        ({"advertiser_tracking_enabled": True, "extinfo": {"os": "14"}},
         "app_data.extinfo: unknown field 'os'"),
        ({"advertiser_tracking_enabled": True, "extinfo": "i2,x"},
         "app_data.extinfo must be a list of 16 strings or an object"),
    ],
)  # fmt: skip
def test_app_events_without_valid_app_data_are_refused(extra, message):
    assert message in invalid({**APP_EVENT, **extra})


def test_opt_out_from_the_event_or_the_setting():
    assert "opt_out" not in build(base())
    assert build(base(), opt_out=True)["opt_out"] is True
    assert build(base(opt_out="false"), opt_out=True)["opt_out"] is False  # the event's own
    assert build(base(opt_out=1))["opt_out"] is True
    assert "opt_out must be true or false" in invalid(base(opt_out="sometimes"))


def test_purchase_value_is_summed_from_items_but_currency_never_invented():
    out = build(base("purchase", currency="EUR", items=[SOCK, CAP, {"item_id": "X"}]))
    assert out["custom_data"]["value"] == 44.8  # 9.9 x 2 + 25 x 1; an item without price adds 0
    out = build(base("purchase", items=[{**SOCK, "currency": "gbp"}]))
    assert out["custom_data"]["currency"] == "GBP"  # the items' currency
    assert "needs a currency" in invalid(base("purchase", items=[SOCK]))


def test_value_sources_and_zero():
    assert build(base("purchase", currency="EUR", value=0))["custom_data"]["value"] == 0
    assert build(base(value="12.50"))["custom_data"]["value"] == 12.5
    assert build(base(value=3, **{"x-ga-mp1-ev": "7"}))["custom_data"]["value"] == 7


# -- user_data ---------------------------------------------------------------------------------


def test_user_data_from_sgtm_keys():
    event = base(
        user_id="CRM-42",
        user_data={
            "email_address": " Jane.Doe@Example.COM ",
            "phone_number": "+1 (616) 954-78 88",
            "address": {
                "first_name": "José María",
                "last_name": "O'Neil",
                "city": "Montréal",
                "region": "Texas",
                "postal_code": "98121-4892",
                "country": "United States",
                "street": "1 Main St",
            },
        },
    )
    assert build(event)["user_data"] == {
        "em": sha("jane.doe@example.com"),
        "ph": sha("16169547888"),
        "fn": sha("josémaría"),
        "ln": sha("oneil"),
        "ct": sha("montral"),
        "st": sha("tx"),
        "zp": sha("98121"),
        "country": sha("us"),
        "external_id": sha("crm-42"),
        "client_ip_address": "203.0.113.7",
        "client_user_agent": UA,
    }


def test_date_of_birth_is_checked_against_the_build_clock_not_the_machine():
    """A birth date next year is valid (Meta's window ends next year): next year of ctx.now."""
    event = base(user_data={"date_of_birth": "2032-01-01", "email_address": "a@b.co"})
    for now, accepted in ((1_924_992_000.0, True), (1_893_456_000.0, False)):  # 2031, 2030
        ctx = BuildContext(tag_name="meta", container=ContainerInfo(name="shop"), now=now)
        event["x-sst-system_properties"] = {"request_start_time_ms": int(now * 1000)}
        (outbound,) = TAG.build(event, settings(), ctx)
        user_data = outbound.batch_item["user_data"]
        assert ("db" in user_data) is accepted, now
        if accepted:
            assert user_data["db"] == sha("20320101")


def test_montreal_gives_sha256_of_montral():
    out = build(base(user_data={"address": {"city": "Montréal"}}))
    assert out["user_data"]["ct"] == hashlib.sha256(b"montral").hexdigest()


@pytest.mark.parametrize(
    ("field", "key", "value", "normalized"),
    [
        (field, key, value, normalized)
        for field, value, normalized in [
            ("em", "A@B.CO", "a@b.co"),
            ("ph", "+55 (11) 91234-5678", "5511912345678"),
            ("fn", "Ana", "ana"),
            ("ln", "Souza", "souza"),
            ("ge", "Woman", "f"),
            ("db", "2/16/1997", "19970216"),
            ("ct", "São Paulo", "sopaulo"),
            ("st", "California", "ca"),
            ("zp", "01310-100", "01310"),
            ("country", "Brazil", "br"),
            ("external_id", " U 42 ", "u42"),
        ]
        for key in HASHED_FIELDS[field]
    ],
)
def test_every_user_data_source(field, key, value, normalized):
    event = base()
    if key.startswith("address."):
        event["user_data"] = {"address": {key.removeprefix("address."): value}}
    else:
        parts = key.split(".")
        node = event
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    assert build(event)["user_data"][field] == sha(normalized)


def test_user_data_precedence():
    event = base(
        **{"x-fb-ud-em": "first@x.co"},
        email="second@x.co",
        user_data={"email_address": "third@x.co", "address": [{"city": "Rio"}, {"city": "Lima"}]},
    )
    out = build(event)["user_data"]
    assert out["em"] == sha("first@x.co")
    assert out["ct"] == sha("rio")  # a list of addresses: the first
    # a source Meta's normalizer rejects falls through to the next
    out = build(base(**{"x-fb-ud-em": "not an email"}, user_data={"email_address": "ok@x.co"}))
    assert out["user_data"]["em"] == sha("ok@x.co")


def test_hashed_input_passes_unchanged_and_is_never_hashed_twice():
    digest = sha("jane@example.com")
    out = build(base(user_data={"email_address": digest.upper(), "phone_number": digest}))
    assert out["user_data"]["em"] == digest  # lowercased, not re-hashed
    assert out["user_data"]["ph"] == digest
    assert build(base(**{"x-fb-ud-fn": f"  {digest}\n"}))["user_data"]["fn"] == digest


def test_prehashed_values_keep_their_case_as_metas_builder_keeps_it():
    # getNormalizedAndHashedPII: a bare digest is lower-cased; one carrying the builder's
    # appendix (what Meta's own SDK sends) is returned untouched, case and appendix included.
    digest = sha("jane@example.com")
    with_appendix = f"{digest.upper()}.AQQCAQMC"
    out = build(base(email=f" {with_appendix} ", phone=digest.upper()))["user_data"]
    assert out["em"] == with_appendix
    assert out["ph"] == digest
    # the same with a country code set: a digest is never read as a phone number
    out = build(base(phone=with_appendix), phone_country_code="55")["user_data"]
    assert out["ph"] == with_appendix


def test_googles_prehashed_user_data_is_not_taken_as_metas():
    # Google hashes Gmail addresses without their dots and phones with their `+`: the same
    # person's hash differs from Meta's, so these keys are never em / ph / fn / ln sources.
    google = {
        "sha256_email_address": sha("johndoe@gmail.com"),  # john.doe@gmail.com, Google's way
        "sha256_phone_number": sha("+5511912345678"),
        "address": {"sha256_first_name": sha("mary ann"), "sha256_last_name": sha("silva")},
    }
    out = build(base(user_data=google))["user_data"]
    assert not {"em", "ph", "fn", "ln"} & set(out)
    # a container that knows its hashes follow Meta's rules maps them explicitly
    mapped = build(base(user_data=google), user_data={"em": google["sha256_email_address"]})[
        "user_data"
    ]
    assert mapped["em"] == sha("johndoe@gmail.com")
    # the clear-text values are normalized Meta's way instead
    clear = {"email_address": "John.Doe@Gmail.com", "phone_number": "+55 11 91234-5678"}
    out = build(base(user_data={**google, **clear}))["user_data"]
    assert out["em"] == sha("john.doe@gmail.com")
    assert out["ph"] == sha("5511912345678")


@pytest.mark.parametrize(
    ("phone", "country_code", "expected"),
    [
        ("(11) 91234-5678", None, "11912345678"),  # Meta's builder alone: no country code
        ("(11) 91234-5678", "55", "5511912345678"),
        ("011 91234-5678", "55", "5511912345678"),  # the trunk zero goes, as in the builder
        ("+55 (11) 91234-5678", "55", "5511912345678"),
        ("0055 11 91234-5678", "55", "5511912345678"),  # 00: the international prefix
        ("+351 912 345 678", "55", "351912345678"),  # a number of another country keeps its own
        ("650-123-4567", "1", "16501234567"),
        (5511912345678, "55", "555511912345678"),  # digits alone are national: write `+55...`
        ("1234", "55", None),  # fewer than 7 digits with the country code: no phone number
        ("+1234567890123456", "55", None),  # more than 15
    ],
)
def test_phone_country_code_is_applied_as_metas_builder_reads_a_phone_code(
    phone, country_code, expected
):
    overrides = {} if country_code is None else {"phone_country_code": country_code}
    out = build(base(user_data={"phone_number": phone}), **overrides)["user_data"]
    assert out.get("ph") == (sha(expected) if expected else None)


def test_phone_country_code_reaches_lists_and_the_user_data_setting():
    out = build(
        base(user_data={"phone_number": ["(11) 91234-5678", "+1 650 123 4567", "0011 2"]}),
        phone_country_code="55",
        user_data={},
    )["user_data"]
    assert out["ph"] == [sha("5511912345678"), sha("16501234567")]
    out = build(base(), phone_country_code="55", user_data={"ph": "(21) 3333-4444"})["user_data"]
    assert out["ph"] == sha("552133334444")


def test_numbers_lists_and_garbage_in_user_data():
    out = build(
        base(
            user_data={
                "phone_number": 5511912345678,
                "email_address": ["A@x.co", "bad", "a@x.co", 7, None, "b@x.co"],
                "address": {"postal_code": 98121.0, "city": True, "region": {"x": 1}},
            }
        )
    )["user_data"]
    assert out["ph"] == sha("5511912345678")
    assert out["em"] == [sha("a@x.co"), sha("b@x.co")]  # invalid and duplicate values dropped
    assert out["zp"] == sha("98121")
    assert "ct" not in out and "st" not in out
    assert "em" not in build(base(user_data={"email_address": []}))["user_data"]
    # text over 16 KiB is dropped unread, though the normalizer would accept this name
    assert "fn" not in build(base(first_name="a" * 20_000))["user_data"]
    assert build(base(first_name="a" * 16_384))["user_data"]["fn"] == sha("a" * 16_384)


def test_user_data_settings_override():
    out = build(
        base(user_data={"email_address": "a@x.co"}, user_id="U1"),
        user_data={"em": "Other@X.co", "external_id": "", "lead_id": "L-7"},
    )["user_data"]
    assert out["em"] == sha("other@x.co")
    assert "external_id" not in out  # an empty override removes the field
    assert out["lead_id"] == "L-7"


# Meta's official normalizer cases, run through the tag from the sGTM event data keys.
OFFICIAL_KEYS = {
    "em": "user_data.email_address",
    "ph": "user_data.phone_number",
    "fn": "user_data.address.first_name",
    "ln": "user_data.address.last_name",
    "ct": "user_data.address.city",
    "st": "user_data.address.region",
    "zp": "user_data.address.postal_code",
    "country": "user_data.address.country",
    "ge": "x-fb-ud-ge",
    "db": "x-fb-ud-db",
    "external_id": "user_id",
}
OFFICIAL_TABLES = {
    "em": official.EMAIL_CASES,
    "ph": official.PHONE_CASES,
    "fn": official.NAME_CASES,
    "ln": official.NAME_CASES,
    "ct": official.CITY_CASES,
    "st": official.STATE_CASES,
    "zp": official.ZIP_CASES,
    "country": official.COUNTRY_CASES,
    "ge": official.GENDER_CASES,
    "db": official.DOB_CASES,
    "external_id": official.EXTERNAL_ID_CASES,
}
HEXISH = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{64}")


def _with_key(event: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    parts = key.split(".")
    node = event
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return event


@pytest.mark.parametrize("field", list(OFFICIAL_TABLES))
def test_official_normalizer_cases_through_the_tag(field):
    mismatches = []
    for value, expected in OFFICIAL_TABLES[field]:
        if HEXISH.fullmatch(value.strip()):
            want: str | None = value.strip().lower()  # a digest passes unchanged
        else:  # the table ran in 2026, the year of the build's clock (NOW)
            want = sha(expected) if expected else None
        got = build(_with_key(base(), OFFICIAL_KEYS[field], value))["user_data"].get(field)
        if got != want:
            mismatches.append((value, expected, got))
    assert mismatches == []
    assert len(OFFICIAL_TABLES[field]) >= 100


# -- IP, user agent, fbp / fbc ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:5678", "203.0.113.7"),
        ("203.0.113.7, 10.0.0.1", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("not-an-ip", None),
        ("", None),
        (12345, None),
        ("[2001:db8::1", None),
    ],
)
def test_client_ip_address(raw, expected):
    assert build(base(ip_override=raw))["user_data"].get("client_ip_address") == expected


FBP = "fb.1.1789999000000.1234567890"
FBC = "fb.1.1789999000000.IwAR1abc"


@pytest.mark.parametrize(
    ("extra", "fbp", "fbc"),
    [
        ({"x-fb-ck-fbp": FBP, "x-fb-ck-fbc": FBC}, FBP, FBC),
        ({"common_cookie": {"_fbp": FBP, "_fbc": FBC}}, FBP, FBC),
        ({"_fbp": FBP, "fbc": FBC}, FBP, FBC),
        ({"x-fb-ck-fbp": "garbage", "fbp": FBP}, FBP, None),  # invalid values are skipped
        ({"fbp": FBP + ".AQ"}, FBP + ".AQ", None),  # a builder appendix is kept
        # an fbclid in the page URL makes a new fbc (time: the event's, in ms) ...
        ({"page_location": "https://www.shop.example/?fbclid=IwAR2xyz"}, None,
         f"fb.1.{NOW_MS - 1500}.IwAR2xyz"),
        # ... a registrable domain under a two-label suffix counts its labels ...
        ({"page_location": "https://www.loja.com.br/?fbclid=IwAR2xyz"}, None,
         f"fb.2.{NOW_MS - 1500}.IwAR2xyz"),
        # ... unless the event's _fbc already holds that click id
        ({"page_location": "https://www.shop.example/?fbclid=IwAR1abc", "x-fb-ck-fbc": FBC},
         None, FBC),
        ({"page_location": "https://www.shop.example/?fbclid=NEW", "x-fb-ck-fbc": FBC}, None,
         f"fb.1.{NOW_MS - 1500}.NEW"),
    ],
)  # fmt: skip
def test_fbp_and_fbc(extra, fbp, fbc):
    out = build(base(**extra))["user_data"]
    assert out.get("fbp") == fbp
    assert out.get("fbc") == fbc


def test_never_hashed_fields_are_sent_as_they_are():
    out = build(base(subscription_id="S-1", fb_login_id=42, leadId="L-1", madid="m"))
    assert {k: out["user_data"][k] for k in ("subscription_id", "fb_login_id", "lead_id")} == {
        "subscription_id": "S-1",
        "fb_login_id": "42",
        "lead_id": "L-1",
    }
    assert out["user_data"]["madid"] == "m"


# -- custom_data -------------------------------------------------------------------------------


def test_custom_data_overrides_and_settings_extras():
    event = base(
        "view_item",
        items=[SOCK],
        **{
            "x-fb-cd-content_type": "product_group",
            "x-fb-cd-contents": '[{"id": "G-1", "quantity": 1}]',
            "x-fb-cd-predicted_ltv": 300,
        },
    )
    out = build(event, custom_data={"content_category": "Winter", "brand_tier": "gold"})
    custom = out["custom_data"]
    assert custom["content_type"] == "product_group"
    assert custom["contents"] == [{"id": "G-1", "quantity": 1}]
    assert custom["predicted_ltv"] == 300
    assert custom["content_category"] == "Winter" and custom["brand_tier"] == "gold"
    out = build(event, custom_data={"content_name": None})
    assert "content_name" not in out["custom_data"]


def test_items_from_ecommerce_and_odd_items():
    items = [{"item_id": 7, "price": "3.5", "quantity": "2"}, "junk", {"item_name": "no id"}]
    out = build(base("view_item", ecommerce={"items": items}))
    assert out["custom_data"]["contents"] == [{"id": "7", "quantity": 2, "item_price": 3.5}]
    out = build(base("view_item", items=[{"item_id": "A", "quantity": 1.5, "price": "x"}]))
    assert out["custom_data"]["contents"] == [{"id": "A"}]


def test_data_processing_options():
    out = build(base(), data_processing_options=["LDU"], data_processing_options_state=1000)
    assert (
        out["data_processing_options"],
        out["data_processing_options_country"],
        out["data_processing_options_state"],
    ) == (["LDU"], 0, 1000)
    out = build(base(data_processing_options=[]), data_processing_options=["LDU"])
    assert out["data_processing_options"] == []  # the event's own choice wins
    out = build(base(data_processing_options="LDU", data_processing_options_country="1"))
    assert out["data_processing_options_country"] == 1
    assert "data_processing_options" not in build(base())


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pixel_id": "12/34"}, "pixel_id: expected the pixel's numeric id"),
        ({"pixel_id": "https://graph.facebook.com/123"}, "pixel_id"),
        ({"api_version": "27"}, "api_version: expected a Marketing API version like 'v27.0'"),
        ({"access_token": ""}, "access_token: empty"),
        ({"appsecret_proof": True}, "app_secret: required when appsecret_proof is true"),
        ({"endpoint": "{{event.host}}"}, "endpoint: cannot be a template"),
        ({"endpoint": "graph.facebook.com"}, "endpoint: expected a base URL"),
        ({"endpoint": "https://x.example/?a=1"}, "endpoint: expected a base URL"),
        ({"user_data": {"email": "x"}}, "user_data: unknown field 'email'"),
        ({"action_source": "web"}, "Invalid enum value 'web'"),
        ({"data_processing_options": ["XYZ"]}, "Invalid enum value 'XYZ'"),
        ({"colour": "red"}, "unknown field `colour`"),
        ({"phone_country_code": "+55"}, "phone_country_code: a country calling code of 1-3"),
        ({"phone_country_code": "0"}, "phone_country_code: a country calling code of 1-3"),
        ({"opt_out": "yes"}, "Expected `bool`, got `str` - at `$.opt_out`"),
    ],
)
def test_settings_errors(overrides, message):
    with pytest.raises(msgspec.ValidationError, match=re.escape(message)):
        settings(**overrides)


def test_templated_settings_are_checked_after_rendering():
    text = """\
version: 1
triggers: {all: {all: []}}
tags:
  - name: meta
    type: meta_capi
    triggers: [all]
    settings:
      pixel_id: "{{event.pixel}}"
      access_token: tok
"""
    spec = load_text(text, "c.yaml", registry())
    container = Container(spec, RecorderDelivery(), MemoryDedupe(), lambda: NOW)
    _, traces = _run(container, [base(pixel=PIXEL), base(pixel="../../me")])
    assert traces[0].tags[0].fired
    assert (
        traces[0]
        .tags[0]
        .requests[0]
        .url.startswith(f"https://graph.facebook.com/v27.0/{PIXEL}/events?")
    )
    assert traces[1].tags[0].reason.startswith("invalid: settings: pixel_id: expected")


# -- merge ---------------------------------------------------------------------------------------


def _outbounds(count: int, **overrides: Any) -> list[Outbound]:
    s = settings(**overrides)
    return [TAG.build(base(event_id=f"e{i}"), s, CTX)[0] for i in range(count)]


def test_merge_combines_events_of_one_lane():
    outbounds = _outbounds(3, test_event_code="T1", partner_agent="pa")
    merged = TAG.merge(outbounds)
    assert merged.url == outbounds[0].url and merged.destination == outbounds[0].destination
    body = msgspec.json.decode(merged.body)
    assert body == {
        "data": [o.batch_item for o in outbounds],
        "test_event_code": "T1",
        "partner_agent": "pa",
    }
    assert [e["event_id"] for e in body["data"]] == ["e0", "e1", "e2"]
    assert TAG.merge(outbounds[:1]) is outbounds[0]


def test_merge_of_a_full_batch():
    outbounds = _outbounds(1000)
    assert TAG.batching is not None and TAG.batching.max_items == 1000
    body = msgspec.json.decode(TAG.merge(outbounds).body)
    assert len(body["data"]) == 1000


def test_merge_survives_a_stored_and_reloaded_outbound():
    # The durable outbox stores outbounds as JSON: batch_item comes back as plain data.
    outbounds = [msgspec.json.decode(msgspec.json.encode(o), type=Outbound) for o in _outbounds(2)]
    body = msgspec.json.decode(TAG.merge(outbounds).body)
    assert [e["event_id"] for e in body["data"]] == ["e0", "e1"]


# -- dedupe ----------------------------------------------------------------------------------


def test_dedupe_key():
    s = settings()
    assert TAG.dedupe_key(base(event_id="e1"), s) == (f"{PIXEL}:PageView:e1", 48 * 3600)
    purchase = base("purchase", transaction_id="T-1")
    assert TAG.dedupe_key(purchase, s) == (f"{PIXEL}:Purchase:T-1", 48 * 3600)
    assert TAG.dedupe_key(base(), s) is None  # generated ids are new for every new event
    assert TAG.dedupe_key({"event_name": None}, s) is None


CONTAINER = f"""\
version: 1
consent: {{default: granted}}
triggers:
  all: {{all: []}}
tags:
  - name: meta
    type: meta_capi
    triggers: [all]
    consent: [ad_storage, ad_user_data]
    settings:
      pixel_id: "{PIXEL}"
      access_token: "${{META_ACCESS_TOKEN}}"
"""


def _run(container: Container, events: list[dict[str, Any]]) -> tuple[Any, Any]:
    import asyncio

    return asyncio.run(container.run_events(events, None, None, NOW, True))


def _container() -> tuple[Container, RecorderDelivery]:
    spec = load_text(CONTAINER, "c.yaml", registry(), environ={"META_ACCESS_TOKEN": "secret-tok"})
    recorder = RecorderDelivery()
    return Container(spec, recorder, MemoryDedupe(), lambda: NOW), recorder


def test_duplicates_and_consent_in_a_container():
    container, _ = _container()
    purchase = base("purchase", currency="EUR", value=5, transaction_id="T-1")
    submissions, traces = _run(
        container,
        [
            purchase,
            dict(purchase),  # the thank-you page reloaded
            base(event_id="e1", consent_state={"ad_storage": False}),
            base(event_id="e2", consent_state={"ad_user_data": False}),
            base(),
            base(),
            base("bad", page_location=None),
        ],
    )
    reasons = [t.tags[0].reason for t in traces]
    assert reasons == [
        None,
        "dedupe",
        "consent:ad_storage",
        "consent:ad_user_data",
        None,
        None,  # the same event data without its own id is not deduplicated here
        "invalid: action_source website needs event_source_url: the event has no http(s) "
        "page_location",
    ]
    assert len(submissions) == 3
    assert {s.outbound.destination for s in submissions} == {PIXEL}
    assert "secret-tok" in submissions[0].outbound.url  # sent, but ...
    assert "secret-tok" not in container.redact(submissions[0].outbound.url)  # ... never shown


# -- classification --------------------------------------------------------------------------


def _error(code: int, **extra: Any) -> bytes:
    return msgspec.json.encode(
        {"error": {"message": "m", "type": "OAuthException", "code": code, **extra,
                   "fbtrace_id": "AbC"}}
    )  # fmt: skip


BUC = msgspec.json.encode(
    {"1234": [{"type": "ads_management", "call_count": 100, "estimated_time_to_regain_access": 7}]}
).decode()

CLASSIFY_CASES = [
    ("ok", 200, {}, b'{"events_received": 3, "messages": [], "fbtrace_id": "x"}', "done", None),
    ("ok, empty body", 200, {}, b"", "done", None),
    ("invalid parameter", 400,
     {}, _error(100, error_subcode=2804010, error_user_title="Missing Currency for Purchase Event",
                error_user_msg="Your purchase event doesn't include a currency parameter.",
                is_transient=False),
     "dead", None),
    ("unknown pixel", 400, {}, _error(100, error_subcode=33), "dead", None),
    ("token expired", 400, {}, _error(190, error_subcode=463), "dead", None),
    ("permission", 403, {}, _error(200), "dead", None),
    ("permission 10", 400, {}, _error(10), "dead", None),
    ("user limit with BUC", 400, {"X-Business-Use-Case-Usage": BUC}, _error(17), "retry", 420.0),
    ("app limit", 400, {}, _error(4), "retry", 60.0),
    ("app limit 341", 400, {"retry-after": "30"}, _error(341), "retry", 30.0),
    ("hourly limit", 400, {}, _error(613), "retry", 60.0),
    ("transient flag", 400, {}, _error(100, is_transient=True), "retry", None),
    ("unknown error", 500, {}, _error(1), "retry", None),
    ("service unavailable", 503, {}, _error(2), "retry", None),
    ("5xx without body", 502, {}, b"<html>bad gateway</html>", "retry", None),
    ("429 without body", 429, {"Retry-After": "12"}, b"", "retry", 12.0),
    ("404 without body", 404, {}, b"", "dead", None),
    ("policy block", 400, {}, _error(368), "dead", None),
    ("garbage json", 400, {}, b'{"error": "nope"}', "dead", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "headers", "body", "outcome", "retry_after"),
    [c[1:] for c in CLASSIFY_CASES],
    ids=[c[0] for c in CLASSIFY_CASES],
)
def test_classify(status, headers, body, outcome, retry_after):
    verdict = TAG.classify(status, headers, body)
    assert isinstance(verdict, Verdict)
    assert verdict.outcome == outcome
    assert verdict.retry_after == retry_after
    if outcome != "done":
        assert verdict.reason


def test_classify_batch_blames_the_event_meta_names():
    contents = _error(
        100,
        error_subcode=2804019,
        error_user_msg="The parameter $['data'][1]['custom_data']['contents'] must be an array.",
    )
    items = _outbounds(3)
    verdicts = TAG.classify_batch(400, {}, contents, items)
    assert [v.outcome for v in verdicts] == ["retry", "dead", "retry"]
    assert "must be an array" in verdicts[1].reason
    assert verdicts[0].reason == "Meta refused the batch for data[1] alone; resent without it"
    # nothing to blame: the whole batch shares the verdict
    for body in (_error(190), _error(100), _error(17), _error(100, message="$['data'][7] bad")):
        assert len({v.outcome for v in TAG.classify_batch(400, {}, body, items)}) == 1
    two = _error(100, error_user_msg="$['data'][0]['x'] and $['data'][2]['y']")
    assert {v.outcome for v in TAG.classify_batch(400, {}, two, items)} == {"dead"}
    assert [v.outcome for v in TAG.classify_batch(400, {}, contents, items[:1])] == ["dead"]


def test_classify_reasons_say_what_to_do():
    token = TAG.classify(400, {}, _error(190, error_subcode=463))
    assert token.reason.startswith("access token refused (expired, revoked or not allowed")
    assert "code 190/463" in token.reason and "fbtrace_id AbC" in token.reason
    currency = TAG.classify(
        400,
        {},
        _error(100, error_subcode=2804010, error_user_title="Missing Currency for Purchase Event"),
    )
    assert currency.reason == (
        "rejected; HTTP 400, code 100/2804010, Missing Currency for Purchase Event: m, "
        "fbtrace_id AbC"
    )
    assert "check pixel_id" in TAG.classify(400, {}, _error(100, error_subcode=33)).reason
    old = TAG.classify(
        400, {}, _error(2635, message="(#2635) You are calling a deprecated version")
    )
    assert old.outcome == "dead"
    assert old.reason.startswith(
        "api_version is no longer served by Meta: set the tag's api_version"
    )
    long = TAG.classify(400, {}, _error(100, message="x" * 5000)).reason
    assert len(long) < 400 and long.endswith("fbtrace_id AbC")


def test_default_api_version_is_the_newest_marketing_api_version():
    # Adding a version Meta released to the table moves the default with it (see the docs'
    # "API version"): the default is never an older version than the table knows.
    newest = max(MARKETING_API_VERSIONS, key=lambda v: MARKETING_API_VERSIONS[v][0])
    assert DEFAULT_API_VERSION == newest == settings().api_version
    released = [MARKETING_API_VERSIONS[v][0] for v in MARKETING_API_VERSIONS]
    assert released == sorted(released, reverse=True)  # newest first, as Meta lists them
    for version, (release, expiry) in MARKETING_API_VERSIONS.items():
        assert expiry is None or expiry > release, version
    # the user's guide names the same default
    guide = (Path(__file__).parents[2] / "docs/tags/meta_capi.md").read_text()
    assert f"| `api_version` | `{DEFAULT_API_VERSION}` |" in guide


def test_registered():
    registered: list[Any] = []
    register_tag_types(registered.append)
    assert [type(t) for t in registered] == [MetaCapiTag]
    assert registry().tags["meta_capi"].name == "meta_capi"
