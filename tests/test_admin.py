"""The admin API on a real server: auth, preview sessions, delivery history, health, dead
letters; SQLite and Redis stores. (The UI's login and CSRF: tests/test_admin_ui.py; a real
browser: tests/browser/test_admin_preview.py.)"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sgtm.delivery.store import MAX_TRACES  # a session keeps this many traces
from tests.delivery.conftest import REDIS_URL, drop_redis_prefix, redis_prefix
from tests.servers import FakeVendor, Reply, SgtmServer, wait_until

TOKEN = "admin-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}
HIT = "/g/collect?v=2&tid=G-TEST01&cid=111.222&en=purchase&ep.transaction_id=T-{n}&epn.value=9"


def write_container(tmp_path: Path, vendor_url: str, store: str = "") -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            {store}
            clients:
              - {{name: ga4, type: ga4}}
              - {{name: web, type: datalayer}}
            variables:
              order: {{type: event_data, key: transaction_id}}
            triggers:
              everything: {{all: []}}
              purchase: {{event_name: purchase}}
            tags:
              - name: hook
                type: http_request
                triggers: [everything]
                settings:
                  url: {vendor_url}/hook
                  body: {{event: "{{{{event_name}}}}", order: "{{{{order}}}}"}}
              - name: never
                type: http_request
                triggers: [purchase]
                block: [everything]
                settings: {{url: "{vendor_url}/never"}}
            """
        )
    )
    return path


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield ""
        return
    prefix = redis_prefix()
    yield f"delivery: {{store: redis, url: '{REDIS_URL}', prefix: {prefix}}}"
    drop_redis_prefix(prefix)


@pytest.fixture
def vendor() -> Iterator[FakeVendor]:
    with FakeVendor(reply=lambda got, status: b'{"received": true}') as running:
        yield running


@pytest.fixture
def server(tmp_path, vendor, backend) -> Iterator[SgtmServer]:
    config = write_container(tmp_path, vendor.url, backend)
    env = {"SGTM_ADMIN_TOKEN": TOKEN, "SGTM_DATA_DIR": str(tmp_path / "data")}
    with SgtmServer(config, env) as running:
        yield running


def get(server: SgtmServer, path: str, **kw) -> httpx.Response:
    return httpx.get(f"{server.url}/_sgtm/api/{path}", headers=AUTH, **kw)


def delivery_states(server: SgtmServer, id: str) -> list[tuple[str, str, int | None]]:
    traces = get(server, f"preview/{id}").json()["traces"]
    return [
        (tag["name"], request["delivery"]["state"], request["delivery"]["status"])
        for trace in traces
        for event in trace["events"]
        for tag in event["tags"]
        for request in tag["requests"]
    ]


def test_admin_surface_is_absent_without_a_token(tmp_path, vendor):
    config = write_container(tmp_path, vendor.url)
    with SgtmServer(config, {"SGTM_DATA_DIR": str(tmp_path / "data")}) as server:
        for path in ("/_sgtm/", "/_sgtm/api/health", "/_sgtm/api/preview/x", "/_sgtm/login"):
            assert httpx.get(server.url + path, headers=AUTH).status_code == 404
        assert httpx.post(server.url + "/_sgtm/api/preview", headers=AUTH).status_code == 404
        # A hit naming a preview id is just a hit.
        hit = httpx.get(server.url + HIT.format(n=1), headers={"x-sgtm-preview": "a" * 32})
        assert hit.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": f"Basic {TOKEN}"},
        {"authorization": f"Bearer {TOKEN}x"},
        {"authorization": "Bearer {{secret.SGTM_ADMIN_TOKEN}}"},
        {"cookie": f"sgtm_admin={TOKEN}"},
        {"cookie": "sgtm_admin=1.2.3"},
    ],
)
def test_api_needs_the_bearer_token(server, headers):
    for method, path in (("GET", "health"), ("POST", "preview"), ("GET", "events/e")):
        answer = httpx.request(method, f"{server.url}/_sgtm/api/{path}", headers=headers)
        assert answer.status_code == 401
        assert "Bearer" in answer.json()["error"]


