"""`sgtm audit`: canaries found in what each tag builds, per tag, with consent and triggers.

The per-tag tables below are the personal data each built-in tag's documented payload carries
(docs/tags/<type>.md); `test_every_place_found_is_documented` checks the other direction.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msgspec
import pytest

from sgtm.audit import audit, report
from sgtm.audit.canaries import CORE, Canaries
from sgtm.audit.report import ContainerReport, Rule, TagReport
from sgtm.audit.search import find, needles, normal_forms
from sgtm.cli import main
from sgtm.config import ContainerSpec, load_text
from sgtm.hookspecs import hookimpl
from sgtm.plugin import (
    BadRequest,
    Batching,
    BuildContext,
    Client,
    ClientContext,
    ContainerInfo,
    InvalidEvent,
    Outbound,
    Tag,
)
from sgtm.plugins import Registry, build_registry, load_registry, make_manager
from sgtm.request import HitRequest
from tests.installed import registry
from tests.test_docs import example_plugin

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    "META_TOKEN": "meta-token",
    "GA4_SECRET": "ga4-secret",
    "RD_KEY": "rd-key",
    "SF_SECRET": "sf-secret",
    "RESPONSYS_PASSWORD": "responsys-password",
    "HUBSPOT_TOKEN": "hubspot-token",
    "WHATSAPP_TOKEN": "whatsapp-token",
    "META_PAGE_TOKEN": "meta-page-token",
    "CRM_WEBHOOK_SECRET": "crm-webhook-secret-7302",
    "FORM_API_KEY": "form-api-key-7302-abcd",
    "META_VERIFY_TOKEN": "meta-verify-token",
    "META_APP_SECRET": "meta-app-secret",
    "MP_API_SECRET": "mp-api-secret",
    "TIKTOK_ACCESS_TOKEN": "tiktok-token",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/sgtm-audit",
}

# Every built-in tag, fed by no client: the probe events go straight to the tags.
TAGS = """\
tags:
  - name: meta
    type: meta_capi
    consent: [ad_storage, ad_user_data]
    triggers: [purchase]
    settings: {pixel_id: "123", access_token: "${META_TOKEN}"}
  - name: ga4_mp
    type: ga4_mp
    consent: [analytics_storage]
    triggers: [everything]
    block: [internal]
    settings: {measurement_id: G-ABC123XYZ9, api_secret: "${GA4_SECRET}"}
  - name: newtail
    type: newtail
    triggers: [purchase]
    settings: {publisher_id: pub-1, allowed_event_hosts: [ads.example]}
  - name: rdstation
    type: rdstation
    triggers: [everything]
    settings: {api_key: "${RD_KEY}"}
  - name: salesforce_lead
    type: salesforce
    triggers: [everything]
    settings:
      instance_url: https://acme.my.salesforce.com
      client_id: sgtm
      client_secret: "${SF_SECRET}"
      object: Lead
      fields: {Company: ACME}
  - name: salesforce_task
    type: salesforce
    triggers: [everything]
    settings:
      instance_url: https://acme.my.salesforce.com
      client_id: sgtm
      client_secret: "${SF_SECRET}"
  - name: responsys_list
    type: responsys
    triggers: [everything]
    settings: &responsys
      login_url: https://login5.responsys.net
      username: sgtm
      password: "${RESPONSYS_PASSWORD}"
      list_name: CONTACTS
  - name: responsys_event
    type: responsys
    triggers: [purchase]
    settings: {<<: *responsys, mode: event, event_name: Purchase_Made}
  - name: ga4
    type: ga4
    triggers: [everything]
    settings: {measurement_id: G-ABC123XYZ9}
  - name: tiktok
    type: tiktok
    consent: [ad_storage, ad_user_data]
    triggers: [purchase]
    settings: {pixel_code: C4A1B2C3D4E5F6G7H8I9, access_token: "${TIKTOK_ACCESS_TOKEN}"}
  - name: hubspot
    type: hubspot
    triggers: [everything]
    settings: {access_token: "${HUBSPOT_TOKEN}", lifecycle_stage: lead}
  - name: whatsapp
    type: whatsapp
    triggers: [everything]
    settings:
      phone_number_id: "106540352242922"
      access_token: "${WHATSAPP_TOKEN}"
      template: novo_lead
      body_parameters:
        - "{{event.user_data.address.first_name}}"
        - "{{event.user_data.email_address}}"
  - name: read_lead
    type: meta_lead
    triggers: [everything]
    settings: {access_token: "${META_PAGE_TOKEN}"}
  - name: webhook
    type: http_request
    triggers: [purchase]
    settings: {url: "https://crm.example/hook"}
"""
TRIGGERS = """\
triggers:
  everything: {all: []}
  purchase: {event_name: purchase}
  internal: {var: page_hostname, equals: localhost}
