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
    "SGTM_DELIVERY_LANE_IDLE_RETIRE": "3s",
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
    # The site's own stream keeps sending through the flood (every tenth hit), as a live site
    # does: its lane holds its place.
    tids = [SITE] + [
        t for i, tid in enumerate(flood) for t in ([tid, SITE] if i % 10 == 9 else [tid])
    ]
    tids += MALFORMED * 5 + [SITE]
    vendor = FakeVendor(default_status=204)
    with vendor, SgtmServer(container(tmp_path, vendor.url), ENV) as server:
        engine = server.app.state.delivery
        statuses = []
        most_lanes = 0
        with httpx.Client(base_url=server.url) as client:
            for n, tid in enumerate(tids):
                url = f"/g/collect?v=2&tid={tid}&cid=1.{n}&en=page_view&_p={n}"
                statuses.append(client.get(url).status_code)
                ga4_lanes = [key for key in list(engine.lanes) if key.startswith("shop/ga4/")]
                most_lanes = max(most_lanes, len(ga4_lanes))

        assert statuses == [200] * len(tids)  # no 5xx, nothing refused at the door
        assert 1 < most_lanes <= CAP
        # Every hit's other tag delivers; the site's stream reaches Google every time, and of
        # the flood what found a place (CAP - 1 at once); the rest was refused before it was
        # stored: nothing stored is missing.
        site_hits = tids.count(SITE)
        enqueued = server.app.state.metrics.value(
            "sgtm_delivery_enqueued_total", container="shop", tag="ga4"
        )
        received = vendor.wait_for(len(tids) + int(enqueued), timeout=60)
        crm = [r for r in received if r.path == "/crm"]
        sent_ids = [parse_qs(r.query)["tid"][0] for r in received if r.path == "/g/collect"]
        assert len(crm) == len(tids)
        assert sent_ids.count(SITE) == site_hits
        admitted = set(sent_ids) - {SITE}
        assert admitted >= set(flood[: CAP - 1]) and admitted <= set(flood)
        assert len(sent_ids) == enqueued == site_hits + len(admitted)

        lines = metrics(server)
        refused = 'sgtm_delivery_refused_total{container="shop",reason="max_lanes",tag="ga4"}'
        assert f"{refused} {len(flood) - len(admitted)}" in lines
        # The cap, plus at most the lanes retired since the last sweep, plus crm's lane.
        assert len(series(lines, "sgtm_delivery_queue_depth")) <= 2 * CAP + 1
        invalid = 'sgtm_tags_total{container="shop",outcome="invalid",tag="ga4"}'
        assert f"{invalid} {len(MALFORMED) * 5}" in lines

        # Idle past retirement, the lanes are forgotten: tasks, store rows, series.
        wait_until(lambda: not engine.lanes, "lanes retired", timeout=30)
        wait_until(
            lambda: not series(metrics(server), "sgtm_delivery_queue_depth"),
            "queue depth series forgotten",
            timeout=30,
        )


def test_test_event_codes_from_hits_open_no_lanes(tmp_path: Path) -> None:
    """An event may carry its own `test_event_code` (Meta's and TikTok's tags honour it, as
    Stape's templates do). It groups requests inside the pixel's one lane: a flood of codes must
    not take the lane budget, or the site's real conversions would be refused after a restart."""
    path = tmp_path / "ads.yaml"
    vendor = FakeVendor(default_status=200)
    with vendor:
        path.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                clients:
                  - {{name: datalayer, type: datalayer}}
                triggers:
                  everything: {{all: []}}
                tags:
                  - name: meta
                    type: meta_capi
                    triggers: [everything]
                    settings:
                      pixel_id: "1234567890123456"
                      access_token: tok
                      endpoint: "{vendor.url}/meta/"
                  - name: tiktok
                    type: tiktok
                    triggers: [everything]
                    settings:
                      pixel_code: C4A1B2C3D4E5F6G7H8I9
                      access_token: tt
                      endpoint: "{vendor.url}/tiktok"
                delivery: {{path: "{tmp_path / "var"}", max_lanes_per_tag: 2}}
                """
            )
        )
        rng = random.Random(9)
        with SgtmServer(path, ENV) as server, httpx.Client(base_url=server.url) as client:
            engine = server.app.state.delivery
            pushes = [
                {"test_event_code": "TEST" + "".join(rng.choices(string.digits, k=6))}
                for _ in range(20)
            ] + [{"event_id": f"real-{n}", "value": 10 + n} for n in range(3)]
            for n, extra in enumerate(pushes):
                push = {
                    "event": "purchase" if "event_id" in extra else "page_view",
                    "page_location": "https://www.shop.example/p/1",
                    "currency": "BRL",
                    **extra,
                }
                answer = client.post("/data", json=push, headers={"origin": "https://x.example"})
                assert answer.status_code == 200, (n, answer.text)
                assert len(engine.lanes) <= 2  # one lane per tag, whatever the codes

            def seen() -> dict[str, set[str | None]] | None:
                codes: dict[str, set[str | None]] = {"meta": set(), "tiktok": set()}
                real = {"meta": 0, "tiktok": 0}
                for request in list(vendor.received):
                    kind = "meta" if request.path.startswith("/meta/") else "tiktok"
                    body = request.json()
                    codes[kind].add(body.get("test_event_code"))
                    ids = [str(e.get("event_id", "")) for e in body["data"]]
                    real[kind] += sum(1 for i in ids if i.startswith("real-"))
                done = real == {"meta": 3, "tiktok": 3} and all(
                    len(c) == 21 for c in codes.values()
                )
                return codes if done else None

            # The site's conversions all go out, and every request carries one code: the 20
            # codes' and none for the real events.
            codes = wait_until(seen, "every event delivered", timeout=90)
            assert all(None in found for found in codes.values())
            lines = metrics(server)
        assert not [line for line in lines if line.startswith("sgtm_delivery_refused_total{")]
