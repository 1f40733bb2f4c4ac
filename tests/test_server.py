"""Integration: `sgtm serve` on loopback, real GA4 hits, a real fake webhook receiver.

The server runs in this process (`SgtmServer`) except where only a process shows the behaviour
(signals, several workers): those are the `e2e` tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import signal
import socket
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.cli import run_cli
from tests.servers import FakeVendor, SgtmProcess, SgtmServer, wait_until

SECRET = "s3cr3t-signing-key"
HIT = "/g/collect?v=2&tid=G-TEST01&cid=111.222&en={en}&dl=https%3A%2F%2Fwww.shop.example%2Fp%2F1"


def write_container(tmp_path: Path, vendor_url: str, name: str = "shop", extra: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            origins: [https://www.shop.example]
            privacy:
              anonymize_ip: true
              trusted_proxies: [127.0.0.1]
            clients:
              - {{name: ga4, type: ga4}}
            variables:
              email: {{type: event_data, key: user_data.email_address}}
            triggers:
              purchase: {{event_name: purchase}}
              everything: {{all: []}}
            tags:
              - name: webhook
                type: http_request
                triggers: [purchase]
                settings:
                  url: {vendor_url}/hook
                  hmac_secret: "${{HOOK_SECRET}}"
                  body:
                    event: "{{{{event_name}}}}"
                    ip: "{{{{event.ip_override}}}}"
                    value: "{{{{event.value}}}}"
              - name: dry
                type: http_request
                triggers: [everything]
                dry_run: true
                settings: {{url: "{vendor_url}/never"}}
            """
        )
        + extra
    )
    return path


@pytest.fixture
def vendor():
    with FakeVendor() as fake:
        yield fake


@pytest.fixture
def server(tmp_path, vendor):
    config = write_container(tmp_path, vendor.url)
    with SgtmServer(config, {"HOOK_SECRET": SECRET}) as running:
        yield running


def test_health_and_readiness(server):
    assert httpx.get(f"{server.url}/healthz").text == "ok\n"
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    assert ready.text.startswith("ready: 1 container")


def test_ga4_hit_fires_webhook_with_signed_anonymized_body(server, vendor):
    response = httpx.get(
        server.url + HIT.format(en="purchase") + "&epn.value=12.5",
        headers={"x-forwarded-for": "203.0.113.77", "user-agent": "pytest"},
    )
    assert response.status_code == 200
    assert response.content == b""
    assert len(response.headers["x-request-id"]) == 32
    (got,) = vendor.wait_for(1)
    assert got.method == "POST" and got.path == "/hook"
    assert json.loads(got.body) == {"event": "purchase", "ip": "203.0.113.0", "value": 12.5}
    expected = hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-sgtm-signature"] == f"sha256={expected}"
    assert got.headers["idempotency-key"]
    # The dry-run tag built its request and logged it, but nothing was sent to /never.
    logs = server.logs()
    assert '"msg":"dry_run request"' in logs
    assert all(r.path == "/hook" for r in vendor.received)


def test_ip_carried_by_the_hit_is_anonymized_too(server, vendor):
    response = httpx.get(server.url + HIT.format(en="purchase") + "&_uip=192.0.2.200")
    assert response.status_code == 200
    (got,) = vendor.wait_for(1)
    assert json.loads(got.body)["ip"] == "192.0.2.0"
    assert "192.0.2.200" not in server.logs()


def test_ip_carried_by_a_browser_hit_behind_the_trusted_proxy_is_not_believed(server, vendor):
    # The peer (127.0.0.1) is a trusted proxy, but the hit comes from the browser it forwards.
    headers = {"x-forwarded-for": "198.51.100.23"}
    response = httpx.get(server.url + HIT.format(en="purchase") + "&_uip=8.8.4.4", headers=headers)
    assert response.status_code == 200
    (got,) = vendor.wait_for(1)
    assert json.loads(got.body)["ip"] == "198.51.100.0"


def test_raw_ip_and_secrets_never_logged(server, vendor):
    for en in ("purchase", "page_view"):
        httpx.get(server.url + HIT.format(en=en), headers={"x-forwarded-for": "198.51.100.23"})
    vendor.wait_for(1)
    httpx.get(server.url + "/nope?email=x", headers={"x-forwarded-for": "198.51.100.23"})

    def three_request_lines() -> list[dict] | None:
        # A request's line is written once its answer is sent: the client may read it first.
        lines = [r for r in server.log_records() if r.get("msg") == "request"]
        found = [line for line in lines if line["path"] != "/readyz"]
        return found if len(found) >= 3 else None

    request_lines = wait_until(three_request_lines, "the three request lines")
    logs = server.logs()
    assert "198.51.100.23" not in logs
    assert SECRET not in logs
    assert len(request_lines) == 3
    assert {line["status"] for line in request_lines} == {200, 404}
    assert all("?" not in line["path"] for line in request_lines)


