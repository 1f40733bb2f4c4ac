"""Issue #8 against the real `sgtm serve`: hits that each name another GA4 measurement id must
not grow lanes, tasks, store rows or /metrics series without end. Malformed ids are refused by
the `ga4` tag (`invalid`), well-formed ones past `delivery.max_lanes_per_tag` by the delivery
engine before they are stored; every hit is answered 200, the hit's other tags still deliver,
the site's own stream still reaches (a fake) Google, and once idle the lanes are forgotten."""

from __future__ import annotations

import random
import string
import textwrap
from pathlib import Path
from urllib.parse import parse_qs

import httpx

from tests.servers import FakeVendor, SgtmServer, wait_until

TOKEN = "admin-token-lanes"
CAP = 8
SITE = "G-SHOP0001"
ENV = {
    "SGTM_ADMIN_TOKEN": TOKEN,
    "SGTM_DELIVERY_POLL_INTERVAL": "100ms",
    "SGTM_DELIVERY_DISCOVER_INTERVAL": "200ms",
    "SGTM_DELIVERY_SWEEP_INTERVAL": "200ms",
    "SGTM_DELIVERY_LANE_IDLE_RETIRE": "1s",
}
MALFORMED = [
    "g-lower0001",
    "G-",
    "G-AB",
    "G-" + "A" * 40,
    "UA-1234-1",
    "G-ABC%20123",
    "G-%7B%7Bx%7D%7D",
    "G-%C3%80BC123",
    "G-ABC-123",
]


def container(tmp_path: Path, vendor: str) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            clients:
              - {{name: ga4, type: ga4}}
            triggers:
              everything: {{all: []}}
            tags:
              - name: ga4
                type: ga4
                triggers: [everything]
                settings: {{endpoint: "{vendor}/g/collect"}}
              - name: crm
                type: http_request
                triggers: [everything]
                settings: {{url: "{vendor}/crm"}}
            delivery: {{path: "{tmp_path / "var"}", max_lanes_per_tag: {CAP}}}
            """
        )
    )
    return path


def random_id(rng: random.Random) -> str:
    return "G-" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=10))


def metrics(server: SgtmServer) -> list[str]:
    response = httpx.get(f"{server.url}/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return response.text.splitlines()


def series(lines: list[str], name: str) -> list[str]:
    return [line for line in lines if line.startswith(name + "{")]


def test_a_flood_of_measurement_ids_keeps_lanes_bounded(tmp_path: Path) -> None:
    rng = random.Random(8)
    flood = [random_id(rng) for _ in range(150)]
    vendor = FakeVendor(default_status=204)
    with vendor, SgtmServer(container(tmp_path, vendor.url), ENV) as server:
        statuses = []
        with httpx.Client(base_url=server.url) as client:

            def hit(tid: str, n: int) -> None:
                url = f"/g/collect?v=2&tid={tid}&cid=1.{n}&en=page_view&_p={n}"
                statuses.append(client.get(url).status_code)

            hit(SITE, 0)  # the site's own stream has its lane before the flood
            for n, tid in enumerate(flood + MALFORMED * 5, start=1):
                hit(tid, n)
            hit(SITE, 10_000)

        hits = 2 + len(flood) + len(MALFORMED) * 5
        assert statuses == [200] * hits  # no 5xx, nothing refused at the door
        engine = server.app.state.delivery
        ga4_lanes = [key for key in list(engine.lanes) if key.startswith("shop/ga4/")]
        assert len(ga4_lanes) <= CAP
        # Every hit's other tag delivers; the site's stream and the first CAP - 1 flood ids
        # reach Google, the rest were refused before they were stored.
        admitted = 2 + CAP - 1
        received = vendor.wait_for(hits + admitted, timeout=60)
        crm = [r for r in received if r.path == "/crm"]
        sent_ids = [parse_qs(r.query)["tid"][0] for r in received if r.path == "/g/collect"]
        assert len(crm) == hits
        assert sent_ids.count(SITE) == 2
        assert sorted(set(sent_ids) - {SITE}) == sorted(flood[: CAP - 1])

        lines = metrics(server)
        refused = 'sgtm_delivery_refused_total{container="shop",reason="max_lanes",tag="ga4"}'
        assert f"{refused} {len(flood) - (CAP - 1)}" in lines
        assert len(series(lines, "sgtm_delivery_queue_depth")) <= CAP + 1  # + crm's lane
        invalid = [
            line
            for line in series(lines, "sgtm_tags_total")
            if 'tag="ga4"' in line and "invalid" in line
        ]
        assert invalid, "malformed ids are counted as the tag's invalid events"
        assert server.app.state.metrics.value(
            "sgtm_delivery_enqueued_total", container="shop", tag="ga4"
        ) == float(admitted)

        # Idle past retirement, the lanes are forgotten: tasks, store rows, series.
        wait_until(lambda: not engine.lanes, "lanes retired", timeout=30)
        wait_until(
            lambda: not series(metrics(server), "sgtm_delivery_queue_depth"),
            "queue depth series forgotten",
            timeout=30,
        )