"""
DIRECT = f"version: 1\nname: direct\n{TRIGGERS}{TAGS}"
CLIENTS = f"""\
version: 1
name: shop
hosts: [sgtm.shop.example]
privacy: {{anonymize_ip: true}}
consent: {{default: denied}}
clients:
  - {{name: ga4, type: ga4, settings: {{client_id: server, meta_cookies: true}}}}
  - {{name: web, type: datalayer, settings: {{meta_cookies: true}}}}
  - {{name: beacon, type: beacon}}
{TRIGGERS}{TAGS}"""

W = "body $.data[0].user_data."
# docs/tags/<type>.md, the user_data / payload / field tables.
DOCUMENTED: dict[str, set[tuple[str, str, str]]] = {
    "meta": {
        ("email", "sha256", W + "em"),
        ("phone", "sha256", W + "ph"),
        ("name", "sha256", W + "fn"),
        ("name", "sha256", W + "ln"),
        ("address", "sha256", W + "ct"),
        ("address", "sha256", W + "st"),
        ("address", "sha256", W + "zp"),
        ("address", "sha256", W + "country"),
        ("user_id", "sha256", W + "external_id"),
        ("ip", "clear", W + "client_ip_address"),
        ("user_agent", "clear", W + "client_user_agent"),
        ("device_id", "clear", W + "fbp"),
        ("click_id", "clear", W + "fbc"),
        ("click_id", "clear", "body $.data[0].event_source_url"),
        ("page_url", "clear", "body $.data[0].event_source_url"),
        ("page_url", "clear", "body $.data[0].referrer_url"),
        ("date_of_birth", "sha256", W + "db"),
        ("lead_id", "clear", W + "lead_id"),
    },
    "ga4_mp": {
        ("email", "sha256", "body $.user_data.sha256_email_address[0]"),
        ("phone", "sha256", "body $.user_data.sha256_phone_number[0]"),
        ("name", "sha256", "body $.user_data.address[0].sha256_first_name"),
        ("name", "sha256", "body $.user_data.address[0].sha256_last_name"),
        ("address", "sha256", "body $.user_data.address[0].sha256_street"),
        ("address", "clear", "body $.user_data.address[0].city"),
        ("address", "clear", "body $.user_data.address[0].region"),
        ("address", "clear", "body $.user_data.address[0].postal_code"),
        ("address", "clear", "body $.user_data.address[0].country"),
        ("user_id", "clear", "body $.user_id"),
        ("ip", "clear", "body $.ip_override"),
        ("device_id", "clear", "body $.client_id"),
        ("click_id", "clear", "body $.events[0].params.page_location"),
        ("page_url", "clear", "body $.events[0].params.page_location"),
        ("page_url", "clear", "body $.events[0].params.page_referrer"),
        ("lead_id", "clear", "body $.events[0].params.lead_id"),
    },
    "newtail": {
        ("email", "sha256", "body $.email_hashed"),
        ("phone", "sha256", "body $.phone_hashed"),
        ("name", "sha256", "body $.first_name_hashed"),
        ("name", "sha256", "body $.last_name_hashed"),
        ("national_id", "sha256", "body $.social_id_hashed"),
        ("address", "clear", "body $.city"),
        ("address", "clear", "body $.uf"),
        ("user_id", "clear", "body $.user_id"),
        ("device_id", "clear", "body $.session_id"),
    },
    "rdstation": {
        ("email", "clear", "body $.payload.email"),
        ("phone", "clear", "body $.payload.mobile_phone"),
        ("name", "clear", "body $.payload.name"),
        ("address", "clear", "body $.payload.city"),
        ("address", "clear", "body $.payload.state"),
        ("address", "clear", "body $.payload.country"),
    },
    "salesforce_lead": {
        ("email", "clear", "body $.records[0].Email"),
        ("phone", "clear", "body $.records[0].Phone"),
        ("name", "clear", "body $.records[0].FirstName"),
        ("name", "clear", "body $.records[0].LastName"),
        ("address", "clear", "body $.records[0].Street"),
        ("address", "clear", "body $.records[0].City"),
        ("address", "clear", "body $.records[0].State"),
        ("address", "clear", "body $.records[0].PostalCode"),
        ("address", "clear", "body $.records[0].Country"),
    },
    "salesforce_task": {
        ("page_url", "clear", "body $.records[0].Description"),
        ("click_id", "clear", "body $.records[0].Description"),
    },
    # fieldNames: EMAIL_ADDRESS_, CUSTOMER_ID_, POSTAL_STREET_1_, CITY_, STATE_, POSTAL_CODE_,
    # COUNTRY_ (the merge columns table); a merge record is positional.
    "responsys_list": {
        ("email", "clear", "body $.recordData.records[0][0]"),
        ("user_id", "clear", "body $.recordData.records[0][1]"),
        *(("address", "clear", f"body $.recordData.records[0][{i}]") for i in range(2, 7)),
    },
    "responsys_event": {("email", "clear", "body $.recipientData[0].recipient.emailAddress")},
    # em=tv.1~em.<digest>~pn.<digest>~fn0.<digest>~ln0.<digest>~pc0.<postal code>~co0.<country>,
    # digests in base64url; other event keys go as ep.* (the session id, the lead id).
    "ga4": {
        ("email", "sha256", "query em"),
        ("phone", "sha256", "query em"),
        ("name", "sha256", "query em"),
        ("address", "clear", "query em"),
        ("user_id", "clear", "query uid"),
        ("device_id", "clear", "query cid"),
        ("device_id", "clear", "body ep.session_id"),
        ("ip", "clear", "query _uip"),
        ("user_agent", "clear", "header User-Agent"),
        ("click_id", "clear", "query dl"),
        ("page_url", "clear", "query dl"),
        ("page_url", "clear", "query dr"),
        ("lead_id", "clear", "body ep.lead_id"),
    },
    "tiktok": {
        ("email", "sha256", "body $.data[0].user.email"),
        ("phone", "sha256", "body $.data[0].user.phone"),
        ("name", "sha256", "body $.data[0].user.first_name"),
        ("name", "sha256", "body $.data[0].user.last_name"),
        ("address", "sha256", "body $.data[0].user.zip_code"),
        ("address", "clear", "body $.data[0].user.city"),
        ("address", "clear", "body $.data[0].user.state"),
        ("address", "clear", "body $.data[0].user.country"),
        ("user_id", "sha256", "body $.data[0].user.external_id"),
        ("ip", "clear", "body $.data[0].user.ip"),
        ("user_agent", "clear", "body $.data[0].user.user_agent"),
        ("click_id", "clear", "body $.data[0].user.ttclid"),
        ("click_id", "clear", "body $.data[0].page.url"),
        ("page_url", "clear", "body $.data[0].page.url"),
        ("page_url", "clear", "body $.data[0].page.referrer"),
    },
    "hubspot": {
        ("email", "clear", "body $.inputs[0].id"),
        ("email", "clear", "body $.inputs[0].properties.email"),
        ("phone", "clear", "body $.inputs[0].properties.phone"),
        ("name", "clear", "body $.inputs[0].properties.firstname"),
        ("name", "clear", "body $.inputs[0].properties.lastname"),
        ("address", "clear", "body $.inputs[0].properties.city"),
        ("address", "clear", "body $.inputs[0].properties.state"),
        ("address", "clear", "body $.inputs[0].properties.zip"),
        ("address", "clear", "body $.inputs[0].properties.country"),
    },
    # The recipient, and the body parameters the settings fill from the event.
    "whatsapp": {
        ("phone", "clear", "body $.to"),
        ("name", "clear", "body $.template.components[0].parameters[0].text"),
        ("email", "clear", "body $.template.components[0].parameters[1].text"),
    },
    "read_lead": {("lead_id", "clear", "url path")},  # GET /{api_version}/{leadgen_id}
}
DOC_PAGES = {
    "meta": "meta_capi",
    "ga4_mp": "ga4_mp",
    "newtail": "newtail",
    "rdstation": "rdstation",
    "salesforce_lead": "salesforce",
    "salesforce_task": "salesforce",
    "responsys_event": "responsys",
    "hubspot": "hubspot",
    "whatsapp": "whatsapp",
    "tiktok": "tiktok",
    "ga4": "ga4",
}


def load(text: str, reg: Registry | None = None) -> ContainerSpec:
    return load_text(text, "shop.yaml", reg or registry(), environ=ENV)


def run_audit(*texts: str, reg: Registry | None = None) -> list[ContainerReport]:
    reg = reg or registry()
    return asyncio.run(audit([load(t, reg) for t in texts], reg.personal_data))


def sends(tag: TagReport) -> set[tuple[str, str, str]]:
    return {(s.category, s.form, s.where) for s in tag.sends}


def tags_of(container: ContainerReport) -> dict[str, TagReport]:
    return {tag.name: tag for tag in container.tags}


@pytest.fixture(scope="module")
def direct() -> dict[str, TagReport]:
    (container,) = run_audit(DIRECT)
    return tags_of(container)


@pytest.fixture(scope="module")
def through_clients() -> ContainerReport:
    (container,) = run_audit(CLIENTS)
    return container


# -- every built-in tag ------------------------------------------------------------------------


@pytest.mark.parametrize("tag", sorted(DOCUMENTED))
def test_audit_finds_every_personal_field_a_tag_sends(direct, tag):
    assert sends(direct[tag]) == DOCUMENTED[tag]


@pytest.mark.parametrize("tag", sorted(DOC_PAGES))
def test_every_place_found_is_documented(direct, tag):
    """Every place the audit reports is one the tag's page documents: the last key of a JSON
    path, a query or form parameter or a header (in a table, or in a sample request), or the
    object or prefix that holds it ("every other key": `ep.<name>`, `events[0].params`)."""
    page = (ROOT / "docs" / "tags" / f"{DOC_PAGES[tag]}.md").read_text()
    for _, _, where in sends(direct[tag]):
        kind, _, place = where.partition(" ")
        assert kind in ("body", "query", "header"), where
        path = place.removeprefix("$.")
        parent, _, key = re.sub(r"\[\d+\]", "", path).rpartition(".")
        holder = path.rpartition(".")[0]
        spellings = (f"`{key}`", f"`{key}[]`", f"`address[].{key}`", f'"{key}":')
        if parent:
            spellings += (f"`{parent.rpartition('.')[2]}.{key}`",)  # `page.referrer`
        holders = (f"`{holder}`", f"`{holder}.<name>`") if holder else ()
        assert any(s in page for s in (*spellings, *holders)), (tag, where)


def test_a_tag_that_sends_the_event_sends_every_field_in_clear(direct):
    found = sends(direct["webhook"])
    for field in Canaries.build(registry().personal_data).fields:
        for key in field.event_keys:
            assert (field.category, "clear", f"body $.{key}") in found, key
    assert ("email", "clear", "body $.user_data.email_address") in found


def test_refusals_on_some_probes_are_reported_with_the_probes(direct):
    newtail = direct["newtail"]
    assert newtail.probes_fired == 1  # purchases only
    assert newtail.refused == {
        "invalid: event 'page_view' is no ad event or purchase for Newtail (map it with"
        " event_map)": ["page_view"],
        "invalid: event 'generate_lead' is no ad event or purchase for Newtail (map it with"
        " event_map)": ["generate_lead"],
    }


def test_gating_is_reported_not_applied(direct):
    meta, ga4_mp, webhook = direct["meta"], direct["ga4_mp"], direct["webhook"]
    assert (meta.consent, meta.triggers, meta.block) == (
        ["ad_storage", "ad_user_data"],
        ["purchase"],
        [],
    )
    assert (ga4_mp.consent, ga4_mp.triggers, ga4_mp.block) == (
        ["analytics_storage"],
        ["everything"],
        ["internal"],
    )
    assert webhook.consent == [] and webhook.probes_fired == 3  # triggers lifted: every probe


def test_the_containers_transformations_apply():
    """What a transformation removes for a tag is not reported for it."""
    (container,) = run_audit(
        "version: 1\n"
        "transformations:\n"
        "  - {type: exclude, params: [user_data, ip_override, page_location], tags: [hook]}\n"
        "tags:\n"
        "  - {name: hook, type: http_request, settings: {url: 'https://x.test'}}\n"
        "  - {name: other, type: http_request, settings: {url: 'https://y.test'}}\n"
    )
    hook, other = container.tags
    categories = {s.category for s in hook.sends}
    assert categories.isdisjoint({"email", "phone", "name", "address", "ip"})
    assert {s.where for s in hook.sends if s.category == "page_url"} == {"body $.page_referrer"}
    assert {"email", "ip", "click_id"} <= {s.category for s in other.sends}


# -- through each client's own parsing ---------------------------------------------------------


def fields_at(tag: TagReport, where: str) -> set[str]:
    return {name for s in tag.sends if s.where == where for name in s.fields}


def test_clients_parse_their_probes_without_trouble(through_clients):
    assert through_clients.notes == []


def test_ga4_hit_user_data_and_server_client_id(through_clients):
    ga4_mp = tags_of(through_clients)["ga4_mp"]
    # `ep.user_data.email` on the hit, hashed by the tag.
    assert ("email", "sha256", "body $.user_data.sha256_email_address[0]") in sends(ga4_mp)
    # `client_id: server`: the FPID cookie's id becomes the client id (ga4_mp itself prefers
    # the hit's GA-shaped `cid`, which the client keeps as x-ga-js_client_id).
    webhook = tags_of(through_clients)["webhook"]
    assert "FPID cookie" in fields_at(webhook, "body $.client_id")
    assert "client_id" in fields_at(webhook, "body $.x-ga-js_client_id")


def test_data_tag_aliases_never_become_analytics_params(through_clients):
    """A Data Tag hit's `email` / `userEmail` / `phoneNumber` / `ip` aliases stay in the event
    (as Stape keeps them), but the GA4 tags never forward them as params: GA4 forbids personal
    data there. (The audit found both GA4 tags sending them in clear.)"""
    for tag, where in (("ga4_mp", "body $.events[0].params."), ("ga4", "body ep.")):
        found = sends(tags_of(through_clients)[tag])
        leaked = {s for s in found if s[1] == "clear" and s[2].startswith(where)}
        assert not {s for s in leaked if s[0] in ("email", "phone", "ip", "name")}, (tag, leaked)


def test_identity_cookies_the_clients_read(through_clients):
    tags = tags_of(through_clients)
    assert "_dcid cookie" in fields_at(tags["webhook"], "body $.client_id")
    assert "_fbp cookie" in fields_at(tags["meta"], W + "fbp")
    assert "_ttp cookie" in fields_at(tags["tiktok"], "body $.data[0].user.ttp")
    assert "fbclid" in fields_at(tags["meta"], W + "fbc")  # _fbc made from the page's fbclid
    # RD reads its tracking cookie from the request itself.
    assert ("device_id", "clear", "body $.payload.client_tracking_id") in sends(tags["rdstation"])
    assert "_rdtrk cookie" in fields_at(tags["rdstation"], "body $.payload.client_tracking_id")


def test_container_ip_anonymization_shows(through_clients):
    found = sends(tags_of(through_clients)["meta"])
    assert ("ip", "anonymized", W + "client_ip_address") in found
    assert ("ip", "clear", W + "client_ip_address") not in found


def test_a_probe_a_tag_refuses_is_named_with_its_client(through_clients):
    salesforce = tags_of(through_clients)["salesforce_lead"]
    # A conversion beacon carries no names: a Lead cannot be created from it.
    assert salesforce.refused == {
        "invalid: Lead needs LastName to be created: map it in fields": ["purchase via beacon"]
    }


def test_the_report_is_the_same_every_run(through_clients):
    (again,) = run_audit(CLIENTS)
    assert report.as_json([again]) == report.as_json([through_clients])


def test_client_probes_parse_into_the_canaries():
    """Each built-in client's probe requests give back the probe's personal data."""
    reg = registry()
    canaries = Canaries.build(reg.personal_data)
    event = canaries.event("purchase", 1_700_000_000)
    base = canaries.request("sgtm.shop.example", "203.0.113.77")
    for name in ("ga4", "datalayer", "beacon"):
        client = reg.clients[name]
        settings = client.Settings()
        requests = client.probe_requests(event, base, settings)
        assert requests, name
        for request in requests:
            ctx = ClientContext(name, ContainerInfo(name="shop"), now=1_700_000_000)
            assert client.claim(request, settings), name
            (parsed,) = client.parse(request, settings, ctx)
            assert ctx.dropped == {}, name
            user_data = parsed["user_data"]
            assert user_data["email_address"] == canaries.value("user_data.email_address")
            assert user_data["phone_number"] == canaries.value("user_data.phone_number")
            assert parsed["user_id"] == canaries.value("user_id")
            assert parsed["page_location"] == canaries.value("page_location")
            assert parsed["user_agent"] == canaries.value("user_agent")


# -- through the server-to-server clients ------------------------------------------------------

# A signed webhook (sender's own names, timestamped signature, a rate the probes exceed), an API
# key webhook with a map, Meta's lead ads webhook and the Measurement Protocol from a backend.
S2S = """\
version: 1
name: leads
hosts: [sgtm.shop.example]
clients:
  - name: crm
    type: webhook
    settings:
      path: /webhooks/crm
      signature:
        secret: "${CRM_WEBHOOK_SECRET}"
        timestamp_header: X-Timestamp
        signed_payload: "{timestamp}.{body}"
      event_name_field: type
      id_field: id
      rate_limit: 1/minute
  - name: form
    type: webhook
    settings:
      path: /webhooks/form
      api_keys: ["${FORM_API_KEY}"]
      event_name: generate_lead
      map: {user_data.email_address: contact.email, user_data.phone_number: contact.phone}
  - name: meta_ads
    type: meta_leadgen
    settings: {verify_token: "${META_VERIFY_TOKEN}", app_secret: "${META_APP_SECRET}"}
  - name: backend
    type: ga4_mp
    settings: {api_secrets: ["${MP_API_SECRET}"]}
