"""What an operator reads from a running server: the request id of a hit in the lines of its
deliveries, and a queue depth on /metrics as of the scrape."""

from __future__ import annotations

import textwrap

import httpx

from tests.servers import FakeVendor, SgtmServer

TOKEN = "admin-token-123"
HIT = "/g/collect?v=2&tid=G-X&cid=1.2&en=purchase&ep.event_id=evt-{n}"


def container(tmp_path, vendor_url: str):
    path = tmp_path / "shop.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            name: shop
            clients: [{{name: ga4, type: ga4}}]
            triggers: {{everything: {{all: []}}}}
            tags:
              - name: hook
                type: http_request
                triggers: [everything]
                settings: {{url: "{vendor_url}/hook"}}
            """
        )
    )
    return path


def test_a_hits_request_id_and_event_id_reach_its_delivery_line(tmp_path):
    with FakeVendor() as vendor, SgtmServer(container(tmp_path, vendor.url)) as server:
        answer = httpx.get(server.url + HIT.format(n=1), headers={"x-request-id": "hit-abc.1"})
        assert answer.status_code == 200 and answer.headers["x-request-id"] == "hit-abc.1"
        chosen = httpx.get(server.url + HIT.format(n=2))
        line = server.wait_for_log(
            lambda r: r["msg"] == "delivered" and r["event_id"] == "evt-1", "delivered line"
        )
        assert line["request_id"] == "hit-abc.1" and line["level"] == "info"
        other = server.wait_for_log(
            lambda r: r["msg"] == "delivered" and r["event_id"] == "evt-2", "second line"
        )
        assert other["request_id"] == chosen.headers["x-request-id"]


def test_metrics_show_the_queue_depth_of_the_scrape(tmp_path):
    with FakeVendor(default_status=503) as vendor:
        env = {"SGTM_ADMIN_TOKEN": TOKEN, "SGTM_DELIVERY_BACKOFF_BASE": "60s"}
        with SgtmServer(container(tmp_path, vendor.url), env) as server:
            for n in range(3):
                assert httpx.get(server.url + HIT.format(n=n)).status_code == 200
            lane = f'sgtm_delivery_queue_depth{{lane="shop/hook/{vendor.url}"}}'

            def scraped() -> str:
                auth = {"authorization": f"Bearer {TOKEN}"}
                return httpx.get(f"{server.url}/metrics", headers=auth).text

            # The sweep runs once a minute: a depth seen now was read by the scrape itself.
            assert f"{lane} 3" in scraped()