def test_preview_traces_a_request_and_its_deliveries_move_to_delivered(server, vendor):
    late = Reply(status=200, body=b'{"received": "late"}', delay=1.5)
    vendor.responses.extend([late, late])
    started = httpx.post(f"{server.url}/_sgtm/api/preview", headers=AUTH)
    assert started.status_code == 201
    id = started.json()["id"]
    assert len(id) == 32
    httpx.get(server.url + HIT.format(n=1))  # no preview id: not traced
    traced = httpx.get(server.url + HIT.format(n=2), headers={"x-sgtm-preview": id})
    assert traced.status_code == 200
    # The first request waits for the vendor's late answer: the trace says pending.
    assert ("hook", "pending", None) in wait_until(lambda: delivery_states(server, id), "trace")
    wait_until(lambda: delivery_states(server, id) == [("hook", "delivered", 200)], "delivered", 15)
    assert len(vendor.received) == 2
    (trace,) = get(server, f"preview/{id}").json()["traces"]
    assert trace["client"] == "ga4" and trace["response"]["status"] == 200
    assert trace["request"]["url"].endswith("ep.transaction_id=T-2&epn.value=9")
    (event,) = trace["events"]
    assert event["data"]["transaction_id"] == "T-2"
    assert event["variables"] == {"order": "T-2"}
    assert event["event_id"]  # drawn for it: GA4 hits carry none
    hook, never = event["tags"]
    assert hook["fired"] and never == {
        "name": "never",
        "type": "http_request",
        "fired": False,
        "reason": "blocked",
        "requests": [],
    }
    (sent,) = hook["requests"]
    assert sent["body"] == {"event": "purchase", "order": "T-2"}
    assert sent["delivery"]["attempts"] == 1
    assert sent["delivery"]["response"].startswith('{"received"')
    # The drawn id finds the same delivery in the history.
    history = get(server, f"events/{event['event_id']}").json()["deliveries"]
    assert [(d["tag"], d["state"], d["status"]) for d in history] == [("hook", "delivered", 200)]


def test_preview_cookie_traces_too_and_unknown_ids_are_not_traced(server, vendor):
    id = httpx.post(f"{server.url}/_sgtm/api/preview", headers=AUTH).json()["id"]
    body = json.dumps({"event": "add_to_cart", "event_id": "E-cookie"})
    for bad in ("x" * 32, "../" * 11, id[:-1], id + "A", "{{secret.SGTM_ADMIN_TOKEN}}", "é" * 32):
        headers = {"x-sgtm-preview": bad.encode("utf-8")}
        assert httpx.post(f"{server.url}/data", content=body, headers=headers).status_code == 200
    cookies = {"cookie": f"other=1; sgtm_preview={id}"}
    assert httpx.post(f"{server.url}/data", content=body, headers=cookies).status_code == 200
    (trace,) = get(server, f"preview/{id}").json()["traces"]
    assert trace["client"] == "web" and trace["events"][0]["event_id"] == "E-cookie"
    wait_until(lambda: len(vendor.received) == 7, "every hit delivered")


def test_history_of_untraced_events_by_event_and_transaction_id(server, vendor):
    vendor.responses.extend([503, 200])  # the first try fails, the retry delivers
    body = {"event": "purchase", "event_id": "E-42", "ecommerce": {"transaction_id": "T-42"}}
    assert httpx.post(f"{server.url}/data", content=json.dumps(body)).status_code == 200

    def states() -> list[tuple[str, str, int, int | None]]:
        found = get(server, "events/E-42").json()
        assert found["event_id"] == "E-42"
        return [(d["tag"], d["state"], d["attempts"], d["status"]) for d in found["deliveries"]]

    wait_until(lambda: states() == [("hook", "delivered", 2, 200)], "delivered on retry", 20)
    (delivery,) = get(server, "transactions/T-42").json()["deliveries"]
    assert delivery["event_id"] == "E-42" and delivery["at"].endswith("Z")
    assert get(server, "events/E-unknown").json() == {"event_id": "E-unknown", "deliveries": []}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("events/" + "a" * 257, 400),
        ("events/a%00b", 400),
        ("events/a%0Ab", 404),  # no route matches a line break: the tagging app's 404
        ("events/%7B%7Bsecret.SGTM_ADMIN_TOKEN%7D%7D", 200),
        ("events/..%2F..%2Fetc%2Fpasswd", 200),
        ("events/x'%20OR%201=1", 200),
        ("transactions/" + "a" * 300, 400),
        ("preview/nope", 404),
        ("preview/" + "a" * 32, 404),
        ("preview/%00" * 3, 404),
        ("dlq/not-a-number", 404),
        ("dlq/99999999999999999999", 404),
        ("dlq?limit=0", 400),
        ("dlq?limit=abc", 400),
        ("dlq?limit=100000", 400),
        ("dlq?tag=%7B%7Bsecret.X%7D%7D", 200),
    ],
)
def test_hostile_api_input_gets_a_clear_answer(server, path, status):
    answer = get(server, path)
    assert answer.status_code == status, answer.text
    if "%0A" not in path:
        assert answer.headers["content-type"] == "application/json"
    if status == 200 and path.startswith("events/"):
        assert answer.json()["deliveries"] == []


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("replay", b"not json"),
        ("replay", b"[]"),
        ("replay", b'{"ids": "1"}'),
        ("replay", b'{"ids": [1]}'),
        ("replay", b"{}"),
        ("replay", b'{"what": true}'),
        ("purge", b"{}"),
        ("purge", b'{"before": "{{secret.X}}"}'),
        ("purge", b'{"before": 7}'),
        ("purge", b'{"before": "' + b"x" * 5000 + b'"}'),
    ],
)
def test_hostile_dead_letter_actions_get_400(server, action, body):
    answer = httpx.post(f"{server.url}/_sgtm/api/dlq/{action}", content=body, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]


