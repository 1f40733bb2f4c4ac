"""`hubspot` against a fake HubSpot on loopback that checks the CRM v3 batch upsert schema:
what one event becomes, batches of up to 100, per-input results of a 207, whole-request errors
and throttling classified, and the lane's rate following the portal's plan. The seed end-to-end
test (test_s2s_seed.py) runs it on `sgtm serve`."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from sgtm_plugins.hubspot import HubSpotSettings, HubSpotTag

from sgtm.delivery.policy import lane_policy
from sgtm.plugin import BuildContext, ContainerInfo, InvalidEvent, Outbound, RateLimit, Verdict
from tests.plugins.crm_fakes import NOW, Reply, emulate
from tests.plugins.s2s_fakes import HUBSPOT_TOKEN, FakeHubSpot, deliver, hubspot_error

TAG = HubSpotTag()


def settings(url: str = "https://api.hubapi.com", **values: Any) -> HubSpotSettings:
    return msgspec.convert(
        {"access_token": HUBSPOT_TOKEN, "endpoint": url, **values}, HubSpotSettings
    )


def build(event: dict[str, Any], s: HubSpotSettings | None = None) -> tuple[Outbound, list[str]]:
    ctx = BuildContext(tag_name="hubspot", container=ContainerInfo(name="shop"), now=NOW)
    (outbound,) = TAG.build(event, s or settings(), ctx)
    return outbound, ctx.warnings


def lead(email: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_name": "generate_lead",
        "user_data": {
            "email_address": email,
            "phone_number": "+55 11 91234-5678",
            "address": {"first_name": "Ana", "last_name": "Silva", "city": "Recife"},
        },
        **extra,
    }


@pytest.fixture(scope="module")
def hubspot_server():
    with FakeHubSpot() as fake:
        yield fake


@pytest.fixture
def hubspot(hubspot_server):
    hubspot_server.reset()
    return hubspot_server


async def send(
    url: str, events: list[dict[str, Any]], token: str = HUBSPOT_TOKEN, **values: Any
) -> list[Verdict]:
    settings = {"access_token": "${HUBSPOT_TOKEN}", "endpoint": url, **values}
    return await deliver("hubspot", settings, events, {"HUBSPOT_TOKEN": token})


# -- building ------------------------------------------------------------------------------------


def test_an_event_becomes_one_upsert_input_by_email():
    s = settings(
        properties={"lead_source": "{{event.source}}", "company": "ACME", "city": None},
        lifecycle_stage="lead",
    )
    outbound, warnings = build(lead("  Ana@Example.COM ", event_id="L-1", value=9.5), s)
    assert outbound.method == "POST"
    assert outbound.url == "https://api.hubapi.com/crm/v3/objects/contacts/batch/upsert"
    assert outbound.headers == {
        "Authorization": f"Bearer {HUBSPOT_TOKEN}",
        "Content-Type": "application/json",
    }
    assert msgspec.json.decode(outbound.body) == {
        "inputs": [
            {
                "id": "ana@example.com",
                "idProperty": "email",
                "properties": {
                    "email": "ana@example.com",
                    "firstname": "Ana",
                    "lastname": "Silva",
                    "phone": "+55 11 91234-5678",
                    "lead_source": "{{event.source}}",  # settings arrive rendered; constant here
                    "company": "ACME",
                    "lifecyclestage": "lead",
                },
                "objectWriteTraceId": "L-1",
            }
        ]
    }
    assert warnings == []


def test_values_become_text_and_what_cannot_be_one_value_is_left_out_with_a_warning():
    s = settings(properties={"plan": 3, "jobtitle": True, "website": ["a", "b"], "zip": 1.0})
    outbound, warnings = build(lead("ana@example.com"), s)
    properties = msgspec.json.decode(outbound.body)["inputs"][0]["properties"]
    assert (properties["plan"], properties["jobtitle"], properties["zip"]) == ("3", "true", "1")
    assert "website" not in properties
    assert warnings == ["property 'website' not sent: a list or object is not one HubSpot value"]


@pytest.mark.parametrize(
    ("user_data", "message"),
    [
        ({}, "no contact e-mail at user_data.email_address (none)"),
        ({"email_address": "not-an-address"}, "(not an e-mail address)"),
        ({"email_address": ["a@x.com"]}, "(not an e-mail address)"),
        ({"email_address": "a@b@c.com"}, "(not an e-mail address)"),
    ],
)
def test_an_event_without_a_usable_email_is_invalid(user_data, message):
    with pytest.raises(InvalidEvent, match=message.replace("(", r"\(").replace(")", r"\)")):
        build({"event_name": "generate_lead", "user_data": user_data})


def test_the_email_can_come_from_another_field():
    outbound, _ = build({"crm": {"mail": "bia@example.com"}}, settings(email_field="crm.mail"))
    assert msgspec.json.decode(outbound.body)["inputs"][0]["id"] == "bia@example.com"


def test_two_events_for_one_address_in_a_batch_become_one_input():
    first, _ = build(lead("ana@example.com", event_id="1"), settings(properties={"plan": "free"}))
    second, _ = build(lead("ANA@example.com", event_id="2"), settings(properties={"plan": "pro"}))
    other, _ = build(lead("bia@example.com", event_id="3"))
    merged = msgspec.json.decode(TAG.merge([first, second, other]).body)["inputs"]
    assert [(i["id"], i["objectWriteTraceId"]) for i in merged] == [
        ("ana@example.com", "1"),
        ("bia@example.com", "3"),
    ]
    assert merged[0]["properties"]["plan"] == "pro"  # the later event wins


def test_the_lane_rate_follows_the_portals_plan():
    assert lane_policy(TAG, None, 3600, settings()).rate_limit == RateLimit(requests=100, per=10)
    pro = settings(portal_rate_limit=190)
    assert lane_policy(TAG, None, 3600, pro).rate_limit == RateLimit(requests=190, per=10)
    assert TAG.batching is not None and TAG.batching.max_items == 100


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"access_token": ""}, "access_token: empty"),
        ({"properties": {"Email": "x"}}, "is not a contact property's internal name"),
        ({"properties": {"lifecyclestage": "lead"}}, "have settings of their own"),
        ({"lifecycle_stage": "hot"}, "lifecycle_stage: 'hot' is not one of"),
        ({"portal_rate_limit": 500}, "Invalid enum value 500"),
        ({"endpoint": "ftp://x"}, r"endpoint: expected an http\(s\) URL"),
    ],
)
def test_settings_errors(values, message):
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert({"access_token": HUBSPOT_TOKEN, **values}, HubSpotSettings)


def test_a_custom_lifecycle_stage_id_is_accepted():
    assert settings(lifecycle_stage="1234567").lifecycle_stage == "1234567"


# -- at the fake HubSpot -------------------------------------------------------------------------


async def test_a_batch_upserts_every_contact(hubspot):
    hubspot.contacts["bia@example.com"] = {"hs_object_id": "1", "email": "bia@example.com"}
    events = [lead(f"user{i}@example.com", event_id=str(i)) for i in range(99)]
    events.append(lead("bia@example.com", event_id="x"))
    verdicts = await send(hubspot.url, events, lifecycle_stage="lead")
    assert hubspot.errors == []
    assert [v.outcome for v in verdicts] == ["done"] * 100
    assert hubspot.batches == [100]
    assert hubspot.contacts["bia@example.com"]["firstname"] == "Ana"  # updated, not duplicated
    assert hubspot.contacts["user7@example.com"]["lifecyclestage"] == "lead"


async def test_an_address_hubspot_refuses_fails_alone_in_a_207(hubspot):
    events = [lead("ana@example.com"), lead("bia@example.invalid"), lead("caio@example.com")]
    verdicts = await send(hubspot.url, events)
    assert hubspot.errors == []
    assert [v.outcome for v in verdicts] == ["done", "dead", "done"]
    assert verdicts[1].reason.startswith("VALIDATION_ERROR: Property values were not valid")
    assert "INVALID_EMAIL" in verdicts[1].reason
    assert set(hubspot.contacts) == {"ana@example.com", "caio@example.com"}


async def test_a_property_that_does_not_exist_fails_every_input(hubspot):
    events = [lead("ana@example.com"), lead("bia@example.com")]
    verdicts = await send(hubspot.url, events, properties={"favourite_color": "blue"})
    assert [v.outcome for v in verdicts] == ["dead", "dead"]
    assert "PROPERTY_DOESNT_EXIST" in verdicts[0].reason
    assert hubspot.contacts == {}


async def test_a_wrong_token_is_dead_not_retried(hubspot):
    (verdict,) = await send(hubspot.url, [lead("ana@example.com")], token="pat-na1-revoked")
    assert (verdict.outcome, verdict.reason[:26]) == ("dead", "401 INVALID_AUTHENTICATION")


@pytest.mark.parametrize(
    ("reply", "outcome", "wait"),
    [
        (
            hubspot_error(
                429, "RATE_LIMITS", "You have reached your ten_secondly_rolling limit.",
                policyName="TEN_SECONDLY_ROLLING",
            ),
            "retry",
            10.0,
        ),
        (
            hubspot_error(429, "RATE_LIMITS", "Daily limit reached.", policyName="DAILY"),
            "retry",
            3600.0,
        ),
        (hubspot_error(423, "LOCKED", "The record is locked"), "retry", 2.0),
        (hubspot_error(477, "MIGRATION_IN_PROGRESS", "Portal is being migrated"), "retry", None),
        (Reply(502, None), "retry", None),
        (Reply(524, None), "retry", None),
        (hubspot_error(403, "MISSING_SCOPES", "The app lacks required scopes"), "dead", None),
        (hubspot_error(409, "CONFLICT", "Contact already exists. Existing ID: 1001"), "dead", None),
    ],
)  # fmt: skip
async def test_whole_request_answers_are_classified(hubspot, reply, outcome, wait):
    hubspot.script["upsert"] = [reply]
    (verdict,) = await send(hubspot.url, [lead("ana@example.com")])
    assert (verdict.outcome, verdict.retry_after) == (outcome, wait)


def test_a_400_or_409_naming_one_input_kills_it_and_retries_the_others():
    items = [build(lead(e))[0] for e in ("ana@example.com", "bia@example.com")]
    body = msgspec.json.encode(
        {
            "status": "error",
            "category": "CONFLICT",
            "message": "Contact already exists",
            "context": {"ids": ["BIA@example.com"]},
        }
    )
    verdicts = TAG.classify_batch(409, {}, body, items)
    assert [v.outcome for v in verdicts] == ["retry", "dead"]  # type: ignore[union-attr]


def test_the_interval_header_sets_the_wait():
    body = b'{"status": "error", "policyName": "TEN_SECONDLY_ROLLING"}'
    headers = {"x-hubspot-ratelimit-interval-milliseconds": "10000"}
    verdict = TAG.classify(429, headers, body)
    assert isinstance(verdict, Verdict) and verdict.retry_after == 10.0


def test_emulate_shows_the_request_as_sent_alone():
    container = """
    version: 1
    triggers: {leads: {event_name: generate_lead}}
    tags:
      - name: crm
        type: hubspot
        triggers: [leads]
        settings:
          access_token: "${HUBSPOT_TOKEN}"
          lifecycle_stage: lead
          properties: {lead_source: "{{event.lead_source}}"}
    """
    (tags,) = emulate(
        container,
        [lead("ana@example.com", lead_source="meta_ads")],
        env={"HUBSPOT_TOKEN": HUBSPOT_TOKEN},
    )
    (tag,) = tags
    assert tag["fired"] is True
    (request,) = tag["requests"]
    assert request["headers"]["Authorization"] == "Bearer ${HUBSPOT_TOKEN}"
    assert request["body"]["inputs"][0]["properties"]["lead_source"] == "meta_ads"
