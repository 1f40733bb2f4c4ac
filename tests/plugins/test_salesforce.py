"""`salesforce` tag: records per event type (as `sgtm emulate` shows them), modes, settings,
limits and bad input, batching, per-record classification and the client-credentials flow."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import msgspec
import pytest
from sgtm_plugins.salesforce import SalesforceSettings, SalesforceTag

from sgtm.plugin import Outbound, as_verdict
from sgtm.yamlsource import ConfigErrors
from tests.plugins.crm_fakes import NOW, emulate, load

ENV = {"SF_CLIENT_SECRET": "sf-secret-DDDD4444"}
TAG = SalesforceTag()

TASKS = """
version: 1
triggers:
  all: {all: []}
tags:
  - name: sf
    type: salesforce
    triggers: [all]
    settings:
      instance_url: https://acme.my.salesforce.com
      client_id: 3MVG9-client
      client_secret: "${SF_CLIENT_SECRET}"
      subject: "{{event.event_name}}: {{event.items.0.item_name}}"
      fields:
        WhoId: "{{event.user_data.sf_lead_id}}"
"""

LEAD_UPSERT = """
version: 1
triggers:
  all: {all: []}
tags:
  - name: sf
    type: salesforce
    triggers: [all]
    settings:
      instance_url: https://acme.my.salesforce.com
      client_id: 3MVG9-client
      client_secret: "${SF_CLIENT_SECRET}"
      object: Lead
      mode: upsert
      match_field: Web_Id__c
      fields:
        Web_Id__c: "{{event.user_id}}"
        Last_Viewed_Product__c: "{{event.items.0.item_name}}"
        Company: "{{event.company}}"
