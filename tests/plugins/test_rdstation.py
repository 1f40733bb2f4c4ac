"""`rdstation` tag: mappings per event type (as `sgtm emulate` shows them), settings checks,
limits and bad input, legal bases, classification and the OAuth credential declarations."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sgtm_plugins.rdstation import RDStationSettings, RDStationTag

from sgtm.plugin import Verdict, as_verdict
from sgtm.yamlsource import ConfigErrors
from tests.plugins.crm_fakes import NOW, emulate, emulate_request, load

ENV = {
    "RD_API_KEY": "rd-key-AAAA1111",
    "RD_CLIENT_SECRET": "rd-secret-BBBB2222",
    "RD_REFRESH_TOKEN": "rd-refresh-CCCC3333",
}

API_KEY = """
version: 1
triggers:
  all: {all: []}
tags:
  - name: rd
    type: rdstation
    triggers: [all]
    settings:
      api_key: "${RD_API_KEY}"
"""

OAUTH = """
version: 1
triggers:
  all: {all: []}
tags:
  - name: rd
    type: rdstation
    triggers: [all]
    settings:
      client_id: rd-client
      client_secret: "${RD_CLIENT_SECRET}"
      refresh_token: "${RD_REFRESH_TOKEN}"
"""

USER = {
    "email_address": " Ana.Silva@Example.com ",
    "phone_number": "+5511999990000",
    "address": {"first_name": "Ana", "last_name": "Silva", "city": "Recife", "region": "PE"},
}
ITEMS = [
    {
        "item_id": "SKU-1",
        "item_name": "Camiseta",
        "price": 49.9,
        "quantity": 2,
        "item_category": "Roupas",
        "item_category2": "Camisetas",
        "item_variant": "Azul",
    },
    {"item_id": "SKU-2", "item_name": "Boné", "price": 30, "quantity": 1},
]
PAGE = "https://www.shop.example/p/1?utm_source=google&utm_medium=cpc&utm_campaign=bf&utm_term=x"

CREDENTIAL = "{{credential}}"  # as sgtm emulate shows a run-time token


def event(name: str, **extra: Any) -> dict[str, Any]:
    base = {
        "event_name": name,
        "client_id": "111.222",
        "ga_session_id": "1700000000",
        "page_location": PAGE,
        "user_data": copy.deepcopy(USER),
    }
    base.update(extra)
    return base


ECOMMERCE = {
    "currency": "brl",
    "value": 129.8,
    "items": ITEMS,
}


def only_request(tags: list[dict[str, Any]]) -> dict[str, Any]:
    (tag,) = tags
    assert tag["fired"], tag["reason"]
    (request,) = tag["requests"]
    return request


def run(container: str, events: list[dict[str, Any]], **kwargs: Any) -> list[list[dict[str, Any]]]:
    return emulate(container, events, {**ENV, **kwargs.pop("env", {})}, **kwargs)


# -- mappings per event type ------------------------------------------------------------------

CONTACT = {
    "email": "ana.silva@example.com",
    "mobile_phone": "+5511999990000",
    "city": "Recife",
    "state": "PE",
    "name": "Ana Silva",
}
TRAFFIC = {
    "traffic_source": "google",
    "traffic_medium": "cpc",
    "traffic_campaign": "bf",
    "traffic_value": "x",
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
def test_api_key_sends_every_event_as_a_conversion_named_after_it(name):
    request = only_request(run(API_KEY, [event(name, **ECOMMERCE, transaction_id="T-1")])[0])
    assert request["method"] == "POST"
    # The key is a secret from the environment: emulate shows its name, never its value.
    assert request["url"] == "https://api.rd.services/platform/conversions?api_key=${RD_API_KEY}"
    assert "Authorization" not in request["headers"]
    assert request["body"] == {
        "event_type": "CONVERSION",
        "event_family": "CDP",
        "payload": {"conversion_identifier": name, **TRAFFIC, **CONTACT},
    }


@pytest.mark.parametrize(
    ("name", "event_type", "query"),
    [
        ("page_view", "CONVERSION", "conversion"),
        ("view_item", "CONVERSION", "conversion"),
        ("add_to_cart", "CONVERSION", "conversion"),
        ("generate_lead", "CONVERSION", "conversion"),
        ("sign_up", "CONVERSION", "conversion"),
        ("begin_checkout", "ECOMMERCE_CHECKOUT_STARTED", "ECOMMERCE_CHECKOUT_STARTED"),
        ("purchase", "ECOMMERCE_ORDER_PAID", "ECOMMERCE_ORDER_PAID"),
        ("refund", "ECOMMERCE_ORDER_REFUNDED", "ECOMMERCE_ORDER_REFUNDED"),
    ],
)
def test_oauth_maps_event_types_and_leaves_the_token_as_a_placeholder(name, event_type, query):
    extra = {**ECOMMERCE, "transaction_id": "T-1"} if name != "begin_checkout" else ECOMMERCE
    request = only_request(run(OAUTH, [event(name, **extra)])[0])
    assert request["url"] == f"https://api.rd.services/platform/events?event_type={query}"
    assert request["headers"]["Authorization"] == f"Bearer {CREDENTIAL}"
    assert request["body"]["event_type"] == event_type
    assert request["body"]["event_family"] == "CDP"
    assert "ORDER_PLACED" not in str(request) and "CART_ABANDONED" not in str(request)


LINE_ITEMS = [
    {
        "product_id": "SKU-1",
        "product_title": "Camiseta",
        "price": 49.9,
        "quantity": 2,
        "variant_title": "Azul",
        "categories": ["Roupas", "Camisetas"],
    },
    {"product_id": "SKU-2", "product_title": "Boné", "price": 30.0, "quantity": 1},
]
ECOMMERCE_CONTACT = {
    "email": "ana.silva@example.com",
    "mobile_phone": "+5511999990000",
    "name": "Ana Silva",
}


def test_purchase_is_an_order_paid_with_line_items():
    purchase = event(
        "purchase", **ECOMMERCE, transaction_id="T-1", shipping=12.5, payment_type="pix"
    )
    payload = only_request(run(OAUTH, [purchase])[0])["body"]["payload"]
    assert payload == {
        "identifier": "T-1",
        "currency": "BRL",
        "price": 129.8,
        "total_items": 3,
        "shipping_price": 12.5,
        "payment_methods": ["pix"],
        "line_items": LINE_ITEMS,
        **ECOMMERCE_CONTACT,
    }


def test_begin_checkout_is_a_checkout_started_with_a_stable_cart_id():
    payload = only_request(run(OAUTH, [event("begin_checkout", **ECOMMERCE)])[0])["body"]["payload"]
    assert payload == {
        # No order id yet: one cart per GA4 session, so a retry or a second hit repeats it.
        "identifier": "111.222.1700000000",
        "currency": "BRL",
        "price": 129.8,
        "total_items": 3,
        "checkout_url": PAGE,
        "line_items": LINE_ITEMS,
        **ECOMMERCE_CONTACT,
    }


def test_refund_is_an_order_refunded_with_the_order_id():
    payload = only_request(run(OAUTH, [event("refund", transaction_id="T-1")])[0])["body"][
        "payload"
    ]
    assert payload == {"identifier": "T-1", **ECOMMERCE_CONTACT}


def test_event_map_and_event_type_override_the_defaults():
    container = (
        OAUTH + "      event_map: {add_to_cart: ECOMMERCE_CART_ABANDONED, purchase: CONVERSION}\n"
    )
    cart, purchase = run(
        container, [event("add_to_cart", **ECOMMERCE), event("purchase", **ECOMMERCE)]
    )
    assert only_request(cart)["body"]["event_type"] == "ECOMMERCE_CART_ABANDONED"
    assert only_request(purchase)["body"]["event_type"] == "CONVERSION"
    forced = OAUTH + "      event_type: CONVERSION\n      conversion_identifier: compra-site\n"
    body = only_request(run(forced, [event("purchase", **ECOMMERCE, transaction_id="T")])[0])[
        "body"
    ]
    assert body["event_type"] == "CONVERSION"
    assert body["payload"]["conversion_identifier"] == "compra-site"


def test_custom_fields_tags_and_field_overrides():
    container = (
        API_KEY
        + """\
      conversion_identifier: "lead-{{event.form_id}}"
      tags: [Newsletter, " VIP ", newsletter]
      fields:
        cf_plan: "{{event.plan}}"
        job_title: Diretora
        email: "{{event.form_email}}"
        mobile_phone: null
        shipping_city: Recife
