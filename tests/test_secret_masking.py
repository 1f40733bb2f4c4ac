"""Which values are secrets (issue #8, item 8): a value is masked and sealed because of the field
it fills (plugins declare `Secret` settings) or because the container lists it under `secrets:`,
whatever its environment variable is called; and what the logs show of a request (item 9)."""

from __future__ import annotations

import json
import logging

import pytest
from sgtm_plugins.http_request import HttpRequestTag

from sgtm.config import load_text
from sgtm.delivery.seal import SecretSeal
from sgtm.plugin import BuildContext, ContainerInfo
from sgtm.redact import Redactor, log_view
from sgtm.testing import Harness
from sgtm.yamlsource import ConfigErrors
from tests.installed import registry

META = """\
version: 1
triggers: {all: {all: []}}
tags:
  - name: meta
    type: meta_capi
    triggers: [all]
    settings: {pixel_id: "1234567890123456", access_token: %s}
"""
PURCHASE = {
    "event_name": "purchase",
    "currency": "BRL",
    "value": 10,
    "page_location": "https://shop.test/p",
    "user_agent": "Mozilla/5.0",
    "ip_override": "203.0.113.9",
}


def load(text: str, env: dict[str, str] | None = None):
    return load_text(text, "shop.yaml", registry(), environ=env or {})


async def meta_url(text: str, env: dict[str, str]) -> str:
    harness = Harness(text, environ=env)
    result = await harness.events(PURCHASE)
    (request,) = result.requests("meta")
    return request.url


async def test_a_declared_secret_is_masked_whatever_its_variable_is_called():
    env = {"FB_CAPI_AUTH": "EAAB-not-a-secret-looking-name"}
    spec = load(META % '"${FB_CAPI_AUTH}"', env)
    assert spec.secrets == {"EAAB-not-a-secret-looking-name": "FB_CAPI_AUTH"}
    redact = Redactor(spec.secrets)
    url = await meta_url(META % '"${FB_CAPI_AUTH}"', env)
    assert redact(url).endswith("access_token=${FB_CAPI_AUTH}")


def test_a_secret_written_in_the_file_is_masked_and_warned_about():
    spec = load(META % "EAAB-literal-token-in-the-file")
    assert spec.secrets == {"EAAB-literal-token-in-the-file": "TAGS_0_SETTINGS_ACCESS_TOKEN"}
    (warning,) = [w for w in spec.warnings if w.path != "clients"]
    assert str(warning).startswith("shop.yaml:7:")
    assert "take it from the environment" in warning.message


def test_values_of_listed_secrets_are_masked_wherever_they_are_used():
    text = """\
version: 1
secrets: [HOOK_CODE, UNUSED]
triggers: {all: {all: []}}
tags:
  - name: hook
    type: http_request
    triggers: [all]
    settings:
      url: "https://hooks.test/in?code=${HOOK_CODE}"
"""
    spec = load(text, {"HOOK_CODE": "c0de-from-the-env"})
    assert spec.secrets == {"c0de-from-the-env": "HOOK_CODE"}
    assert [w.path for w in spec.warnings if w.path != "clients"] == ["secrets[1]"]


def test_a_secret_never_comes_from_event_data():
    with pytest.raises(ConfigErrors) as caught:
        load(META % '"{{event.token}}"')
    assert "a secret cannot come from event data ({{event.token}})" in str(caught.value)


def test_a_secret_picked_by_a_lookup_masks_every_value_the_lookup_can_give():
    text = """\
version: 1
variables:
  account_token:
    type: lookup
    input: page_hostname
    map: {a.test: "${TOKEN_OF_A}", b.test: "${TOKEN_OF_B}"}
triggers: {all: {all: []}}
tags:
  - name: meta
    type: meta_capi
    triggers: [all]
    settings: {pixel_id: "1234567890123456", access_token: "{{account_token}}"}
"""
    spec = load(text, {"TOKEN_OF_A": "token-of-shop-a", "TOKEN_OF_B": "token-of-shop-b"})
    assert spec.secrets == {"token-of-shop-a": "TOKEN_OF_A", "token-of-shop-b": "TOKEN_OF_B"}


def test_short_secrets_are_masked_as_whole_tokens_only():
    redact = Redactor({"s": "S", "abc": "ABC"})
    assert redact("is this abc? key=abc&s=s") == "is this ${ABC}? key=${ABC}&${S}=${S}"
    seal = SecretSeal({"abc": "ABC"})
    assert seal._pattern is not None and seal._pattern.sub("#", "abcd abc") == "abcd #"


def test_secret_looking_names_stay_a_safety_net_for_values_of_four_or_more_characters():
    text = """\
version: 1
triggers: {all: {all: []}}
tags:
  - name: hook
    type: http_request
    triggers: [all]
    settings:
      url: "https://hooks.test/in?k=${PARTNER_API_KEY}&n=${RETRY_KEY}"
"""
    spec = load(text, {"PARTNER_API_KEY": "partner-key-1", "RETRY_KEY": "3"})
    assert spec.secrets == {"partner-key-1": "PARTNER_API_KEY"}


# -- what the logs show of a request (item 9) ---------------------------------------------------


def test_a_request_is_logged_by_its_shape():
    tag = HttpRequestTag()
    body = {"email": "ana@example.com", "ip": "203.0.113.9", "value": 10, "items": [{"id": "x"}]}
    settings = tag.Settings(url="https://hooks.test/in", body=body)
    ctx = BuildContext(tag_name="t", container=ContainerInfo(name="c"), now=0.0)
    (request,) = tag.build({}, settings, ctx)
    request.url = "https://hooks.test/in/path?gclid=Cj0-visitor-click&email=ana%40example.com"
    view = log_view(request, Redactor({}))
    assert view == {
        "url": "https://hooks.test/in/path",
        "query": ["gclid", "email"],
        "bytes": len(request.body),
    }
    assert "ana@" not in json.dumps(view) and "203.0.113" not in json.dumps(view)
    full = log_view(request, Redactor({}), full=True)
    assert "ana@example.com" in full["body"] and "gclid=Cj0" in full["url"]


async def test_dry_run_lines_carry_no_visitor_data_at_info(caplog):
    text = """\
version: 1
clients: [{name: ga4, type: ga4}]
triggers: {all: {all: []}}
tags:
  - name: hook
    type: http_request
    triggers: [all]
    dry_run: true
    settings: {url: "https://hooks.test/in?e={{event.event_name}}&gclid={{event.gclid}}"}
"""
    harness = Harness(text)
    caplog.set_level(logging.INFO, logger="sgtm.container")
    await harness.request(
        "/g/collect?v=2&tid=G-1&cid=1.2&en=purchase&ep.gclid=Cj0visitor"
        "&ep.user_data.email_address=ana%40example.com&_uip=198.51.100.7"
    )
    (record,) = [r for r in caplog.records if r.getMessage() == "dry_run request"]
    line = json.dumps(record.__dict__, default=str)
    for visitor_value in ("Cj0visitor", "ana@example.com", "198.51.100", "ana%40example.com"):
        assert visitor_value not in line
    assert record.__dict__["query"] == ["e", "gclid"]
