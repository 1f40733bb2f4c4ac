"""Dedupe rules in `sgtm serve` live in the delivery store: they outlive a restart."""

from __future__ import annotations

import textwrap

import httpx

from tests.delivery.test_crash import FAST_ENV
from tests.servers import FakeVendor, SgtmProcess

HIT = "/g/collect?v=2&tid=G-TEST01&cid=1.2&en=purchase&ep.order={order}"


def test_dedupe_survives_a_restart(tmp_path):
    with FakeVendor() as vendor:
        config = tmp_path / "shop.yaml"
        config.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                clients: [{{name: ga4, type: ga4}}]
                triggers: {{purchase: {{event_name: purchase}}}}
                tags:
                  - name: conversions
                    type: http_request
                    triggers: [purchase]
                    dedupe: {{key: "{{{{event.order}}}}", ttl: 2592000}}
                    settings: {{url: "{vendor.url}/c", body: {{order: "{{{{event.order}}}}"}}}}
                """
            )
        )
        env = {**FAST_ENV, "SGTM_DATA_DIR": str(tmp_path / "data")}
        with SgtmProcess(config, env) as server:
            for order in ("A-1", "A-1", "B-2"):
                assert httpx.get(server.url + HIT.format(order=order)).status_code == 200
            vendor.wait_for(2)
        with SgtmProcess(config, env) as server:
            for order in ("A-1", "B-2", "C-3"):
                assert httpx.get(server.url + HIT.format(order=order)).status_code == 200
            vendor.wait_for(3)
        bodies = sorted(r.body for r in vendor.received)
        assert bodies == [b'{"order":"A-1"}', b'{"order":"B-2"}', b'{"order":"C-3"}']