tags:
  - {name: read_lead, type: meta_lead, settings: {access_token: "${META_PAGE_TOKEN}"}}
  - {name: hubspot, type: hubspot, settings: {access_token: "${HUBSPOT_TOKEN}"}}
  - {name: forward, type: http_request, settings: {url: "https://crm.example/hook"}}
"""


@pytest.fixture(scope="module")
def s2s() -> ContainerReport:
    (container,) = run_audit(S2S)
    return container


def test_server_clients_parse_their_probes_and_no_sender_rate_holds_them(s2s):
    assert s2s.notes == []  # `crm` takes 1 request a minute: the probes are not limited
    # Every probe through each client, and the probe events themselves, reached the tags.
    assert tags_of(s2s)["forward"].probes_fired == 3 + 3 + 3 + 1 + 3


def test_each_server_client_carries_what_its_protocol_can(s2s):
    tags = tags_of(s2s)
    # A lead ads notification holds ids only: the lead is read, no contact can be made of it.
    # The form's map carries no lead id; the Measurement Protocol only hashed e-mails.
    assert tags["read_lead"].refused == {
        "invalid: no lead_id (the meta_leadgen client's generate_lead events have it)": [
            f"{name} via form" for name in ("page_view", "generate_lead", "purchase")
        ]
    }
    assert tags["hubspot"].refused == {
        "invalid: no contact e-mail at user_data.email_address (none)": [
            "page_view via backend",
            "generate_lead via meta_ads",
            "generate_lead via backend",
            "purchase via backend",
        ]
    }
    forward = sends(tags["forward"])
    assert ("email", "sha256", "body $.user_data.sha256_email_address[0]") in forward
    assert ("address", "clear", "body $.user_data.address[0].postal_code") in forward
    # The lead id is the leadgen event's id, so it also leaves as the idempotency key.
    assert {
        ("lead_id", "clear", "body $.event_id"),
        ("lead_id", "clear", "header Idempotency-Key"),
    } <= forward
    assert tags["read_lead"].makes_events and not tags["hubspot"].makes_events
    assert "makes events from the vendor's answers" in report.text([s2s])


def test_server_client_probes_parse_into_the_canaries():
    """Each server-to-server client's probe requests, parsed by the client, give back what its
    protocol can carry of the probe."""
    spec = load(S2S)
    canaries = Canaries.build(registry().personal_data)
    base = canaries.request("sgtm.shop.example", "203.0.113.77")
    email, lead = canaries.value("user_data.email_address"), canaries.value("lead_id")
    parsed: dict[tuple[str, str], dict[str, Any]] = {}
    for client in spec.clients:
        for name in ("page_view", "generate_lead", "purchase"):
            event = canaries.event(name, 1_700_000_000)
            for request in client.type.probe_requests(event, base, client.settings):
                ctx = ClientContext(client.name, ContainerInfo(name="leads"), now=1_700_000_000)
                assert client.type.claim(request, client.settings), client.name
                (parsed[client.name, name],) = client.type.parse(request, client.settings, ctx)
                assert ctx.dropped == {}, client.name
    assert sorted(parsed) == sorted(
        [
            (c, n)
            for c in ("crm", "form", "backend")
            for n in ("page_view", "generate_lead", "purchase")
        ]
        + [("meta_ads", "generate_lead")]
    )
    crm = parsed["crm", "purchase"]
    assert (crm["event_name"], crm["event_id"]) == ("purchase", "sgtmaudit-purchase")
    assert crm["user_data"]["email_address"] == email and crm["lead_id"] == lead
    form = parsed["form", "page_view"]
    assert form["event_name"] == "generate_lead"
    assert form["user_data"] == {
        "email_address": email,
        "phone_number": canaries.value("user_data.phone_number"),
    }
    assert parsed["meta_ads", "generate_lead"]["lead_id"] == lead
    backend = parsed["backend", "purchase"]
    assert backend["user_data"]["sha256_email_address"] == [sha(email)]
    assert backend["page_location"] == canaries.value("page_location")
    assert (backend["client_id"], backend["user_id"], backend["ip_override"]) == (
        canaries.value("client_id"),
        canaries.value("user_id"),
        canaries.value("ip_override"),
    )


# -- third-party tags, with no code for the audit ----------------------------------------------


class PixelSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    account: str


class PixelTag(Tag):
    """A third party's tag: e-mail in clear in the query, phone hashed in a header."""

    name = "acme_pixel"
    Settings = PixelSettings

    def build(self, event: dict[str, Any], settings: PixelSettings, ctx: BuildContext) -> list:
        email = (event.get("user_data") or {}).get("email_address")
        if not email:
            raise InvalidEvent("no email")
        phone = str((event.get("user_data") or {}).get("phone_number", ""))
        digest = hashlib.sha256(phone.lstrip("+").encode()).hexdigest()
        return [
            Outbound(
                method="GET",
                url="https://pixel.acme.example/t?" + f"a={settings.account}&email={email}",
                headers={"X-Phone-Hash": digest},
            )
        ]


