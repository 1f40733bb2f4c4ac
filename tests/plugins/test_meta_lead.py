"""The `meta_lead` tag and the core's follow-up events: a lead's answers read from a fake Graph API
become a `lead_details` event that the container's other tags act on; an answer whose events
cannot be stored is read again; on `sgtm serve`, Meta's notification ends as a HubSpot contact
and a WhatsApp alert, with the lead read once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec
import pytest
from sgtm_plugins.meta_leadgen.lead import MetaLeadSettings, MetaLeadTag, lead_event

from sgtm.delivery import DeliveryUnavailable, Submission
from sgtm.delivery.sqlite_store import SqliteStore
from sgtm.plugin import Batching, BuildContext, ContainerInfo, InvalidEvent, Tag
from tests.delivery.helpers import engine, eventually, route
from tests.plugins.crm_fakes import FAST_DELIVERY, NOW, serve, wait_until
from tests.plugins.s2s_fakes import (
    HUBSPOT_TOKEN,
    PAGE_TOKEN,
    PHONE_NUMBER_ID,
    WHATSAPP_TOKEN,
    FakeGraphLeads,
    FakeHubSpot,
    FakeWhatsApp,
)
from tests.test_docs import blocks

TAG = MetaLeadTag()
# The lead as Graph answers it (Meta's "Retrieving Leads" example, with a phone and names).
LEAD = {
    "created_time": "2015-02-28T08:49:14+0000",
    "id": "123123123123",
    "ad_id": "12312312312",
    "form_id": "12312312312",
    "field_data": [
        {"name": "email", "values": ["joe@example.com"]},
        {"name": "phone_number", "values": ["+5581988887777"]},
        {"name": "first_name", "values": ["Joe"]},
        {"name": "car_make", "values": ["Honda"]},
        {"name": "interests", "values": ["suv", "electric"]},
    ],
}


def settings(url: str = "https://graph.facebook.com", **values: Any) -> MetaLeadSettings:
    return msgspec.convert(
        {"access_token": PAGE_TOKEN, "endpoint": url, **values}, MetaLeadSettings
    )


def test_a_generate_lead_event_becomes_a_graph_read():
    ctx = BuildContext(tag_name="lead", container=ContainerInfo(name="shop"), now=NOW)
    s = settings(app_secret="meta-app-secret-0123")
    (outbound,) = TAG.build({"event_name": "generate_lead", "lead_id": "123123123123"}, s, ctx)
    parts = urlsplit(outbound.url)
    assert (outbound.method, parts.path) == ("GET", "/v21.0/123123123123")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    proof = hmac.new(b"meta-app-secret-0123", PAGE_TOKEN.encode(), hashlib.sha256).hexdigest()
    assert query == {
        "fields": "id,created_time,ad_id,form_id,field_data",
        "access_token": PAGE_TOKEN,
        "appsecret_proof": proof,
    }
    with pytest.raises(InvalidEvent, match="no lead_id"):
        TAG.build({"event_name": "generate_lead", "lead_id": "12 OR 1=1"}, s, ctx)


def test_the_answer_becomes_a_lead_details_event():
    event = lead_event(LEAD, settings(field_map={"car_make": "vehicle.make", "first_name": None}))
    assert event == {
        "event_name": "lead_details",
        "event_id": "123123123123",
        "lead_id": "123123123123",
        "created_time": "2015-02-28T08:49:14+0000",
        "ad_id": "12312312312",
        "form_id": "12312312312",
        "lead_fields": {
            "email": "joe@example.com",
            "phone_number": "+5581988887777",
            "first_name": "Joe",
            "car_make": "Honda",
            "interests": ["suv", "electric"],
        },
        "user_data": {"email_address": "joe@example.com", "phone_number": "+5581988887777"},
        "vehicle": {"make": "Honda"},
    }


def test_hostile_or_malformed_answers_are_kept_as_data():
    answer = {
        "id": 42,
        "field_data": [
            {"name": "email", "values": ["{{credential}}"]},
            {"name": "x", "values": "not a list"},
            "junk",
            {"values": ["no name"]},
            {"name": "big", "values": ["y" * 5000]},
        ],
    }
    event = lead_event(answer, settings())
    assert event["lead_fields"] == {"email": "{{credential}}", "big": "y" * 2000}
    assert event["user_data"] == {"email_address": "{{credential}}"}
    assert TAG.follow_up(200, {}, b"not json", None, settings()) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        (200, None, "done"),
        (400, {"code": 17, "message": "User request limit reached"}, "retry"),
        (400, {"code": 613, "message": "Calls to this api have exceeded the rate limit"}, "retry"),
        (500, {"code": 2, "message": "Service temporarily unavailable"}, "retry"),
        (400, {"code": 190, "message": "Error validating access token"}, "dead"),
        (403, {"code": 200, "message": "Permissions error"}, "dead"),
        (400, {"code": 100, "error_subcode": 33, "message": "Object does not exist"}, "dead"),
        (502, None, "retry"),
    ],
)
def test_graph_answers_are_classified(status, error, outcome):
    body = json.dumps(LEAD if error is None and status == 200 else {"error": error}).encode()
    assert TAG.classify(status, {}, body).outcome == outcome


def test_a_200_without_a_lead_is_retried():
    assert TAG.classify(200, {}, b"<html>proxy</html>").outcome == "retry"


# -- the engine's follow-ups ---------------------------------------------------------------------


async def test_an_answer_whose_events_cannot_be_stored_is_read_again(tmp_path):
    with FakeGraphLeads(leads={"123123123123": LEAD}) as graph:
        s = settings(graph.url)
        r = route(TAG, name="lead", settings=s)
        store = SqliteStore(str(tmp_path))
        e = engine(store, r)
        got: list[tuple[str, str, list[dict[str, Any]]]] = []
        refusals = [DeliveryUnavailable("store down")]

        async def follow_ups(container: str, tag: str, events: list[dict[str, Any]]) -> None:
            if refusals:
                raise refusals.pop()
            got.append((container, tag, events))

        e.follow_ups = follow_ups
        ctx = BuildContext(tag_name="lead", container=ContainerInfo(name="shop"), now=NOW)
        (outbound,) = TAG.build({"lead_id": "123123123123"}, s, ctx)
        await e.start()
        try:
            await e.submit(
                [
                    Submission(
                        container="shop",
                        tag="lead",
                        tag_type=TAG.name,
                        outbound=outbound,
                        created=time.time(),
                    )
                ]
            )
            await eventually(lambda: got)
        finally:
            await e.close()
    assert graph.errors == []
    assert graph.reads == 2  # read, not stored, read again
    ((container, tag, events),) = got
    assert (container, tag, events[0]["user_data"]["email_address"]) == (
        "shop",
        "lead",
        "joe@example.com",
    )


def test_a_tag_that_batches_cannot_make_events(tmp_path):
    class Batched(Tag):
        name = "batched_follow_up"
        batching = Batching(max_items=10)

        def follow_up(self, status, headers, body, request, settings):  # type: ignore[no-untyped-def]
            return []

    with pytest.raises(ValueError, match="a tag type that batches cannot make events"):
        engine(SqliteStore(str(tmp_path)), route(Batched(), name="b"))


# -- sgtm serve ----------------------------------------------------------------------------------

APP_SECRET = "meta-app-secret-0123456789"
CONTAINER = """
version: 1
clients:
  - name: meta_ads
    type: meta_leadgen
    settings: {{verify_token: "${{META_VERIFY_TOKEN}}", app_secret: "${{META_APP_SECRET}}"}}