"""
    )
    lead = event("generate_lead", form_id="f9", plan="gold", form_email="Form@Example.com")
    payload = only_request(run(container, [lead])[0])["body"]["payload"]
    assert payload["conversion_identifier"] == "lead-f9"
    assert payload["tags"] == ["newsletter", "vip"]  # RD rejects upper case
    assert payload["cf_plan"] == "gold"
    assert payload["job_title"] == "Diretora"
    assert payload["email"] == "form@example.com"
    assert "mobile_phone" not in payload  # null removes a default
    assert "shipping_city" not in payload  # an ECOMMERCE_* field, not a contact field
    no_plan = only_request(
        run(container, [event("generate_lead", form_id="f", form_email="a@b.co")])[0]
    )
    assert "cf_plan" not in no_plan["body"]["payload"]  # a missing value is left out, not ""


def test_ecommerce_fields_take_only_what_rd_documents_for_them():
    container = OAUTH + "      fields: {cf_plan: gold, shipping_city: Recife, cancel_reason: x}\n"
    payload = only_request(run(container, [event("purchase", **ECOMMERCE, transaction_id="T")])[0])[
        "body"
    ]["payload"]
    assert payload["shipping_city"] == "Recife"
    assert "cf_plan" not in payload


def test_rd_tracking_cookies_from_the_hit_win_over_utm_tags():
    container = API_KEY.replace("triggers:\n", "clients:\n  - {name: ga4, type: ga4}\ntriggers:\n")
    line = {
        "method": "POST",
        "url": "/g/collect?v=2&tid=G-TEST01&cid=111.222&en=generate_lead"
        "&ep.user_data.email=ana%40example.com&dl=" + PAGE.replace("&", "%26").replace("?", "%3F"),
        "headers": {"cookie": "_rdtrk=rd-track-1; __trf.src=encoded_eyJmaXJzdCI6Imdvb2dsZSJ9"},
        "host": "sgtm.shop.example",
    }
    result = emulate_request(container, line, ENV)
    payload = only_request(result["events"][0]["tags"])["body"]["payload"]
    assert payload["client_tracking_id"] == "rd-track-1"
    assert payload["traffic_source"] == "encoded_eyJmaXJzdCI6Imdvb2dsZSJ9"
    assert payload["traffic_medium"] == "cpc"  # the rest still from the page's UTM tags


def test_several_accounts_behind_one_endpoint_routed_by_measurement_id():
    container = """
    version: 1
    variables:
      measurement_id: {type: event_data, key: x-ga-measurement_id}
      rd_api_key:
        type: lookup
        input: measurement_id
        map:
          G-LOJA000001: "${RD_API_KEY_LOJA_A}"
          G-LOJA000002: "${RD_API_KEY_LOJA_B}"
    triggers:
      rd_leads:
        all:
          - {var: rd_api_key, exists: true}
          - {var: event_name, in: [generate_lead, sign_up]}
    tags:
      - name: rdstation
        type: rdstation
        triggers: [rd_leads]
        settings:
          api_key: "{{rd_api_key}}"
    """
    env = {"RD_API_KEY_LOJA_A": "key-of-store-a", "RD_API_KEY_LOJA_B": "key-of-store-b"}
    events = [
        event("generate_lead", **{"x-ga-measurement_id": "G-LOJA000001"}),
        event("sign_up", **{"x-ga-measurement_id": "G-LOJA000002"}),
        event("generate_lead", **{"x-ga-measurement_id": "G-UNKNOWN"}),
    ]
    a, b, unknown = emulate(container, events, env)
    assert only_request(a)["url"].endswith("?api_key=${RD_API_KEY_LOJA_A}")
    assert only_request(b)["url"].endswith("?api_key=${RD_API_KEY_LOJA_B}")
    assert unknown == [
        {
            "name": "rdstation",
            "type": "rdstation",
            "fired": False,
            "reason": "trigger",
            "requests": [],
        }
    ]
    # Each account is its own lane (its own 120/min); the lane name never holds the key.
    spec = load(container, env)
    tag = RDStationTag()
    lanes = {
        tag.build(e, msgspec.convert({"api_key": key}, RDStationSettings), _ctx())[0].destination
        for e, key in zip(events[:2], env.values(), strict=True)
    }
    assert len(lanes) == 2 and not any("key-of" in lane for lane in lanes)
    assert spec.secrets == {
        "key-of-store-a": "RD_API_KEY_LOJA_A",
        "key-of-store-b": "RD_API_KEY_LOJA_B",
    }


def _ctx() -> Any:
    from sgtm.plugin import BuildContext, ContainerInfo

    return BuildContext(tag_name="rd", container=ContainerInfo(name="t"), now=NOW)


# -- legal bases (LGPD) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "consent_state", "extra", "expected"),
    [
        ("{type: consent, consent_type: newsletter}", {"newsletter": True}, {}, "granted"),
        ("{type: consent, consent_type: newsletter}", {"newsletter": False}, {}, "declined"),
        # no signal: RD keeps what it has; Google's advertising signals are no signal for it
        ("{type: consent, consent_type: newsletter}", {"ad_user_data": True}, {}, None),
        ("{type: consent, consent_type: newsletter, when_unknown: declined}", {}, {}, "declined"),
        (
            "{type: consent, consent_type: email_marketing}",
            {"email_marketing": "granted"},
            {},
            "granted",
        ),
        ("{type: legitimate_interest, status: granted}", {"ad_user_data": False}, {}, "granted"),
        ('{type: consent, status: "{{event.optin}}"}', {}, {"optin": "yes"}, "granted"),
        ('{type: consent, status: "{{event.optin}}"}', {}, {"optin": False}, "declined"),
        ('{type: consent, status: "{{event.optin}}"}', {}, {}, None),
    ],
)
def test_legal_bases_follow_the_site_policy_and_the_consent_signal(
    policy, consent_state, extra, expected
):
    container = API_KEY + f"      legal_bases: {policy}\n"
    lead = event("generate_lead", consent_state=consent_state, **extra)
    payload = only_request(run(container, [lead])[0])["body"]["payload"]
    if expected is None:
        assert "legal_bases" not in payload
    else:
        basis_type = "legitimate_interest" if "legitimate" in policy else "consent"
        assert payload["legal_bases"] == [
            {"category": "communications", "type": basis_type, "status": expected}
        ]


def test_legal_bases_read_sgtm_consent_from_the_ga4_hit():
    container = OAUTH.replace("triggers:\n", "clients:\n  - {name: ga4, type: ga4}\ntriggers:\n")
    container += "      legal_bases: {type: consent, consent_type: ad_storage}\n"
    hit = "/g/collect?v=2&tid=G-T&cid=1.2&en=sign_up&ep.user_data.email=a%40b.co&gcs="
    for gcs, status in (("G111", "granted"), ("G101", "declined")):
        line = {"method": "POST", "url": hit + gcs, "host": "sgtm.shop.example"}
        result = emulate_request(container, line, ENV)
        payload = only_request(result["events"][0]["tags"])["body"]["payload"]
        assert payload["legal_bases"] == [
            {"category": "communications", "type": "consent", "status": status}
        ]


# -- limits and bad input -----------------------------------------------------------------------


def invalid(container: str, data: dict[str, Any]) -> str:
    (tag,) = run(container, [data])[0]
    assert not tag["fired"] and tag["requests"] == []
    reason: str = tag["reason"]
    assert reason.startswith("invalid: ")
    return reason.removeprefix("invalid: ")


@pytest.mark.parametrize(
    ("container", "data", "why"),
    [
        (API_KEY, {"event_name": "generate_lead"}, "no email"),
        (
            API_KEY,
            event("sign_up", user_data={"email_address": "not-an-email"}),
            "not a valid address",
        ),
        (API_KEY, event("sign_up", user_data={"email_address": "z" * 64}), "not a valid address"),
        (API_KEY, event("sign_up", user_data={"email_address": "ab" * 32}), "SHA-256 hash"),
        (API_KEY, event("x" * 256), "conversion_identifier is longer than 255"),
        (OAUTH, event("purchase", **ECOMMERCE), "ECOMMERCE_ORDER_PAID needs an identifier"),
        (OAUTH, event("purchase", transaction_id="T", value=10, items=ITEMS), "needs currency"),
        (OAUTH, event("purchase", transaction_id="T", currency="BRL", items=ITEMS), "needs value"),
        (OAUTH, event("purchase", transaction_id="T", currency="BRL", value=-1), "needs value"),
        (
            OAUTH,
            {**event("begin_checkout", **ECOMMERCE), "page_location": "android-app://x"},
            "checkout_url",
        ),
        (
            OAUTH,
            {**event("begin_checkout", **ECOMMERCE), "ga_session_id": None},
            "needs an identifier",
        ),
        (
            OAUTH,
            event("begin_checkout", currency="BRL", value=0, transaction_id="T"),
            "at least one item",
        ),
        (
            OAUTH,
            event("purchase", **{**ECOMMERCE, "items": [{"item_id": "A"}]}, transaction_id="T"),
            "items[0].price",
        ),
        (
            OAUTH,
            event("purchase", **{**ECOMMERCE, "items": [{"price": 1}]}, transaction_id="T"),
            "neither item_id",
        ),
        (
            OAUTH,
            event(
                "purchase",
                **{**ECOMMERCE, "items": [{"item_id": "A", "price": 1, "quantity": 0}]},
                transaction_id="T",
            ),
            "quantity",
        ),
        (
            OAUTH,
            event(
                "purchase",
                **{**ECOMMERCE, "items": [{"item_id": "A", "price": 1, "quantity": 1.5}]},
                transaction_id="T",
            ),
            "quantity",
        ),
    ],
)
def test_events_rd_would_reject_are_not_sent(container, data, why):
    assert why in invalid(container, data)


def test_body_over_rd_limit_is_refused():
    container = API_KEY + '      fields: {cf_notes: "{{event.notes}}"}\n'
    assert "at most 0.2 MB" in invalid(container, event("generate_lead", notes="x" * 200_001))


def test_line_items_are_capped_at_twenty_and_totals_keep_the_whole_order():
    items = [
        {"item_id": f"S{i}", "item_name": f"P{i}", "price": 1, "quantity": 2} for i in range(25)
    ]
    payload = only_request(
        run(OAUTH, [event("purchase", transaction_id="T", currency="BRL", value=50, items=items)])[
            0
        ]
    )["body"]["payload"]
    assert len(payload["line_items"]) == 20
    assert payload["total_items"] == 50


def test_hostile_values_never_crash_the_tag():
    weird = [
        event("purchase", transaction_id=["T"], currency={"x": 1}, value="NaN", items="nope"),
        event("purchase", transaction_id="T", currency="BRL", value="1e309", items=[None, 3, "x"]),
        event("generate_lead", user_data=["a@b.co"]),
        event("generate_lead", user_data={"email_address": 42, "address": "Rua X"}),
        {"event_name": None, "user_data": {"email_address": "a@b.co"}},
    ]
    for tags in run(OAUTH, weird):
        (tag,) = tags
        assert tag["fired"] or tag["reason"].startswith("invalid: "), tag
        assert "tag error" not in (tag["reason"] or "")


def test_orders_and_event_ids_are_sent_once():
    container = OAUTH
    purchase = event("purchase", **ECOMMERCE, transaction_id="T-9")
    lead = event("generate_lead", event_id="ev-1")
    tags = run(container, [purchase, purchase, lead, lead, event("generate_lead")])
    assert [t[0]["reason"] for t in tags] == [None, "dedupe", None, "dedupe", None]


# -- settings -----------------------------------------------------------------------------------


OAUTH_YAML = "      client_id: c\n      client_secret: s\n      refresh_token: r\n"


def settings_error(settings_yaml: str, env: dict[str, str] | None = None) -> str:
    container = f"""
