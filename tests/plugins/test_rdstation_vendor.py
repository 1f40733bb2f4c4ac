"""`rdstation` against a fake RD Station on loopback that checks every request against RD's
documented schema: the tag's requests and credential flow (contract), then `sgtm serve` end to end.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from sgtm_plugins.rdstation import RDStationSettings, RDStationTag

from sgtm.plugin import BuildContext, ContainerInfo, Outbound
from tests.plugins.crm_fakes import (
    NOW,
    CredentialFlow,
    FakeRDStation,
    Reply,
    dead_letters,
    ga4_post,
    serve,
)
from tests.servers import wait_until

TAG = RDStationTag()
CTX = BuildContext(tag_name="rd", container=ContainerInfo(name="shop"), now=NOW)
USER = {"email_address": "ana@example.com", "address": {"first_name": "Ana", "last_name": "Silva"}}
ITEMS = [{"item_id": "SKU-1", "item_name": "Camiseta", "price": 49.9, "quantity": 2}]


def events() -> list[dict[str, Any]]:
    page = "https://www.shop.example/p?utm_source=news"
    base = {"client_id": "1.2", "ga_session_id": "77", "page_location": page, "user_data": USER}
    order = {"currency": "BRL", "value": 99.8, "items": ITEMS}
    return [
        {**base, "event_name": "page_view"},
        {**base, "event_name": "view_item", **order},
        {**base, "event_name": "add_to_cart", **order},
        {**base, "event_name": "begin_checkout", **order},
        {**base, "event_name": "purchase", "transaction_id": "T-1", **order},
        {**base, "event_name": "generate_lead", "plan": "gold"},
        {**base, "event_name": "sign_up"},
        {**base, "event_name": "refund", "transaction_id": "T-1"},
    ]


def oauth_settings(fake: FakeRDStation, **extra: Any) -> RDStationSettings:
    values = {
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "refresh_token": fake.refresh_token,
        "endpoint": fake.url,
        "fields": {"cf_plan": "gold"},
        "legal_bases": {"type": "consent", "status": "granted"},
        "tags": ["Site"],
        **extra,
    }
    return msgspec.convert(values, RDStationSettings)


@pytest.fixture
def fake():
    with FakeRDStation() as vendor:
        yield vendor


async def test_every_event_type_is_accepted_through_oauth(fake):
    settings = oauth_settings(fake)
    flow = CredentialFlow(TAG, settings)
    try:
        for event in events():
            (outbound,) = TAG.build(event, settings, CTX)
            assert [v.outcome for v in await flow.send([outbound])] == ["done"]
    finally:
        await flow.aclose()
    assert fake.errors == []
    assert len(fake.requests_to("token")) == 1  # one token for every event
    kinds = [e["event_type"] for e in fake.events]
    assert kinds == ["CONVERSION"] * 3 + ["ECOMMERCE_CHECKOUT_STARTED", "ECOMMERCE_ORDER_PAID"] + [
        "CONVERSION"
    ] * 2 + ["ECOMMERCE_ORDER_REFUNDED"]
    assert fake.events[0]["payload"]["legal_bases"] == [
        {"category": "communications", "type": "consent", "status": "granted"}
    ]


async def test_every_event_is_accepted_as_a_conversion_with_the_api_key(fake):
    settings = msgspec.convert(
        {"api_key": fake.api_keys[0], "endpoint": fake.url, "fields": {"cf_plan": "gold"}},
        RDStationSettings,
    )
    flow = CredentialFlow(TAG, settings)
    try:
        for event in events():
            (outbound,) = TAG.build(event, settings, CTX)
            assert [v.outcome for v in await flow.send([outbound])] == ["done"]
    finally:
        await flow.aclose()
    assert fake.errors == []
    assert fake.requests_to("token") == []
    assert {e["via"] for e in fake.events} == {"api_key"}
    assert [e["payload"]["conversion_identifier"] for e in fake.events] == [
        e["event_name"] for e in events()
    ]


async def test_an_expired_token_is_refreshed_once_and_the_event_resent(fake):
    settings = oauth_settings(fake)
    flow = CredentialFlow(TAG, settings)
    try:
        (first,) = TAG.build(events()[5], settings, CTX)
        await flow.send([first])
        fake.expire_tokens()  # a day later
        (second,) = TAG.build(events()[6], settings, CTX)
        assert [v.outcome for v in await flow.send([second])] == ["done"]
    finally:
        await flow.aclose()
    refused = [r for r in fake.requests_to("events") if r.headers["authorization"].endswith("-1")]
    assert len(refused) == 2  # the first event, then the refused attempt
    assert len(fake.requests_to("token")) == 2
    assert [e["event_type"] for e in fake.events] == ["CONVERSION", "CONVERSION"]


async def test_the_per_contact_daily_limit_dead_letters_instead_of_retrying(fake):
    fake.lead_limit = 2
    settings = oauth_settings(fake)
    flow = CredentialFlow(TAG, settings)
    try:
        outcomes = []
        for _ in range(3):
            (outbound,) = TAG.build(events()[6], settings, CTX)
            outcomes.append(await flow.send([outbound]))
    finally:
        await flow.aclose()
    assert [v[0].outcome for v in outcomes] == ["done", "done", "dead"]
    assert "per-contact limit" in outcomes[2][0].reason
    assert "lead_limiter" in outcomes[2][0].reason


async def test_a_revoked_refresh_token_is_reported_without_the_secret(fake):
    settings = oauth_settings(fake, refresh_token="revoked")
    flow = CredentialFlow(TAG, settings)
    try:
        with pytest.raises(ValueError, match="INVALID_REFRESH_TOKEN") as caught:
            await flow.token()
    finally:
        await flow.aclose()
    assert fake.client_secret not in str(caught.value)


async def test_deprecated_types_would_be_refused_so_the_tag_never_builds_them(fake):
    # What RD answers for ORDER_PLACED after 2025-12-31, sent by hand: the tag cannot be
    # configured to send it (see the settings tests).
    settings = oauth_settings(fake)
    (outbound,) = TAG.build(events()[4], settings, CTX)
    body = msgspec.json.decode(outbound.body)
    body["event_type"] = "ORDER_PLACED"
    forged = Outbound(
        method="POST",
        url=outbound.url.replace("ECOMMERCE_ORDER_PAID", "ORDER_PLACED"),
        headers=outbound.headers,
        body=msgspec.json.encode(body),
    )
    flow = CredentialFlow(TAG, settings)
    try:
        (verdict,) = await flow.send([forged])
    finally:
        await flow.aclose()
    assert verdict.outcome == "dead" and "INVALID_OPTION" in verdict.reason
    fake.errors.clear()


# -- sgtm serve, end to end ---------------------------------------------------------------------

LEAD = "en=generate_lead&ep.user_data.email=ana%40example.com&ep.plan=gold"
SIGN_UP = "en=sign_up&ep.user_data.email=bia%40example.com"
PURCHASE = (
    "en=purchase&ep.user_data.email=ana%40example.com&ep.transaction_id=T-1&cu=BRL"
    "&epn.value=99.8&pr1=idSKU-1~nmCamiseta~pr49.9~qt2"
)
CHECKOUT = (
    "en=begin_checkout&ep.user_data.email=ana%40example.com&cu=BRL&epn.value=99.8"
    "&pr1=idSKU-1~nmCamiseta~pr49.9~qt2"
)
COMMON = "dl=https%3A%2F%2Fwww.shop.example%2Fcheckout"


def test_api_key_end_to_end_with_a_throttled_minute(tmp_path, fake):
    # The account's minute quota is spent once: the tag waits for the window, then delivers.
    fake.script["conversions"] = [
        Reply(
            429,
            {
                "error": "'account_limiter' rate limit exceeded for 60 second(s) period",
                "max": 120,
                "usage": 121,
                "remaining_time": 200,
            },
        )
    ]
    container = f"""
    version: 1
    clients: [{{name: ga4, type: ga4}}]
    triggers:
      conversions: {{var: event_name, in: [generate_lead, sign_up, purchase]}}
    tags:
      - name: rd
        type: rdstation
        triggers: [conversions]
        settings:
          api_key: "${{RD_API_KEY}}"
          endpoint: {fake.url}
          fields: {{cf_plan: "{{{{event.plan}}}}"}}
          tags: [Site]
    """
    with serve(tmp_path, container, {"RD_API_KEY": fake.api_keys[0]}) as server:
        ga4_post(server, [LEAD, SIGN_UP, PURCHASE], COMMON)
        wait_until(lambda: len(fake.events) == 3)
        logs = server.logs()
    assert fake.errors == []
    assert len(fake.requests_to("conversions")) == 4  # one 429, then each event once
    by_id = {e["payload"]["conversion_identifier"]: e["payload"] for e in fake.events}
    assert by_id["generate_lead"]["cf_plan"] == "gold"
    assert by_id["purchase"]["email"] == "ana@example.com"
    assert by_id["sign_up"]["tags"] == ["site"]
    assert fake.api_keys[0] not in logs  # the key never reaches the logs
    assert dead_letters(tmp_path) == []


def test_oauth_end_to_end_refreshes_once_and_dead_letters_the_daily_limit(tmp_path, fake):
    fake.lead_limit = 3
    container = f"""
    version: 1
    clients: [{{name: ga4, type: ga4}}]
    triggers:
      all: {{all: []}}
    tags:
      - name: rd
        type: rdstation
        triggers: [all]
        settings:
          client_id: {fake.client_id}
          client_secret: "${{RD_CLIENT_SECRET}}"
          refresh_token: "${{RD_REFRESH_TOKEN}}"
          endpoint: {fake.url}
          legal_bases: {{type: consent, consent_type: ad_storage}}
    """
    env = {"RD_CLIENT_SECRET": fake.client_secret, "RD_REFRESH_TOKEN": fake.refresh_token}
    with serve(tmp_path, container, env) as server:
        ga4_post(server, [CHECKOUT, PURCHASE], COMMON + "&gcs=G111")
        wait_until(lambda: len(fake.events) == 2)
        fake.expire_tokens()
        ga4_post(server, [LEAD, LEAD.replace("gold", "silver")], COMMON)
        wait_until(lambda: fake.per_lead.get("oauth/ana@example.com") == 4)
        logs = server.logs()
    assert fake.errors == []
    assert [e["event_type"] for e in fake.events] == [
        "ECOMMERCE_CHECKOUT_STARTED",
        "ECOMMERCE_ORDER_PAID",
        "CONVERSION",
    ]
    assert fake.events[1]["payload"]["legal_bases"][0]["status"] == "granted"
    assert len(fake.requests_to("token")) == 2  # the first token, one refresh
    (letter,) = dead_letters(tmp_path)  # ana's 4th event of the day
    assert letter.tag == "rd" and "per-contact limit" in letter.reason
    assert letter.attempts == 1  # not retried hot
    assert fake.client_secret not in logs and fake.refresh_token not in logs
