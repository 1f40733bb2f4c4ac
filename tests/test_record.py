"""`sgtm serve --record FILE`: a real server writes the requests it answers as `--requests` lines
(headers filtered, cookies and secrets masked, the IP as the privacy policy gives it), and the
recording feeds `sgtm emulate`, `sgtm test` and `sgtm diff`."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from sgtm.record import TrafficRecorder, client_headers, mask_cookies
from tests.cli import run_cli
from tests.servers import SgtmProcess, SgtmServer, wait_until

ENV = {"HOOK_KEY": "hook-api-key-0000001", "PATH": "/usr/bin:/bin"}

CONTAINER = """\
version: 1
privacy: {anonymize_ip: true}
clients:
  - {name: ga4, type: ga4, priority: 10}
  - name: crm
    type: webhook
    settings:
      path: /webhooks/crm
      api_keys: ["${HOOK_KEY}"]
      api_key_header: X-Crm-Key
      event_name: generate_lead
triggers:
  all_events: {all: []}
tags:
  - name: hook
    type: http_request
    triggers: [all_events]
    dry_run: true
    settings:
      url: "https://hooks.example.invalid/x"
      body: {event: "{{event_name}}", ua: "{{event.user_agent}}"}
"""

HIT = "/g/collect?v=2&tid=G-ABC123XYZ9&cid=1.2&en=purchase&epn.value=10"
UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"


def send_traffic(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        hit = client.get(
            HIT,
            headers={
                "user-agent": UA,
                "cookie": "_ga=GA1.1.123.456; session=s3cr3t-session",
                "authorization": "Bearer not-for-the-file",
                "x-forwarded-for": "198.51.100.7",
                "x-internal-trace": "abc",
            },
        )
        assert hit.status_code == 200
        lead = client.post(
            "/webhooks/crm",
            json={"email": "ana@example.com"},
            headers={"x-crm-key": ENV["HOOK_KEY"]},
        )
        assert lead.status_code == 202, lead.text
        assert client.get("/healthz").status_code == 200  # not a tagging request: not recorded


def recorded_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_real_server_records_what_emulate_test_and_diff_replay(tmp_path):
    config = tmp_path / "shop.yaml"
    config.write_text(CONTAINER)
    file = tmp_path / "recorded.ndjson"
    with SgtmServer(config, env=ENV, recorder=TrafficRecorder(str(file))) as server:
        send_traffic(server.url)
        wait_until(lambda: file.exists() and len(file.read_text().splitlines()) == 2, "recorded")
    hit, lead = recorded_lines(file)
    assert hit == {
        "url": HIT,
        "method": "GET",
        "headers": {"user-agent": UA, "cookie": "_ga=***; session=***"},
        "body": "",
        "ip": "127.0.0.0",  # anonymized, as the container's privacy policy says
        "host": "127.0.0.1",
    }
    assert lead["url"] == "/webhooks/crm" and lead["method"] == "POST"
    assert lead["headers"] == {
        "content-type": "application/json",
        "user-agent": f"python-httpx/{httpx.__version__}",
        "x-crm-key": "${HOOK_KEY}",
    }
    assert json.loads(lead["body"]) == {"email": "ana@example.com"}
    assert ENV["HOOK_KEY"] not in file.read_text()

    # emulate replays the recording: the GA4 hit fires the hook as it did on the server.
    emulated = run_cli("emulate", "-c", str(config), "--requests", str(file), "--now", "0", env=ENV)
    assert emulated.returncode == 0, emulated.stderr
    first, second = [json.loads(line) for line in emulated.stdout.splitlines()]
    (tag,) = first["events"][0]["tags"]
    assert tag["fired"] and tag["requests"][0]["body"] == {"event": "purchase", "ua": UA}
    # The API key was masked: the webhook request replays as refused, never with the key.
    assert second["response"]["status"] == 401

    # diff of the container with itself on the recording: nothing differs.
    same = run_cli("diff", str(config), str(config), "--requests", str(file), env=ENV)
    assert (same.returncode, same.stdout) == (0, "")

    # A recorded line is a scenario's request as it is (JSON is YAML).
    scenario = tmp_path / "shop.test.yaml"
    scenario.write_text(
        "container: shop.yaml\nnow: 0\ncases:\n"
        f"  - name: recorded purchase\n    request: {json.dumps(hit)}\n"
        "    expect: {status: 200, tags: {hook: {fired: true}},"
        " requests: {hook: {event: purchase}}}\n"
    )
    tested = run_cli("test", str(scenario), env=ENV)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_headers_recorded_are_the_ones_clients_read(tmp_path):
    from sgtm.config import load_text
    from tests.installed import registry

    spec = load_text(CONTAINER, "shop.yaml", registry(), environ=ENV)
    wanted = client_headers(spec)
    assert {"user-agent", "cookie", "x-crm-key", "content-type"} <= wanted
    assert not {"authorization", "x-forwarded-for", "x-internal-trace"} & wanted


def test_mask_cookies_keeps_names_only():
    assert mask_cookies("_ga=GA1.1.1.2; FPID=x=y;flag ; =bad") == "_ga=***; FPID=***; flag"


@pytest.mark.e2e
def test_sgtm_serve_record_stops_at_its_size_limit(tmp_path):
    config = tmp_path / "shop.yaml"
    config.write_text(CONTAINER)
    file = tmp_path / "recorded.ndjson"
    limit = 2000
    with SgtmProcess(
        config, ENV, "--record", str(file), "--record-max-bytes", str(limit)
    ) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(30):
                assert client.get(HIT, headers={"user-agent": UA}).status_code == 200
        # uvicorn shuts down gracefully (the recorder flushes), then re-raises SIGTERM.
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        assert "reached its size limit" in server.logs()
    text = file.read_text()
    assert 0 < len(text.encode()) <= limit
    lines = text.splitlines()
    assert all(json.loads(line)["url"] == HIT for line in lines)  # whole lines only
    assert 5 < len(lines) < 30


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--record", "{f}", "--workers", "2"], "--record writes from one process"),
        (["--record-max-bytes", "10"], "--record-max-bytes needs --record"),
        (["--record", "{d}/missing/dir/file"], "--record: [Errno 2] No such file or directory"),
        (["--record", "{f}", "--record-max-bytes", "0"], "--record-max-bytes: expected a positive"),
        (["--record", "{f}", "--role", "deliver"], "--record records the hits a server answers"),
    ],
    ids=["workers", "max without record", "unwritable", "zero max", "deliver role"],
)
def test_serve_refuses_a_record_it_cannot_do(tmp_path, args, message):
    config = tmp_path / "shop.yaml"
    config.write_text(CONTAINER)
    filled = [a.format(f=tmp_path / "r.ndjson", d=tmp_path) for a in args]
    done = run_cli("serve", "-c", str(config), *filled, env=ENV)
    assert done.returncode == 2
    assert done.stderr.startswith(f"sgtm serve: {message}"), done.stderr
