"""Property tests over the server-to-server clients (webhook, meta_leadgen, ga4_mp): adversarial
requests never get a 5xx and the server still answers a normal hit afterwards; a sender's own
secret (signing secret, verify token, app secret, api_secret) never reaches a tag's request or a
log line, and neither does any other secret through text a sender smuggles in.

Most bodies are signed (or carry the right api_secret), so what is fuzzed is the parser behind
the check, not only the refusal in front of it.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import (
    FUZZ,
    SECRETS,
    Server,
    answered,
    json_scalars,
    json_values,
    names,
    query,
    signature,
    values,
)

SIGNED = st.sampled_from(["right", "right", "wrong", "none"])
MANGLE = st.sampled_from(["", "", "truncate"])


def encode(value: object, mangle: str) -> bytes:
    body = json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
    return body[: len(body) // 2] if mangle == "truncate" else body


def signed(header: str, secret: str, body: bytes, how: str) -> dict[str, str]:
    if how == "none":
        return {"content-type": "application/json"}
    sig = signature(secret, body) if how == "right" else "sha256=" + "0" * 64
    return {"content-type": "application/json", header: sig}


# -- webhook: {"type": event name, "lead": {id, email, page, owner}} as the harness maps it --------

leads = st.fixed_dictionaries(
    {},
    optional={"id": json_scalars, "email": json_values, "page": values, "owner": json_values},
)
webhook_docs = st.one_of(
    st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(["generate_lead", "purchase"]), json_scalars)},
        optional={"lead": st.one_of(leads, json_values), "extra": json_values},
    ),
    st.lists(st.fixed_dictionaries({"type": st.just("generate_lead"), "lead": leads}), max_size=4),
    json_values,
)


@FUZZ
@given(doc=webhook_docs, how=SIGNED, mangle=MANGLE)
def test_webhook(server: Server, doc: object, how: str, mangle: str) -> None:
    body = encode(doc, mangle)
    headers = signed("x-webhook-signature", "CRM_WEBHOOK_SECRET", body, how)
    response = server.request("POST", "/webhooks/crm", content=body, headers=headers)
    answered(server, response.status_code)


# -- meta_leadgen: Graph API page notifications with leadgen changes ------------------------------

graph_ids = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(alphabet="0123456789", max_size=40),
    values,
)
changes = st.fixed_dictionaries(
    {"field": st.sampled_from(["leadgen", "leadgen", "feed", ""])},
    optional={
        "value": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "leadgen_id": graph_ids,
                    "page_id": graph_ids,
                    "form_id": graph_ids,
                    "ad_id": graph_ids,
                    "created_time": json_scalars,
                },
            ),
            json_values,
        )
    },
)
notifications = st.one_of(
    st.fixed_dictionaries(
        {
            "object": st.sampled_from(["page", "page", "user", ""]),
            "entry": st.lists(
                st.one_of(
                    st.fixed_dictionaries(
                        {"id": graph_ids, "changes": st.lists(changes, max_size=3)},
                        optional={"time": json_scalars},
                    ),
                    json_values,
                ),
                max_size=3,
            ),
        }
    ),
    json_values,
)


@FUZZ
@given(doc=notifications, how=SIGNED, mangle=MANGLE)
def test_meta_leadgen_notification(server: Server, doc: object, how: str, mangle: str) -> None:
    body = encode(doc, mangle)
    headers = signed("x-hub-signature-256", "META_APP_SECRET", body, how)
    response = server.request("POST", "/webhooks/meta-ads", content=body, headers=headers)
    answered(server, response.status_code)


@FUZZ
@given(
    mode=st.one_of(st.just("subscribe"), values),
    token=st.one_of(st.just(SECRETS["META_VERIFY_TOKEN"]), values),
    challenge=values,
    extra=st.lists(st.tuples(names, values), max_size=3),
)
def test_meta_leadgen_handshake(
    server: Server, mode: str, token: str, challenge: str, extra: list[tuple[str, str]]
) -> None:
    params = [("hub.mode", mode), ("hub.verify_token", token), ("hub.challenge", challenge)]
    response = server.request("GET", f"/webhooks/meta-ads?{query(params + extra)}")
    answered(server, response.status_code)
    # The answer echoes the sender's challenge, never the token it checked.
    assert SECRETS["META_VERIFY_TOKEN"] not in response.text


# -- ga4_mp: /mp/collect and /debug/mp/collect from backends -------------------------------------

mp_events = st.one_of(
    st.fixed_dictionaries(
        {"name": st.one_of(st.sampled_from(["purchase", "page_view", "generate_lead"]), values)},
        optional={"params": st.dictionaries(st.one_of(names, values), json_values, max_size=6)},
    ),
    json_values,
)
mp_bodies = st.one_of(
    st.fixed_dictionaries(
        {
            "client_id": st.one_of(st.just("123.456"), json_scalars),
            "events": st.one_of(st.lists(mp_events, max_size=4), json_values),
        },
        optional={
            "user_id": json_scalars,
            "timestamp_micros": json_scalars,
            "user_properties": json_values,
            "user_data": json_values,
            "consent": json_values,
            "app_instance_id": json_scalars,
        },
    ),
    json_values,
)


@FUZZ
@given(
    body=mp_bodies,
    secret=st.one_of(st.just(SECRETS["MP_SECRET"]), st.just(SECRETS["MP_SECRET"]), values),
    stream=st.one_of(st.just("G-FUZZ0001"), values),
    path=st.sampled_from(["/mp/collect", "/mp/collect", "/debug/mp/collect"]),
    mangle=MANGLE,
)
def test_ga4_mp(
    server: Server, body: object, secret: str, stream: str, path: str, mangle: str
) -> None:
    target = f"{path}?{query([('measurement_id', stream), ('api_secret', secret)])}"
    response = server.request("POST", target, content=encode(body, mangle))
    answered(server, response.status_code)
    assert SECRETS["MP_SECRET"] not in response.text


# -- secrets --------------------------------------------------------------------------------------


@FUZZ
@given(lead=leads, change=changes, event=mp_events, value=values)
def test_server_to_server_hits_leak_no_secret(
    server: Server, lead: dict[str, object], change: dict[str, object], event: object, value: str
) -> None:
    """Signed and accepted requests whose values are fuzzed (placeholder syntax among them)."""
    since = server.mark()
    hook = encode({"type": "generate_lead", "lead": {**lead, "page": value}}, "")
    headers = signed("x-webhook-signature", "CRM_WEBHOOK_SECRET", hook, "right")
    server.request("POST", "/webhooks/crm", content=hook, headers=headers)
    notification = encode({"object": "page", "entry": [{"id": "1", "changes": [change]}]}, "")
    headers = signed("x-hub-signature-256", "META_APP_SECRET", notification, "right")
    server.request("POST", "/webhooks/meta-ads", content=notification, headers=headers)
    mp = encode({"client_id": "123.456", "user_id": value, "events": [event]}, "")
    secret = query([("measurement_id", "G-FUZZ0001"), ("api_secret", SECRETS["MP_SECRET"])])
    server.request("POST", f"/mp/collect?{secret}", content=mp)
    assert server.leaks(since) == []


def test_accepted_server_to_server_hits_reach_the_tags(server: Server) -> None:
    """The fuzzing above gets past the senders' checks: signed requests become events that
    fire the container's tags (so the leak check sees what they build)."""
    since = server.mark()
    hook = encode({"type": "generate_lead", "lead": {"id": "L-1", "email": "a@b.example"}}, "")
    headers = signed("x-webhook-signature", "CRM_WEBHOOK_SECRET", hook, "right")
    assert server.request("POST", "/webhooks/crm", content=hook, headers=headers).status_code == 202
    change = {"field": "leadgen", "value": {"leadgen_id": 4401, "page_id": "77"}}
    notification = encode({"object": "page", "entry": [{"id": "77", "changes": [change]}]}, "")
    headers = signed("x-hub-signature-256", "META_APP_SECRET", notification, "right")
    response = server.request("POST", "/webhooks/meta-ads", content=notification, headers=headers)
    assert response.status_code == 200
    mp = encode({"client_id": "123.456", "events": [{"name": "purchase"}]}, "")
    secret = query([("measurement_id", "G-FUZZ0001"), ("api_secret", SECRETS["MP_SECRET"])])
    assert server.request("POST", f"/mp/collect?{secret}", content=mp).status_code < 300
    hook_events = [o for tag, o in server.sent(since[0]) if tag == "hook"]
    assert len(hook_events) == 3, [o.url for o in hook_events]
    assert server.leaks(since) == []
