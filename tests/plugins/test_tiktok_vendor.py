"""`tiktok` against a fake TikTok Events API on loopback that checks every request against the
documented schema (tests/plugins/fake_tiktok.py): batches over a real socket, TikTok's answers
classified, the real `sgtm serve` fed GA4 hits with the pixel's cookies, and `sgtm emulate`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from sgtm_plugins.tiktok import TikTokTag
from sgtm_plugins.tiktok.settings import TikTokSettings

from sgtm.plugin import BuildContext, ContainerInfo, Outbound
from tests.plugins import fake_tiktok
from tests.servers import FakeVendor, Received, Reply, SgtmProcess

PIXEL = "C4A1B2C3D4E5F6G7H8I9"
TOKEN = "tt-secret-token-123"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36"
TAG = TikTokTag()
PATH = "/open_api/v1.3/event/track/"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def received(body: Any, headers: dict[str, str] | None = None) -> Received:
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    all_headers = {"content-type": "application/json", "access-token": "t", **(headers or {})}
    return Received("POST", PATH, "", all_headers, raw)


def good_event(now: float, **extra: Any) -> dict[str, Any]:
    return {
        "event": "Purchase",
        "event_time": int(now),
        "event_id": "T-1",
        "user": {"email": sha("a@b.co"), "ip": "1.2.3.4", "user_agent": UA, "city": "recife"},
        "properties": {
            "contents": [{"content_id": "SKU-1", "quantity": 1, "price": 9.9}],
            "value": 9.9,
            "currency": "BRL",
        },
        "page": {"url": "https://www.shop.example/done"},
        **extra,
    }


def _with(now: float, **changes: Any) -> dict[str, Any]:
    event = good_event(now)
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            event[section] = {**event[section], field: value}
        else:
            event[section] = value
    return {"event_source": "web", "event_source_id": PIXEL, "data": [event]}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"event_time": "ms"}, "data.0.event_time: in the future"),
        ({"event_time": 1790000000.5}, "event_time: must be an integer"),
        ({"event": ""}, "data.0.event: required"),
        ({"user__email": "a@b.co"}, "user.email: must be SHA-256 hashed"),
        ({"user__phone": ["+5511912345678"]}, "user.phone: must be SHA-256 hashed"),
        ({"user__city": sha("recife")}, "user.city: must not be hashed"),
        ({"user__city": "São Paulo"}, "user.city: letters and digits, lowercase"),
        ({"user__ip": "1.2.3.4:80"}, "user.ip: '1.2.3.4:80' is not an IP address"),
        ({"user__gender": "f"}, "user.gender: unknown field"),
        ({"properties": {"value": 1}}, "properties.currency: required with value"),
        ({"properties": {"value": 1, "currency": "brl"}}, "must be an ISO 4217 code"),
        ({"properties": {"contents": [{"content_id": 1}]}}, "content_id: Not a valid string"),
        ({"properties": {"contents": [{"content_id": "a", "quantity": 1.5}]}},
         "quantity: Not a valid integer"),
        ({"page": {"url": "www.shop.example"}}, "page.url: must be an http(s) URL"),
        ({"limited_data_use": "no"}, "limited_data_use: must be a boolean"),
        ({"surprise": 1}, "data.0.surprise: unknown field"),
    ],
)  # fmt: skip
def test_fake_tiktok_refuses_what_tiktok_refuses(change, problem):
    now = time.time()
    key, value = next(iter(change.items()))
    if value == "ms":
        change = {key: int(now * 1000)}
    found = fake_tiktok.problems(received(_with(now, **change)), now)
    assert found is not None and problem in found
    assert fake_tiktok.problems(received(_with(now)), now) is None


def test_fake_tiktok_refuses_bad_requests():
    now = time.time()
    ok = _with(now)
    assert "Access-Token header is required" in fake_tiktok.problems(
        received(ok, {"access-token": ""}), now
    )
    assert "event_source: must be web" in fake_tiktok.problems(
        received({**ok, "event_source": "app"}), now
    )
    assert "body is not JSON" in fake_tiktok.problems(received(b"data=1"), now)
    big = {**ok, "data": ok["data"] * 1001}
    assert "data: 1001 events; at most 1000" in fake_tiktok.problems(received(big), now)
    assert "pixel_code: unknown field" in fake_tiktok.problems(
        received({**ok, "pixel_code": PIXEL}), now
    )


# -- the tag's requests over a real socket -----------------------------------------------------


@pytest.fixture
def tiktok():
    with fake_tiktok.fake_tiktok() as fake:
        yield fake


def _outbounds(vendor_url: str, count: int, now: float, **overrides: Any) -> list[Outbound]:
    settings = msgspec.convert(
        {"pixel_code": PIXEL, "access_token": TOKEN, "endpoint": vendor_url, **overrides},
        TikTokSettings,
    )
    ctx = BuildContext(tag_name="tt", container=ContainerInfo(name="shop"), now=now)
    events = [
        {
            "event_name": "purchase",
            "transaction_id": f"T-{i}",
            "page_location": "https://www.shop.example/done?ttclid=E.C.P.Click",
            "user_agent": UA,
            "ip_override": "203.0.113.9:50000",
            "currency": "BRL",
            "items": [{"item_id": 1000 + i, "price": 10, "quantity": 1 + i % 3}],
            "user_data": {"email_address": f"buyer{i}@example.com", "phone_number": "11912345678"},
        }
        for i in range(count)
    ]
    return [TAG.build(event, settings, ctx)[0] for event in events]


def _send(outbound: Outbound) -> httpx.Response:
    return httpx.request(
        outbound.method, outbound.url, headers=outbound.headers, content=outbound.body, timeout=10
    )


def test_a_full_batch_of_1000_is_accepted(tiktok):
    outbounds = _outbounds(tiktok.url, 1000, time.time(), phone_country_code="55")
    response = _send(TAG.merge(outbounds))
    assert tiktok.errors == []
    assert response.status_code == 200 and response.json()["code"] == 0
    assert TAG.classify(response.status_code, dict(response.headers), response.content).outcome == (
        "done"
    )
    (got,) = tiktok.received
    assert got.headers["access-token"] == TOKEN
    data = msgspec.json.decode(got.body)["data"]
    assert len({e["event_id"] for e in data}) == 1000
    assert data[0]["user"]["phone"] == sha("+5511912345678")
    assert data[0]["user"]["ttclid"] == "E.C.P.Click"
    assert data[0]["properties"]["contents"][0]["content_id"] == "1000"  # a string, as TikTok asks


def test_one_more_than_tiktok_takes_is_refused_and_dead(tiktok):
    response = _send(TAG.merge(_outbounds(tiktok.url, 1001, time.time())))
    assert response.status_code == 200  # TikTok answers errors with 200 and a code
    verdict = TAG.classify(response.status_code, dict(response.headers), response.content)
    assert verdict.outcome == "dead" and "at most 1000" in verdict.reason
    assert tiktok.errors == ["data: 1001 events; at most 1000"]


def test_one_bad_event_in_a_batch_is_blamed_alone(tiktok):
    outbounds = _outbounds(tiktok.url, 3, time.time())
    outbounds[1].batch_item["properties"]["contents"][0]["content_id"] = 1001  # slipped through
    response = _send(TAG.merge(outbounds))
    verdicts = TAG.classify_batch(
        response.status_code, dict(response.headers), response.content, outbounds
    )
    assert [v.outcome for v in verdicts] == ["retry", "dead", "retry"]
    assert "data.1.properties.contents.0.content_id: Not a valid string" in verdicts[1].reason
    retried = TAG.merge([outbounds[0], outbounds[2]])
    assert _send(retried).json()["code"] == 0


@pytest.mark.parametrize(
    ("answer", "outcome", "reason"),
    [
        (Reply(200, body=fake_tiktok.answer(40100, "Too many requests.")), "retry", "rate lim"),
        (Reply(200, body=fake_tiktok.answer(40105, "Access token invalid")), "dead", "access"),
        (Reply(200, body=fake_tiktok.answer(40001, "No permission")), "dead", "permission"),
        (Reply(500), "retry", "HTTP 500"),
    ],
)
def test_tiktoks_answers_are_classified(answer, outcome, reason):
    with fake_tiktok.fake_tiktok(responses=[answer]) as vendor:
        (outbound,) = _outbounds(vendor.url, 1, time.time())
        response = _send(outbound)
    verdict = TAG.classify(response.status_code, dict(response.headers), response.content)
    assert verdict.outcome == outcome and verdict.reason.startswith(reason)
    assert TOKEN not in verdict.reason


# -- the real server: GA4 hits with the pixel's cookies in, TikTok requests out -----------------

HIT = (
    "/g/collect?v=2&tid=G-TEST01&cid=111.222&en={en}&dl=https%3A%2F%2Fwww.shop.example%2Fp%2F1"
    "{dl_extra}&ep.event_id=ev-{en}{extra}"
)


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
              - name: tiktok
                type: tiktok
                triggers: [everything]
                consent: [ad_storage]
                delivery: {{linger: 0.2s}}
                settings:
                  pixel_code: "{PIXEL}"
                  access_token: "${{TIKTOK_ACCESS_TOKEN}}"
                  phone_country_code: "55"
                  test_event_code: TEST42
                  endpoint: "{vendor_url}"
            """
        )
    )
    return path


