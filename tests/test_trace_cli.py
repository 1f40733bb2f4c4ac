"""`sgtm trace EVENT_ID -c PATH`: the delivery history from a shell, SQLite and Redis, read
through the config loader like `sgtm dlq` (the server and the command share the store)."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from tests.cli import Ran, run_cli
from tests.servers import FakeVendor, SgtmServer, wait_until
from tests.test_admin import backend, write_container

__all__ = ["backend"]  # a fixture, shared with tests/test_admin.py


def trace(*args: str) -> Ran:
    env = {k: v for k, v in os.environ.items() if k != "SGTM_DATA_DIR"}
    return run_cli("trace", *args, env=env)


def test_trace_shows_an_events_deliveries(tmp_path, backend):
    store = backend or f"delivery: {{path: '{tmp_path / 'data'}'}}"
    with FakeVendor(responses=[500, 200]) as vendor:
        config = write_container(tmp_path, vendor.url, store)
        with SgtmServer(config) as server:
            body = {"event": "purchase", "event_id": "E-7", "ecommerce": {"transaction_id": "T-7"}}
            assert httpx.post(f"{server.url}/data", content=json.dumps(body)).status_code == 200

            def delivered() -> Ran | None:
                ran = trace("E-7", "-c", str(config))
                return ran if "delivered" in ran.stdout else None

            shown = wait_until(delivered, "the delivery in the history", 20)
            assert shown.returncode == 0
            header, row = shown.stdout.splitlines()
            assert header.split() == ["AT", "(UTC)", "EVENT", "TAG", "STATE", "TRIES", "STATUS"]
            assert row.split()[1:] == ["E-7", "shop/hook", "delivered", "2", "200"]
            as_json = json.loads(trace("E-7", "-c", str(config), "--json").stdout)
            assert as_json["event_id"] == "E-7"
            assert [d["state"] for d in as_json["deliveries"]] == ["delivered"]
            by_order = json.loads(trace("T-7", "--transaction", "-c", str(config), "--json").stdout)
            assert by_order["deliveries"] == as_json["deliveries"]
            missing = trace("E-none", "-c", str(config))
            assert missing.returncode == 1 and "no deliveries recorded" in missing.stdout


@pytest.mark.parametrize("key", ["", "a" * 257, "a\nb", "\x00"])
def test_trace_refuses_ids_that_cannot_be_one(tmp_path, key):
    ran = trace(key, "-c", str(tmp_path))
    assert ran.returncode == 2 and ran.stderr.startswith("sgtm trace: ")


def test_trace_without_a_store_says_so(tmp_path):
    config = write_container(tmp_path, "http://127.0.0.1:9", f"delivery: {{path: '{tmp_path}'}}")
    ran = trace("E-1", "-c", str(config))
    assert ran.returncode == 2 and "no store at" in ran.stderr