triggers:
  new_lead: {{event_name: generate_lead}}
  lead_details: {{event_name: lead_details}}
tags:
  - name: read_lead
    type: meta_lead
    triggers: [new_lead]
    settings: {{access_token: "${{META_PAGE_TOKEN}}", endpoint: "{graph}"}}
  - name: hubspot
    type: hubspot
    triggers: [lead_details]
    settings:
      access_token: "${{HUBSPOT_TOKEN}}"
      endpoint: "{hubspot}"
      lifecycle_stage: lead
  - name: sales_whatsapp
    type: whatsapp
    triggers: [lead_details]
    settings:
      phone_number_id: "{phone_number_id}"
      access_token: "${{WHATSAPP_TOKEN}}"
      endpoint: "{whatsapp}"
      template: novo_lead
      language: pt_BR
      to: "+55 11 99999-0000"
      body_parameters:
        - "{{{{event.lead_fields.first_name}}}}"
        - "{{{{event.user_data.email_address}}}}"
        - "{{{{event.lead_fields.car_make}}}}"
"""


def test_on_a_real_server_a_meta_lead_ends_in_hubspot_and_whatsapp(tmp_path):
    notification = {
        "object": "page",
        "entry": [
            {
                "id": "153125381133",
                "time": 1438292065,
                "changes": [
                    {
                        "field": "leadgen",
                        "value": {"leadgen_id": 123123123123, "page_id": 1, "form_id": 12312312312},
                    }
                ],
            }
        ],
    }
    with (
        FakeGraphLeads(leads={"123123123123": LEAD}) as graph,
        FakeHubSpot() as hubspot,
        FakeWhatsApp() as whatsapp,
    ):
        container = CONTAINER.format(
            graph=graph.url,
            hubspot=hubspot.url,
            whatsapp=whatsapp.url,
            phone_number_id=PHONE_NUMBER_ID,
        )
        env = {
            **FAST_DELIVERY,
            "META_VERIFY_TOKEN": "verify-token-123",
            "META_APP_SECRET": APP_SECRET,
            "META_PAGE_TOKEN": PAGE_TOKEN,
            "HUBSPOT_TOKEN": HUBSPOT_TOKEN,
            "WHATSAPP_TOKEN": WHATSAPP_TOKEN,
        }
        with serve(tmp_path, container, env) as server:
            raw = json.dumps(notification).encode()
            signature = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
            headers = {"content-type": "application/json", "x-hub-signature-256": signature}
            for _ in range(2):  # Meta redelivers
                answer = httpx.post(f"{server.url}/webhooks/meta-ads", content=raw, headers=headers)
                assert answer.status_code == 200
            wait_until(lambda: hubspot.contacts and whatsapp.messages)
            logs = server.logs()
    assert graph.errors == [] and hubspot.errors == [] and whatsapp.errors == []
    assert graph.reads == 1  # the redelivery and the lead_details event read nothing again
    assert hubspot.contacts["joe@example.com"]["phone"] == "+5581988887777"
    (message,) = whatsapp.messages
    texts = [p["text"] for p in message["template"]["components"][0]["parameters"]]
    assert texts == ["Joe", "joe@example.com", "Honda"]
    assert PAGE_TOKEN not in logs and APP_SECRET not in logs


def test_the_docs_example_answer_gives_the_documented_event():
    page = [b for b in blocks("json") if b[0] == "docs/tags/meta_lead.md"]
    answer, expected = (json.loads(text) for _, _, text in page)
    assert lead_event(answer, settings()) == expected