def test_cors_preflight_and_credentials(server):
    preflight = httpx.options(
        f"{server.url}/g/collect",
        headers={
            "origin": "https://www.shop.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://www.shop.example"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    hit = httpx.get(
        server.url + HIT.format(en="page_view"), headers={"origin": "https://www.shop.example"}
    )
    assert hit.headers["access-control-allow-origin"] == "https://www.shop.example"
    other = httpx.get(
        server.url + HIT.format(en="page_view"), headers={"origin": "https://evil.example"}
    )
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers


def test_batched_post(server, vendor):
    body = "en=purchase&epn.value=1\nen=page_view\nen=purchase&epn.value=3"
    response = httpx.post(server.url + HIT.format(en="scroll"), content=body)
    assert response.status_code == 200
    received = vendor.wait_for(2)
    assert sorted(json.loads(r.body)["value"] for r in received) == [1, 3]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/unclaimed", b"", 404),
        ("GET", "/g/collect?v=1&tid=G-X&en=x", b"", 404),
        ("GET", "/g/collect?v=2&tid=G-X&en=x&_et=NaN&epn.value=abc&dl=%E0%A4%A", b"", 200),
        ("POST", "/g/collect?v=2&tid=G-X", b"\xff\xfe\x00garbage\n\n%%%", 200),
        ("POST", "/g/collect?v=2&tid=G-X&en=x", b"en=a\n" * 10_000, 200),
        ("POST", "/g/collect?v=2&tid=G-X&en=x", b"x" * (2 * 1024 * 1024), 413),
        ("PUT", "/g/collect?v=2&tid=G-X&en=x", b"", 404),
    ],
)
def test_hostile_input_never_500(server, method, path, body, status):
    response = httpx.request(method, server.url + path, content=body)
    assert response.status_code == status
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_metrics_need_admin_token(tmp_path, vendor):
    config = write_container(tmp_path, vendor.url)
    env = {"HOOK_SECRET": SECRET, "SGTM_ADMIN_TOKEN": "admin-token-123"}
    with SgtmServer(config, env) as proc:
        httpx.get(proc.url + HIT.format(en="purchase"))
        assert httpx.get(f"{proc.url}/metrics").status_code == 401
        wrong = httpx.get(f"{proc.url}/metrics", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = httpx.get(f"{proc.url}/metrics", headers={"authorization": "Bearer admin-token-123"})
        assert ok.status_code == 200
        assert 'sgtm_events_total{client="ga4",container="shop"} 1' in ok.text


def test_metrics_absent_without_token(server):
    assert httpx.get(f"{server.url}/metrics").status_code == 404


def test_host_routing_between_containers(tmp_path):
    with FakeVendor() as a, FakeVendor() as b:
        site_a = write_container(tmp_path, a.url, "a", "hosts: [a.example]\n")
        site_b = write_container(tmp_path, b.url, "b", "hosts: [b.example]\n")
        assert site_a.parent == site_b.parent
        with SgtmServer(tmp_path, {"HOOK_SECRET": SECRET}) as proc:
            url = proc.url + HIT.format(en="purchase")
            assert httpx.get(url, headers={"host": "a.example"}).status_code == 200
            assert httpx.get(url, headers={"host": "b.example:8443"}).status_code == 200
            assert httpx.get(url, headers={"host": "c.example"}).status_code == 404
            a.wait_for(1)
            b.wait_for(1)
            assert len(a.received) == 1 and len(b.received) == 1


@pytest.mark.e2e
def test_sigterm_drains_queued_deliveries(tmp_path):
    with FakeVendor(delay=1.0) as vendor:
        config = write_container(tmp_path, vendor.url)
        proc = SgtmProcess(config, {"HOOK_SECRET": SECRET})
        for _ in range(20):
            assert httpx.get(proc.url + HIT.format(en="purchase")).status_code == 200
        assert len(vendor.received) < 20  # still in flight when the signal arrives
        # uvicorn shuts down gracefully, then re-raises SIGTERM for the default handler.
        assert proc.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        assert len(vendor.received) == 20
        assert "Traceback" not in proc.logs()


@pytest.mark.e2e
def test_several_workers_serve_the_same_containers(tmp_path, vendor):
    config = write_container(tmp_path, vendor.url)
    env = {"HOOK_SECRET": SECRET, "SGTM_HEADER_TIMEOUT": "1s"}
    with SgtmProcess(config, env, "--workers", "2") as proc:
        # Whichever worker accepts them, requests whose headers never end get 408 at the deadline.
        stalled = [socket.create_connection(("127.0.0.1", proc.port), timeout=10) for _ in range(4)]
        for sock in stalled:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        for _ in range(6):
            assert httpx.get(proc.url + HIT.format(en="purchase")).status_code == 200
        assert len(vendor.wait_for(6)) == 6
        for sock in stalled:
            with sock:
                assert sock.recv(100).startswith(b"HTTP/1.1 408 ")
        started = [
            line for line in proc.logs().splitlines() if "Application startup complete" in line
        ]
        assert len(started) == 2


def test_invalid_config_refuses_to_start(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\ntags:\n  - {name: t, type: http_request, triggers: [nope], settings: {url: 'https://x.example'}}\n"
    )
    done = run_cli("serve", "-c", str(bad), "--port", "0")
    assert done.returncode == 1
    assert re.search(
        r"bad.yaml:3:\d+: tags\[0\].triggers\[0\]: unknown trigger 'nope'", done.stderr
    )
