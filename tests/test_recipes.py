"""docs/recipes.md, as written: each container loads, fires on what it says, and what it builds is
accepted by a fake of the vendor that checks the vendor's documented payload."""

from __future__ import annotations

import json
from typing import Any

from sgtm.testing import Harness
from tests.plugins.s2s_fakes import SLACK_PATH, FakeSlack
from tests.servers import FakeVendor, Received
from tests.test_docs import blocks

RECIPES = [text for file, _, text in blocks("yaml") if file == "docs/recipes.md"]
SLACK_TOKEN = SLACK_PATH.removeprefix("/services/")
N8N_KEY = "n8n-header-auth-value-0123"
ENV = {
    "CRM_WEBHOOK_SECRET": "crm-secret-0123456789",
    "CRM_API_KEY": "crm-api-key-0123456789",
    "SLACK_WEBHOOK_TOKEN": SLACK_TOKEN,
    "N8N_WEBHOOK_KEY": N8N_KEY,
}


def recipe(marker: str, host: str, fake_url: str) -> Harness:
    (text,) = [t for t in RECIPES if marker in t]
    return Harness(text.replace(host, fake_url), environ=ENV, file="recipes.md")


def lead(**values: Any) -> dict[str, Any]:
    return {
        "event_name": "generate_lead",
        "event_id": "L-4711",
        "user_data": {
            "email_address": "ana@example.com",
            "phone_number": "+55 11 91234-5678",
            "address": {"first_name": "Ana"},
        },
        "lead_source": "meta_ads",
        **values,
    }


def test_the_page_has_both_recipes():
    assert len(RECIPES) == 2


async def test_slack_gets_a_block_kit_message_for_a_hot_lead_only():
    with FakeSlack() as slack:
        harness = recipe("slack_hot_lead", "https://hooks.slack.com", slack.url)
        await harness.events(lead(lead_score=42), lead(lead_score=91))
        (delivered,) = await harness.deliver()
    assert slack.errors == []
    assert delivered.outcome == "done"
    (post,) = slack.posts
    assert post["text"] == "New hot lead"
    assert post["blocks"][0]["text"]["text"] == "New hot lead (score 91)"
    assert [f["text"] for f in post["blocks"][1]["fields"]] == [
        "Name: Ana",
        "E-mail: ana@example.com",
        "Phone: +55 11 91234-5678",
        "Source: meta_ads",
    ]


async def test_a_lead_named_to_ping_the_channel_pings_nobody():
    hostile = lead(lead_score=99, lead_source="<!here> <https://evil.example|click>")
    hostile["user_data"]["address"]["first_name"] = "<!channel>"
    with FakeSlack() as slack:
        harness = recipe("slack_hot_lead", "https://hooks.slack.com", slack.url)
        await harness.events(hostile)
        (delivered,) = await harness.deliver()
    assert slack.errors == [] and delivered.outcome == "done"
    fields = [f["text"] for f in slack.posts[0]["blocks"][1]["fields"]]
    assert fields[0] == "Name: <!channel>"  # shown as typed, in plain text


def test_the_slack_host_is_fixed_and_only_the_token_comes_from_the_environment():
    (text,) = [t for t in RECIPES if "slack_hot_lead" in t]
    assert "hooks.slack.com/services/${SLACK_WEBHOOK_TOKEN}" in text


def n8n_check(got: Received) -> str | None:
    """n8n's Webhook node with Header Auth: the header must match; the body is the JSON sent."""
    if got.method != "POST" or got.path != "/webhook/new-lead":
        return f"{got.method} {got.path}: the workflow listens on POST /webhook/new-lead"
    if got.headers.get("x-n8n-key") != N8N_KEY:
        return "Authorization data is wrong!"  # what n8n answers (403)
    if not got.headers.get("content-type", "").startswith("application/json"):
        return "not JSON"
    if not got.headers.get("idempotency-key"):
        return "no Idempotency-Key"
    return None


async def test_n8n_gets_the_lead_with_its_header_auth_and_idempotency_key():
    with FakeVendor(check=n8n_check) as n8n:
        harness = recipe("n8n_new_lead", "https://n8n.shop.example", n8n.url)
        await harness.events(lead())
        (built,) = harness.built
        assert built.outbound.timeout == 30
        (delivered,) = await harness.deliver()
        (got,) = n8n.received
    assert n8n.errors == [] and delivered.outcome == "done"
    assert got.headers["idempotency-key"] == "L-4711"
    assert json.loads(got.body) == {
        "event": "generate_lead",
        "lead_id": "L-4711",
        "email": "ana@example.com",
        "phone": "+55 11 91234-5678",
        "first_name": "Ana",
        "source": "meta_ads",
    }


async def test_an_inactive_n8n_workflow_is_a_dead_letter_and_an_outage_is_retried():
    with FakeVendor(responses=[503, 404]) as n8n:
        harness = recipe("n8n_new_lead", "https://n8n.shop.example", n8n.url)
        await harness.events(lead())
        (outage,) = await harness.deliver()
        (inactive,) = await harness.deliver()  # the retried request, sent again
    assert [d.outcome for d in (outage, inactive)] == ["retry", "dead"]