class RefusingTag(Tag):
    name = "acme_refuser"

    def build(self, event: dict[str, Any], settings: Any, ctx: BuildContext) -> list:
        raise InvalidEvent("needs a loyalty number")


class BrokenTag(Tag):
    name = "acme_broken"

    def build(self, event: dict[str, Any], settings: Any, ctx: BuildContext) -> list:
        raise KeyError("oops")


class OddBodyTag(Tag):
    """Bodies the search must survive: deep JSON, bytes that are no UTF-8, plain text."""

    name = "acme_odd"

    def build(self, event: dict[str, Any], settings: Any, ctx: BuildContext) -> list:
        email = event["user_data"]["email_address"].encode()
        deep = b"[" * 100_000 + b'"' + email + b'"' + b"]" * 100_000
        return [
            Outbound(method="POST", url="https://odd.example/deep", body=deep),
            Outbound(method="POST", url="https://odd.example/bin", body=b"\xff\xfe" + email),
            Outbound(method="POST", url="https://odd.example/text", body=b"who: " + email),
        ]


class BadMergeTag(Tag):
    name = "acme_bad_merge"
    batching = Batching(max_items=10)

    def build(self, event: dict[str, Any], settings: Any, ctx: BuildContext) -> list:
        return [Outbound(method="POST", url="https://merge.example/", batch_item={})]

    def merge(self, outbounds: list[Outbound]) -> Outbound:
        raise ValueError("cannot merge")