def _events(vendor: FakeVendor, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = [e for r in list(vendor.received) for e in msgspec.json.decode(r.body)["data"]]
        if len(events) >= count:
            return events
        time.sleep(0.05)
    raise AssertionError(f"expected {count} events, got {len(vendor.received)} requests")


def test_serve_sends_ga4_events_with_the_pixels_ids(tmp_path, tiktok):
    env = {"TIKTOK_ACCESS_TOKEN": TOKEN, "SGTM_DATA_DIR": str(tmp_path / "var")}
    cookie = "_ga=GA1.1.111.222; _ttp=2F7h37YkS1j57AYSKTI7IHhJPYH"
    purchase = (
        "&cu=BRL&epn.value=44.8&ep.transaction_id=T-77&pr1=idSKU-1~nmSock~pr9.9~qt2"
        "&pr2=idSKU-2~nmCap~pr25~qt1&ep.user_data.email=Ana%40Example.com"
        "&ep.user_data.phone_number=(11)%2091234-5678&uid=CRM-9"
    )
    with SgtmProcess(_container(tmp_path, tiktok.url), env) as server:
        headers = {"user-agent": UA, "x-forwarded-for": "203.0.113.77", "cookie": cookie}
        for en, dl_extra, extra in (
            ("view_item", "%3Fttclid%3DE.C.P.Landing", "&cu=BRL&epn.value=9.9&pr1=idSKU-1~pr9.9"),
            ("purchase", "", purchase),
            ("page_view", "", "&gcs=G100"),  # ad_storage denied: nothing may reach TikTok
        ):
            url = server.url + HIT.format(en=en, dl_extra=dl_extra, extra=extra)
            assert httpx.get(url, headers=headers).status_code == 200
        events = _events(tiktok, 2)
        logs = server.logs()
    assert tiktok.errors == []
    for request in tiktok.received:
        assert request.path == PATH and request.headers["access-token"] == TOKEN
        body = msgspec.json.decode(request.body)
        assert (body["event_source_id"], body["test_event_code"]) == (PIXEL, "TEST42")
    by_name = {e["event"]: e for e in events}
    assert set(by_name) == {"ViewContent", "Purchase"}
    view, bought = by_name["ViewContent"], by_name["Purchase"]
    assert view["event_id"] == "ev-view_item"
    assert view["user"]["ttclid"] == "E.C.P.Landing"
    assert view["user"]["ttp"] == bought["user"]["ttp"] == "2F7h37YkS1j57AYSKTI7IHhJPYH"
    assert bought["user"]["ip"] == "203.0.113.77" and bought["user"]["user_agent"] == UA
    assert bought["user"]["email"] == sha("ana@example.com")
    assert bought["user"]["phone"] == sha("+5511912345678")
    assert bought["user"]["external_id"] == sha("crm-9")
    assert bought["properties"] == {
        "contents": [
            {"content_id": "SKU-1", "content_name": "Sock", "price": 9.9, "quantity": 2},
            {"content_id": "SKU-2", "content_name": "Cap", "price": 25, "quantity": 1},
        ],
        "content_ids": ["SKU-1", "SKU-2"],
        "content_type": "product",
        "value": 44.8,
        "currency": "BRL",
        "order_id": "T-77",
    }
    assert TOKEN not in logs


def test_emulate_shows_the_exact_request_without_the_token(tmp_path):
    config = tmp_path / "shop.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            triggers:
              everything: {{all: []}}
            tags:
              - name: tiktok
                type: tiktok
                triggers: [everything]
                settings:
                  pixel_code: "{PIXEL}"
                  access_token: "${{TIKTOK_ACCESS_TOKEN}}"
            """
        )
    )
    lines = "\n".join(
        json.dumps(e)
        for e in (
            {"event_name": "sign_up", "event_id": "s-1", "user_id": "U-1", "ttp": "abc123",
             "page_location": "https://www.shop.example/join", "user_agent": UA},
            {"event_name": "purchase", "currency": "R$", "value": 1},
        )
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "sgtm.cli", "emulate", "-c", str(config), "--events", "-",
         "--now", "1790000000"],
        input=lines, capture_output=True, text=True,
        env={"PATH": "", "TIKTOK_ACCESS_TOKEN": TOKEN},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stdout
    signed_up, refused = (json.loads(line) for line in done.stdout.splitlines())
    (tag,) = signed_up["events"][0]["tags"]
    (request,) = tag["requests"]
    assert request["url"] == "https://business-api.tiktok.com/open_api/v1.3/event/track/"
    assert request["headers"] == {
        "Access-Token": "${TIKTOK_ACCESS_TOKEN}",
        "Content-Type": "application/json",
    }
    assert request["body"] == {
        "event_source": "web",
        "event_source_id": PIXEL,
        "data": [
            {
                "event": "CompleteRegistration",
                "event_time": 1790000000,
                "event_id": "s-1",
                "user": {"external_id": sha("u-1"), "ttp": "abc123", "user_agent": UA},
                "page": {"url": "https://www.shop.example/join"},
            }
        ],
    }
    as_sent = received(request["body"])
    assert fake_tiktok.problems(as_sent, 1790000000) is None
    (tag,) = refused["events"][0]["tags"]
    assert tag["fired"] is False
    assert tag["reason"] == "invalid: currency 'R$' is not an ISO 4217 code such as EUR"
