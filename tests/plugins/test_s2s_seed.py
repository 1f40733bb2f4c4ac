"""The seed's lead flow on the real `sgtm serve`: a CRM posts a signed webhook with a new lead; the
`webhook` client makes it a `generate_lead` event; HubSpot gets the contact upserted, the sales
team gets a WhatsApp template message, Slack gets a hot-lead message. Each vendor is a fake on
loopback that checks its documented payload; the CRM's resend changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from tests.plugins.crm_fakes import FAST_DELIVERY, serve, wait_until
from tests.plugins.s2s_fakes import (
    HUBSPOT_TOKEN,
    PHONE_NUMBER_ID,
    SLACK_PATH,
    WHATSAPP_TOKEN,
    FakeHubSpot,
    FakeSlack,
    FakeWhatsApp,
)

CRM_SECRET = "crm-signing-secret-0123456789"
SALES = "+55 11 99999-0000"

CONTAINER = """
version: 1
clients:
  - name: crm
    type: webhook
    settings:
      path: /webhooks/crm
      signature: {{secret: "${{CRM_WEBHOOK_SECRET}}", header: X-Webhook-Signature}}
      event_name_field: event
      map:
        user_data.email_address: lead.email
        user_data.phone_number: lead.phone
        user_data.address.first_name: lead.first_name
        user_data.address.last_name: lead.last_name
        lead_source: lead.source
        lead_score: lead.score
      id_field: lead.id
triggers:
  new_lead: {{event_name: lead.created}}
  hot_lead:
    all:
      - {{event_name: lead.created}}
      - {{key: lead_score, gte: 80}}
tags:
  - name: hubspot
    type: hubspot
    triggers: [new_lead]
    delivery: {{linger: 0.2s}}
    settings:
      access_token: "${{HUBSPOT_TOKEN}}"
      endpoint: "{hubspot}"
      lifecycle_stage: lead
      properties: {{lead_source: "{{{{event.lead_source}}}}"}}
  - name: sales_whatsapp
    type: whatsapp
    triggers: [new_lead]
    settings:
      phone_number_id: "{phone_number_id}"
      access_token: "${{WHATSAPP_TOKEN}}"
      endpoint: "{whatsapp}"
      template: novo_lead
      language: pt_BR
      to: "{sales}"
      body_parameters:
        - "{{{{event.user_data.address.first_name}}}}"
        - "{{{{event.user_data.email_address}}}}"
        - "{{{{event.lead_source}}}}"
  - name: slack_hot_lead
    type: http_request
    triggers: [hot_lead]
    settings:
      url: "{slack}/services/${{SLACK_WEBHOOK_TOKEN}}"
      body:
        text: "New hot lead"
        blocks:
          - type: section
            fields:
              - {{type: plain_text, text: "Name: {{{{event.user_data.address.first_name}}}}"}}
              - {{type: plain_text, text: "E-mail: {{{{event.user_data.email_address}}}}"}}
