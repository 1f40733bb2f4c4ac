"""The GA4 round-trip corpus (tests/ga4_corpus/): real gtag hits, each stored with the event data
the `ga4` client makes of it.

Per file:
- the client alone: parsing the captured request gives exactly the stored event data (compared
  as JSON bytes, key order included) and the same drop counters. A rewrite of the parser must
  keep this passing unchanged;
- the round trip: client -> `ga4` tag gives back every parameter of the original hit, value for
  value (numbers as numbers, items field for field, `em` field for field), as read by the fake
  GA4 endpoint's own decoder, which also checks the wire format. Never sent back: `_fplc` (the
  client's FPID logic reads it), `richsstsse` (it asks a server container for a streamed
  answer), and what a file lists under `not_sent_back` with the reason. The tag adds `_uip`.

After a deliberate change of the client, `python -m tests.plugins.test_ga4_corpus update`
rewrites the stored event data; review the diff before committing it.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
from sgtm_plugins.ga4 import GA4Client, GA4Settings
from sgtm_plugins.ga4.tag import Ga4Settings, Ga4Tag

from sgtm.event import EventData
from sgtm.plugin import BuildContext, ClientContext, ContainerInfo, Outbound
from sgtm.request import HitRequest
from tests.plugins import fake_ga4
from tests.servers import Received

CORPUS = Path(__file__).resolve().parent.parent / "ga4_corpus"
FILES = sorted(CORPUS.glob("*.json"))
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z: request_start_time_ms is stored
NEVER_SENT_BACK = frozenset({"_fplc", "richsstsse"})
ENDPOINT = "https://ga4.test/g/collect"


def load(path: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def hit_request(record: dict[str, Any]) -> HitRequest:
    line = record["request"]
    url = urlsplit(line["url"])
    return HitRequest(
        method=line["method"],
        path=url.path,
        query_string=url.query,
        headers={k.lower(): v for k, v in line.get("headers", {}).items()},
        body=line.get("body", "").encode(),
        client_ip=line["ip"],
    )


def client_output(record: dict[str, Any]) -> tuple[list[EventData], dict[str, int]]:
    ctx = ClientContext(client_name="ga4", container=ContainerInfo(name="corpus"), now=NOW)
    events = GA4Client().parse(hit_request(record), GA4Settings(), ctx)
    return events, ctx.dropped


def as_received(outbound: Outbound) -> Received:
    url = urlsplit(outbound.url)
    headers = {k.lower(): v for k, v in outbound.headers.items()}
    return Received(outbound.method, url.path, url.query, headers, outbound.body)


def test_the_corpus_has_what_the_issue_asks_for() -> None:
    requests = [load(path)["request"] for path in FILES]
    queries = [r["url"] + "&" + r.get("body", "").replace("\n", "&") for r in requests]
    assert len(FILES) >= 8
    assert any("en=page_view" in q for q in queries)
    assert any("en=purchase" in q and "&pr2=" in q and "~k0" in q for q in queries)
    assert any("\n" in r.get("body", "") for r in requests)  # a batched POST
    assert any("gcs=G100" in q for q in queries)  # consent denied
    assert any("&em=tv.1" in q for q in queries)  # user-provided data
    assert all(load(path)["source"] for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_client_gives_the_stored_event_data(path: Path) -> None:
    record = load(path)
    events, dropped = client_output(record)
    assert msgspec.json.encode(events) == msgspec.json.encode(record["events"])
    assert dropped == record["dropped"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_round_trip_gives_back_every_parameter(path: Path) -> None:
    record = load(path)
    line = record["request"]
    url = urlsplit(line["url"])
    original = Received(line["method"], url.path, url.query, {}, line.get("body", "").encode())
    originals = fake_ga4.hits(original)
    events, _ = client_output(record)
    assert len(events) == len(originals)
    skipped = NEVER_SENT_BACK | set(record["not_sent_back"])
    for event, params in zip(events, originals, strict=True):
        ctx = BuildContext(tag_name="ga4", container=ContainerInfo(name="corpus"), now=NOW)
        (outbound,) = Ga4Tag().build(event, Ga4Settings(endpoint=ENDPOINT), ctx)
        got = as_received(outbound)
        assert fake_ga4.problems(got) is None
        (sent,) = fake_ga4.hits(got)
        assert sent.pop("_uip") == str(ipaddress.ip_address(line["ip"]))
        expected = {name: value for name, value in params.items() if name not in skipped}
        assert fake_ga4.canonical(sent) == fake_ga4.canonical(expected)
        assert outbound.headers.get("User-Agent") == line.get("headers", {}).get("user-agent")
        assert ctx.warnings == []


def test_emulate_shows_a_purchase_hit_as_the_ga4_tag_sends_it(tmp_path: Path) -> None:
    """`sgtm emulate` of a real gtag purchase: the ga4 tag's request carries the hit's own
    parameters (and `_uip`), and nothing leaves the machine."""
    record = load(CORPUS / "local_sgtm_purchase.json")
    config = tmp_path / "shop.yaml"
    config.write_text(
        "version: 1\n"
        "clients: [{name: ga4, type: ga4}]\n"
        "triggers: {purchase: {event_name: purchase}}\n"
        "tags: [{name: ga4, type: ga4, triggers: [purchase]}]\n"
    )
    requests = tmp_path / "hits.ndjson"
    requests.write_text(json.dumps(record["request"]) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "sgtm", "emulate", "-c", str(config), "--requests", str(requests)],
        capture_output=True,
        text=True,
        check=True,
    )
    (line,) = done.stdout.splitlines()
    ((tag,),) = [event["tags"] for event in json.loads(line)["events"]]
    assert (tag["name"], tag["fired"]) == ("ga4", True)
    (shown,) = tag["requests"]
    url = urlsplit(shown["url"])
    assert (
        f"{url.scheme}://{url.netloc}{url.path}" == "https://region1.google-analytics.com/g/collect"
    )
    got = Received(shown["method"], url.path, url.query, shown["headers"], shown["body"].encode())
    assert fake_ga4.problems(_lower_headers(got)) is None
    (sent,) = fake_ga4.hits(got)
    assert sent.pop("_uip") == record["request"]["ip"]
    (original,) = fake_ga4.hits(
        Received("GET", "/g/collect", urlsplit(record["request"]["url"]).query, {}, b"")
    )
    assert fake_ga4.canonical(sent) == fake_ga4.canonical(original)
    assert shown["headers"]["User-Agent"] == record["request"]["headers"]["user-agent"]


def _lower_headers(got: Received) -> Received:
    headers = {k.lower(): v for k, v in got.headers.items()}
    return Received(got.method, got.path, got.query, headers, got.body)


def update() -> None:
    for path in FILES:
        record = load(path)
        events, dropped = client_output(record)
        record["dropped"] = dropped
        record["events"] = events
        path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
        print(f"{path.name}: {len(events)} events, dropped {dropped or 'nothing'}")


if __name__ == "__main__" and sys.argv[1:] == ["update"]:
    update()