"""

USER = {
    "email_address": "Ana.Silva@Example.com",
    "phone_number": "+5511999990000",
    "sf_lead_id": "00Q5e00000AbCdE",
    "address": {"first_name": "Ana", "last_name": "Silva", "city": "Recife", "country": "BR"},
}
ITEMS = [{"item_id": "SKU-1", "item_name": "Camiseta Azul", "price": 49.9, "quantity": 2}]
PAGE = "https://www.shop.example/p/camiseta"

CREDENTIAL = "{{credential}}"  # as sgtm emulate shows a run-time token


def event(name: str, **extra: Any) -> dict[str, Any]:
    base = {
        "event_name": name,
        "user_id": "u-42",
        "page_location": PAGE,
        "user_data": copy.deepcopy(USER),
        "items": ITEMS,
    }
    base.update(extra)
    return base


def only_request(tags: list[dict[str, Any]]) -> dict[str, Any]:
    (tag,) = tags
    assert tag["fired"], tag["reason"]
    (request,) = tag["requests"]
    return request


def run(container: str, events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return emulate(container, events, ENV)


HEADERS = {
    "Authorization": f"Bearer {CREDENTIAL}",
    "Content-Type": "application/json",
    "Accept": "application/json",
}


@pytest.mark.parametrize(
    "name",
    [
        "page_view",
        "view_item",
        "add_to_cart",
        "begin_checkout",
        "purchase",
        "generate_lead",
        "sign_up",
    ],
)
def test_every_event_type_becomes_a_task_on_the_visitor(name):
    request = only_request(run(TASKS, [event(name)])[0])
    assert request["method"] == "POST"
    # The data API host comes from the token response: a placeholder until send time.
    assert request["url"] == "{{credential.instance_url}}/services/data/v62.0/composite/sobjects"
    assert request["headers"] == HEADERS
    assert request["body"] == {
        "allOrNone": False,
        "records": [
            {
                "attributes": {"type": "Task"},
                "Description": PAGE,
                "Status": "Completed",
                "Priority": "Normal",
                "Subject": f"{name}: Camiseta Azul",
                "ActivityDate": "2023-11-14",
                "WhoId": "00Q5e00000AbCdE",
            }
        ],
    }


def test_task_subject_from_the_brief_and_a_default_subject():
    container = TASKS.replace(
        '"{{event.event_name}}: {{event.items.0.item_name}}"',
        '"Viewed product: {{event.items.0.item_name}}"',
    )
    record = only_request(run(container, [event("view_item")])[0])["body"]["records"][0]
    assert record["Subject"] == "Viewed product: Camiseta Azul"
    plain = TASKS.replace(
        '      subject: "{{event.event_name}}: {{event.items.0.item_name}}"\n', ""
    )
    record = only_request(run(plain, [event("sign_up")])[0])["body"]["records"][0]
    assert record["Subject"] == "Website: sign_up"


def test_custom_field_updates_on_a_lead_by_external_id():
    request = only_request(run(LEAD_UPSERT, [event("view_item", company="ACME")])[0])
    assert request["method"] == "PATCH"
    assert request["url"] == (
        "{{credential.instance_url}}/services/data/v62.0/composite/sobjects/Lead/Web_Id__c"
    )
    assert request["body"] == {
        "allOrNone": False,
        "records": [
            {
                "attributes": {"type": "Lead"},
                "Email": "ana.silva@example.com",
                "FirstName": "Ana",
                "LastName": "Silva",
                "Phone": "+5511999990000",
                "City": "Recife",
                "Country": "BR",
                "Web_Id__c": "u-42",
                "Last_Viewed_Product__c": "Camiseta Azul",
                "Company": "ACME",
            }
        ],
    }


def test_contact_update_by_record_id_and_removing_default_fields():
    container = """
    version: 1
    triggers: {all: {all: []}}
    tags:
      - name: sf
        type: salesforce
        triggers: [all]
        settings:
          instance_url: https://acme.my.salesforce.com/
          client_id: c
          client_secret: "${SF_CLIENT_SECRET}"
          api_version: v60.0
          object: Contact
          mode: update
          fields:
            Id: "{{event.user_data.sf_contact_id}}"
            Email: null
            Phone: null
            Last_Purchase_Value__c: "{{event.value}}"
    """
    data = event("purchase", value=99.8)
    data["user_data"]["sf_contact_id"] = "0035e00000XyZ"
    request = only_request(run(container, [data])[0])
    assert request["method"] == "PATCH"
    assert request["url"] == "{{credential.instance_url}}/services/data/v60.0/composite/sobjects"
    assert request["body"]["records"] == [
        {
            "attributes": {"type": "Contact"},
            "FirstName": "Ana",
            "LastName": "Silva",
            "MailingCity": "Recife",
            "MailingCountry": "BR",
            "Last_Purchase_Value__c": 99.8,  # a whole reference keeps the number
            "id": "0035e00000XyZ",
        }
    ]


def test_lead_creation_and_a_custom_object():
    container = LEAD_UPSERT.replace("      mode: upsert\n      match_field: Web_Id__c\n", "")
    container = container.replace('        Web_Id__c: "{{event.user_id}}"\n', "")
    record = only_request(run(container, [event("generate_lead", company="ACME")])[0])["body"]
    assert record["records"][0]["Company"] == "ACME"
    custom = TASKS.replace("      subject:", "      object: Web_Event__c\n      subject:")
    request = only_request(run(custom, [event("purchase")])[0])
    record = request["body"]["records"][0]
    assert record["attributes"] == {"type": "Web_Event__c"}
    assert "Subject" not in record and "Status" not in record  # Task defaults stay on Tasks
    assert record == {"attributes": {"type": "Web_Event__c"}, "WhoId": "00Q5e00000AbCdE"}


def test_endpoint_overrides_the_instance_url_of_the_token():
    container = TASKS + "      endpoint: https://sf-proxy.internal/\n"
    request = only_request(run(container, [event("view_item")])[0])
    assert request["url"] == "https://sf-proxy.internal/services/data/v62.0/composite/sobjects"


# -- limits and bad input -----------------------------------------------------------------------


def invalid(container: str, data: dict[str, Any]) -> str:
    (tag,) = run(container, [data])[0]
    assert not tag["fired"] and tag["requests"] == []
    assert tag["reason"].startswith("invalid: "), tag["reason"]
    return str(tag["reason"]).removeprefix("invalid: ")


CREATE_LEAD = LEAD_UPSERT.replace("      mode: upsert\n      match_field: Web_Id__c\n", "").replace(
    '        Web_Id__c: "{{event.user_id}}"\n', ""
)


@pytest.mark.parametrize(
    ("container", "data", "why"),
    [
        (CREATE_LEAD, event("generate_lead"), "Lead needs Company to be created"),
        (
            CREATE_LEAD,
            {**event("generate_lead", company="ACME"), "user_data": {"email_address": "a@b.co"}},
            "needs LastName",
        ),
        (LEAD_UPSERT, {**event("view_item"), "user_id": None}, "no Web_Id__c"),
        (
            LEAD_UPSERT,
            event("view_item"),
            "Lead needs Company to be created (an upsert creates it when none matches)",
        ),
        (
            LEAD_UPSERT,
            {**event("view_item", company="ACME"), "user_data": {"email_address": "a@b.co"}},
            "Lead needs LastName to be created (an upsert",
        ),
        (
            LEAD_UPSERT,
            event("view_item", company="ACME", user_data={"email_address": "nope"}),
            "Email is not a valid address",
        ),
        (TASKS, event("view_item", items=[{"item_name": "x" * 300}]), "Subject is longer than 255"),
        (
            TASKS.replace('"{{event.user_data.sf_lead_id}}"', '"{{event.items}}"'),
            event("view_item"),
            "WhoId: Salesforce fields take a single value",
        ),
    ],
)
def test_records_salesforce_would_reject_are_not_sent(container, data, why):
    assert why in invalid(container, data)


def test_hostile_values_never_crash_the_tag():
    weird = [
        event("view_item", items="nope", user_data=None),
        event("view_item", items=[None, 1], user_data={"email_address": ["x"]}),
        {"event_name": {"x": 1}},
        event("purchase", company={"name": "ACME"}),
    ]
    for container in (TASKS, LEAD_UPSERT):
        for tags in run(container, weird):
            (tag,) = tags
            assert tag["fired"] or tag["reason"].startswith("invalid: "), tag
            assert "tag error" not in (tag["reason"] or "")


# -- settings -----------------------------------------------------------------------------------


def settings_error(extra: str) -> str:
    container = f"""