"""


def signed_post(server_url: str, payload: dict) -> httpx.Response:
    body = json.dumps(payload).encode()
    digest = hmac.new(CRM_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "x-webhook-signature": f"sha256={digest}"}
    return httpx.post(f"{server_url}/webhooks/crm", content=body, headers=headers, timeout=10)


def lead(lead_id: str, first_name: str, email: str, score: int) -> dict:
    return {
        "event": "lead.created",
        "lead": {
            "id": lead_id,
            "email": email,
            "phone": "+55 81 98888-7777",
            "first_name": first_name,
            "last_name": "Souza",
            "source": "site",
            "score": score,
        },
    }


def first_parameter(message: dict) -> str:
    return message["template"]["components"][0]["parameters"][0]["text"]


def test_a_signed_crm_lead_reaches_hubspot_whatsapp_and_slack_once(tmp_path):
    with FakeHubSpot() as hubspot, FakeWhatsApp() as whatsapp, FakeSlack() as slack:
        container = CONTAINER.format(
            hubspot=hubspot.url,
            whatsapp=whatsapp.url,
            slack=slack.url,
            phone_number_id=PHONE_NUMBER_ID,
            sales=SALES,
        )
        env = {
            "CRM_WEBHOOK_SECRET": CRM_SECRET,
            "HUBSPOT_TOKEN": HUBSPOT_TOKEN,
            "WHATSAPP_TOKEN": WHATSAPP_TOKEN,
            "SLACK_WEBHOOK_TOKEN": SLACK_PATH.removeprefix("/services/"),
        }
        with serve(tmp_path, container, {**FAST_DELIVERY, **env}) as server:
            hot = lead("L-1", "Ana", "Ana@Example.com", 92)
            answers = [signed_post(server.url, hot) for _ in range(2)]  # the CRM resends
            assert [(a.status_code, a.json()) for a in answers] == [
                (202, {"status": "accepted"})
            ] * 2
            cold = lead("L-2", "Caio", "caio@example.com", 15)
            assert signed_post(server.url, cold).status_code == 202
            wait_until(lambda: len(hubspot.contacts) == 2 and len(whatsapp.messages) == 2)
            wait_until(lambda: len(slack.posts) == 1)
            logs = server.logs()
    assert hubspot.errors == [] and whatsapp.errors == [] and slack.errors == []

    assert hubspot.contacts["ana@example.com"] | {"hs_object_id": "-"} == {
        "hs_object_id": "-",
        "email": "ana@example.com",
        "firstname": "Ana",
        "lastname": "Souza",
        "phone": "+55 81 98888-7777",
        "lead_source": "site",
        "lifecyclestage": "lead",
    }
    assert sum(hubspot.batches) == 2  # one upsert per lead: the resend made none

    ana, caio = sorted(whatsapp.messages, key=first_parameter)
    assert ana["to"] == caio["to"] == "5511999990000"  # the sales team's number
    assert ana["template"]["name"] == "novo_lead"
    assert [p["text"] for p in ana["template"]["components"][0]["parameters"]] == [
        "Ana",
        "Ana@Example.com",  # as the CRM wrote it: HubSpot's copy is normalized, the text is not
        "site",
    ]

    (post,) = slack.posts  # only the hot lead
    assert [f["text"] for f in post["blocks"][0]["fields"]] == [
        "Name: Ana",
        "E-mail: Ana@Example.com",
    ]
    for secret in (CRM_SECRET, HUBSPOT_TOKEN, WHATSAPP_TOKEN, SLACK_PATH):
        assert secret not in logs


def test_placeholder_syntax_in_a_lead_reaches_the_vendors_as_text(tmp_path):
    """A lead named like sgtm's own placeholders must not pull a secret into a message."""
    with FakeHubSpot() as hubspot, FakeWhatsApp() as whatsapp, FakeSlack() as slack:
        container = CONTAINER.format(
            hubspot=hubspot.url,
            whatsapp=whatsapp.url,
            slack=slack.url,
            phone_number_id=PHONE_NUMBER_ID,
            sales=SALES,
        )
        env = {
            "CRM_WEBHOOK_SECRET": CRM_SECRET,
            "HUBSPOT_TOKEN": HUBSPOT_TOKEN,
            "WHATSAPP_TOKEN": WHATSAPP_TOKEN,
            "SLACK_WEBHOOK_TOKEN": SLACK_PATH.removeprefix("/services/"),
        }
        names = ["{{secret.WHATSAPP_TOKEN}}", "{{credential}}", "${HUBSPOT_TOKEN}"]
        with serve(tmp_path, container, {**FAST_DELIVERY, **env}) as server:
            for i, name in enumerate(names):
                payload = lead(f"H-{i}", name, f"h{i}@example.com", 95)
                assert signed_post(server.url, payload).status_code == 202
            wait_until(lambda: len(whatsapp.messages) == 3 and len(slack.posts) == 3)
            wait_until(lambda: len(hubspot.contacts) == 3)
    assert sorted(map(first_parameter, whatsapp.messages)) == sorted(names)
    assert sorted(p["blocks"][0]["fields"][0]["text"] for p in slack.posts) == sorted(
        f"Name: {n}" for n in names
    )
    assert sorted(c["firstname"] for c in hubspot.contacts.values()) == sorted(names)
