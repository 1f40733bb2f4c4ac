"""`responsys` tag: list merges and custom events per event type (as `sgtm emulate` shows them),
match columns, permissions, settings, limits and bad input, batching, per-record classification
and the password login."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import msgspec
import pytest
from sgtm_plugins.responsys import ResponsysSettings, ResponsysTag

from sgtm.plugin import BuildContext, ContainerInfo, InvalidEvent, Outbound, as_verdict
from sgtm.yamlsource import ConfigErrors
from tests.plugins.crm_fakes import NOW, emulate, load

ENV = {"RESPONSYS_PASSWORD": "rs-pass-EEEE5555"}
TAG = ResponsysTag()
CTX = BuildContext(tag_name="rs", container=ContainerInfo(name="t"), now=NOW)

BASE = """
version: 1
triggers:
  all: {all: []}
tags:
  - name: rs
    type: responsys
    triggers: [all]
    settings:
      login_url: https://login5.responsys.net
      username: api_user
      password: "${RESPONSYS_PASSWORD}"
      list_name: CONTACTS_LIST
"""
MERGE = BASE
EVENT = BASE + "      mode: event\n      event_name: Purchase_Made\n"

USER = {
    "email_address": " Ana@Example.com ",
    "phone_number": "+5581999990000",
    "sha256_email_address": "a" * 64,
    "address": {"first_name": "Ana", "city": "Recife", "region": "PE", "country": "BR"},
}
ITEMS = [{"item_id": "SKU-1", "item_name": "Camiseta", "price": 49.9, "quantity": 2}]
NAMES = [
    "page_view",
    "view_item",
    "add_to_cart",
    "begin_checkout",
    "purchase",
    "generate_lead",
    "sign_up",
]

CREDENTIAL = "{{credential}}"  # as sgtm emulate shows a run-time token


def event(name: str, **extra: Any) -> dict[str, Any]:
    base = {"event_name": name, "user_id": "cust-42", "user_data": copy.deepcopy(USER)}
    base.update(extra)
    return base


def only_request(tags: list[dict[str, Any]]) -> dict[str, Any]:
    (tag,) = tags
    assert tag["fired"], tag["reason"]
    (request,) = tag["requests"]
    return request


def run(container: str, events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return emulate(container, events, ENV)


RULE = {
    "insertOnNoMatch": True,
    "updateOnMatch": "REPLACE_ALL",
    "matchColumnName1": "EMAIL_ADDRESS_",
    "matchColumnName2": None,
    "matchOperator": "NONE",
    "optinValue": "I",
    "optoutValue": "O",
    "htmlValue": "H",
    "textValue": "T",
    "rejectRecordIfChannelEmpty": None,
    "defaultPermissionStatus": "OPTOUT",
}


@pytest.mark.parametrize("name", NAMES)
def test_every_event_type_merges_the_visitor_into_the_list(name):
    request = only_request(run(MERGE, [event(name)])[0])
    assert request["method"] == "POST"
    # The endpoint and the token come from the login: placeholders until send time.
    assert request["url"] == "{{credential.endpoint}}/rest/api/v1.3/lists/CONTACTS_LIST/members"
    assert request["headers"] == {"Authorization": CREDENTIAL, "Content-Type": "application/json"}
    assert request["body"] == {
        "recordData": {
            "fieldNames": ["EMAIL_ADDRESS_", "CUSTOMER_ID_", "CITY_", "STATE_", "COUNTRY_"],
            "records": [["ana@example.com", "cust-42", "Recife", "PE", "BR"]],
            "mapTemplateName": None,
        },
        "mergeRule": RULE,
    }


@pytest.mark.parametrize("name", NAMES)
def test_every_event_type_triggers_the_custom_event(name):
    extra = {"transaction_id": "T-1", "value": 99.8, "currency": "BRL", "items": ITEMS}
    request = only_request(run(EVENT, [event(name, **extra)])[0])
    assert request["url"] == "{{credential.endpoint}}/rest/api/v1.3/events/Purchase_Made"
    assert request["headers"]["Authorization"] == CREDENTIAL  # no "Bearer"
    assert request["body"] == {
        "customEvent": {
            "eventNumberDataMapping": None,
            "eventDateDataMapping": None,
            "eventStringDataMapping": None,
        },
        "recipientData": [
            {
                "recipient": {
                    "emailAddress": "ana@example.com",
                    "customerId": None,
                    "recipientId": None,
                    "mobileNumber": None,
                    "emailMD5Hash": None,
                    "emailSHA256Hash": None,
                    "listName": {"folderName": "!MasterData", "objectName": "CONTACTS_LIST"},
                    "emailFormat": "HTML_FORMAT",
                },
                "optionalData": [
                    {"name": "ORDER_ID", "value": "T-1"},
                    {"name": "ORDER_TOTAL", "value": "99.8"},
                    {"name": "CURRENCY", "value": "BRL"},
                ],
            }
        ],
    }


def test_fields_add_columns_and_remove_defaults_and_permission_is_explicit():
    container = (
        MERGE
        + """\
      default_permission: OPTIN
      update_on_match: NO_UPDATE
      fields:
        FIRST_NAME: "{{event.user_data.address.first_name}}"
        LAST_ORDER_TOTAL: "{{event.value}}"
        CITY_: null
