"""sgtm.testing: the harness plugin authors test with, its mock transport and fake vendor."""

from __future__ import annotations

import asyncio
import json
import types
from typing import Any

import httpx
import msgspec
import pytest

from sgtm.plugin import (
    Batching,
    BuildContext,
    Client,
    ClientContext,
    ClientResponse,
    Credential,
    HitRequest,
    InvalidEvent,
    Outbound,
    Secret,
    Tag,
    Verdict,
    default_classify,
    hookimpl,
)
from sgtm.plugins import PluginError
from sgtm.testing import (
    DEFAULT_NOW,
    FakeVendor,
    Harness,
    MockTransport,
    Received,
    Reply,
    json_body,
    query_params,
)
from sgtm.yamlsource import ConfigErrors

# -- plugins under test ------------------------------------------------------------------------


class NoteSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str
    api_key: Secret | None = None


class NoteTag(Tag[NoteSettings]):
    """One POST per event; refuses events without `value`, cuts long labels with a warning."""

    name = "note"
    Settings = NoteSettings

    def build(
        self, event: dict[str, Any], settings: NoteSettings, ctx: BuildContext
    ) -> list[Outbound]:
        if "value" not in event:
            raise InvalidEvent("no value")
        label = str(event.get("label", ""))
        if len(label) > 5:
            ctx.warn("label cut to 5 characters")
            label = label[:5]
        body = {"value": event["value"], "label": label, "at": ctx.now}
        headers = {"X-Key": settings.api_key} if settings.api_key else {}
        url = f"{settings.url}?event={event.get('event_name')}"
        return [Outbound(method="POST", url=url, headers=headers, body=msgspec.json.encode(body))]


class BatchSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str


class BatchTag(Tag[BatchSettings]):
    """Items merge into {"items": [...]}; the vendor answers one result per item."""

    name = "batched"
    Settings = BatchSettings
    batching = Batching(max_items=3)

    def build(
        self, event: dict[str, Any], settings: BatchSettings, ctx: BuildContext
    ) -> list[Outbound]:
        item = {"id": event["id"], "group": event.get("group", "")}
        return [Outbound(method="POST", url=settings.url, batch_item=item, batch_key=item["group"])]

    def merge(self, outbounds: list[Outbound]) -> Outbound:
        items = [o.batch_item for o in outbounds]
        return Outbound(
            method="POST", url=outbounds[0].url, body=msgspec.json.encode({"items": items})
        )

    def classify_batch(self, status, headers, body, items):
        if status != 200:
            return [default_classify(status)] * len(items)
        return [
            Verdict(outcome=r["outcome"], reason=r.get("why", ""))
            for r in json.loads(body)["results"]
        ]


class AuthSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str
    client_secret: Secret


class AuthTag(Tag[AuthSettings]):
    name = "authed"
    Settings = AuthSettings

    def build(
        self, event: dict[str, Any], settings: AuthSettings, ctx: BuildContext
    ) -> list[Outbound]:
        headers = {"Authorization": f"Bearer {ctx.credential()}"}
        return [Outbound(method="POST", url=f"{settings.url}/track", headers=headers, body=b"{}")]

    def auth_request(self, settings: AuthSettings) -> Outbound:
        body = f"secret={settings.client_secret}".encode()
        return Outbound(method="POST", url=f"{settings.url}/token", body=body)

    def parse_auth(self, status, headers, body, now) -> Credential:
        return Credential(token=json.loads(body)["token"])


class PingClient(Client):
    name = "ping"

    def claim(self, request: HitRequest, settings: Any) -> bool:
        return request.path == "/ping"

    def parse(self, request: HitRequest, settings: Any, ctx: ClientContext) -> list[dict[str, Any]]:
        return [{"event_name": "ping", "value": request.query.get("v"), "ip": request.client_ip}]

    def respond(self, request, events, settings, ctx) -> ClientResponse:
        return ClientResponse(status=204)


@hookimpl
def register_tag_types(register):
    for tag in (NoteTag(), BatchTag(), AuthTag()):
        register(tag)


@hookimpl
def register_client_types(register):
    register(PingClient())


PLUGIN = types.ModuleType("harness_test_plugin")
PLUGIN.register_tag_types = register_tag_types  # type: ignore[attr-defined]
PLUGIN.register_client_types = register_client_types  # type: ignore[attr-defined]

CONTAINER = """\
version: 1
privacy: {anonymize_ip: true}
clients:
  - {name: ping, type: ping}
triggers:
  all: {all: []}
  pings: {event_name: ping}
tags:
  - name: note
    type: note
    triggers: [pings]
    dedupe: {key: "{{event.id}}", ttl: 60}
    settings: {url: "https://notes.example/in", api_key: "${NOTE_KEY}"}
"""


def harness(container: str | dict[str, Any] = CONTAINER, **kwargs: Any) -> Harness:
    kwargs.setdefault("environ", {"NOTE_KEY": "k-secret-123"})
    return Harness(container, plugins=[PLUGIN], **kwargs)


# -- running a container -------------------------------------------------------------------------


