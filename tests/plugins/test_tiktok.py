"""`tiktok`: the mapping from event data to Events API 2.0 events, hashing, ttclid / _ttp from the
request, validation, settings, merge, dedupe and response classification. The fake vendor and
end-to-end runs are in test_tiktok_vendor.py."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sgtm_plugins.tiktok import MAX_EVENTS_PER_REQUEST, TikTokTag, register_tag_types
from sgtm_plugins.tiktok.mapping import EVENT_MAP
from sgtm_plugins.tiktok.settings import TikTokSettings

from sgtm.plugin import BuildContext, ContainerInfo, InvalidEvent
from sgtm.request import HitRequest
from tests.installed import registry
from tests.plugins import fake_tiktok
from tests.plugins.crm_fakes import emulate
from tests.servers import Received

NOW = 1_790_000_000.0  # 2026-09-21T14:13:20Z
NOW_MS = int(NOW * 1000)
PIXEL = "C4A1B2C3D4E5F6G7H8I9"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36"
TAG = TikTokTag()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def settings(**overrides: Any) -> TikTokSettings:
    return msgspec.convert(
        {"pixel_code": PIXEL, "access_token": "tt-token", **overrides}, TikTokSettings
    )


def base(event_name: str = "view_item", **extra: Any) -> dict[str, Any]:
    return {
        "event_name": event_name,
        "page_location": "https://www.shop.example/p/1",
        "user_agent": UA,
        "ip_override": "203.0.113.7",
        "x-sst-system_properties": {"request_start_time_ms": NOW_MS - 1500},
        **extra,
    }


def built(
    event: dict[str, Any], cookie: str = "", **overrides: Any
) -> tuple[dict[str, Any], BuildContext]:
    """The request envelope the tag builds for `event`, and the context (its warnings)."""
    request = HitRequest("POST", "/g/collect", headers={"cookie": cookie} if cookie else {})
    ctx = BuildContext(
        tag_name="tt", container=ContainerInfo(name="shop"), now=NOW, request=request
    )
    (outbound,) = TAG.build(event, settings(**overrides), ctx)
    body = msgspec.json.decode(outbound.body)
    assert body["data"] == [outbound.batch_item]
    headers = {k.lower(): v for k, v in outbound.headers.items()}  # as a server receives them
    as_sent = Received("POST", "/open_api/v1.3/event/track/", "", headers, outbound.body)
    assert fake_tiktok.problems(as_sent, NOW) is None
    return body, ctx


def build(event: dict[str, Any], cookie: str = "", **overrides: Any) -> dict[str, Any]:
    body, _ = built(event, cookie, **overrides)
    return body["data"][0]  # type: ignore[no-any-return]


def invalid(event: dict[str, Any], **overrides: Any) -> str:
    ctx = BuildContext(tag_name="tt", container=ContainerInfo(name="shop"), now=NOW)
    with pytest.raises(InvalidEvent) as info:
        TAG.build(event, settings(**overrides), ctx)
    return str(info.value)


SOCK = {"item_id": "SKU-1", "item_name": "Sock", "item_brand": "Acme", "item_category": "Socks",
        "price": 9.9, "quantity": 2}  # fmt: skip
CAP = {"item_id": 77, "item_name": "Cap", "price": "25", "quantity": 1}


def test_the_request_as_tiktok_documents_it():
    body, _ = built(base("purchase", transaction_id="T-1", currency="brl", items=[SOCK, CAP]))
    (outbound,) = TAG.build(base(), settings(), BuildContext("tt", ContainerInfo("s"), NOW))
    assert outbound.method == "POST"
    assert outbound.url == "https://business-api.tiktok.com/open_api/v1.3/event/track/"
    assert outbound.headers == {"Access-Token": "tt-token", "Content-Type": "application/json"}
    assert outbound.destination == PIXEL
    assert body["event_source"] == "web" and body["event_source_id"] == PIXEL
    assert body["data"][0] == {
        "event": "Purchase",
        "event_time": int(NOW - 1.5),
        "event_id": "T-1",  # a purchase's order id, what the pixel should send as event_id
        "user": {"ip": "203.0.113.7", "user_agent": UA},
        "properties": {
            "contents": [
                {"content_id": "SKU-1", "content_name": "Sock", "content_category": "Socks",
                 "brand": "Acme", "price": 9.9, "quantity": 2},
                {"content_id": "77", "content_name": "Cap", "price": 25.0, "quantity": 1},
            ],
            "content_ids": ["SKU-1", "77"],
            "content_type": "product",
            "value": 44.8,  # no value on the event: the items' total
            "currency": "BRL",
            "order_id": "T-1",
        },
        "page": {"url": "https://www.shop.example/p/1"},
    }  # fmt: skip


@pytest.mark.parametrize(("ga4", "tiktok"), sorted(EVENT_MAP.items()))
def test_event_names(ga4: str, tiktok: str):
    assert build(base(ga4))["event"] == tiktok


def test_event_map_and_custom_names():
    assert build(base("video_complete"))["event"] == "video_complete"  # a custom event
    own = build(
        base("purchase", value=1, currency="EUR"), event_map={"purchase": "CompletePayment"}
    )
    assert own["event"] == "CompletePayment"


def test_user_data_normalized_and_hashed_per_tiktoks_rules():
    event = base(
        "generate_lead",
        user_id=" CRM-9 ",
        user_data={
            "email_address": " Ana.Maria@GMail.com ",  # TikTok keeps Gmail's dots
            "phone_number": "(11) 91234-5678",
            "address": [{"first_name": " Ana Maria ", "last_name": "da Silva",
                         "postal_code": "01310 100", "city": "São Paulo", "region": "SP",
                         "country": "BR"}, {"city": "Lima"}],
        },
    )  # fmt: skip
    user = build(event, phone_country_code="55")["user"]
    assert user == {
        "email": sha("ana.maria@gmail.com"),
        "phone": sha("+5511912345678"),  # E.164 with its +
        "external_id": sha("crm-9"),
        "first_name": sha("anamaria"),
        "last_name": sha("dasilva"),
        "zip_code": sha("01310100"),
        "city": "sopaulo",
        "state": "sp",
        "country": "br",
        "ip": "203.0.113.7",
        "user_agent": UA,
    }


def test_prehashed_values_and_googles_hashes():
    digest = sha("ana@example.com")
    google_phone = sha("+5511912345678")  # Google hashes E.164 with its +, as TikTok does
    event = base(user_data={"email_address": digest.upper(), "sha256_phone_number": google_phone,
                            "sha256_email_address": sha("anamaria@gmail.com")})  # fmt: skip
    user = build(event)["user"]
    assert user["email"] == digest and user["phone"] == google_phone
    # Google's email hash (Gmail dots removed) is not TikTok's: never read
    only_google = base(user_data={"sha256_email_address": sha("anamaria@gmail.com")})
    assert "email" not in build(only_google)["user"]


def test_lists_garbage_and_oversized_user_data():
    data = {
        "email_address": ["A@x.co", "bad", "a@x.co", 7, None, "b@x.co"],
        "phone_number": 5511912345678,
        "address": {"first_name": "x" * 5000, "city": {"a": 1}},
    }
    user = build(base(user_data=data))["user"]
    assert user["email"] == [sha("a@x.co"), sha("b@x.co")]  # invalid and duplicates dropped
    assert user["phone"] == sha("+5511912345678")
    assert "first_name" not in user and "city" not in user
    assert build(base(user_data={"email_address": ["a@x.co"]}))["user"]["email"] == sha("a@x.co")
    user = build(base(ip_override="203.0.113.7:443, 10.0.0.1", user_data={"phone_number": "12"}))
    assert user["user"]["ip"] == "203.0.113.7" and "phone" not in user["user"]


def test_ttclid_and_ttp_are_read_from_the_request():
    cookie = "_ttp=2F7h37YkS1j57AYSKTI7IHhJPYH; ttclid=E.C.P.FromCookie"
    user = build(base(), cookie)["user"]
    assert (user["ttp"], user["ttclid"]) == ("2F7h37YkS1j57AYSKTI7IHhJPYH", "E.C.P.FromCookie")
    # a click id in the page URL is the newest: it wins over the cookie
    page = "https://www.shop.example/p/1?ttclid=E.C.P.Fresh_Click"
    assert build(base(page_location=page), cookie)["user"]["ttclid"] == "E.C.P.Fresh_Click"
    # without a request (emulate --events), what the event carries
    user = build(base(ttclid="E.C.P.Event", ttp="abc123"))["user"]
    assert (user["ttclid"], user["ttp"]) == ("E.C.P.Event", "abc123")


@pytest.mark.parametrize(
    "cookie",
    ['_ttp="a b"', "_ttp=" + "x" * 600, "ttclid=" + "y" * 600, "_ttp=a%0D%0Ab", "_ttp=<script>"],
)
def test_hostile_ids_are_dropped(cookie: str):
    user = build(base(), cookie)["user"]
    assert "ttp" not in user and "ttclid" not in user


def test_value_without_currency_is_dropped_with_a_warning():
    body, ctx = built(base("add_to_cart", value=19.8, items=[SOCK]))
    properties = body["data"][0]["properties"]
    assert "value" not in properties and "currency" not in properties
    assert ctx.warnings == ["value not sent: the event has no currency (TikTok needs both)"]
    properties = build(base("add_to_cart", value="19.80", currency="EUR"))["properties"]
    assert (properties["value"], properties["currency"]) == (19.8, "EUR")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"event_name": ""}, "no event_name"),
        (base(event_time="yesterday"), "event_time 'yesterday' is not a Unix time or ISO 8601"),
        (base(currency="R$", value=1), "currency 'R$' is not an ISO 4217 code"),
        (base(value="12,50", currency="BRL"), "value '12,50' is not a number"),
        (base(value="1_000", currency="BRL"), "is not a number"),
    ],
)
def test_events_tiktok_would_refuse_are_invalid(event, message):
    assert message in invalid(event)


HOSTILE = [None, True, 0, -1.5, float("nan"), "", " ", "x" * 20_000, [], {}, [None, {}], {"a": [1]},
           "\u0000", "<script>", "1e309"]  # fmt: skip
# (no lone surrogates: every JSON decoder of sgtm refuses them, so event data never holds one)


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize(
    "key",
    ["event_id", "transaction_id", "value", "currency", "items", "user_id", "user_data",
     "page_location", "page_referrer", "ip_override", "user_agent", "ttclid", "ttp",
     "limited_data_use", "event_time", "search_term", "content_type"],
)  # fmt: skip
def test_hostile_values_never_crash_the_tag(key: str, value: Any):
    ctx = BuildContext(tag_name="tt", container=ContainerInfo(name="shop"), now=NOW)
    try:
        event = {**base("purchase", currency="BRL"), key: value}
        (outbound,) = TAG.build(event, settings(), ctx)
    except InvalidEvent:
        return  # refused with a reason: fine
    headers = {k.lower(): v for k, v in outbound.headers.items()}
    as_sent = Received("POST", "/open_api/v1.3/event/track/", "", headers, outbound.body)
    assert fake_tiktok.problems(as_sent, NOW) is None


def test_properties_setting_and_bad_lists():
    extra = {"description": "from sgtm", "content_type": None}
    out = build(base("search", search_term="meias", items=[SOCK]), properties=extra)["properties"]
    assert out["search_string"] == "meias" and out["description"] == "from sgtm"
    assert "content_type" not in out  # an empty value removes a field
    assert "must be a list" in invalid(base(), properties={"contents": "SKU-1"})


def test_event_time_and_ids():
    assert build(base(event_time=int(NOW) + 3600))["event_time"] == int(NOW)  # never future
    assert build(base(event_time=NOW_MS - 60_000))["event_time"] == int(NOW) - 60  # ms
    assert build(base(event_time="2026-09-21T14:00:00Z"))["event_time"] == int(NOW) - 800
    assert build(base(event_id="ev-1"))["event_id"] == "ev-1"
    generated = build(base())["event_id"]
    assert re.fullmatch(r"sgtm-[0-9a-f]{32}", generated) and build(base())["event_id"] == generated


def test_limited_data_use_and_test_event_code():
    assert "limited_data_use" not in build(base())
    assert build(base(), limited_data_use=True)["limited_data_use"] is True
    assert build(base(limited_data_use=False), limited_data_use=True)["limited_data_use"] is False
    body, _ = built(base(), test_event_code="TEST123")
    assert body["test_event_code"] == "TEST123"
    body, _ = built(base(test_event_code="OWN9"), test_event_code="TEST123")
    assert body["test_event_code"] == "OWN9"


def test_merge_batches_events_of_one_lane():
    assert TAG.batching is not None and TAG.batching.max_items == MAX_EVENTS_PER_REQUEST == 1000
    ctx = BuildContext(tag_name="tt", container=ContainerInfo(name="shop"), now=NOW)
    outbounds = [TAG.build(base(event_id=f"e{i}"), settings(test_event_code="T1"), ctx)[0]
                 for i in range(3)]  # fmt: skip
    assert {(o.destination, o.batch_key) for o in outbounds} == {(PIXEL, "test:T1")}
    merged = TAG.merge(outbounds)
    body = msgspec.json.decode(merged.body)
    assert [e["event_id"] for e in body["data"]] == ["e0", "e1", "e2"]
    assert body["test_event_code"] == "T1" and merged.headers == outbounds[0].headers
    # Another test code shares the pixel's lane (an event may carry its own code: it must not
    # open lanes), in other requests than T1's.
    other = TAG.build(base(test_event_code="T2"), settings(), ctx)[0]
    assert (other.destination, other.batch_key) == (PIXEL, "test:T2")
    plain = TAG.build(base(), settings(), ctx)[0]
    assert (plain.destination, plain.batch_key) == (PIXEL, "")


def test_dedupe_key():
    key = TAG.dedupe_key(base("purchase", transaction_id="T-1"), settings())
    assert key == (f"{PIXEL}:Purchase:T-1", 48 * 3600)
    assert TAG.dedupe_key(base(), settings()) is None  # a generated id is new for a new event
    assert TAG.dedupe_key({"event_name": 5}, settings()) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pixel_code": "C4A/../x"}, "pixel_code: expected the pixel's code"),
        ({"access_token": " "}, "access_token: empty"),
        ({"phone_country_code": "+55"}, "phone_country_code: a country calling code"),
        ({"event_map": {"purchase": "Complete Payment"}}, "is not a TikTok event name"),
        ({"endpoint": "{{event.url}}"}, "endpoint: cannot be a template"),
        ({"endpoint": "business-api.tiktok.com"}, "endpoint: expected an http(s) URL"),
        ({"limited_data_use": "yes"}, "Expected `bool`"),
        ({"colour": "red"}, "unknown field `colour`"),
    ],
)
def test_settings_errors(overrides, message):
    with pytest.raises(msgspec.ValidationError, match=re.escape(message)):
        settings(**overrides)


def test_access_token_is_annotated_secret_and_endpoint_url():
    schema = msgspec.json.schema(TikTokSettings)["$defs"]["TikTokSettings"]["properties"]
    assert schema["access_token"].get("writeOnly") is True
    assert schema["endpoint"].get("format") == "uri"


# -- answers --------------------------------------------------------------------------------------


def _answer(code: int, message: str = "m") -> bytes:
    return fake_tiktok.answer(code, message, "req-1")


@pytest.mark.parametrize(
    ("status", "headers", "body", "outcome", "retry_after"),
    [
        (200, {}, _answer(0, "OK"), "done", None),
        (200, {}, _answer(20001, "partial"), "done", None),
        (200, {}, _answer(40100, "Too many requests"), "retry", 60.0),
        (200, {"Retry-After": "7"}, _answer(40100), "retry", 7.0),
        (200, {}, _answer(40105, "access token invalid"), "dead", None),
        (200, {}, _answer(40001, "No permission"), "dead", None),
        (200, {}, _answer(40002, "data.0.event: required"), "dead", None),
        (200, {}, _answer(50000, "system error"), "retry", None),
        (200, {}, _answer(40700), "retry", None),
        (200, {}, b"", "retry", None),  # no envelope: nothing says TikTok took it
        (503, {}, b"<html>busy</html>", "retry", None),
        (429, {"Retry-After": "3"}, b"", "retry", 3.0),
        (404, {}, b"not found", "dead", None),
    ],
)
def test_classify(status, headers, body, outcome, retry_after):
    verdict = TAG.classify(status, headers, body)
    assert (verdict.outcome, verdict.retry_after) == (outcome, retry_after)


def test_classify_reasons_say_what_to_do():
    token = TAG.classify(200, {}, _answer(40105, "Access token is invalid"))
    assert token.reason.startswith("access token refused (missing, expired or revoked)")
    assert "code 40105" in token.reason and "request_id req-1" in token.reason
    assert "tt-token" not in token.reason
    assert TAG.classify(200, {}, _answer(40001)).reason.startswith("permission denied")
    assert TAG.classify(200, {}, _answer(40002, "x" * 5000)).reason.startswith("rejected;")


def test_classify_batch_blames_the_event_tiktok_names():
    ctx = BuildContext(tag_name="tt", container=ContainerInfo(name="shop"), now=NOW)
    items = [TAG.build(base(event_id=f"e{i}"), settings(), ctx)[0] for i in range(3)]
    body = _answer(40002, "data.1.properties.contents.0.content_id: Not a valid string")
    verdicts = TAG.classify_batch(200, {}, body, items)
    assert [v.outcome for v in verdicts] == ["retry", "dead", "retry"]
    assert "content_id: Not a valid string" in verdicts[1].reason
    # a message naming no event (or one out of range): the whole batch
    for message in ("bad request", "data.7.event: required"):
        verdicts = TAG.classify_batch(200, {}, _answer(40002, message), items)
        assert [v.outcome for v in verdicts] == ["dead"] * 3
    assert [v.outcome for v in TAG.classify_batch(200, {}, _answer(0), items)] == ["done"] * 3


def test_registered():
    registered: list[Any] = []
    register_tag_types(registered.append)
    assert [type(t) for t in registered] == [TikTokTag]
    assert registry().tags["tiktok"].name == "tiktok"


# -- the user's guide ---------------------------------------------------------------------------

GUIDE = (Path(__file__).parents[2] / "docs/tags/tiktok.md").read_text()


def test_the_guides_example_prints_what_the_page_shows():
    fences = re.findall(r"```(\w*)\n(.*?)```", GUIDE, re.S)
    (container,) = [b for lang, b in fences if lang == "yaml" and b.startswith("version: 1")]
    (line,) = [b for lang, b in fences if lang == "" and b.startswith("{")]
    (shown,) = [b for lang, b in fences if lang == "json" and '"tiktok"' in b]
    (tags,) = emulate(container, [json.loads(line)], {"TIKTOK_ACCESS_TOKEN": "tt-secret-token-1"},
                      now=1_700_000_000)  # fmt: skip
    assert tags == [json.loads(shown)]
    assert tags[0]["requests"][0]["body"]["data"][0]["user"]["phone"] == sha("+5511912345678")