"""
    )
    body = only_request(run(container, [event("purchase", value=120)])[0])["body"]
    assert body["recordData"]["fieldNames"] == [
        "EMAIL_ADDRESS_",
        "CUSTOMER_ID_",
        "STATE_",
        "COUNTRY_",
        "FIRST_NAME",
        "LAST_ORDER_TOTAL",
    ]
    assert body["recordData"]["records"] == [
        ["ana@example.com", "cust-42", "PE", "BR", "Ana", "120"]
    ]
    assert body["mergeRule"]["defaultPermissionStatus"] == "OPTIN"
    assert body["mergeRule"]["updateOnMatch"] == "NO_UPDATE"


@pytest.mark.parametrize(
    ("column", "fields", "recipient", "value", "insert"),
    [
        ("CUSTOMER_ID_", "", "customerId", "cust-42", True),
        ("customer_id", "", "customerId", "cust-42", True),  # written as in the UI
        ("MOBILE_NUMBER_", "", "mobileNumber", "5581999990000", True),  # E.164, as stored
        ("EMAIL_SHA256_HASH_", "", "emailSHA256Hash", "a" * 64, False),
        ("RIID_", "      fields: {RIID_: '{{event.riid}}'}\n", "recipientId", "7001", True),
    ],
)
def test_match_columns(column, fields, recipient, value, insert):
    merge = MERGE + f"      match_column: {column}\n" + fields
    body = only_request(run(merge, [event("sign_up", riid="7001")])[0])["body"]
    rule = body["mergeRule"]
    assert rule["matchColumnName1"] == column.upper().rstrip("_") + "_"
    # A hash only finds someone already on the list: never an insert.
    assert rule["insertOnNoMatch"] is insert
    row = dict(zip(body["recordData"]["fieldNames"], body["recordData"]["records"][0], strict=True))
    assert row[rule["matchColumnName1"]] == value
    trigger = EVENT + f"      match_column: {column}\n" + fields
    data = event("purchase", riid="7001")
    recipient_block = only_request(run(trigger, [data])[0])["body"]["recipientData"][0]
    named = {k: v for k, v in recipient_block["recipient"].items() if v is not None}
    assert named.pop(recipient) == value
    assert set(named) == {"listName", "emailFormat"}


@pytest.mark.parametrize(
    ("phone", "settings", "number", "country"),
    [
        ("(81) 99999-0000", {"phone_country_code": "55"}, "5581999990000", None),
        ("081 99999-0000", {"phone_country_code": "55", "mobile_country": "br"},
         "5581999990000", "BR"),
        ("+55 81 99999-0000", {"phone_country_code": "55", "mobile_country": "BR"},
         "5581999990000", "BR"),
        ("+351 912 345 678", {"phone_country_code": "55", "mobile_country": "BR"},
         "351912345678", None),  # another country's number: Responsys derives its country
        ("+55 81 99999-0000", {}, "5581999990000", None),
        (5581999990000, {}, "5581999990000", None),  # digits alone are read as international
    ],
)  # fmt: skip
def test_mobile_number_is_sent_in_e164_with_its_country(phone, settings, number, country):
    config = _settings(match_column="MOBILE_NUMBER_", **settings)
    data = {"event_name": "sign_up", "user_data": {"phone_number": phone}}
    (outbound,) = TAG.build(data, msgspec.convert(config, ResponsysSettings), CTX)
    body = msgspec.json.decode(outbound.body)["recordData"]
    row = dict(zip(body["fieldNames"], body["records"][0], strict=True))
    assert row["MOBILE_NUMBER_"] == number
    assert row.get("MOBILE_COUNTRY_") == country
    # the same number identifies a recipient of a custom event
    config = {**config, "mode": "event", "event_name": "E"}
    (outbound,) = TAG.build(data, msgspec.convert(config, ResponsysSettings), CTX)
    recipient = msgspec.json.decode(outbound.body)["recipientData"][0]["recipient"]
    assert recipient["mobileNumber"] == number


def test_mobile_number_that_is_no_phone_number_is_invalid():
    config = msgspec.convert(_settings(match_column="MOBILE_NUMBER_"), ResponsysSettings)
    for phone in ("12345", "+1234567890123456", "abc", ["+5581999990000"]):
        data = {"event_name": "sign_up", "user_data": {"phone_number": phone}}
        with pytest.raises(InvalidEvent, match="MOBILE_NUMBER_ is not a phone number"):
            TAG.build(data, config, CTX)
    # a country set in fields wins; a mobile number mapped as a plain column is normalized too
    config = msgspec.convert(
        _settings(phone_country_code="55", mobile_country="BR",
                  fields={"MOBILE_NUMBER_": "(81) 99999-0000", "MOBILE_COUNTRY_": "PT"}),
        ResponsysSettings,
    )  # fmt: skip
    (outbound,) = TAG.build({"event_name": "x", "user_data": {"email_address": "a@b.co"}},
                            config, CTX)  # fmt: skip
    body = msgspec.json.decode(outbound.body)["recordData"]
    row = dict(zip(body["fieldNames"], body["records"][0], strict=True))
    assert (row["MOBILE_NUMBER_"], row["MOBILE_COUNTRY_"]) == ("5581999990000", "PT")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"phone_country_code": "+55"}, "phone_country_code: a country calling code of 1-3"),
        ({"phone_country_code": "55", "mobile_country": "BRA"}, "mobile_country: a two-letter"),
        ({"mobile_country": "BR"}, "mobile_country: needs phone_country_code"),
    ],
)
def test_mobile_settings_errors(settings, message):
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(_settings(**settings), ResponsysSettings)


def test_non_ascii_is_sent_as_escapes():
    data = event("purchase", transaction_id="Pedido-ção")
    (outbound,) = TAG.build(
        data, msgspec.convert(_settings(mode="event", event_name="E"), ResponsysSettings), CTX
    )
    assert outbound.body.isascii()
    assert b"Pedido-\\u00e7\\u00e3o" in outbound.body
    assert (
        msgspec.json.decode(outbound.body)["recipientData"][0]["optionalData"][0]["value"]
        == "Pedido-ção"
    )


def _settings(**values: Any) -> dict[str, Any]:
    base = {
        "login_url": "https://login5.responsys.net",
        "username": "u",
        "password": "p",
        "list_name": "L",
    }
    return {**base, **values}


def build(data: dict[str, Any], **values: Any) -> Outbound:
    (outbound,) = TAG.build(data, msgspec.convert(_settings(**values), ResponsysSettings), CTX)
    return outbound


# -- limits and bad input -----------------------------------------------------------------------


def invalid(container: str, data: dict[str, Any]) -> str:
    (tag,) = run(container, [data])[0]
    assert not tag["fired"] and tag["requests"] == []
    assert tag["reason"].startswith("invalid: "), tag["reason"]
    return str(tag["reason"]).removeprefix("invalid: ")


SHA_MATCH = MERGE + "      match_column: EMAIL_SHA256_HASH_\n"


@pytest.mark.parametrize(
    ("container", "data", "why"),
    [
        (MERGE, {"event_name": "sign_up"}, "no EMAIL_ADDRESS_"),
        (MERGE, event("sign_up", user_data={"email_address": "ana at example"}), "not a valid"),
        (EVENT, event("purchase", user_data={"email_address": "x@"}), "not a valid address"),
        (SHA_MATCH, event("sign_up", user_data={"sha256_email_address": "abc"}), "SHA-256"),
        (MERGE + "      match_column: CUSTOMER_ID_\n", {"event_name": "x"}, "no CUSTOMER_ID_"),
        (MERGE + "      match_column: RIID_\n", event("x"), "needs a value (fields.RIID_)"),
        (MERGE + '      fields: {TAGS: "{{event.items}}"}\n', event("x", items=ITEMS), "TAGS"),
        (EVENT + '      fields: {ITEMS: "{{event.items}}"}\n', event("x", items=ITEMS), "ITEMS"),
    ],
)
def test_records_responsys_would_reject_are_not_sent(container, data, why):
    assert why in invalid(container, data)


def test_hostile_values_never_crash_the_tag():
    weird = [
        event("purchase", user_data=None, user_id=["x"]),
        event("purchase", user_data={"email_address": 7}, value={"x": 1}, currency=[1]),
        {"event_name": None},
        event("purchase", transaction_id="\x00\ud800", value=float("inf")),
    ]
    for container in (MERGE, EVENT):
        for tags in run(container, weird):
            (tag,) = tags
            assert tag["fired"] or tag["reason"].startswith("invalid: "), tag
            assert "tag error" not in (tag["reason"] or "")


# -- settings -----------------------------------------------------------------------------------


def settings_error(extra: str) -> str:
    with pytest.raises(ConfigErrors) as caught:
        load(BASE + extra, ENV)
    return "\n".join(str(e) for e in caught.value.errors)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("      match_column: PHONE_\n", "settings.match_column: 'PHONE_' is not one of"),
        ("      mode: event\n", "settings.event_name: required with mode: event"),
        ("      fields: {first name: x}\n", "settings.fields: 'first name' is not a Responsys"),
        ("      mode: event\n      event_name: E\n      fields: {CITY_: x}\n", "system columns"),
        ("      default_permission: YES\n", "settings.default_permission"),
        ("      mode: upsert\n", "settings.mode"),
        ("      endpoint: nope\n", "settings.endpoint: expected an http(s) URL"),
        ("      flush_every: 15m\n", "settings.flush_every: unknown key"),
    ],
)
def test_settings_errors_name_the_setting(extra, message):
    assert message in settings_error(extra)


def test_object_names_cannot_reach_another_path():
    container = BASE.replace("list_name: CONTACTS_LIST", "list_name: ../../auth")
    with pytest.raises(ConfigErrors, match=r"settings\.list_name"):
        load(container, ENV)


def test_the_login_cannot_vary_per_event_but_fields_can():
    with pytest.raises(ConfigErrors, match="the settings it logs in with cannot use"):
        load(BASE.replace("username: api_user", 'username: "{{event.user}}"'), ENV)
    load(MERGE + '      fields: {FIRST_NAME: "{{event.name}}"}\n', ENV)


def test_default_permission_is_optout_unless_written():
    assert msgspec.convert(_settings(), ResponsysSettings).default_permission == "OPTOUT"


# -- batching -----------------------------------------------------------------------------------


def test_records_with_the_same_columns_share_a_lane_and_merge():
    assert TAG.batching is not None and TAG.batching.max_items == 200
    a = build(event("sign_up", user_data={"email_address": "a@x.co"}))
    b = build(event("sign_up", user_data={"email_address": "b@x.co"}))
    c = build(event("sign_up", user_data={"email_address": "c@x.co", "address": {"city": "Rio"}}))
    permission = build(event("sign_up"), default_permission="OPTIN")
    assert a.destination == b.destination
    # A missing column must not be merged as empty (REPLACE_ALL would clear it), nor a rule mixed.
    assert len({a.destination, c.destination, permission.destination}) == 3
    merged = msgspec.json.decode(TAG.merge([a, b]).body)
    assert merged["recordData"]["records"] == [["a@x.co", "cust-42"], ["b@x.co", "cust-42"]]
    assert merged["mergeRule"]["defaultPermissionStatus"] == "OPTOUT"


def test_recipients_of_one_event_merge():
    one = build(event("purchase", transaction_id="1"), mode="event", event_name="E")
    two = build(event("purchase", transaction_id="2"), mode="event", event_name="E")
    other = build(event("purchase"), mode="event", event_name="Other")
    assert one.destination == two.destination != other.destination
    merged = msgspec.json.decode(TAG.merge([one, two]).body)
    assert [r["optionalData"][0]["value"] for r in merged["recipientData"]] == ["1", "2"]


def test_triggers_are_sent_once_per_event_id_merges_always():
    assert TAG.dedupe_key(event("purchase", event_id="e1"), _event_settings()) == (
        "event:e1",
        86400,
    )
    merge_settings = msgspec.convert(_settings(), ResponsysSettings)
    assert TAG.dedupe_key(event("purchase", event_id="e1"), merge_settings) is None
    tags = run(EVENT, [event("purchase", event_id="e1"), event("purchase", event_id="e1")])
    assert [t[0]["reason"] for t in tags] == [None, "dedupe"]


def _event_settings() -> ResponsysSettings:
    return msgspec.convert(_settings(mode="event", event_name="E"), ResponsysSettings)


# -- responses ----------------------------------------------------------------------------------


def rs_error(code: str, detail: str = "d") -> bytes:
    return msgspec.json.encode(
        {"type": "", "title": "t", "errorCode": code, "detail": detail, "errorDetails": []}
    )


@pytest.mark.parametrize(
    ("status", "body", "outcome", "retry_after", "reason"),
    [
        (200, b"{}", "done", None, ""),
        (
            400,
            rs_error("API_LIMIT_EXCEEDED", "Please try again in a minute"),
            "retry",
            60.0,
            "API_LIMIT",
        ),
        (400, rs_error("INTERNAL_CAPACITY_LIMIT_EXCEEDED"), "retry", 600.0, "CAPACITY"),
        (500, rs_error("UNABLE_TO_SUBMIT_ASYNC_REQUEST"), "retry", None, "ASYNC"),
        (503, b"<html>", "retry", None, "503"),
        (429, b"", "retry", None, "429"),
        (
            400,
            rs_error("API_BLOCKED", "The merge is currently not available"),
            "dead",
            None,
            "API_BLOCKED",
        ),
        (
            400,
            rs_error("INVALID_PARAMETER", "FieldList is null OR empty"),
            "dead",
            None,
            "FieldList",
        ),
        (400, rs_error("RECIPIENT_LIMIT_EXCEEDED"), "dead", None, "RECIPIENT_LIMIT"),
        (401, rs_error("INVALID_TOKEN", "Not a valid authentication token"), "dead", None, "401"),
        (401, rs_error("PASSWORD_EXPIRED"), "dead", None, "PASSWORD_EXPIRED"),
        (404, rs_error("LIST_NOT_FOUND"), "dead", None, "LIST_NOT_FOUND"),
    ],
)
def test_classification(status, body, outcome, retry_after, reason):
    verdict = as_verdict(TAG.classify(status, {}, body))
    assert (verdict.outcome, verdict.retry_after) == (outcome, retry_after)
    assert reason in verdict.reason


def items(n: int, **values: Any) -> list[Outbound]:
    return [build(event("sign_up"), **values)] * n


def test_a_failed_merge_record_dead_letters_alone():
    body = msgspec.json.encode(
        {
            "recordData": {
                "fieldNames": ["RIID_"],
                "records": [
                    ["470515045"],
                    ["MERGEFAILED: Record 2 = INVALID_EMAIL_ADDRESS: x@"],
                    ["470515065"],
                ],
                "mapTemplateName": None,
            },
            "mergeRule": RULE,
        }
    )
    verdicts = [as_verdict(v) for v in TAG.classify_batch(200, {}, body, items(3))]
    assert [v.outcome for v in verdicts] == ["done", "dead", "done"]
    assert verdicts[1].reason == "MERGEFAILED: Record 2 = INVALID_EMAIL_ADDRESS: x@"


def test_only_failed_recipients_of_a_trigger_dead_letter():
    body = msgspec.json.encode(
        [
            {"errorMessage": None, "success": True, "recipientId": 72067},
            {"errorMessage": "RECIPIENT_NOT_FOUND", "success": False, "recipientId": -1},
            {"success": False},
        ]
    )
    trigger_items = items(3, mode="event", event_name="E")
    verdicts = [as_verdict(v) for v in TAG.classify_batch(200, {}, body, trigger_items)]
    assert [(v.outcome, v.reason) for v in verdicts] == [
        ("done", ""),
        ("dead", "RECIPIENT_NOT_FOUND"),
        ("dead", "success: false"),
    ]


@pytest.mark.parametrize(
    ("status", "body", "mode", "outcomes"),
    [
        # Nothing says which records were saved: a merge is safe to repeat, a trigger is not.
        (200, b'{"recordData":{"records":[["1"]]}}', "merge", ["retry", "retry"]),
        (200, b"[]", "event", ["dead", "dead"]),
        (200, b"garbage", "merge", ["retry", "retry"]),
        (400, rs_error("API_LIMIT_EXCEEDED"), "merge", ["retry", "retry"]),
        (400, rs_error("INVALID_PARAMETER"), "event", ["dead", "dead"]),
    ],
)
def test_classify_batch_whole_responses(status, body, mode, outcomes):
    values = {"mode": "event", "event_name": "E"} if mode == "event" else {}
    verdicts = [as_verdict(v) for v in TAG.classify_batch(status, {}, body, items(2, **values))]
    assert [v.outcome for v in verdicts] == outcomes


# -- credentials --------------------------------------------------------------------------------


def test_login_is_a_form_body_never_the_url():
    settings = msgspec.convert(_settings(username="api user", password="p&ss=1"), ResponsysSettings)
    request = TAG.auth_request(settings)
    assert (request.method, request.url) == (
        "POST",
        "https://login5.responsys.net/rest/api/v1.3/auth/token",
    )
    assert request.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    assert parse_qs(request.body.decode()) == {
        "user_name": ["api user"],
        "password": ["p&ss=1"],
        "auth_type": ["password"],
    }
    assert "p&ss" not in request.url and "?" not in request.url


def test_parse_auth_renews_well_before_the_token_expires():
    body = b'{"authToken":"E6TUwJjz","issuedAt":1545920982749,"endPoint":"https://api5-009.responsys.net/"}'
    credential = TAG.parse_auth(200, {}, body, NOW)
    assert credential.token == "E6TUwJjz"
    assert credential.expires_at == NOW + 90 * 60  # tokens last 2-3 hours
    assert credential.values == {"endpoint": "https://api5-009.responsys.net"}


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            400,
            rs_error("INVALID_USER_NAME_PASSWORD", "Invalid username or password."),
            "INVALID_USER",
        ),
        (401, rs_error("PASSWORD_LOCKOUT"), "PASSWORD_LOCKOUT"),
        (200, b'{"endPoint":"https://api5.responsys.net"}', "no authToken"),
        (200, b'{"authToken":"t","endPoint":"file:///etc/passwd"}', "no valid endPoint"),
        (200, b'{"authToken":"t"}', "no valid endPoint"),
        (502, b"<html>", "502"),
    ],
)
def test_parse_auth_refusals(status, body, message):
    with pytest.raises(ValueError, match=message):
        TAG.parse_auth(status, {}, body, NOW)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, rs_error("INVALID_TOKEN", "Not a valid authentication token"), True),
        (500, rs_error("UNEXPECTED_EXCEPTION", "Not a valid authentication token"), True),
        (400, rs_error("TOKEN_EXPIRED"), True),
        (400, rs_error("API_LIMIT_EXCEEDED"), False),
        (200, b"[]", False),
        (500, b"<html>", False),
    ],
)
def test_is_auth_failure(status, body, expected):
    assert TAG.is_auth_failure(status, {}, body) is expected


# -- the docs page's example --------------------------------------------------------------------

DOC = (Path(__file__).resolve().parents[2] / "docs" / "tags" / "responsys.md").read_text()


def doc_block(language: str, marker: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC, re.S)
    (block,) = [b for b in blocks if marker in b]
    return block


def test_docs_example_prints_what_the_page_shows():
    container = doc_block("yaml", "version: 1")
    user = {"email_address": "Ana@Example.com", "address": {"first_name": "Ana", "city": "Recife"}}
    sign_up = {"event_name": "sign_up", "user_id": "u-42", "user_data": user}
    purchase = {**sign_up, "event_name": "purchase", "transaction_id": "T-1", "items": ITEMS}
    (merge, _), (not_merged, trigger) = emulate(container, [sign_up, purchase], ENV)
    assert merge == json.loads(doc_block("json", '"name": "responsys_list"'))
    assert not_merged["reason"] == "trigger"
    body = only_request([trigger])["body"]
    assert trigger["requests"][0]["url"].endswith("/rest/api/v1.3/events/Purchase_Made")
    assert body["recipientData"][0]["optionalData"] == [
        {"name": "ORDER_ID", "value": "T-1"},
        {"name": "PRODUCT_NAME", "value": "Camiseta"},
    ]