version: 1
tags:
  - name: rd
    type: rdstation
    settings:
{settings_yaml}
"""
    with pytest.raises(ConfigErrors) as caught:
        load(container, env or ENV)
    return "\n".join(str(e) for e in caught.value.errors)


@pytest.mark.parametrize(
    ("settings_yaml", "message"),
    [
        ("      conversion_identifier: x", "settings.api_key: no credentials"),
        ('      api_key: "${RD_API_KEY}"\n      client_id: c', "not both"),
        (
            "      client_id: c\n      client_secret: s",
            "settings.refresh_token: required for OAuth",
        ),
        (
            '      api_key: "${RD_API_KEY}"\n      event_type: ECOMMERCE_ORDER_PAID',
            "takes CONVERSION events only",
        ),
        (
            OAUTH_YAML + "      event_type: ORDER_PLACED",
            "settings.event_type: ORDER_PLACED is deprecated",
        ),
        (
            OAUTH_YAML + "      event_map: {purchase: CART_ABANDONED}",
            "deprecated",
        ),
        (
            OAUTH_YAML + "      event_map: {purchase: SALE}",
            "settings.event_map: purchase -> SALE: unknown RD event type",
        ),
        (
            '      api_key: "${RD_API_KEY}"\n      fields: {tags: [a]}',
            "settings.fields: 'tags' is set with tags",
        ),
        ('      api_key: "${RD_API_KEY}"\n      fields: {CF_Plan: x}', "lower-case snake_case"),
        (
            '      api_key: "${RD_API_KEY}"\n      endpoint: ftp://rd',
            "settings.endpoint: expected an http(s) URL",
        ),
        (
            '      api_key: "${RD_API_KEY}"\n      legal_bases: {type: opt_in}',
            "settings.legal_bases.type",
        ),
        (
            '      api_key: "${RD_API_KEY}"\n      legal_bases: {type: consent}',
            "settings.legal_bases: consent_type: name the consent signal that records the "
            "visitor's consent to email / WhatsApp communications",
        ),
        (
            '      api_key: "${RD_API_KEY}"\n'
            "      legal_bases: {type: consent, when_unknown: declined}",
            "there is no default: ad_user_data is consent to advertising",
        ),
        (
            '      api_key: "${RD_API_KEY}"\n      legal_bases: {type: legitimate_interest}',
            "settings.legal_bases: status: set the status of the legitimate_interest basis",
        ),
        (
            '      api_key: "${RD_API_KEY}"\n      legal_bases: {type: consent, consent_type: " "}',
            "settings.legal_bases.consent_type: empty",
        ),
        ('      api_key: "${RD_API_KEY}"\n      colour: blue', "settings.colour: unknown key"),
    ],
)
def test_settings_errors_name_the_setting(settings_yaml, message):
    assert message in settings_error(settings_yaml)


def test_settings_errors_never_show_the_key():
    text = settings_error('      api_key: "${RD_API_KEY}"\n      client_id: c')
    assert ENV["RD_API_KEY"] not in text


def test_a_lookup_without_a_key_for_this_event_is_an_invalid_event_not_a_crash():
    container = """
    version: 1
    variables:
      key: {type: lookup, input: event_name, map: {generate_lead: "${RD_API_KEY}"}}
    triggers: {all: {all: []}}
    tags:
      - {name: rd, type: rdstation, triggers: [all], settings: {api_key: "{{key}}"}}
    """
    (tag,) = run(container, [event("sign_up")])[0]
    assert tag["reason"].startswith("invalid: settings: ") and "no credentials" in tag["reason"]


# -- responses ----------------------------------------------------------------------------------

LEAD_LIMITER = (
    b'{"error":"\'lead_limiter\' rate limit exceeded for 86400 second(s) period for key '
    b'\'ana@example.com\'","max":24,"usage":25,"remaining_time":43067}'
)
MINUTE_LIMIT = (
    b'{"error":"\'account_limiter\' rate limit exceeded for 60 second(s) period for key '
    b'\'acct\'","max":120,"usage":121,"remaining_time":12000}'
)


@pytest.mark.parametrize(
    ("status", "headers", "body", "outcome", "retry_after", "reason"),
    [
        (200, {}, b'{"event_uuid":"5408c5a3"}', "done", None, ""),
        (429, {}, LEAD_LIMITER, "dead", None, "429 per-contact limit: 'lead_limiter'"),
        (429, {}, MINUTE_LIMIT, "retry", 12.0, "account_limiter"),  # 12000 ms
        (429, {}, b'{"error":"for 60 second(s)","remaining_time":7}', "retry", 7.0, ""),
        (
            429,
            {"retry-after-quotas": "30"},
            b'{"message":"API rate limit exceeded"}',
            "retry",
            30.0,
            "API rate limit",
        ),
        (429, {}, b"", "retry", 60.0, "429"),
        (
            400,
            {},
            b'{"errors":[{"error_type":"INVALID_OPTION","error_message":"Must be one of the valid '
            b'options.","path":"$.event_type"}]}',
            "dead",
            None,
            "400 INVALID_OPTION: Must be one of the valid options. ($.event_type)",
        ),
        (
            400,
            {},
            b'{"errors":{"email":[{"error_type":"CANNOT_BE_NULL",'
            b'"error_message":"email cannot be null."}]}}',
            "dead",
            None,
            "CANNOT_BE_NULL: email cannot be null. (email)",
        ),
        (
            400,
            {},
            b'{"errors":{"error_type":"UNABLE_TO_LOAD_CDP_SCHEMA","error_message":"crm key"}}',
            "dead",
            None,
            "UNABLE_TO_LOAD_CDP_SCHEMA",
        ),
        (
            401,
            {},
            b'{"errors":{"error_type":"UNAUTHORIZED","error_message":"Invalid token."}}',
            "dead",
            None,
            "401 UNAUTHORIZED",
        ),
        (
            404,
            {},
            b'{"errors":[{"error_type":"RESOURCE_NOT_FOUND"}]}',
            "dead",
            None,
            "RESOURCE_NOT_FOUND",
        ),
        (422, {}, b"not json", "dead", None, "422"),
        (500, {}, b"", "retry", None, "500"),
        (503, {}, b"<html>", "retry", None, "503"),
        (408, {}, b"", "retry", None, "408"),
    ],
)
def test_classification(status, headers, body, outcome, retry_after, reason):
    verdict = as_verdict(RDStationTag().classify(status, headers, body))
    assert verdict.outcome == outcome
    assert verdict.retry_after == retry_after
    assert reason in verdict.reason


# -- credentials --------------------------------------------------------------------------------

OAUTH_SETTINGS = msgspec.convert(
    {"client_id": "cid", "client_secret": "csec", "refresh_token": "rtok"}, RDStationSettings
)


def test_auth_request_refreshes_with_the_refresh_token():
    request = RDStationTag().auth_request(OAUTH_SETTINGS)
    assert request is not None
    assert (request.method, request.url) == ("POST", "https://api.rd.services/auth/token")
    assert request.headers["Content-Type"] == "application/json"
    assert msgspec.json.decode(request.body) == {
        "client_id": "cid",
        "client_secret": "csec",
        "refresh_token": "rtok",
    }
    assert "csec" not in request.url
    api_key = msgspec.convert({"api_key": "k"}, RDStationSettings)
    assert RDStationTag().auth_request(api_key) is None


@pytest.mark.parametrize(
    ("status", "body", "token", "expires_at"),
    [
        (200, b'{"access_token":"at","expires_in":86400,"refresh_token":"rt"}', "at", NOW + 86100),
        (200, b'{"access_token":"at","expires_in":400}', "at", NOW + 200),
        (200, b'{"access_token":"at"}', "at", NOW + 86100),
    ],
)
def test_parse_auth(status, body, token, expires_at):
    credential = RDStationTag().parse_auth(status, {}, body, NOW)
    assert (credential.token, credential.expires_at, credential.values) == (token, expires_at, {})


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            401,
            b'{"errors":{"error_type":"INVALID_REFRESH_TOKEN","error_message":"revoked"}}',
            "INVALID_REFRESH_TOKEN",
        ),
        (200, b'{"expires_in":86400}', "no access_token"),
        (200, b"[]", "failed"),
        (502, b"<html>", "502"),
    ],
)
def test_parse_auth_refusals(status, body, message):
    with pytest.raises(ValueError, match=message):
        RDStationTag().parse_auth(status, {}, body, NOW)


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (401, {"www-authenticate": 'Bearer realm="x", error="expired_token"'}, b"", True),
        (401, {"x-amzn-remapped-www-authenticate": 'Bearer error="expired_token"'}, b"", True),
        (401, {}, b'{"error":"invalid_token","error_description":"expired"}', True),
        (
            401,
            {},
            b'{"errors":{"error_type":"UNAUTHORIZED","error_message":"Invalid token."}}',
            True,
        ),
        (403, {}, b'{"errors":{"error_type":"ACCESS_DENIED"}}', False),
        (400, {}, b"", False),
        (429, {}, LEAD_LIMITER, False),
        (200, {}, b"{}", False),
    ],
)
def test_is_auth_failure(status, headers, body, expected):
    assert RDStationTag().is_auth_failure(status, headers, body) is expected


def test_rate_limit_and_no_batching_are_declared():
    tag = RDStationTag()
    assert (tag.rate_limit.requests, tag.rate_limit.per) == (120, 60)
    assert tag.batching is None
    assert isinstance(as_verdict(tag.classify(429, {}, LEAD_LIMITER)), Verdict)


# -- the docs page's examples -------------------------------------------------------------------

DOC = (Path(__file__).resolve().parents[2] / "docs" / "tags" / "rdstation.md").read_text()


def doc_block(language: str, marker: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC, re.S)
    (block,) = [b for b in blocks if marker in b]
    return block


def test_docs_api_key_example_prints_what_the_page_shows():
    container = doc_block("yaml", 'api_key: "${RD_API_KEY}"')
    lead = {
        "event_name": "generate_lead",
        "plan": "gold",
        "page_location": "https://www.loja.example/?utm_source=google&utm_medium=cpc",
        "newsletter_optin": "yes",
        "user_data": {
            "email_address": "Ana@Example.com",
            "address": {"first_name": "Ana", "last_name": "Silva", "city": "Recife"},
        },
    }
    (tags,) = emulate(container, [lead], {"RD_API_KEY": "rd-key-XYZW9876"})
    assert tags == [json.loads(doc_block("json", '"conversion_identifier": "generate_lead"'))]


def test_docs_multi_account_example_routes_by_measurement_id():
    container = doc_block("yaml", "rd_api_key:")
    env = {"RD_API_KEY_LOJA_A": "key-of-loja-a", "RD_API_KEY_LOJA_B": "key-of-loja-b"}
    events = [
        event("generate_lead", **{"x-ga-measurement_id": "G-LOJA000002"}),
        event("sign_up", **{"x-ga-measurement_id": "G-LOJA000001"}),
        event("sign_up", **{"x-ga-measurement_id": "G-OUTRA00003"}),
        event("purchase", **{"x-ga-measurement_id": "G-LOJA000001"}),
    ]
    b, a, other, purchase = emulate(container, events, env)
    assert only_request(b)["url"].endswith("?api_key=${RD_API_KEY_LOJA_B}")
    assert only_request(a)["url"].endswith("?api_key=${RD_API_KEY_LOJA_A}")
    assert other[0]["reason"] == purchase[0]["reason"] == "trigger"


def test_docs_oauth_example_validates_and_uses_the_events_api():
    container = doc_block("yaml", "refresh_token:")
    (tags,) = emulate(container, [event("purchase", **ECOMMERCE, transaction_id="T")], ENV)
    assert only_request(tags)["url"].endswith("/platform/events?event_type=ECOMMERCE_ORDER_PAID")