class ProbeBugClient(Client):
    """A third party's client: its probe builder fails, or builds what its parser refuses."""

    name = "acme_probe_bug"

    def claim(self, request: HitRequest, settings: Any) -> bool:
        return request.path == "/acme"

    def parse(self, request: HitRequest, settings: Any, ctx: Any) -> list[dict[str, Any]]:
        raise BadRequest("no acme hit")

    def probe_requests(self, event: dict[str, Any], base: HitRequest, settings: Any) -> list:
        if event["event_name"] == "page_view":
            raise RuntimeError("probe bug")
        return [dataclasses.replace(base, path="/acme")]


class AcmePlugin:
    @hookimpl
    def register_tag_types(self, register: Callable[[Any], None]) -> None:
        for tag in (PixelTag(), RefusingTag(), BrokenTag(), OddBodyTag(), BadMergeTag()):
            register(tag)

    @hookimpl
    def register_client_types(self, register: Callable[[Any], None]) -> None:
        register(ProbeBugClient())


def acme_registry() -> Registry:
    pm = make_manager()
    pm.register(AcmePlugin(), name="acme")
    acme = build_registry(pm)
    base = registry()
    return Registry(
        clients={**base.clients, **acme.clients},
        tags={**base.tags, **acme.tags},
        variables=base.variables,
        plugins=base.plugins,
        personal_data=base.personal_data,
    )


ACME = """\
version: 1
name: acme
clients:
  - {name: acme, type: acme_probe_bug}
triggers:
  leads: {event_name: generate_lead}
tags:
  - {name: pixel, type: acme_pixel, triggers: [leads], dry_run: true, settings: {account: A-1}}
  - {name: refuser, type: acme_refuser, consent: [ad_storage], paused: true}
  - {name: broken, type: acme_broken}
  - {name: odd, type: acme_odd}
  - {name: bad_merge, type: acme_bad_merge}
"""


