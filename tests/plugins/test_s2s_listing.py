"""The server-to-server types are installed like every built-in: `sgtm plugins` lists them, `sgtm
schema` describes their settings (secrets write-only), and the containers on their docs pages
validate against that schema as editors would check them."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from sgtm.cli import main
from tests.test_docs import blocks

CLIENTS = {"webhook": "webhook", "meta_leadgen": "meta_leadgen", "ga4_mp": "ga4_mp"}
TAGS = {"hubspot": "hubspot", "whatsapp": "whatsapp", "meta_leadgen": "meta_lead"}
PAGES = [
    "docs/clients/webhook.md",
    "docs/clients/meta_leadgen.md",
    "docs/clients/ga4_mp.md",
    "docs/tags/hubspot.md",
    "docs/tags/whatsapp.md",
    "docs/tags/meta_lead.md",
    "docs/recipes.md",
]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


@pytest.fixture
def schema(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(run(capsys, "schema"))


def test_sgtm_plugins_lists_the_clients_and_tags(capsys):
    listing = run(capsys, "plugins")
    for plugin, client in CLIENTS.items():
        assert f"\n{plugin} 0.1.0\n  clients: {client}\n" in f"\n{listing}"
    for plugin, tag in TAGS.items():
        assert f"  tags: {tag}\n" in listing.split(f"{plugin} 0.1.0\n", 1)[1]


def test_sgtm_schema_has_their_settings_with_secrets_write_only(schema):
    clients = {
        v["properties"]["type"]["const"] for v in schema["properties"]["clients"]["items"]["oneOf"]
    }
    tags = {
        v["properties"]["type"]["const"] for v in schema["properties"]["tags"]["items"]["oneOf"]
    }
    assert set(CLIENTS.values()) <= clients and set(TAGS.values()) <= tags
    defs = schema["$defs"]
    for name, field in [
        ("Signature", "secret"),
        ("MetaLeadgenSettings", "app_secret"),
        ("MetaLeadgenSettings", "verify_token"),
        ("HubSpotSettings", "access_token"),
        ("WhatsAppSettings", "access_token"),
        ("MetaLeadSettings", "access_token"),
    ]:
        assert defs[name]["properties"][field]["writeOnly"] is True, (name, field)
    assert defs["WebhookSettings"]["properties"]["api_keys"]["items"]["writeOnly"] is True
    assert defs["Ga4MpClientSettings"]["properties"]["api_secrets"]["items"]["writeOnly"] is True
    for name in ("HubSpotSettings", "WhatsAppSettings", "MetaLeadSettings"):
        assert defs[name]["properties"]["endpoint"]["format"] == "uri"


def test_the_docs_containers_validate_against_the_schema(schema):
    validator = jsonschema.Draft202012Validator(schema)
    for page in PAGES:
        containers = [t for f, _, t in blocks("yaml") if f == page and t.startswith("version: 1")]
        assert containers, page
        for text in containers:
            validator.validate(yaml.safe_load(text))
