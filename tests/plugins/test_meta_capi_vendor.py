"""`meta_capi` against a fake Meta on loopback that checks every request against Meta's documented
schema (tests/plugins/fake_meta.py): direct batches, the real `sgtm serve` fed GA4 hits, and
`sgtm emulate` per event type."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from sgtm_plugins.meta_capi import MetaCapiTag
from sgtm_plugins.meta_capi.settings import MetaCapiSettings

from sgtm.plugin import BuildContext, ContainerInfo
from tests.plugins import fake_meta
from tests.servers import FakeVendor, Received, SgtmProcess

PIXEL = "1234567890123456"
TOKEN = "EAAB-secret-token-123"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36"
TAG = MetaCapiTag()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def received(body: Any, *, path: str = f"/v27.0/{PIXEL}/events", query: str = "access_token=t"):
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    headers = {"content-type": "application/json"}
    return Received(method="POST", path=path, query=query, headers=headers, body=raw)


def good_event(now: float, **extra: Any) -> dict[str, Any]:
    return {
        "event_name": "Purchase",
        "event_time": int(now),
        "action_source": "website",
        "event_source_url": "https://www.shop.example/done",
        "event_id": "T-1",
        "user_data": {"em": sha("a@b.co"), "client_user_agent": UA, "client_ip_address": "1.2.3.4"},
        "custom_data": {"currency": "EUR", "value": 10.5},
        **extra,
    }


# -- the fake's schema: it must refuse what Meta refuses ----------------------------------------


def _with(now: float, **changes: Any) -> dict[str, Any]:
    event = good_event(now)
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            event[section] = {**event[section], field: value}
        else:
            event[section] = value
    return {"data": [event]}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"event_time": "ms"}, "event_time is in the future"),  # milliseconds
        ({"event_time": 1790000000.5}, "event_time must be an integer"),
        ({"event_time": "old"}, "older than 7 days"),
        ({"action_source": "web"}, "action_source 'web' is invalid"),
        ({"event_source_url": "www.shop.example"}, "need an http(s) event_source_url"),
        ({"user_data__em": "a@b.co"}, "user_data.em must be SHA-256 hashed"),
        ({"user_data__ph": sha("1").upper()}, "user_data.ph must be SHA-256 hashed"),
        ({"user_data__em": sha("a") + ".XY"}, "user_data.em must be SHA-256 hashed"),
        ({"user_data__client_ip_address": sha("1.2.3.4")}, "must not be hashed"),
        ({"user_data__client_ip_address": "1.2.3.4:80"}, "is not an IP address (no port)"),
        ({"user_data__fbc": "IwAR1"}, "user_data.fbc 'IwAR1' is not fb."),
        ({"custom_data": {"value": 1}}, "Purchase events need custom_data.currency"),
        ({"custom_data": {"value": 1, "currency": "eur"}}, "must be an ISO 4217 code"),
        ({"custom_data": {"value": 1, "currency": "EUR", "contents": [{"quantity": 1}]}},
         "contents[0] needs an id"),
        ({"surprise": 1}, "unknown parameter 'surprise'"),
        ({"action_source": "app"}, "app events need app_data"),
        ({"action_source": "app", "app_data": {"extinfo": ["i2"] + [""] * 15}},
         "app_data.advertiser_tracking_enabled is required"),
        ({"action_source": "app",
          "app_data": {"advertiser_tracking_enabled": True, "extinfo": ["i2", "x"]}},
         "app_data.extinfo must be an array of 16 values"),
        ({"action_source": "app",
          "app_data": {"advertiser_tracking_enabled": True, "extinfo": ["i2"] + [""] * 15}},
         "extinfo needs version a2 or i2 and the OS version"),
        ({"opt_out": "true"}, "opt_out must be a boolean"),
    ],
)  # fmt: skip
def test_fake_meta_refuses_what_meta_refuses(change, problem):
    now = time.time()
    key, value = next(iter(change.items()))
    if value == "ms":
        change = {key: int(now * 1000)}
    elif value == "old":
        change = {key: int(now) - 8 * 86400}
    found = fake_meta.problems(received(_with(now, **change)), now)
    assert found is not None and problem in found
    assert fake_meta.problems(received(_with(now)), now) is None


def test_fake_meta_refuses_bad_requests():
    now = time.time()
    ok = _with(now)
    assert "no access_token" in fake_meta.problems(received(ok, query=""), now)
    assert "not POST" in fake_meta.problems(received(ok, path=f"/{PIXEL}/events"), now)
    assert "body is not JSON" in fake_meta.problems(received(b"data=1"), now)
    big = {"data": ok["data"] * 1001}
    assert "1001 events in one request" in fake_meta.problems(received(big), now)
    assert "unknown request parameter" in fake_meta.problems(received({**ok, "x": 1}), now)
    expired = received(ok, path=f"/v24.0/{PIXEL}/events")
    assert "(#2635) You are calling a deprecated version" in fake_meta.problems(expired, now)


# -- the tag's requests over a real socket -----------------------------------------------------


@pytest.fixture
def meta():
    with FakeVendor(check=fake_meta.problems, reply=fake_meta.reply) as fake:
        yield fake


def _outbounds(vendor_url: str, count: int, now: float, **overrides: Any) -> list[Any]:
    settings = msgspec.convert(
        {"pixel_id": PIXEL, "access_token": TOKEN, "endpoint": vendor_url, **overrides},
        MetaCapiSettings,
    )
    ctx = BuildContext(tag_name="meta", container=ContainerInfo(name="shop"), now=now)
    events = [
        {
            "event_name": "purchase",
            "event_id": f"E-{i}",
            "page_location": "https://www.shop.example/done?fbclid=IwAR9",
            "user_agent": UA,
            "ip_override": "203.0.113.9:50000",
            "currency": "BRL",
            "items": [{"item_id": f"SKU-{i}", "price": 10, "quantity": 1 + i % 3}],
            "user_data": {
                "email_address": f"buyer{i}@example.com",
                "phone_number": "+55 11 91234-5678",
            },
        }
        for i in range(count)
    ]
    return [TAG.build(event, settings, ctx)[0] for event in events]


def _send(outbound: Any) -> httpx.Response:
    return httpx.request(
        outbound.method, outbound.url, headers=outbound.headers, content=outbound.body, timeout=10
    )


def test_a_full_batch_of_1000_is_accepted(meta):
    outbounds = _outbounds(meta.url, 1000, time.time(), appsecret_proof=True, app_secret="s")
    response = _send(TAG.merge(outbounds))
    assert meta.errors == []
    assert response.status_code == 200
    assert response.json()["events_received"] == 1000
    assert TAG.classify(response.status_code, dict(response.headers), response.content).outcome == (
        "done"
    )
    (got,) = meta.received
    assert f"access_token={TOKEN}" in got.query and "appsecret_proof=" in got.query
    data = msgspec.json.decode(got.body)["data"]
    assert len({e["event_id"] for e in data}) == 1000


def test_phones_with_their_country_code_and_prehashed_values_reach_meta(meta):
    now = time.time()
    config = {"pixel_id": PIXEL, "access_token": TOKEN, "endpoint": meta.url}
    settings = msgspec.convert({**config, "phone_country_code": "55"}, MetaCapiSettings)
    ctx = BuildContext(tag_name="meta", container=ContainerInfo(name="shop"), now=now)
    appendix = f"{sha('ana@example.com').upper()}.AQQCAQMC"  # as Meta's own SDK sends it
    event = {
        "event_name": "generate_lead",
        "event_id": "L-1",
        "page_location": "https://www.shop.example/contato",
        "user_agent": UA,
        "email": appendix,
        "user_data": {"phone_number": ["(11) 91234-5678", "+351 912 345 678"]},
    }
    (outbound,) = TAG.build(event, settings, ctx)
    response = _send(outbound)
    assert meta.errors == [] and response.status_code == 200
    (sent,) = msgspec.json.decode(meta.received[0].body)["data"]
    assert sent["user_data"]["ph"] == [sha("5511912345678"), sha("351912345678")]
    assert sent["user_data"]["em"] == appendix


def test_app_events_and_opt_out_reach_meta_as_documented(meta):
    now = time.time()
    config = {"pixel_id": PIXEL, "access_token": TOKEN, "endpoint": meta.url}
    settings = msgspec.convert({**config, "opt_out": True}, MetaCapiSettings)
    ctx = BuildContext(tag_name="meta", container=ContainerInfo(name="shop"), now=now)
    app_event = {
        "event_name": "purchase",
        "event_id": "A-1",
        "action_source": "app",
        "currency": "BRL",
        "value": 10,
        "madid": "38400000-8cf0-11bd-b23e-10b96e40000d",
        "app_data": {
            "advertiser_tracking_enabled": False,
            "extinfo": {"ext_info_version": "a2", "os_version": "14", "screen_width": 1080},
        },
    }
    web_event = {
        "event_name": "page_view",
        "event_id": "W-1",
        "page_location": "https://www.shop.example/",
        "user_agent": UA,
        "opt_out": False,
    }
    outbounds = [TAG.build(e, settings, ctx)[0] for e in (app_event, web_event)]
    response = _send(TAG.merge(outbounds))
    assert meta.errors == [] and response.status_code == 200
    app, web = msgspec.json.decode(meta.received[0].body)["data"]
    assert app["app_data"]["advertiser_tracking_enabled"] is False
    assert app["app_data"]["extinfo"][:5] == ["a2", "", "", "", "14"]
    assert app["app_data"]["extinfo"][9] == "1080"
    assert (app["opt_out"], web["opt_out"]) == (True, False)  # the setting, the event's own


def test_meta_refusal_is_classified_from_the_real_answer(meta):
    outbounds = _outbounds(meta.url, 1001, time.time())
    response = _send(TAG.merge(outbounds))  # one more than Meta takes
    assert response.status_code == 400
    verdict = TAG.classify(response.status_code, dict(response.headers), response.content)
    assert verdict.outcome == "dead"
    assert "1001 events in one request; the maximum is 1000" in verdict.reason
    assert meta.errors == ["1001 events in one request; the maximum is 1000"]


def test_one_bad_event_in_a_batch_is_blamed_alone(meta):
    outbounds = _outbounds(meta.url, 3, time.time())
    outbounds[1].batch_item["custom_data"]["contents"] = "SKU-1"  # slipped past validation
    response = _send(TAG.merge(outbounds))
    assert response.status_code == 400
    verdicts = TAG.classify_batch(
        response.status_code, dict(response.headers), response.content, outbounds
    )
    assert [v.outcome for v in verdicts] == ["retry", "dead", "retry"]
    assert "custom_data.contents must be an array" in verdicts[1].reason
    retried = TAG.merge([outbounds[0], outbounds[2]])
    assert _send(retried).json()["events_received"] == 2


def test_an_expired_api_version_is_a_dead_letter_that_names_the_setting(meta):
    (outbound,) = _outbounds(meta.url, 1, time.time(), api_version="v24.0")
    response = _send(outbound)
    assert response.status_code == 400 and response.json()["error"]["code"] == 2635
    verdict = TAG.classify(response.status_code, dict(response.headers), response.content)
    assert verdict.outcome == "dead"
    assert verdict.reason.startswith("api_version is no longer served by Meta")


@pytest.mark.parametrize(
    ("status", "outcome", "reason"),
    [
        (401, "dead", "access token refused"),
        (403, "dead", "permission denied"),
        (429, "retry", "rate limited"),
        (500, "retry", "transient"),
    ],
)
def test_meta_errors_are_classified_from_real_answers(status, outcome, reason):
    with FakeVendor(responses=[status], reply=fake_meta.reply) as vendor:
        (outbound,) = _outbounds(vendor.url, 1, time.time())
        response = _send(TAG.merge([outbound]))
    assert response.status_code == status
    verdict = TAG.classify(response.status_code, dict(response.headers), response.content)
    assert verdict.outcome == outcome
    assert verdict.reason.startswith(reason)
    assert TOKEN not in verdict.reason


# -- the real server: GA4 hits in, Meta requests out ---------------------------------------------

HIT = (
    "/g/collect?v=2&tid=G-TEST01&cid=111.222&sid=1790000000&en={en}"
    "&dl=https%3A%2F%2Fwww.shop.example%2Fp%2F1%3Ffbclid%3DIwAR7&ep.event_id=ev-{en}{extra}"
)
HITS = {
    "page_view": "",
    "view_item": "&cu=BRL&epn.value=9.9&pr1=idSKU-1~nmSock~pr9.9~qt1",
    "add_to_cart": "&cu=BRL&epn.value=19.8&pr1=idSKU-1~nmSock~pr9.9~qt2",
    "begin_checkout": (
        "&cu=BRL&epn.value=44.8&pr1=idSKU-1~nmSock~pr9.9~qt2&pr2=idSKU-2~nmCap~pr25~qt1"
    ),
    "purchase": (
        "&cu=BRL&epn.value=44.8&ep.transaction_id=T-77&pr1=idSKU-1~nmSock~pr9.9~qt2"
        "&pr2=idSKU-2~nmCap~pr25~qt1&ep.user_data.email=Ana%40Example.com"
        "&ep.user_data.address.city=Montr%C3%A9al&uid=CRM-9"
    ),
    "generate_lead": "&cu=BRL&epn.value=50&ep.user_data.phone=%2B55%2011%2091234-5678",
    "sign_up": "&ep.method=email&ep.user_data.email=new%40example.com",
}
META_NAMES = {
    "page_view": "PageView",
    "view_item": "ViewContent",
    "add_to_cart": "AddToCart",
    "begin_checkout": "InitiateCheckout",
    "purchase": "Purchase",
    "generate_lead": "Lead",
    "sign_up": "CompleteRegistration",
}


def _container(tmp_path: Path, vendor_url: str) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            privacy:
              trusted_proxies: [127.0.0.1]
            clients:
              - {{name: ga4, type: ga4}}
            triggers:
              everything: {{all: []}}
            tags:
              - name: meta
                type: meta_capi
                triggers: [everything]
                consent: [ad_storage]
                settings:
                  pixel_id: "{PIXEL}"
                  access_token: "${{META_ACCESS_TOKEN}}"
                  endpoint: "{vendor_url}"
                  test_event_code: TEST42
            """
        )
    )
    return path