async def test_a_request_runs_the_real_pipeline():
    h = harness()
    result = await h.request("/ping?v=7&id=1", ip="203.0.113.77")
    assert result.client == "ping" and result.status == 204
    assert result.data == [{"event_name": "ping", "value": "7", "ip": "203.0.113.0"}]
    assert result.fired("note") and result.reasons("note") == [None]
    (sent,) = result.requests("note")
    assert query_params(sent) == {"event": "ping"}
    assert json_body(sent) == {"value": "7", "label": "", "at": DEFAULT_NOW}
    assert sent.headers == {"X-Key": "k-secret-123"}
    assert [s.tag for s in h.built] == ["note"]


async def test_a_request_no_client_claims_is_answered_404():
    result = await harness().request("/elsewhere")
    assert result.client is None and result.status == 404 and result.events == []


async def test_events_report_why_a_tag_did_not_fire():
    h = harness()
    result = await h.events(
        {"event_name": "ping", "value": 1, "id": "a", "label": "longer"},
        {"event_name": "ping", "id": "b"},
        {"event_name": "other", "value": 1},
        {"event_name": "ping", "value": 2, "id": "a"},
    )
    assert result.response is None
    assert result.reasons("note") == [None, "invalid: no value", "trigger", "dedupe"]
    assert result.warnings("note") == ["label cut to 5 characters"]
    assert [json_body(r)["label"] for r in result.requests("note")] == ["longe"]
    with pytest.raises(KeyError, match="no tag named 'nope'"):
        result.tag("nope")


async def test_the_clock_is_fixed_and_moves_when_told():
    h = harness()
    first = await h.events({"event_name": "ping", "value": 1, "id": "x"})
    again = await h.events({"event_name": "ping", "value": 1, "id": "x"})
    assert again.reasons("note") == ["dedupe"]  # within the 60 s dedupe ttl
    h.clock.advance(61)
    later = await h.events({"event_name": "ping", "value": 1, "id": "x"})
    assert later.fired("note")
    assert json_body(first.requests("note")[0])["at"] == DEFAULT_NOW
    assert json_body(later.requests("note")[0])["at"] == DEFAULT_NOW + 61


async def test_a_container_given_as_a_dict_and_only_the_plugins_named():
    container = {
        "version": 1,
        "triggers": {"all": {"all": []}},
        "tags": [
            {
                "name": "n",
                "type": "note",
                "triggers": ["all"],
                "settings": {"url": "https://n.example/"},
            }
        ],
    }
    h = Harness(container, plugins=[PLUGIN], installed=False)
    assert (await h.events({"value": 1})).fired("n")
    with pytest.raises(ConfigErrors, match="unknown tag type 'ga4_mp'"):
        Harness({**container, "tags": [{"name": "g", "type": "ga4_mp"}]}, installed=False)


def test_a_missing_environment_value_is_a_load_error_not_the_machines_value(monkeypatch):
    monkeypatch.setenv("NOTE_KEY", "from-the-machine")
    with pytest.raises(ConfigErrors, match="NOTE_KEY is not set"):
        Harness(CONTAINER, plugins=[PLUGIN])


# -- delivering what was built --------------------------------------------------------------------

BATCHED = """\
version: 1
triggers:
  all: {all: []}
tags:
  - name: b
    type: batched
    triggers: [all]
    settings: {url: "https://batch.example/v1/items"}
"""


def results_reply(outcomes: dict[str, str]):
    """The vendor's answer: one result per item, by item id."""

    def reply(got: Received, status: int) -> bytes:
        items = got.json()["items"]
        return json.dumps(
            {"results": [{"outcome": outcomes.get(i["id"], "done"), "why": i["id"]} for i in items]}
        ).encode()

    return reply


async def test_deliver_merges_batches_and_reads_per_item_verdicts():
    h = harness(BATCHED)
    await h.events(*({"id": f"e{i}", "group": "g1" if i < 4 else "g2"} for i in range(5)))
    outcomes = {"e1": "dead", "e2": "retry"}
    vendor = MockTransport(reply=results_reply(outcomes))
    delivered = await h.deliver(vendor)
    # max_items 3 and batch keys: [e0 e1 e2] [e3] (g1), [e4] (g2)
    assert [r.json() for r in vendor.received] == [
        {
            "items": [
                {"id": "e0", "group": "g1"},
                {"id": "e1", "group": "g1"},
                {"id": "e2", "group": "g1"},
            ]
        },
        {"items": [{"id": "e3", "group": "g1"}]},
        {"items": [{"id": "e4", "group": "g2"}]},
    ]
    assert [(d.item.batch_item["id"], d.outcome, d.batch) for d in delivered] == [
        ("e0", "done", 0),
        ("e1", "dead", 0),
        ("e2", "retry", 0),
        ("e3", "done", 1),
        ("e4", "done", 2),
    ]
    assert delivered[1].verdict.reason == "e1" and delivered[0].status == 200
    # Only the retried item goes again; done and dead ones are finished.
    outcomes["e2"] = "done"
    again = await h.deliver(vendor)
    assert [(d.item.batch_item["id"], d.outcome) for d in again] == [("e2", "done")]
    assert vendor.received[-1].json() == {"items": [{"id": "e2", "group": "g1"}]}
    assert await h.deliver(vendor) == []


