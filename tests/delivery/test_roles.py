"""`sgtm serve --role`: ingest processes store, deliver processes send, on one outbox.

One ingest process takes the hits; two deliver processes share what it stores (SQLite file or
Redis). Every acknowledged event reaches the vendor exactly once: leases keep the deliverers from
sending a job twice (a lease that runs out mid-send is the only way to a second copy, and these
sends are far shorter than a lease).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest

from tests.cli import run_cli
from tests.delivery.conftest import drop_redis_prefix, redis_prefix
from tests.delivery.test_crash import FAST_ENV, HIT, delivered, wait_delivered
from tests.servers import FakeVendor, SgtmProcess

TOKEN = "t0ken-for-roles"


def container(tmp_path: Path, vendor: str, delivery: str = "") -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            clients:
              - {{name: ga4, type: ga4}}
            triggers:
              purchase: {{event_name: purchase}}
            tags:
              - name: webhook
                type: http_request
                triggers: [purchase]
                # Two at a time per deliverer against a vendor taking 20 ms: one deliverer
                # alone would need seconds, so both take their share.
                delivery: {{timeout: 2s, concurrency: 2}}
                settings:
                  url: {vendor}/hook
                  body: {{n: "{{{{event.n}}}}"}}
            """
        )
        + delivery
    )
    return path


def sent_by(server: SgtmProcess) -> float:
    text = httpx.get(server.url + "/metrics", headers={"authorization": f"Bearer {TOKEN}"}).text
    for line in text.splitlines():
        if line.startswith("sgtm_deliveries_total{") and 'outcome="done"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.e2e  # three servers, told apart by their own process-wide counters
@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_two_deliverers_share_one_outbox_and_send_each_event_once(tmp_path, redis_url, store):
    prefix = redis_prefix()
    delivery = ""
    if store == "redis":
        delivery = f"delivery: {{store: redis, url: '{redis_url}', prefix: {prefix}}}\n"
    env = {**FAST_ENV, "SGTM_DATA_DIR": str(tmp_path / "data"), "SGTM_ADMIN_TOKEN": TOKEN}
    try:
        with FakeVendor(delay=0.02) as vendor:
            config = container(tmp_path, vendor.url, delivery)
            with SgtmProcess(config, env, "--role", "ingest") as ingest, httpx.Client() as client:
                for n in range(100):
                    assert client.get(ingest.url + HIT.format(n=n)).status_code == 200
                assert vendor.received == []  # stored; an ingest process sends nothing
                with (
                    SgtmProcess(config, env, "--role", "deliver") as first,
                    SgtmProcess(config, env, "--role", "deliver") as second,
                ):
                    for n in range(100, 200):
                        assert client.get(ingest.url + HIT.format(n=n)).status_code == 200
                    # A deliverer answers nothing but its health and metrics.
                    assert client.get(first.url + HIT.format(n=999)).status_code == 404
                    assert client.get(first.url + "/readyz").status_code == 200
                    wait_delivered(vendor, list(range(200)))
                    shares = (sent_by(first), sent_by(second), sent_by(ingest))
                    logs = [server.logs() for server in (ingest, first, second)]
            keys = delivered(vendor)
        assert sorted(keys) == list(range(200))
        assert len(vendor.received) == 200  # each event once
        assert all(len(k) == 1 for k in keys.values())
        assert shares[0] > 0 and shares[1] > 0 and shares[0] + shares[1] == 200
        assert shares[2] == 0
        assert not any("Traceback" in log for log in logs)
    finally:
        if store == "redis":
            drop_redis_prefix(prefix)


def test_an_unknown_role_is_refused(tmp_path):
    config = container(tmp_path, "http://127.0.0.1:9")
    done = run_cli("serve", "-c", str(config), "--role", "send")
    assert done.returncode == 2
    assert "invalid choice: 'send'" in done.stderr


def test_the_roles_documented_are_the_roles_served():
    import re

    from sgtm.app import ROLES
    from tests.servers import ROOT

    usage = run_cli("serve", "--help").stdout
    assert "{" + ",".join(ROLES) + "}" in usage
    operations = (ROOT / "docs" / "operations.md").read_text()
    table = re.findall(r"^\| `(\w+)` \| ", operations.split("## Roles", 1)[1], re.M)
    assert table[: len(ROLES)] == list(ROLES)
    commands = re.findall(r"^sgtm serve .*--role (\w+)", operations, re.M)
    assert commands and set(commands) <= set(ROLES)


def test_a_worker_told_an_unknown_role_refuses_to_start(monkeypatch, tmp_path):
    # `sgtm serve --workers N` hands the role to its workers in SGTM_ROLE.
    from sgtm.app import app_from_env

    monkeypatch.setenv("SGTM_CONFIG", str(container(tmp_path, "http://127.0.0.1:9")))
    monkeypatch.setenv("SGTM_ROLE", "sender")
    with pytest.raises(ValueError, match="SGTM_ROLE: expected one of all, ingest, deliver"):
        app_from_env()
