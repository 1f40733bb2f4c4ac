"""No text from a hit can become a secret (issue #8, item 1): for every built-in client and every
built-in tag, a hit whose values are placeholder syntax (`{{secret.NAME}}`, `{{credential}}`)
makes the vendors receive exactly the secrets the config sends them, where it sends them, and
nothing more, in URLs, headers and bodies.

Each scenario runs twice through the engine's real send path (sgtm.testing: merge, sealing,
credentials, one request per lane), once with a plain hit and once with the hostile one; every
secret and every run-time token must occur as often in what the vendors received both times.
"""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

from sgtm.testing import Harness, MockTransport

SECRETS = {
    "META_TOKEN": "EAAB-meta-secret-value-1",
    "GA_API_SECRET": "ga-secret-value-2",
    "HOOK_SIGNING": "hook-signing-secret-3",
    "HOOK_BEARER": "hook-bearer-secret-4",
    "RD_API_KEY": "rd-api-key-secret-5",
    "SF_CLIENT_SECRET": "sf-client-secret-6",
    "RESPONSYS_PASSWORD": "responsys-password-7",
    "TIKTOK_TOKEN": "tiktok-token-secret-10",
}
TOKENS = {"sf": "sf-token-value-8", "rs": "rs-token-value-9"}

CONTAINER = """\
version: 1
secrets: [HOOK_BEARER]
clients:
  - {name: ga4, type: ga4}
  - {name: datalayer, type: datalayer}
triggers:
  all: {all: []}
tags:
  - name: hook
    type: http_request
    triggers: [all]
    settings:
      url: "https://hooks.test/in/{{event.uid}}?q={{event.uid}}"
      headers: {Authorization: "Bearer ${HOOK_BEARER}", X-Uid: "{{event.uid}}"}
      hmac_secret: "${HOOK_SIGNING}"
  - name: meta
    type: meta_capi
    triggers: [all]
    settings: {pixel_id: "1234567890123456", access_token: "${META_TOKEN}"}
  - name: ga4_mp
    type: ga4_mp
    triggers: [all]
    settings: {measurement_id: G-TEST01, api_secret: "${GA_API_SECRET}"}
  - name: ga4
    type: ga4
    triggers: [all]
    settings: {measurement_id: G-TEST01, region: eu}
  - name: rd
    type: rdstation
    triggers: [all]
    settings: {api_key: "${RD_API_KEY}", conversion_identifier: "{{event.uid}}"}
  - name: sf
    type: salesforce
    triggers: [all]
    settings:
      instance_url: https://acme.my.salesforce.com
      client_id: sf-client
      client_secret: "${SF_CLIENT_SECRET}"
      subject: "{{event.event_name}} {{event.uid}}"
  - name: rs
    type: responsys
    triggers: [all]
    settings:
      login_url: https://login5.responsys.net
      username: api_user
      password: "${RESPONSYS_PASSWORD}"
      list_name: CONTACTS
  - name: tiktok
    type: tiktok
    triggers: [all]
    settings: {pixel_code: C4A1B2C3D4E5F6G7H8I9, access_token: "${TIKTOK_TOKEN}"}
"""


def hostile_text(name: str) -> str:
    """Placeholder syntax for one secret in each of its forms, and for run-time tokens; short
    enough that every tag still accepts the fields it lands in."""
    return (
        f"{{{{secret.{name}}}}}{{{{secret.{name}|url}}}}{{{{secret.{name}|url+}}}}"
        "{{credential}}{{credential.endpoint}}{{credential.instance_url}}"
    )


def reply(got, status):  # the vendors' token endpoints, and a plain success for the rest
    if got.path.endswith("/oauth2/token"):
        answer = {"access_token": TOKENS["sf"], "instance_url": "https://acme.my.salesforce.com"}
        return json.dumps(answer).encode()
    if got.path.endswith("/auth/token"):
        return json.dumps({"authToken": TOKENS["rs"], "endPoint": "https://api5.rs.test"}).encode()
    return b"{}"


def occurrences(vendor: MockTransport) -> dict[str, int]:
    """How often each secret and token reached a vendor, in any of its encoded forms."""
    text = "\n".join(
        f"{r.method} {r.path}?{r.query} {json.dumps(r.headers)} "
        + r.body.decode("utf-8", "replace")
        for r in vendor.received
    )
    counts = {}
    for name, value in [*SECRETS.items(), *TOKENS.items()]:
        forms = {value, quote(value, safe=""), quote_plus(value)}
        counts[name] = sum(text.count(form) for form in forms)
    return counts


async def delivered(uid: str, via: str) -> dict[str, int]:
    harness = Harness(CONTAINER, environ=SECRETS)
    user = {"email_address": "ana@example.com", "phone_number": "+5511999990000"}
    if via == "ga4":
        query = (
            "v=2&tid=G-TEST01&cid=1.2&en=purchase&cu=BRL&epn.value=3&dl=https%3A%2F%2Fshop.test%2F"
            f"&ep.uid={quote(uid)}&ep.transaction_id={quote(uid)}&uid={quote(uid)}"
            "&ep.user_data.email_address=ana%40example.com"
            f"&ep.user_data.address.first_name={quote(uid)}&pr1=id{quote(uid)}~nm{quote(uid)}"
        )
        result = await harness.request(
            f"/g/collect?{query}", headers={"user-agent": f"Mozilla/5.0 {uid}"}
        )
    elif via == "datalayer":
        push = {
            "event": "purchase",
            "uid": uid,
            "page_location": "https://shop.test/",
            "user_data": {**user, "first_name": uid},
            "ecommerce": {"transaction_id": uid, "value": 10, "currency": "BRL"},
        }
        result = await harness.request(
            "/data",
            method="POST",
            headers={"content-type": "text/plain", "user-agent": "Mozilla/5.0"},
            body=json.dumps(push),
        )
    else:
        event = {
            "event_name": "purchase",
            "client_id": "1.2",
            "uid": uid,
            "event_id": uid,
            "transaction_id": uid,
            "currency": "BRL",
            "value": 3,
            "page_location": f"https://shop.test/?q={uid}",
            "user_agent": uid,
            "user_data": {**user, "address": {"first_name": uid, "city": uid}},
            "items": [{"item_id": uid, "item_name": uid, "price": 1}],
        }
        result = await harness.events(event)
    assert result.status in (None, 200, 202, 204), result.error
    vendor = MockTransport(reply=reply)
    await harness.deliver(vendor)
    hosts = {r.host for r in vendor.received}
    assert len(hosts) == 9, hosts  # every vendor was reached (two of them log in first)
    return occurrences(vendor)


@pytest.mark.parametrize("via", ["ga4", "datalayer", "events"])
async def test_a_hit_full_of_placeholders_sends_no_more_secret_than_a_plain_one(via):
    plain = await delivered("plain-value", via)
    sent = ("META_TOKEN", "TIKTOK_TOKEN", "HOOK_BEARER", "sf", "rs")
    assert all(plain[name] for name in sent), plain
    assert plain["HOOK_SIGNING"] == 0  # it signs; it is never sent
    for name in SECRETS:
        assert await delivered(hostile_text(name), via) == plain, name