@pytest.fixture(scope="module")
def acme_container() -> ContainerReport:
    (container,) = run_audit(ACME, reg=acme_registry())
    return container


@pytest.fixture(scope="module")
def acme(acme_container) -> dict[str, TagReport]:
    return tags_of(acme_container)


def test_a_third_party_tag_is_audited_with_no_extra_code(acme):
    assert sends(acme["pixel"]) == {
        ("email", "clear", "query email"),
        ("phone", "sha256", "header X-Phone-Hash"),
    }


def test_paused_and_dry_run_tags_are_audited_and_marked(acme):
    pixel, refuser = acme["pixel"], acme["refuser"]
    assert (pixel.dry_run, pixel.paused, refuser.paused) == (True, False, True)
    assert pixel.probes_fired == 3
    text = report.text([ContainerReport("acme", "acme.yaml", "granted", [pixel, refuser])])
    assert "  pixel (acme_pixel) (dry run: sends nothing now)\n" in text
    assert "  refuser (acme_refuser) (paused: sends nothing now)\n" in text


def test_a_tag_that_refuses_every_probe_is_reported_so(acme):
    for name, reason in (
        ("refuser", "invalid: needs a loyalty number"),
        ("broken", "invalid: tag error (KeyError)"),
    ):
        tag = acme[name]
        assert tag.probes_fired == 0 and tag.sends == []
        assert list(tag.refused) == [reason]
        assert set(tag.refused[reason]) == {"page_view", "generate_lead", "purchase"}
    text = report.text([ContainerReport("acme", "acme.yaml", "granted", [acme["refuser"]])])
    assert "refused every probe, so what it sends is unknown" in text


def test_plugin_failures_are_reported_and_the_audit_goes_on(acme, acme_container):
    bad_merge = acme["bad_merge"]
    assert bad_merge.probes_fired == 0
    assert list(bad_merge.refused) == ["invalid: merge() failed (ValueError)"]
    assert acme_container.notes == [
        "client acme could not build its page_view probe: RuntimeError('probe bug')",
        "probe generate_lead via acme gave no event: no acme hit",
        "probe purchase via acme gave no event: no acme hit",
    ]
    assert "note: client acme could not build its page_view probe" in report.text([acme_container])


SLACK = """\
version: 1
name: alerts
tags:
  - name: sales
    type: slack
    settings: {webhook_url: "${SLACK_WEBHOOK_URL}"}
  - name: per_buyer
    type: slack
    settings: {webhook_url: "${SLACK_WEBHOOK_URL}", channel: "{{event.user_data.email_address}}"}
"""


def test_the_example_plugins_slack_tag_is_audited_with_no_extra_code():
    """examples/sgtm-slack, a third-party package found through its entry point (`make test`
    installs it): its message holds the event's name and value only, but a channel templated
    from the event would post the buyer's e-mail to Slack, and the audit shows it."""
    (container,) = run_audit(SLACK, reg=load_registry([example_plugin()]))
    sales, per_buyer = container.tags
    assert (sales.type, sales.probes_fired, sales.refused, sales.sends) == ("slack", 3, {}, [])
    assert sends(per_buyer) == {("email", "clear", "body $.channel")}
    assert "  sales (slack)\n    consent: none required; triggers: none\n    sends none" in (
        report.text([container])
    )


def test_odd_bodies_are_searched_without_failing(acme):
    assert sends(acme["odd"]) == {("email", "clear", "body")}


# -- the search --------------------------------------------------------------------------------


FIELDS = Canaries.build(registry().personal_data).fields
SEARCH = needles(FIELDS)
EMAIL, PHONE = "sgtmaudit.email@example.com", "+5511987650432"


def found(outbound: Outbound) -> set[tuple[str, str, str]]:
    return {(f.field.name, f.form, f.where) for f in find(outbound, SEARCH)}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_search_reads_json_query_headers_and_path():
    body = {
        "a": [{"e mail": EMAIL.upper()}],
        "ph": sha("5511987650432"),  # Meta's rule: digits only
        "ph2": sha(PHONE).upper() + ".AQ",  # Google's: E.164; any case, a suffix
        "ip": "203.0.113.0",
        EMAIL: 1,
    }
    outbound = Outbound(
        method="POST",
        url="https://v.example/u/sgtmaudit-user-7301/x?uid=sgtmaudit-user-7301&e="
        + "%2B5511987650432",
        headers={"X-Agent": "SgtmAuditBrowser/7.3 (fwd)"},
        body=msgspec.json.encode(body),
    )
    assert found(outbound) == {
        ("user_data.email_address", "clear", 'body $.a[0]["e mail"]'),
        ("user_data.phone_number", "sha256", "body $.ph"),
        ("user_data.phone_number", "sha256", "body $.ph2"),
        ("ip_override", "anonymized", "body $.ip"),
        ("user_data.email_address", "clear", f'body $["{EMAIL}"] (key)'),
        ("user_id", "clear", "url path"),
        ("user_id", "clear", "query uid"),
        ("user_data.phone_number", "clear", "query e"),
        ("user_agent", "clear", "header X-Agent"),
    }


def test_search_finds_digests_in_base64():
    """gtag's `em` carries SHA-256 digests as base64url; other vendors use standard base64."""

    email, phone = hashlib.sha256(EMAIL.encode()).digest(), hashlib.sha256(PHONE.encode()).digest()
    em = "tv.1~em." + base64.urlsafe_b64encode(email).decode().rstrip("=") + "~pc0.86420135"
    padded = base64.b64encode(phone).decode()
    outbound = Outbound(
        method="POST",
        url="https://v.example/g/collect?" + urlencode({"em": em, "ph": padded}),
        body=msgspec.json.encode({"lower": base64.b64encode(phone).decode().lower()}),
    )
    assert found(outbound) == {
        ("user_data.email_address", "sha256", "query em"),
        ("user_data.address.postal_code", "clear", "query em"),
        ("user_data.phone_number", "sha256", "query ph"),
    }  # base64's letter case matters: the lower-cased one is no digest


