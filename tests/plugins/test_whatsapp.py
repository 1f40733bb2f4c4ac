"""`whatsapp` against a fake WhatsApp Cloud API on loopback that checks template messages as Meta
documents them (recipient digits, template name and language, parameter counts and text rules):
the message one event becomes, E.164 recipients, parameter folding, error codes classified. The
seed end-to-end test (test_s2s_seed.py) runs it on `sgtm serve`."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from sgtm_plugins.whatsapp import WhatsAppSettings, WhatsAppTag

from sgtm.plugin import BuildContext, ContainerInfo, InvalidEvent, Outbound, Verdict
from tests.plugins.crm_fakes import NOW, Reply
from tests.plugins.s2s_fakes import (
    PHONE_NUMBER_ID,
    WHATSAPP_TOKEN,
    FakeWhatsApp,
    deliver,
    whatsapp_error,
)

TAG = WhatsAppTag()
LEAD = {
    "event_name": "generate_lead",
    "event_id": "L-4711",
    "user_data": {
        "email_address": "ana@example.com",
        "phone_number": "(11) 91234-5678",
        "address": {"first_name": "Ana"},
    },
    "lead_source": "meta_ads",
}


SETTINGS = {
    "phone_number_id": PHONE_NUMBER_ID,
    "template": "novo_lead",
    "language": "pt_BR",
    "default_country_code": "55",
    "body_parameters": ["Ana", "ana@example.com", "meta_ads"],
}


def settings(url: str = "https://graph.facebook.com", **values: Any) -> WhatsAppSettings:
    base = {**SETTINGS, "access_token": WHATSAPP_TOKEN, "endpoint": url}
    return msgspec.convert({**base, **values}, WhatsAppSettings)


def build(event: dict[str, Any], s: WhatsAppSettings) -> tuple[Outbound, list[str]]:
    ctx = BuildContext(tag_name="wa", container=ContainerInfo(name="shop"), now=NOW)
    (outbound,) = TAG.build(event, s, ctx)
    return outbound, ctx.warnings


@pytest.fixture(scope="module")
def whatsapp_server():
    with FakeWhatsApp() as fake:
        yield fake


@pytest.fixture
def whatsapp(whatsapp_server):
    whatsapp_server.reset()
    return whatsapp_server


async def send(url: str, **values: Any) -> Verdict:
    settings = {**SETTINGS, "access_token": "${WHATSAPP_TOKEN}", "endpoint": url, **values}
    token = settings.pop("token", WHATSAPP_TOKEN)
    (verdict,) = await deliver("whatsapp", settings, [LEAD], {"WHATSAPP_TOKEN": token})
    return verdict


def test_an_event_becomes_a_template_message():
    outbound, warnings = build(LEAD, settings())
    assert outbound.url == f"https://graph.facebook.com/v21.0/{PHONE_NUMBER_ID}/messages"
    assert outbound.headers["Authorization"] == f"Bearer {WHATSAPP_TOKEN}"
    assert outbound.destination == PHONE_NUMBER_ID
    assert msgspec.json.decode(outbound.body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "5511912345678",
        "type": "template",
        "template": {
            "name": "novo_lead",
            "language": {"code": "pt_BR", "policy": "deterministic"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ana"},
                        {"type": "text", "text": "ana@example.com"},
                        {"type": "text", "text": "meta_ads"},
                    ],
                }
            ],
        },
    }
    assert warnings == []


@pytest.mark.parametrize(
    ("phone", "country", "to"),
    [
        ("(11) 91234-5678", "55", "5511912345678"),
        ("+55 11 91234-5678", None, "5511912345678"),
        ("0055 11 91234-5678", None, "5511912345678"),
        ("011 91234-5678", "55", "5511912345678"),  # the trunk prefix is dropped
        ("+1 (650) 555-5555", "55", "16505555555"),  # an international number keeps its code
        (5511912345678, None, "5511912345678"),
        (["+44 7700 900123"], None, "447700900123"),
    ],
)
def test_recipients_are_normalized_to_e164_digits(phone, country, to):
    event = {**LEAD, "user_data": {"phone_number": phone}}
    outbound, _ = build(event, settings(default_country_code=country))
    assert msgspec.json.decode(outbound.body)["to"] == to


@pytest.mark.parametrize("phone", [None, "", "1234", "+1234567890123456", "call me", {"n": 1}])
def test_an_event_without_a_usable_recipient_is_invalid(phone):
    event = {**LEAD, "user_data": {"phone_number": phone}}
    with pytest.raises(InvalidEvent, match=r"no recipient at user_data.phone_number"):
        build(event, settings())


def test_a_fixed_recipient_such_as_the_sales_number():
    outbound, _ = build({"event_name": "generate_lead"}, settings(to="+55 11 99999-0000"))
    assert msgspec.json.decode(outbound.body)["to"] == "5511999990000"


def test_named_and_header_parameters():
    s = settings(
        template="hot_lead",
        language="en_US",
        header_parameters=["New lead"],
        body_parameters={"name": "Ana", "source": 7},
    )
    components = msgspec.json.decode(build(LEAD, s)[0].body)["template"]["components"]
    assert components == [
        {"type": "header", "parameters": [{"type": "text", "text": "New lead"}]},
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Ana", "parameter_name": "name"},
                {"type": "text", "text": "7", "parameter_name": "source"},
            ],
        },
    ]


def test_new_lines_tabs_and_space_runs_are_folded_with_a_warning():
    s = settings(body_parameters=["Ana\nMaria", "a\t\tb", "x      y"])
    outbound, warnings = build(LEAD, s)
    texts = [
        p["text"]
        for p in msgspec.json.decode(outbound.body)["template"]["components"][0]["parameters"]
    ]
    assert texts == ["Ana Maria", "a b", "x y"]
    assert len(warnings) == 3


@pytest.mark.parametrize("value", [None, "", "   ", [], {}])
def test_an_empty_parameter_makes_the_event_invalid(value):
    with pytest.raises(InvalidEvent, match="body parameter 2 is empty"):
        build(LEAD, settings(body_parameters=["Ana", value, "x"]))


def test_an_event_is_sent_once_per_recipient_and_template():
    key, ttl = TAG.dedupe_key(LEAD, settings())  # type: ignore[misc]
    assert ttl == 86400 and "5511912345678" not in key and len(key) == 64
    assert TAG.dedupe_key({**LEAD, "event_id": "L-4712"}, settings())[0] != key  # type: ignore[index]
    assert TAG.dedupe_key({k: v for k, v in LEAD.items() if k != "event_id"}, settings()) is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"phone_number_id": "+5511999990000"}, "phone_number_id: the number's Graph id"),
        ({"template": "Novo Lead"}, "template: an approved template's name"),
        ({"language": "portuguese"}, "language: a template language code"),
        ({"api_version": "21"}, "api_version: a Graph API version"),
        ({"default_country_code": "+55"}, "default_country_code: 1 to 3 digits"),
        ({"access_token": " "}, "access_token: empty"),
        ({"body_parameters": {"Bad Name": "x"}}, "is not a parameter name"),
    ],
)
def test_settings_errors(values, message):
    with pytest.raises(msgspec.ValidationError, match=message):
        settings(**values)


# -- at the fake Cloud API -----------------------------------------------------------------------


async def test_the_fake_accepts_the_message_and_answers_a_wamid(whatsapp):
    verdict = await send(whatsapp.url)
    assert whatsapp.errors == []
    assert verdict.outcome == "done"
    (message,) = whatsapp.messages
    assert message["to"] == "5511912345678"


async def test_a_template_the_account_does_not_have_is_dead(whatsapp):
    verdict = await send(whatsapp.url, template="missing_template")
    assert verdict.outcome == "dead"
    assert verdict.reason.startswith("404 132001 (#132001) Template name does not exist")


async def test_a_parameter_count_mismatch_is_dead(whatsapp):
    verdict = await send(whatsapp.url, body_parameters=["Ana"])
    assert (verdict.outcome, verdict.reason[:10]) == ("dead", "400 132000")


async def test_a_bad_token_is_dead(whatsapp):
    verdict = await send(whatsapp.url, token="expired")
    assert (verdict.outcome, verdict.reason[:7]) == ("dead", "401 190")


@pytest.mark.parametrize(
    ("reply", "outcome", "wait"),
    [
        (whatsapp_error(429, 130429, "Rate limit hit"), "retry", None),
        (whatsapp_error(429, 131056, "Pair rate limit hit"), "retry", 6.0),
        (whatsapp_error(500, 131000, "Something went wrong"), "retry", None),
        (whatsapp_error(503, 2, "Service temporarily unavailable"), "retry", None),
        (whatsapp_error(400, 4, "Application request limit reached"), "retry", 60.0),
        (whatsapp_error(400, 131047, "Re-engagement message"), "dead", None),
        (whatsapp_error(400, 131026, "Message undeliverable"), "dead", None),
        (whatsapp_error(400, 131049, "Not delivered: healthy ecosystem engagement"), "dead", None),
        (whatsapp_error(403, 200, "Permissions error"), "dead", None),
        (whatsapp_error(400, 368, "Temporarily blocked for policies violations"), "dead", None),
        (whatsapp_error(502, 999999, "Unknown future code"), "retry", None),
        (whatsapp_error(400, 999999, "Unknown future code"), "dead", None),
        (Reply(504, None), "retry", None),
        (Reply(200, {"messages": [{"id": "wamid.X"}]}), "done", None),
    ],
)  # fmt: skip
async def test_error_codes_are_classified(whatsapp, reply, outcome, wait):
    whatsapp.script["messages"] = [reply]
    verdict = await send(whatsapp.url)
    assert (verdict.outcome, verdict.retry_after) == (outcome, wait)