def _events(vendor: FakeVendor, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The server events received so far, once there are `count` (batches are flattened)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = [e for r in list(vendor.received) for e in msgspec.json.decode(r.body)["data"]]
        if len(events) >= count:
            return events
        time.sleep(0.05)
    raise AssertionError(f"expected {count} events, got {len(vendor.received)} requests")


def test_serve_sends_each_event_type_as_meta_documents(tmp_path, meta):
    env = {"META_ACCESS_TOKEN": TOKEN, "SGTM_DATA_DIR": str(tmp_path / "var")}
    with SgtmProcess(_container(tmp_path, meta.url), env) as server:
        for en, extra in HITS.items():
            response = httpx.get(
                server.url + HIT.format(en=en, extra=extra),
                headers={"user-agent": UA, "x-forwarded-for": "203.0.113.77"},
            )
            assert response.status_code == 200
        # consent denied (gcs=G100): nothing may reach Meta for this one
        httpx.get(server.url + HIT.format(en="page_view", extra="&gcs=G100"))
        events = _events(meta, len(HITS))
        logs = server.logs()
    assert meta.errors == []
    assert len(events) == len(HITS)
    by_name = {e["event_name"]: e for e in events}
    assert set(by_name) == set(META_NAMES.values())
    for request in meta.received:
        assert request.path == f"/v27.0/{PIXEL}/events"
        assert request.query == f"access_token={TOKEN}"
        assert msgspec.json.decode(request.body)["test_event_code"] == "TEST42"
    for en, meta_name in META_NAMES.items():
        event = by_name[meta_name]
        assert event["event_id"] == f"ev-{en}"
        assert event["event_source_url"] == "https://www.shop.example/p/1?fbclid=IwAR7"
        assert event["user_data"]["client_ip_address"] == "203.0.113.77"
        assert event["user_data"]["client_user_agent"] == UA
        assert event["user_data"]["fbc"].endswith(".IwAR7")
    purchase = by_name["Purchase"]
    assert purchase["user_data"]["em"] == sha("ana@example.com")
    assert purchase["user_data"]["ct"] == sha("montral")
    assert purchase["user_data"]["external_id"] == sha("crm-9")
    assert purchase["custom_data"] == {
        "contents": [
            {"id": "SKU-1", "quantity": 2, "item_price": 9.9, "title": "Sock"},
            {"id": "SKU-2", "quantity": 1, "item_price": 25, "title": "Cap"},
        ],
        "content_ids": ["SKU-1", "SKU-2"],
        "content_type": "product",
        "value": 44.8,
        "currency": "BRL",
        "order_id": "T-77",
    }
    assert by_name["InitiateCheckout"]["custom_data"]["num_items"] == 3
    assert by_name["Lead"]["user_data"]["ph"] == sha("5511912345678")
    assert TOKEN not in logs


def test_serve_sends_the_visitors_own_fbp_and_fbc_on_default_client_settings(tmp_path, meta):
    # The ga4 client is on its defaults (meta_cookies: false): the cookies the pixel set are
    # still read, so a page without fbclid keeps its click attribution.
    env = {"META_ACCESS_TOKEN": TOKEN, "SGTM_DATA_DIR": str(tmp_path / "var")}
    hit = (
        "/g/collect?v=2&tid=G-TEST01&cid=111.222&en=purchase&dl=https%3A%2F%2Fwww.shop.example"
        "%2Fdone&ep.transaction_id=T-9&cu=BRL&epn.value=10&pr1=idSKU-1~pr10~qt1"
    )
    cookie = "_ga=GA1.1.111.222; _fbp=fb.1.1700000000000.123456789; _fbc=fb.1.1700000000001.IwAR"
    with SgtmProcess(_container(tmp_path, meta.url), env) as server:
        response = httpx.get(server.url + hit, headers={"user-agent": UA, "cookie": cookie})
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
        (event,) = _events(meta, 1)
    assert meta.errors == []
    assert event["user_data"]["fbp"] == "fb.1.1700000000000.123456789"
    assert event["user_data"]["fbc"] == "fb.1.1700000000001.IwAR"


def test_serve_retries_a_transient_failure_with_the_same_event(tmp_path):
    env = {"META_ACCESS_TOKEN": TOKEN, "SGTM_DATA_DIR": str(tmp_path / "var")}
    hit = HIT.format(en="purchase", extra=HITS["purchase"])
    vendor = FakeVendor(responses=[500], check=fake_meta.problems, reply=fake_meta.reply)
    with vendor, SgtmProcess(_container(tmp_path, vendor.url), env) as server:
        assert httpx.get(server.url + hit, headers={"user-agent": UA}).status_code == 200
        first, second = vendor.wait_for(2, timeout=30)
    assert vendor.errors == []
    assert msgspec.json.decode(first.body) == msgspec.json.decode(second.body)
    assert msgspec.json.decode(second.body)["data"][0]["event_id"] == "ev-purchase"


# -- sgtm emulate, per event type ----------------------------------------------------------------

EMULATE_NOW = 1_790_000_000
EMULATE_EVENTS = [
    {"event_name": "page_view"},
    {"event_name": "view_item", "currency": "EUR", "value": 9.9,
     "items": [{"item_id": "SKU-1", "item_name": "Sock", "price": 9.9, "quantity": 1}]},
    {"event_name": "add_to_cart", "currency": "EUR", "value": 19.8,
     "items": [{"item_id": "SKU-1", "item_name": "Sock", "price": 9.9, "quantity": 2}]},
    {"event_name": "begin_checkout", "currency": "EUR", "value": 19.8,
     "items": [{"item_id": "SKU-1", "price": 9.9, "quantity": 2}]},
    {"event_name": "purchase", "currency": "EUR", "value": 19.8, "transaction_id": "T-1",
     "items": [{"item_id": "SKU-1", "price": 9.9, "quantity": 2}],
     "user_data": {"email_address": "Ana@Example.com", "address": {"city": "Montréal"}}},
    {"event_name": "generate_lead", "currency": "EUR", "value": 30,
     "user_data": {"phone_number": "+351 912 345 678"}},
    {"event_name": "sign_up", "method": "email", "user_id": "U-1"},
    {"event_name": "purchase", "value": 19.8},
]  # fmt: skip


def test_emulate_shows_the_exact_requests(tmp_path):
    config = tmp_path / "shop.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            triggers:
              everything: {{all: []}}
            tags:
              - name: meta
                type: meta_capi
                triggers: [everything]
                settings:
                  pixel_id: "{PIXEL}"
                  access_token: "${{META_ACCESS_TOKEN}}"
            """
        )
    )
    common = {
        "page_location": "https://www.shop.example/p/1",
        "user_agent": UA,
        "ip_override": "198.51.100.4",
    }
    lines = "\n".join(
        json.dumps({**common, **e, "event_id": f"id-{i}"}) for i, e in enumerate(EMULATE_EVENTS)
    )
    done = subprocess.run(
        [sys.executable, "-m", "sgtm.cli", "emulate", "-c", str(config), "--events", "-",
         "--now", str(EMULATE_NOW)],
        input=lines, capture_output=True, text=True,
        env={"PATH": "", "META_ACCESS_TOKEN": TOKEN},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout
    outputs = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(outputs) == len(EMULATE_EVENTS)
    names = []
    for output in outputs[:-1]:
        (tag,) = output["events"][0]["tags"]
        assert tag["fired"] is True, tag["reason"]
        (request,) = tag["requests"]
        assert request["method"] == "POST"
        assert request["url"] == (
            f"https://graph.facebook.com/v27.0/{PIXEL}/events?access_token=${{META_ACCESS_TOKEN}}"
        )
        assert request["headers"] == {"Content-Type": "application/json"}
        url = urlsplit(request["url"])
        as_sent = received(request["body"], path=url.path, query=url.query)
        assert fake_meta.problems(as_sent, EMULATE_NOW) is None
        (event,) = request["body"]["data"]
        assert event["event_time"] == EMULATE_NOW
        names.append(event["event_name"])
    assert names == [
        "PageView",
        "ViewContent",
        "AddToCart",
        "InitiateCheckout",
        "Purchase",
        "Lead",
        "CompleteRegistration",
    ]
    purchase = outputs[4]["events"][0]["tags"][0]["requests"][0]["body"]["data"][0]
    assert purchase == {
        "event_name": "Purchase",
        "event_time": EMULATE_NOW,
        "event_id": "id-4",
        "action_source": "website",
        "event_source_url": "https://www.shop.example/p/1",
        "user_data": {
            "em": sha("ana@example.com"),
            "ct": sha("montral"),
            "client_ip_address": "198.51.100.4",
            "client_user_agent": UA,
        },
        "custom_data": {
            "contents": [{"id": "SKU-1", "quantity": 2, "item_price": 9.9}],
            "content_ids": ["SKU-1"],
            "content_type": "product",
            "value": 19.8,
            "currency": "EUR",
            "order_id": "T-1",
        },
    }
    (refused,) = outputs[-1]["events"][0]["tags"]
    assert refused["fired"] is False and refused["requests"] == []
    assert refused["reason"] == "invalid: Purchase needs a currency: the event has no currency"