def test_search_reads_form_bodies_and_percent_encoding():
    form = Outbound(
        method="POST",
        url="https://v.example/c",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=b"em=sgtmaudit.email%40example.com&city=Sgtmauditcity",
    )
    assert found(form) == {
        ("user_data.email_address", "clear", "body em"),
        ("user_data.address.city", "clear", "body city"),
    }
    lines = Outbound(
        method="POST", url="https://v.example/c", body=b"a=1&dl=x\nuid=sgtmaudit-user-7301\n"
    )
    assert found(lines) == {("user_id", "clear", "body uid")}
    embedded = Outbound(
        method="POST",
        url="https://v.example/c",
        body=msgspec.json.encode({"u": "https://x.example/?e=sgtmaudit.email%40example.com"}),
    )
    assert found(embedded) == {("user_data.email_address", "clear", "body $.u")}


def test_normalized_values_sent_as_they_are_count_as_clear():
    body = msgspec.json.encode({"ph": "5511987650432", "fn": "SGTMAUDITFIRST", "n": "7301"})
    assert found(Outbound(method="POST", url="https://v.example/", body=body)) == {
        ("user_data.phone_number", "clear", "body $.ph"),
        ("user_data.address.first_name", "clear", "body $.fn"),
    }


def test_short_values_count_only_as_whole_values():
    body = msgspec.json.encode({"st": "qz", "word": "QZA", "country": "XZ", "h": sha("qz")})
    assert found(Outbound(method="POST", url="https://v.example/", body=body)) == {
        ("user_data.address.region", "clear", "body $.st"),
        ("user_data.address.region", "sha256", "body $.h"),
        ("user_data.address.country", "clear", "body $.country"),
    }


def test_one_place_counts_a_field_once_in_its_most_revealing_form():
    page = Canaries.build(registry().personal_data).value("page_location")
    full = Outbound(method="GET", url="https://v.example/?dl=" + page.replace("&", "%26"))
    assert ("page_location", "clear", "query dl") in found(full)
    assert ("page_location", "anonymized", "query dl") not in found(full)
    cut = Outbound(
        method="GET", url="https://v.example/?dl=https://www.shop.example/sgtmaudit-page"
    )
    assert found(cut) == {("page_location", "anonymized", "query dl")}


def test_nothing_is_found_in_requests_without_personal_data():
    outbound = Outbound(
        method="POST",
        url="https://v.example/collect?v=2",
        headers={"Content-Type": "application/json"},
        body=msgspec.json.encode({"value": 10, "currency": "USD", "n": 203011377}),
    )
    assert found(outbound) == set()


# -- the canaries ------------------------------------------------------------------------------


def test_canaries_are_distinct_and_do_not_hide_in_each_other():
    """No field's mark appears in another field's value, except the click ids the page URL
    carries on purpose: a find always names the right field."""
    for field in FIELDS:
        for mark in field.marks or (field.value,):
            for other in FIELDS:
                if other is field or (other.name == "page_location" and field.url_param):
                    continue
                assert mark.lower() not in other.value.lower(), (field.name, other.name)


def test_canaries_survive_the_built_in_normalizers():
    """Vendors hash a normalized value: the built-in tags' normalization of each canary must be
    one of the forms the search hashes, or a hashed send would go unseen."""
    from sgtm_plugins.ga4_mp import normalize as google
    from sgtm_plugins.meta_capi import normalize as meta
    from sgtm_plugins.newtail import normalize as newtail
    from sgtm_plugins.tiktok.payload import NORMALIZERS as tiktok

    from sgtm.kit.hashing import e164

    value = {f.name: f.value for f in CORE}
    checks = [
        ("user_data.email_address", google.google_email),
        ("user_data.email_address", newtail.newtail_email),
        ("user_data.phone_number", e164),
        ("user_data.address.first_name", google.google_name),
        ("user_data.address.first_name", newtail.newtail_text),
        ("user_data.address.street", google.google_street),
        ("user_data.address.city", google.google_city),
        ("user_data.address.region", google.google_region),
        ("user_data.address.postal_code", google.google_postal_code),
        ("user_data.address.country", google.google_country),
        ("user_data.email_address", lambda v: meta.normalize("em", v)),
        ("user_data.phone_number", lambda v: meta.normalize("ph", v)),
        ("user_data.address.last_name", lambda v: meta.normalize("ln", v)),
        ("user_data.address.city", lambda v: meta.normalize("ct", v)),
        ("user_data.address.region", lambda v: meta.normalize("st", v)),
        ("user_data.address.postal_code", lambda v: meta.normalize("zp", v)),
        ("user_data.address.country", lambda v: meta.normalize("country", v)),
        ("user_id", lambda v: meta.normalize("external_id", v)),
        *(
            (name, lambda v, field=field: tiktok[field](v, None))
            for name, field in (
                ("user_data.email_address", "email"),
                ("user_data.phone_number", "phone"),
                ("user_data.address.first_name", "first_name"),
                ("user_data.address.last_name", "last_name"),
                ("user_data.address.postal_code", "zip_code"),
                ("user_id", "external_id"),
            )
        ),
    ]
    for name, normalize in checks:
        assert normalize(value[name]) in normal_forms(value[name]), name
    assert meta.normalize("db", "1987-06-12", current_year=2023) in normal_forms("1987-06-12")
    assert newtail.newtail_social_id("73029183746") in normal_forms("73029183746")


# -- --deny ------------------------------------------------------------------------------------