async def test_deliver_reports_no_response_and_vendor_errors_as_the_engine_classifies_them():
    h = harness(BATCHED)
    await h.events({"id": "slow"}, {"id": "x", "group": "other"}, {"id": "y", "group": "third"})
    vendor = MockTransport(responses=[Reply(status=200, delay=60.0), 503, 400])
    slow, unavailable, refused = await h.deliver(vendor)
    assert (slow.outcome, slow.status, slow.verdict.reason) == ("retry", 0, "timeout")
    assert (unavailable.outcome, unavailable.status) == ("retry", 503)
    assert (refused.outcome, refused.status) == ("dead", 400)


async def test_deliver_honours_retry_after():
    h = harness(BATCHED)
    await h.events({"id": "a"})
    (throttled,) = await h.deliver(
        MockTransport(responses=[Reply(status=429, headers={"Retry-After": "30"})])
    )
    assert throttled.outcome == "retry" and throttled.verdict.retry_after == 30.0


async def test_a_batch_item_that_cannot_be_stored_is_dead():
    h = harness(BATCHED)
    await h.events({"id": object()})  # not plain data: it cannot wait in the outbox
    (item,) = await h.deliver(MockTransport())
    assert item.outcome == "dead" and "cannot be stored" in item.verdict.reason


AUTHED = """\
version: 1
triggers:
  all: {all: []}
tags:
  - name: a
    type: authed
    triggers: [all]
    settings: {url: "https://api.example", client_secret: "${CLIENT_SECRET}"}
"""


async def test_deliver_gets_refreshes_and_fills_run_time_credentials():
    h = Harness(AUTHED, plugins=[PLUGIN], environ={"CLIENT_SECRET": "s3cr3t-value"})
    await h.events({}, {})
    tokens = iter(["t1", "t2"])

    def reply(got: Received, status: int) -> bytes:
        return json.dumps({"token": next(tokens)}).encode() if got.path == "/token" else b"{}"

    vendor = MockTransport(responses=[200, 401, 200, 200, 200], reply=reply)
    delivered = await h.deliver(vendor)
    assert [d.outcome for d in delivered] == ["done", "done"]
    assert [(r.path, r.headers.get("authorization")) for r in vendor.received] == [
        ("/token", None),
        ("/track", "Bearer t1"),  # refused: one refresh, one resend
        ("/token", None),
        ("/track", "Bearer t2"),
        ("/track", "Bearer t2"),
    ]
    assert vendor.received[0].body == b"secret=s3cr3t-value"
    # What a tag built (and what would be stored) never holds the token.
    assert all("{{credential@" in d.item.headers["Authorization"] for d in delivered)


async def test_deliver_over_a_real_socket_to_a_fake_vendor():
    with FakeVendor(check=lambda got: None if got.headers.get("x-key") else "no key") as vendor:
        h = harness(CONTAINER.replace("https://notes.example/in", f"{vendor.url}/in"))
        await h.request("/ping?v=1&id=1")
        (delivered,) = await h.deliver()
    assert delivered.outcome == "done" and vendor.errors == []
    (got,) = vendor.received
    assert got.path == "/in" and got.params() == {"event": "ping"}
    assert got.headers["x-key"] == "k-secret-123" and got.json()["value"] == "1"


async def test_mock_and_fake_vendor_answer_alike():
    check = lambda got: None if got.json().get("ok") else "not ok"  # noqa: E731
    reply = lambda got, status: json.dumps({"status": status}).encode()  # noqa: E731
    mock = MockTransport(check=check, reply=reply, responses=[202])
    answers = [
        await mock.send("POST", "http://v.example/x", {}, b'{"ok": true}', 5.0),
        await mock.send("POST", "http://v.example/x", {}, b'{"ok": false}', 5.0),
    ]
    assert [(a.status, json.loads(a.body)) for a in answers] == [
        (202, {"status": 202}),
        (400, {"status": 400}),
    ]
    assert mock.errors == ["not ok"]
    with FakeVendor(check=check, reply=reply, responses=[202]) as fake:
        over_http = [
            await asyncio.to_thread(httpx.post, f"{fake.url}/x", content=body)
            for body in (b'{"ok": true}', b'{"ok": false}')
        ]
    assert [(r.status_code, r.json()) for r in over_http] == [
        (202, {"status": 202}),
        (400, {"status": 400}),
    ]
    assert fake.errors == ["not ok"]


async def test_types_given_directly_are_registered_through_the_hooks_and_checked():
    container = {
        "version": 1,
        "triggers": {"all": {"all": []}},
        "tags": [
            {
                "name": "n",
                "type": "note",
                "triggers": ["all"],
                "settings": {"url": "https://n.example/"},
            }
        ],
    }
    h = Harness(container, plugins=[NoteTag()], installed=False)
    assert (await h.events({"value": 1})).fired("n")

    class Unfinished(Tag):
        name = "unfinished"

    with pytest.raises(
        PluginError, match=r"plugin 'harness': tag type 'unfinished' does not implement build\(\)"
    ):
        Harness(container, plugins=[Unfinished()], installed=False)