def test_dead_letters_list_show_replay_purge(server, vendor):
    vendor.responses.append(400)  # refused for good: a dead letter
    body = {"event": "sign_up", "event_id": "E-dead"}
    assert httpx.post(f"{server.url}/data", content=json.dumps(body)).status_code == 200
    letters = wait_until(lambda: get(server, "dlq").json()["dead_letters"], "a dead letter")
    (letter,) = letters
    assert letter["tag"] == "hook" and letter["status"] == 400
    shown = get(server, f"dlq/{letter['id']}").json()
    assert shown["request"]["body"] == {"event": "sign_up", "order": None}
    assert shown["response"]["body"] == {"received": True}
    history = get(server, "events/E-dead").json()["deliveries"]
    assert [(d["state"], d["status"]) for d in history] == [("dead", 400)]
    replayed = httpx.post(
        f"{server.url}/_sgtm/api/dlq/replay", json={"ids": [letter["id"]]}, headers=AUTH
    )
    assert replayed.json() == {"replayed": 1}
    wait_until(lambda: len([r for r in vendor.received if r.path == "/hook"]) == 2, "resent")
    assert get(server, "dlq").json()["dead_letters"] == []
    purged = httpx.post(f"{server.url}/_sgtm/api/dlq/purge", json={"before": "0s"}, headers=AUTH)
    assert purged.json() == {"purged": 0}


def test_health_shows_lanes_with_depth_rate_breaker_and_last_error(server, vendor):
    vendor.responses.extend([500, 200])
    assert httpx.get(server.url + HIT.format(n=7)).status_code == 200

    def lane() -> dict | None:
        lanes = get(server, "health").json()["lanes"]
        return lanes[0] if lanes and lanes[0]["last_error"] else None

    found = wait_until(lane, "the lane's failure")
    assert found["container"] == "shop" and found["tag"] == "hook"
    assert found["destination"] == vendor.url
    assert found["breaker"] == "closed" and found["last_error"]["error"].startswith("500")
    wait_until(lambda: get(server, "health").json()["lanes"][0]["rate"] > 0, "a rate")


@pytest.mark.e2e
def test_preview_sessions_are_shared_by_the_workers_of_one_server(tmp_path, vendor):
    from tests.servers import SgtmProcess

    config = write_container(tmp_path, vendor.url)
    env = {"SGTM_ADMIN_TOKEN": TOKEN, "SGTM_DATA_DIR": str(tmp_path / "data")}
    with SgtmProcess(config, env, "--workers", "2") as proc:
        id = httpx.post(f"{proc.url}/_sgtm/api/preview", headers=AUTH).json()["id"]
        workers = set()  # request ids start with a prefix drawn per process
        # The kernel hands connections to whichever worker accepts first, and /readyz may have
        # been answered by one worker while the other still starts: send until both answered.
        sent = 0
        while sent < 40 or (len(workers) < 2 and sent < MAX_TRACES):
            hit = httpx.get(proc.url + HIT.format(n=sent), headers={"x-sgtm-preview": id})
            workers.add(hit.headers["x-request-id"][:16])
            sent += 1
        assert len(workers) == 2  # both workers traced hits of a session one of them started

        def delivered() -> bool:
            found = httpx.get(f"{proc.url}/_sgtm/api/preview/{id}", headers=AUTH).json()
            states = [
                r["delivery"]["state"]
                for t in found["traces"]
                for e in t["events"]
                for tag in e["tags"]
                for r in tag["requests"]
            ]
            return len(found["traces"]) == sent and states == ["delivered"] * sent

        wait_until(delivered, "every traced hit delivered", 20)