CATEGORIES = Canaries.build(registry().personal_data).categories()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("clear", "expected FORM:CATEGORY"),
        ("hashed:email", "expected FORM:CATEGORY"),
        ("clear:emial", "unknown category 'emial'"),
        ("", "expected FORM:CATEGORY"),
        ("clear:email:x", "unknown category 'email:x'"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(raw, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Rule.parse(raw, CATEGORIES)


def test_rules_deny_what_they_name(direct):
    reports = [ContainerReport("direct", "shop.yaml", "granted", list(direct.values()))]

    def denied(rule: str) -> set[str]:
        found = report.violations(reports, [Rule.parse(rule, CATEGORIES)])
        return {re.search(r"tag (\S+)", v)[1] for v in found}  # type: ignore[index]

    assert denied("clear:email") == {
        "rdstation",
        "salesforce_lead",
        "responsys_list",
        "responsys_event",
        "hubspot",
        "whatsapp",
        "webhook",
    }
    assert denied("sha256:email") == {"meta", "ga4_mp", "newtail", "ga4", "tiktok"}
    # meta and ga4_mp require consent; the ga4 tag does not (gtag's hits carry their own).
    assert denied("ungated:ip") == {"ga4", "webhook"}
    assert denied("sent:date_of_birth") == {"meta", "webhook"}
    assert denied("sent:lead_id") == {"meta", "ga4_mp", "ga4", "read_lead", "webhook"}
    assert denied("anonymized:*") == set()
    assert "ga4_mp" not in denied("ungated:*")
    (line,) = report.violations(reports, [Rule.parse("clear:national_id", CATEGORIES)])
    assert line == (
        "denied clear:national_id: container direct, tag webhook (http_request) sends"
        " national_id clear at body $.user_data.social_id"
    )


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path) -> Callable[..., tuple[int, str, str]]:
    """`sgtm ...` in this process (the command is a pure function of its files)."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def not_warnings(stderr: str) -> list[str]:
    """stderr without the loader's warnings (these containers have no clients: events only)."""
    return [line for line in stderr.splitlines() if not line.startswith("warning: ")]


def tag_names(violations: list[str]) -> set[str]:
    return {re.search(r"tag (\S+)", line)[1] for line in violations}  # type: ignore[index]


def test_cli_deny_fails_with_each_violation(tmp_path):
    """The installed command, end to end: exit 1, every violation on stderr."""
    (tmp_path / "shop.yaml").write_text(DIRECT)
    done = subprocess.run(
        [sys.executable, "-m", "sgtm", "audit", "shop.yaml", "--deny", "clear:email"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**ENV, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1, done.stderr
    assert "  webhook (http_request)\n" in done.stdout
    violations = not_warnings(done.stderr)
    assert (
        "denied clear:email: container direct, tag webhook (http_request) sends email clear at"
        " body $.user_data.email_address"
    ) in violations
    assert tag_names(violations) == {
        "rdstation",
        "salesforce_lead",
        "responsys_list",
        "responsys_event",
        "hubspot",
        "whatsapp",
        "webhook",
    }


def test_cli_json_and_several_rules(cli, tmp_path):
    (tmp_path / "shop.yaml").write_text(DIRECT)
    code, out, err = cli(
        "audit", "shop.yaml", "--json", "--deny", "clear:date_of_birth", "--deny", "ungated:ip"
    )
    assert code == 1
    assert not_warnings(err) == [  # in the report's order
        "denied ungated:ip: container direct, tag ga4 (ga4) sends ip clear at query _uip",
        "denied ungated:ip: container direct, tag webhook (http_request) sends ip clear at"
        " body $.ip_override",
        "denied clear:date_of_birth: container direct, tag webhook (http_request) sends"
        " date_of_birth clear at body $.user_data.date_of_birth",
    ]
    (container,) = json.loads(out)["containers"]
    meta = container["tags"][0]
    assert {k: meta[k] for k in ("name", "type", "consent", "triggers")} == {
        "name": "meta",
        "type": "meta_capi",
        "consent": ["ad_storage", "ad_user_data"],
        "triggers": ["purchase"],
    }
    assert meta["sends"][0] == {
        "category": "email",
        "form": "sha256",
        "where": "body $.data[0].user_data.em",
        "fields": ["user_data.email_address"],
    }
    newtail = next(tag for tag in container["tags"] if tag["name"] == "newtail")
    assert newtail["refused"][0]["probes"] == ["page_view"]


def test_cli_passes_a_container_that_keeps_its_rules(cli, tmp_path):
    (tmp_path / "shop.yaml").write_text(
        "version: 1\ntags:\n  - name: meta\n    type: meta_capi\n    consent: [ad_storage]\n"
        '    settings: {pixel_id: "1", access_token: "${META_TOKEN}"}\n'
    )
    code, out, err = cli("audit", "shop.yaml", "--deny", "clear:email", "--deny", "ungated:*")
    assert (code, not_warnings(err)) == (0, [])
    assert "    email          sha256      body $.data[0].user_data.em\n" in out


def test_cli_bad_input(cli, tmp_path):
    (tmp_path / "bad.yaml").write_text("version: 1\ntags: [{name: x, type: nosuch}]\n")
    code, _, err = cli("audit", "bad.yaml", "--deny", "clear:emial")
    assert code == 2 and "unknown category 'emial'" in err
    code, _, err = cli("audit", "bad.yaml")
    assert code == 1 and "unknown tag type 'nosuch'" in err
    code, _, err = cli("audit", "missing.yaml")
    assert code == 1 and "missing.yaml" in err
    (tmp_path / "empty").mkdir()
    code, _, err = cli("audit", "empty")
    assert code == 1 and "no *.yaml container files found" in err


def test_privacy_page_shows_what_audit_prints(cli, tmp_path, monkeypatch):
    """docs/privacy.md: its container, audited, prints its text and JSON, and breaks its rules."""
    page = (ROOT / "docs" / "privacy.md").read_text()
    fences = re.findall(r"```(\w*)\n(.*?)```", page, re.S)
    (config,) = [text for lang, text in fences if lang == "yaml" and text.startswith("version")]
    (printed,) = [text for lang, text in fences if lang == "text"]
    (shape,) = [json.loads(text) for lang, text in fences if lang == "json"]
    (denied,) = [text for lang, text in fences if lang == "" and text.startswith("denied")]
    (tmp_path / "shop.yaml").write_text(config)
    monkeypatch.setenv("META_ACCESS_TOKEN", "x")
    monkeypatch.setenv("GA4_API_SECRET", "y")
    assert cli("audit", "shop.yaml") == (0, printed, "")
    code, out, _ = cli("audit", "shop.yaml", "--json")
    (container,) = json.loads(out)["containers"]
    (documented,) = shape["containers"]
    assert {**container, "tags": []} == {**documented, "tags": []}
    assert [t for t in container["tags"] if t["name"] == "crm"] == documented["tags"]
    code, _, err = cli("audit", "shop.yaml", "--deny", "clear:email", "--deny", "ungated:phone")
    assert (code, err) == (1, denied)
