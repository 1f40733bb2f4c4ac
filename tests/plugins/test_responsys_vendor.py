"""`responsys` against a fake Responsys on loopback (password login + list merge + custom events)
that checks every request against Oracle's documented schema: contract, then `sgtm serve`."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import pytest
from sgtm_plugins.responsys import ResponsysSettings, ResponsysTag

from sgtm.plugin import BuildContext, ContainerInfo, Outbound
from tests.plugins.crm_fakes import (
    NOW,
    CredentialFlow,
    FakeResponsys,
    dead_letters,
    ga4_post,
    rs_error,
    serve,
    wait_until,
)

TAG = ResponsysTag()
CTX = BuildContext(tag_name="rs", container=ContainerInfo(name="shop"), now=NOW)
NAMES = [
    "page_view",
    "view_item",
    "add_to_cart",
    "begin_checkout",
    "purchase",
    "generate_lead",
    "sign_up",
]


@pytest.fixture
def fake():
    with FakeResponsys() as vendor:
        yield vendor


def rs_settings(fake: FakeResponsys, **values: Any) -> ResponsysSettings:
    base = {
        "login_url": fake.url,
        "username": fake.username,
        "password": fake.password,
        "list_name": "CONTACTS_LIST",
    }
    return msgspec.convert({**base, **values}, ResponsysSettings)


def people(*emails: str, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"event_name": NAMES[i % 7], "user_data": {"email_address": e}, **extra}
        for i, e in enumerate(emails)
    ]


def build_all(settings: ResponsysSettings, events: list[dict[str, Any]]) -> list[Outbound]:
    return [o for event in events for o in TAG.build(event, settings, CTX)]


async def send(settings: ResponsysSettings, outbounds: list[Outbound]) -> list[Any]:
    flow = CredentialFlow(TAG, settings)
    try:
        return await flow.send(outbounds)
    finally:
        await flow.aclose()


async def test_every_event_type_merges_in_one_call_and_nobody_is_opted_in(fake):
    settings = rs_settings(fake)
    emails = [f"p{i}@example.com" for i in range(7)]
    verdicts = await send(settings, build_all(settings, people(*emails)))
    assert fake.errors == []
    assert [v.outcome for v in verdicts] == ["done"] * 7
    assert fake.batches == [7]
    assert len(fake.requests_to("token")) == 1
    assert [m["EMAIL_ADDRESS_"] for m in fake.members["CONTACTS_LIST"]] == emails
    assert set(fake.permissions.values()) == {"OPTOUT"}


async def test_a_merge_record_that_fails_dead_letters_alone(fake):
    settings = rs_settings(fake)
    await send(settings, build_all(settings, people("ana@example.com", "bia@example.com")))
    by_hash = rs_settings(fake, match_column="EMAIL_SHA256_HASH_", fields={"LOYALTY": "gold"})
    known = hashlib.sha256(b"bia@example.com").hexdigest()
    events = [{"user_data": {"sha256_email_address": h}} for h in (known, "f" * 64)]
    verdicts = await send(by_hash, build_all(by_hash, events))
    assert fake.errors == []
    assert [v.outcome for v in verdicts] == ["done", "dead"]
    assert verdicts[1].reason == "MERGEFAILED: Record 2 = RECORD_NOT_FOUND"
    assert fake.members["CONTACTS_LIST"][1]["LOYALTY"] == "gold"


async def test_only_unknown_recipients_of_a_trigger_dead_letter(fake):
    merge = rs_settings(fake)
    await send(merge, build_all(merge, people("ana@example.com")))
    trigger = rs_settings(fake, mode="event", event_name="Purchase_Made")
    orders = people("ana@example.com", "zed@example.com", transaction_id="Pedido-ção", value=10)
    verdicts = await send(trigger, build_all(trigger, orders))
    assert fake.errors == []  # non-ASCII went out escaped, as Responsys asks
    assert [(v.outcome, v.reason) for v in verdicts] == [
        ("done", ""),
        ("dead", "RECIPIENT_NOT_FOUND"),
    ]
    (triggered,) = fake.triggered
    assert triggered["data"][0] == {"name": "ORDER_ID", "value": "Pedido-ção"}


async def test_mobile_numbers_are_merged_in_e164_with_their_country_and_found_again(fake):
    settings = rs_settings(
        fake, match_column="MOBILE_NUMBER_", phone_country_code="55", mobile_country="BR"
    )
    phones = ["(81) 99999-0000", "+351 912 345 678", "081 99999-0000"]  # the last: the first again
    events = [{"event_name": "sign_up", "user_data": {"phone_number": p}} for p in phones]
    outbounds = build_all(settings, events)
    # a number with MOBILE_COUNTRY_ and one without have other columns: other lanes, as the
    # engine sends them
    lanes: dict[str, list[Outbound]] = {}
    for outbound in outbounds:
        lanes.setdefault(outbound.destination, []).append(outbound)
    assert len(lanes) == 2
    verdicts = [v for lane in lanes.values() for v in await send(settings, lane)]
    assert fake.errors == [] and [v.outcome for v in verdicts] == ["done"] * 3
    members = [(m["MOBILE_NUMBER_"], m["MOBILE_COUNTRY_"]) for m in fake.members["CONTACTS_LIST"]]
    assert members == [("5581999990000", "BR"), ("351912345678", "PT")]  # one Brazilian member
    # a custom event finds the recipient by the same number, however the site wrote it
    trigger = rs_settings(
        fake, mode="event", event_name="Purchase_Made", match_column="MOBILE_NUMBER_",
        phone_country_code="55",
    )  # fmt: skip
    order = {"event_name": "purchase", "user_data": {"phone_number": "+55 (81) 99999-0000"}}
    verdicts = await send(trigger, build_all(trigger, [order]))
    assert fake.errors == [] and [v.outcome for v in verdicts] == ["done"]
    # without the country code a national number is no E.164 number: Responsys refuses it
    national = rs_settings(fake, match_column="MOBILE_NUMBER_")
    wrong = {"event_name": "sign_up", "user_data": {"phone_number": "(81) 99999-0000"}}
    (verdict,) = await send(national, build_all(national, [wrong]))
    assert verdict.outcome == "dead" and "INVALID_MOBILE_NUMBER" in verdict.reason


async def test_an_invalid_token_logs_in_again_once(fake):
    settings = rs_settings(fake)
    flow = CredentialFlow(TAG, settings)
    try:
        await flow.send(build_all(settings, people("ana@example.com")))
        fake.expire_tokens()
        verdicts = await flow.send(build_all(settings, people("bia@example.com")))
    finally:
        await flow.aclose()
    assert [v.outcome for v in verdicts] == ["done"]
    assert len(fake.requests_to("token")) == 2
    assert len(fake.requests_to("merge")) == 3


async def test_throttling_with_400_is_a_retry_not_a_dead_letter(fake):
    fake.script["merge"] = [
        rs_error(400, "API_LIMIT_EXCEEDED", "Request limit exceeded. Please try again in a minute")
    ]
    settings = rs_settings(fake)
    verdicts = await send(settings, build_all(settings, people("a@x.co", "b@x.co")))
    assert [(v.outcome, v.retry_after) for v in verdicts] == [("retry", 60.0)] * 2


async def test_a_wrong_password_is_a_clear_login_error(fake):
    flow = CredentialFlow(TAG, rs_settings(fake, password="guess-1234"))
    try:
        with pytest.raises(ValueError, match="INVALID_USER_NAME_PASSWORD") as caught:
            await flow.token()
    finally:
        await flow.aclose()
    assert "guess-1234" not in str(caught.value)


# -- sgtm serve, end to end ---------------------------------------------------------------------

SIGN_UP = "en=sign_up&ep.user_data.email={email}&uid={uid}"
PURCHASE = "en=purchase&ep.user_data.email={email}&ep.transaction_id={order}&cu=BRL&epn.value=50"


def test_end_to_end_merge_then_trigger_with_a_relogin(tmp_path, fake):
    container = f"""
    version: 1
    clients: [{{name: ga4, type: ga4}}]
    triggers:
      sign_up: {{event_name: sign_up}}
      purchase: {{event_name: purchase}}
    tags:
      - name: rs_merge
        type: responsys
        triggers: [sign_up]
        delivery: {{linger: 0.2s}}
        settings: &login
          login_url: {fake.url}
          username: {fake.username}
          password: "${{RESPONSYS_PASSWORD}}"
          list_name: CONTACTS_LIST
          match_column: EMAIL_ADDRESS_
      - name: rs_purchase
        type: responsys
        triggers: [purchase]
        delivery: {{linger: 0.2s}}
        settings:
          <<: *login
          mode: event
          event_name: Purchase_Made
    """
    with serve(tmp_path, container, {"RESPONSYS_PASSWORD": fake.password}) as server:
        signups = [SIGN_UP.format(email=f"{n}%40example.com", uid=n) for n in ("ana", "bia")]
        ga4_post(server, signups)
        wait_until(lambda: len(fake.members["CONTACTS_LIST"]) == 2)
        fake.expire_tokens()
        orders = [PURCHASE.format(email=f"{n}%40example.com", order=n) for n in ("ana", "zed")]
        ga4_post(server, [*orders, SIGN_UP.format(email="caio%40example.com", uid="caio")])
        wait_until(lambda: len(fake.members["CONTACTS_LIST"]) == 3 and fake.triggered != [])
        logs = server.logs()
    assert fake.errors == []
    assert fake.batches[0] == 2  # both sign-ups in one merge
    assert [m["CUSTOMER_ID_"] for m in fake.members["CONTACTS_LIST"]] == ["ana", "bia", "caio"]
    # One login per tag, and rs_merge's refused token replaced once.
    assert len(fake.requests_to("token")) == 3
    assert [t["data"][0]["value"] for t in fake.triggered] == ["ana"]
    (letter,) = dead_letters(tmp_path)
    assert letter.tag == "rs_purchase" and letter.reason == "RECIPIENT_NOT_FOUND"
    assert b"zed@example.com" in letter.payload and b"ana@example.com" not in letter.payload
    assert fake.password not in logs