version: 1
tags:
  - name: sf
    type: salesforce
    settings:
      instance_url: https://acme.my.salesforce.com
      client_id: c
      client_secret: "${{SF_CLIENT_SECRET}}"
{extra}
"""
    with pytest.raises(ConfigErrors) as caught:
        load(container, ENV)
    return "\n".join(str(e) for e in caught.value.errors)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("      api_version: '62'", "settings.api_version: expected a version like '62.0'"),
        ("      object: Lead Source", "settings.object: 'Lead Source' is not an sObject API name"),
        (
            "      fields: {First Name: x}",
            "settings.fields: 'First Name' is not a Salesforce field API name",
        ),
        (
            "      mode: update\n      match_field: Email",
            "settings.match_field: update finds records by Id only",
        ),
        (
            "      object: Lead\n      mode: upsert",
            "settings.match_field: upsert needs an External ID field",
        ),
        ("      object: Lead\n      mode: upsert\n      match_field: Id", "not Id"),
        (
            "      match_field: Web_Id__c",
            "settings.match_field: only used with mode update or upsert",
        ),
        ("      fields: {Id: x}", "settings.fields: Id cannot be set with mode create"),
        ("      mode: merge", "settings.mode"),
        ("      endpoint: not a url", "settings.endpoint: expected an http(s) URL"),
        ("      flush_every: 15m", "settings.flush_every: unknown key"),
    ],
)
def test_settings_errors_name_the_setting(extra, message):
    assert message in settings_error(extra)


def test_login_salesforce_com_is_refused_with_the_reason():
    container = """
version: 1
tags:
  - name: sf
    type: salesforce
    settings: {instance_url: "https://login.salesforce.com", client_id: c, client_secret: s}
