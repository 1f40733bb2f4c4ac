"""`salesforce` against a fake org on loopback (My Domain token endpoint + sObject Collections)
that checks every request against Salesforce's documented schema: contract, then `sgtm serve`."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from sgtm_plugins.salesforce import SalesforceSettings, SalesforceTag

from sgtm.plugin import BuildContext, ContainerInfo, InvalidEvent, Outbound
from tests.plugins.crm_fakes import (
    NOW,
    CredentialFlow,
    FakeSalesforce,
    dead_letters,
    ga4_post,
    serve,
    sf_error,
    wait_until,
)

TAG = SalesforceTag()
CTX = BuildContext(tag_name="sf", container=ContainerInfo(name="shop"), now=NOW)
USER = {"email_address": "ana@example.com", "address": {"first_name": "Ana", "last_name": "Silva"}}
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
    with FakeSalesforce() as org:
        yield org


def sf_settings(fake: FakeSalesforce, **values: Any) -> SalesforceSettings:
    base = {
        "instance_url": fake.url,
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "subject": "Viewed product: Camiseta",
    }
    return msgspec.convert({**base, **values}, SalesforceSettings)


def build_all(settings: SalesforceSettings, events: list[dict[str, Any]]) -> list[Outbound]:
    return [outbound for event in events for outbound in TAG.build(event, settings, CTX)]


async def test_tasks_for_every_event_type_go_in_one_collection(fake):
    settings = sf_settings(fake)
    outbounds = build_all(settings, [{"event_name": n, "user_data": USER} for n in NAMES])
    flow = CredentialFlow(TAG, settings)
    try:
        verdicts = await flow.send(outbounds)
    finally:
        await flow.aclose()
    assert fake.errors == []
    assert [v.outcome for v in verdicts] == ["done"] * 7
    assert fake.batches == [7]
    assert len(fake.requests_to("token")) == 1
    assert {r["Subject"] for r in fake.records.values()} == {"Viewed product: Camiseta"}


async def test_a_failed_record_dead_letters_alone(fake):
    # The org requires a field of its own (a validation rule the tag cannot know about).
    fake.required["Lead"] = (*fake.required["Lead"], "Region__c")
    settings = sf_settings(
        fake,
        object="Lead",
        mode="upsert",
        match_field="Web_Id__c",
        fields={"Web_Id__c": "placeholder"},
    )
    events = []
    for i, region in enumerate(["NE", None, "SE"]):
        fields = {"Web_Id__c": f"u-{i}", "Company": "ACME", "Region__c": region}
        events.append(
            TAG.build({"user_data": USER}, msgspec.structs.replace(settings, fields=fields), CTX)[0]
        )
    flow = CredentialFlow(TAG, settings)
    try:
        verdicts = await flow.send(events)
    finally:
        await flow.aclose()
    assert fake.errors == []
    assert [v.outcome for v in verdicts] == ["done", "dead", "done"]
    assert verdicts[1].reason.startswith("REQUIRED_FIELD_MISSING")
    assert "Region__c" in verdicts[1].reason
    assert len(fake.records) == 2


async def test_an_upsert_that_would_create_a_lead_without_company_is_never_sent(fake):
    # Salesforce creates the Lead when no record has the External ID, and then needs Company
    # and LastName as a create does: the tag checks them in upsert mode too.
    settings = sf_settings(
        fake, object="Lead", mode="upsert", match_field="Web_Id__c", fields={"Web_Id__c": "u-1"}
    )
    with pytest.raises(InvalidEvent, match=r"Lead needs Company to be created \(an upsert"):
        TAG.build({"user_data": USER}, settings, CTX)
    with_company = msgspec.structs.replace(settings, fields={"Web_Id__c": "u-1", "Company": "AC"})
    flow = CredentialFlow(TAG, settings)
    try:
        verdicts = await flow.send(TAG.build({"user_data": USER}, with_company, CTX))
    finally:
        await flow.aclose()
    assert fake.errors == [] and [v.outcome for v in verdicts] == ["done"]
    (record,) = fake.records.values()
    assert (record["Company"], record["LastName"], record["Web_Id__c"]) == ("AC", "Silva", "u-1")
    # update needs no creation fields: it only ever changes an existing record
    update = sf_settings(fake, object="Lead", mode="update", fields={"Id": "00Q1", "City": "X"})
    assert TAG.build({}, update, CTX)


async def test_an_expired_session_is_replaced_once(fake):
    settings = sf_settings(fake)
    flow = CredentialFlow(TAG, settings)
    try:
        await flow.send(build_all(settings, [{"event_name": "view_item", "user_data": USER}]))
        fake.expire_sessions()  # 120 minutes without a call
        verdicts = await flow.send(build_all(settings, [{"event_name": "sign_up"}]))
    finally:
        await flow.aclose()
    assert [v.outcome for v in verdicts] == ["done"]
    assert len(fake.requests_to("token")) == 2
    assert len(fake.requests_to("create")) == 3  # sent, refused once, resent


async def test_the_org_allocation_running_out_backs_off_long(fake):
    fake.script["create"] = [
        sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    ]
    settings = sf_settings(fake)
    flow = CredentialFlow(TAG, settings)
    try:
        outbounds = build_all(settings, [{"event_name": "view_item"}, {"event_name": "sign_up"}])
        verdicts = await flow.send(outbounds)
    finally:
        await flow.aclose()
    assert [(v.outcome, v.retry_after) for v in verdicts] == [("retry", 1800.0)] * 2


async def test_wrong_client_secret_is_a_clear_token_error(fake):
    flow = CredentialFlow(TAG, sf_settings(fake, client_secret="wrong"))
    try:
        with pytest.raises(ValueError, match="invalid_client") as caught:
            await flow.token()
    finally:
        await flow.aclose()
    assert "wrong" not in str(caught.value)


# -- sgtm serve, end to end ---------------------------------------------------------------------

VIEW = "en=view_item&ep.user_data.email=ana%40example.com&pr1=idSKU-1~nmCamiseta%20Azul~pr49.9"
LEAD = (
    "en=generate_lead&ep.user_data.email=bia%40example.com&ep.user_data.address.last_name=Souza"
    "&ep.company=ACME&ep.region={region}&uid={uid}"
)


def test_end_to_end_batches_refreshes_and_dead_letters_only_the_failed_record(tmp_path, fake):
    container = f"""
    version: 1
    clients: [{{name: ga4, type: ga4}}]
    triggers:
      views: {{event_name: view_item}}
      leads: {{event_name: generate_lead}}
    tags:
      - name: sf_tasks
        type: salesforce
        triggers: [views]
        delivery: {{linger: 0.3s}}
        settings:
          instance_url: {fake.url}
          client_id: {fake.client_id}
          client_secret: "${{SF_CLIENT_SECRET}}"
          subject: "Viewed product: {{{{event.items.0.item_name}}}}"
      - name: sf_leads
        type: salesforce
        triggers: [leads]
        delivery: {{linger: 0.2s}}
        settings:
          instance_url: {fake.url}
          client_id: {fake.client_id}
          client_secret: "${{SF_CLIENT_SECRET}}"
          object: Lead
          mode: upsert
          match_field: Web_Id__c
          fields:
            Web_Id__c: "{{{{event.user_id}}}}"
            Company: "{{{{event.company}}}}"
            Region__c: "{{{{event.region}}}}"
    """
    # The org requires a field of its own: the tag sends the record, Salesforce refuses it.
    fake.required["Lead"] = (*fake.required["Lead"], "Region__c")
    env = {"SF_CLIENT_SECRET": fake.client_secret}
    with serve(tmp_path, container, env) as server:
        ga4_post(server, [VIEW, VIEW.replace("ana", "caio"), VIEW.replace("ana", "duda")])
        wait_until(lambda: len(fake.records) == 3)
        fake.expire_sessions()  # 120 minutes without a call
        leads = [LEAD.format(region="NE", uid="u-1"), LEAD.format(region="", uid="u-2")]
        ga4_post(server, [*leads, VIEW.replace("ana", "eva")])
        wait_until(lambda: fake.requests_to("upsert") != [] and len(fake.records) == 5)
        logs = server.logs()
    assert fake.errors == []
    assert fake.batches[0] == 3  # three views, one Collections request
    subjects = sorted(r.get("Subject", "") for r in fake.records.values())
    assert subjects == [""] + ["Viewed product: Camiseta Azul"] * 4
    # A session per tag: sf_tasks' expired one was replaced once, sf_leads got its own.
    assert len(fake.requests_to("token")) == 3
    assert len(fake.requests_to("create")) == 3  # the views, the refused one, its resend
    (letter,) = dead_letters(tmp_path)
    assert letter.tag == "sf_leads" and letter.reason.startswith("REQUIRED_FIELD_MISSING")
    assert b"u-2" in letter.payload and b"u-1" not in letter.payload  # only the failed record
    assert fake.client_secret not in logs