"""
    with pytest.raises(ConfigErrors, match="My Domain URL"):
        load(container, ENV)


def test_credentials_cannot_vary_per_event_but_other_settings_can():
    templated_secret = TASKS.replace('"${SF_CLIENT_SECRET}"', '"{{event.secret}}"')
    with pytest.raises(ConfigErrors, match="the settings it logs in with cannot use"):
        load(templated_secret, ENV)
    load(TASKS, ENV)  # subject and fields are templates: fine


def test_scheduled_flush_is_the_tags_delivery_block():
    container = TASKS.replace(
        "    settings:\n", "    delivery: {flush_every: 15m}\n    settings:\n"
    )
    spec = load(container, ENV)
    assert spec.tags[0].delivery is not None and spec.tags[0].delivery.flush_every == "15m"


# -- batching -----------------------------------------------------------------------------------


def settings(**values: Any) -> SalesforceSettings:
    base = {
        "instance_url": "https://acme.my.salesforce.com",
        "client_id": "c",
        "client_secret": "s",
    }
    return msgspec.convert({**base, **values}, SalesforceSettings)


def build(data: dict[str, Any], **values: Any) -> Outbound:
    from sgtm.plugin import BuildContext, ContainerInfo

    ctx = BuildContext(tag_name="sf", container=ContainerInfo(name="t"), now=NOW)
    (outbound,) = TAG.build(data, settings(**values), ctx)
    return outbound


def test_records_of_one_lane_merge_into_one_collection_of_up_to_200():
    assert TAG.batching is not None and TAG.batching.max_items == 200
    outbounds = [build(event("view_item", user_id=f"u-{i}"), subject=f"s{i}") for i in range(3)]
    assert len({o.destination for o in outbounds}) == 1
    merged = TAG.merge(outbounds)
    body = msgspec.json.decode(merged.body)
    assert body["allOrNone"] is False
    assert [r["Subject"] for r in body["records"]] == ["s0", "s1", "s2"]
    assert (merged.method, merged.url, merged.headers) == (
        outbounds[0].method,
        outbounds[0].url,
        outbounds[0].headers,
    )


def test_modes_and_objects_never_share_a_lane():
    lanes = {
        build(event("view_item")).destination,
        build(
            event("view_item", company="A"),
            object="Lead",
            mode="upsert",
            match_field="Web_Id__c",
            fields={"Web_Id__c": "u", "Company": "A"},
        ).destination,
        build(
            event("view_item"), object="Contact", mode="update", fields={"Id": "003"}
        ).destination,
        build(
            event("view_item", company="A"),
            object="Lead",
            mode="upsert",
            match_field="Other__c",
            fields={"Other__c": "u", "Company": "A"},
        ).destination,
    }
    assert len(lanes) == 4


# -- responses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "outcome", "retry_after", "reason"),
    [
        (200, b"[]", "done", None, ""),
        (201, b'{"id":"00T","success":true,"errors":[]}', "done", None, ""),
        (
            403,
            b'[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]',
            "retry",
            1800.0,
            "REQUEST_LIMIT_EXCEEDED",
        ),
        (
            403,
            b'[{"message":"insufficient access rights","errorCode":"INSUFFICIENT_ACCESS"}]',
            "dead",
            None,
            "403 INSUFFICIENT_ACCESS",
        ),
        (
            401,
            b'[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]',
            "dead",
            None,
            "INVALID_SESSION_ID",
        ),
        (
            400,
            b'[{"message":"bad","errorCode":"JSON_PARSER_ERROR"}]',
            "dead",
            None,
            "400 JSON_PARSER_ERROR: bad",
        ),
        (
            404,
            b'[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]',
            "dead",
            None,
            "NOT_FOUND",
        ),
        (
            503,
            b'[{"message":"down for maintenance","errorCode":"SERVER_UNAVAILABLE"}]',
            "retry",
            None,
            "503",
        ),
        (500, b"<html>", "retry", None, "500"),
        (420, b"", "retry", None, "420"),
        (
            409,
            b'[{"message":"locked","errorCode":"UNABLE_TO_LOCK_ROW"}]',
            "retry",
            None,
            "UNABLE_TO_LOCK_ROW",
        ),
        (414, b"", "dead", None, "414"),
    ],
)
def test_classification(status, body, outcome, retry_after, reason):
    verdict = as_verdict(TAG.classify(status, {}, body))
    assert (verdict.outcome, verdict.retry_after) == (outcome, retry_after)
    assert reason in verdict.reason


def failure(code: str, message: str = "m", fields: list[str] | None = None) -> dict[str, Any]:
    return {
        "success": False,
        "errors": [{"statusCode": code, "message": message, "fields": fields or []}],
    }


def test_classify_batch_gives_each_record_its_own_verdict():
    results = [
        {"id": "00T1", "success": True, "errors": []},
        failure("REQUIRED_FIELD_MISSING", "Required fields are missing: [Company]", ["Company"]),
        {"id": "00Q2", "success": True, "errors": [], "created": False},
        failure("ALL_OR_NONE_OPERATION_ROLLED_BACK", "rolled back"),
        failure("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access"),
        failure("DUPLICATES_DETECTED", "dup"),
        {"success": False, "errors": []},
        "garbage",
    ]
    items = [Outbound(method="POST", url="u")] * len(results)
    verdicts = [
        as_verdict(v) for v in TAG.classify_batch(200, {}, msgspec.json.encode(results), items)
    ]
    assert [v.outcome for v in verdicts] == [
        "done",
        "dead",
        "done",
        "retry",
        "retry",
        "dead",
        "dead",
        "dead",
    ]
    assert (
        verdicts[1].reason
        == "REQUIRED_FIELD_MISSING: Required fields are missing: [Company] (Company)"
    )
    assert verdicts[4].retry_after == 30.0
    assert verdicts[6].reason.startswith("UNKNOWN")


@pytest.mark.parametrize(
    ("status", "body", "outcomes"),
    [
        (200, b'[{"id":"1","success":true,"errors":[]}]', ["dead", "dead"]),  # one result for two
        (200, b"not json", ["dead", "dead"]),
        (403, b'[{"errorCode":"REQUEST_LIMIT_EXCEEDED","message":"x"}]', ["retry", "retry"]),
        (400, b'[{"errorCode":"JSON_PARSER_ERROR","message":"x"}]', ["dead", "dead"]),
        (503, b"", ["retry", "retry"]),
    ],
)
def test_classify_batch_whole_responses(status, body, outcomes):
    items = [Outbound(method="POST", url="u")] * 2
    verdicts = [as_verdict(v) for v in TAG.classify_batch(status, {}, body, items)]
    assert [v.outcome for v in verdicts] == outcomes


# -- credentials --------------------------------------------------------------------------------


def test_auth_request_is_client_credentials_on_my_domain():
    request = TAG.auth_request(settings(client_secret="s3cr3t&x"))
    assert (request.method, request.url) == (
        "POST",
        "https://acme.my.salesforce.com/services/oauth2/token",
    )
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["c"],
        "client_secret": ["s3cr3t&x"],
    }
    assert "s3cr3t" not in request.url


TOKEN = (
    b'{"access_token":"00D!AQ","signature":"x","scope":"api","instance_url":'
    b'"https://acme.my.salesforce.com","id":"https://login/id/00D/005","token_type":"Bearer",'
    b'"issued_at":"1700000000000"}'
)


def test_parse_auth_keeps_the_session_until_refused():
    credential = TAG.parse_auth(200, {}, TOKEN, NOW)
    assert credential.token == "00D!AQ"
    assert credential.expires_at is None  # no expires_in: reused until a 401
    assert credential.values == {"instance_url": "https://acme.my.salesforce.com"}


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            400,
            b'{"error":"invalid_client","error_description":"invalid client credentials"}',
            "invalid_client",
        ),
        (
            400,
            b'{"error":"invalid_grant","error_description":"request not supported on this domain"}',
            "not supported on this domain",
        ),
        (200, b'{"instance_url":"https://a.my.salesforce.com"}', "no access_token"),
        (
            200,
            b'{"access_token":"t","instance_url":"javascript:alert(1)"}',
            "no valid instance_url",
        ),
        (200, b'{"access_token":"t"}', "no valid instance_url"),
        (500, b"<html>", "500"),
    ],
)
def test_parse_auth_refusals(status, body, message):
    with pytest.raises(ValueError, match=message):
        TAG.parse_auth(status, {}, body, NOW)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, b'[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]', True),
        (403, b'[{"errorCode":"REQUEST_LIMIT_EXCEEDED"}]', False),
        (400, b"", False),
        (200, b"[]", False),
    ],
)
def test_is_auth_failure(status, body, expected):
    assert TAG.is_auth_failure(status, {}, body) is expected


# -- the docs page's example --------------------------------------------------------------------

DOC = (Path(__file__).resolve().parents[2] / "docs" / "tags" / "salesforce.md").read_text()


def doc_block(language: str, marker: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC, re.S)
    (block,) = [b for b in blocks if marker in b]
    return block


def test_docs_example_prints_what_the_page_shows():
    container = doc_block("yaml", "version: 1")
    env = {"SF_CLIENT_ID": "3MVG9-id", "SF_CLIENT_SECRET": "sf-secret-FFFF"}
    view = event("view_item", page_location="https://www.shop.example/p/camiseta")
    lead = event("sign_up", user_id="u-42", company="ACME", form_id="newsletter")
    anonymous = {**event("view_item"), "user_data": {}}
    (views, leads), (no_views, more_leads), (skipped, _) = emulate(
        container, [view, lead, anonymous], env
    )
    assert views == json.loads(doc_block("json", '"name": "sf_views"'))
    assert leads["reason"] == "trigger"
    assert no_views["reason"] == "trigger"
    record = only_request([more_leads])["body"]["records"][0]
    assert record["Web_User_Id__c"] == "u-42" and record["Lead_Form__c"] == "newsletter"
    assert record["LeadSource"] == "Web" and record["Company"] == "ACME"
    assert skipped["reason"] == "trigger"  # no Lead id: no Task
    assert load(container, env).tags[0].delivery.flush_every == "15m"
