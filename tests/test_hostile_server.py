"""Issue #8 items 2 and 3 on the real `sgtm serve`: hits built to make a parser or a config regex
backtrack are answered, and the events around them still go out.

The timeouts are guards, never a performance figure: bench/hostile.py measures what they cost.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import re2

from sgtm.config import load_containers
from tests.installed import registry
from tests.servers import FakeVendor, SgtmServer
from tests.test_config_regex import CATASTROPHIC, HOSTILE_DL, linear_regexes

# Guards, generous for linear work (milliseconds): before the fixes these requests took from
# 9 s (one 8,000-digit value) to hours (the catastrophic pattern).
GUARD = httpx.Timeout(5.0)
BODY_GUARD = httpx.Timeout(30.0)
HIT = "/g/collect?v=2&tid=G-HOSTILE1&cid=111.222"
SHOP = quote("https://www.shop.example/p/1", safe="")


def write_config(tmp_path: Path, vendor_url: str) -> Path:
    path = tmp_path / "hostile.yaml"
    pattern = CATASTROPHIC.replace("\\", "\\\\")
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            clients:
              # The server's limit (1 MiB), not the client's 64 KiB: parsing it must be linear.
              - {{name: ga4, type: ga4, settings: {{max_body_bytes: 1048576}}}}
            variables:
              section:
                type: regex_table
                input: page_location
                patterns: [{{match: "{pattern}", value: shop}}]
                default: elsewhere
            triggers:
              shop_page: {{var: page_location, matches: "{pattern}"}}
            tags:
              - name: hook
                type: http_request
                triggers: [shop_page]
                settings:
                  url: {vendor_url}/hook
                  body:
                    event: "{{{{event_name}}}}"
                    section: "{{{{section}}}}"
                    x: "{{{{event.x}}}}"
            """
        )
    )
    return path


@pytest.fixture
def vendor():
    with FakeVendor() as fake:
        yield fake


@pytest.fixture
def server(tmp_path, vendor):
    with SgtmServer(write_config(tmp_path, vendor.url)) as proc:
        yield proc


def test_the_served_conditions_run_on_re2(tmp_path):
    (spec,) = load_containers([write_config(tmp_path, "http://127.0.0.1:9")], registry())
    (tag,) = spec.tags
    found = linear_regexes(tag.triggers) + spec.variables["section"].settings._compiled
    assert [r.pattern for r in found] == [CATASTROPHIC, CATASTROPHIC]
    assert all(isinstance(r.compiled, type(re2.compile("x"))) for r in found)


def test_hostile_hits_are_answered_and_normal_ones_still_delivered(server, vendor):
    # 8,000 digits and then not a number: the old number regex tried every split of the digits
    # (9 s here). It is no number now either: the param is dropped, the event kept.
    digits = "1" * 8000 + "x"
    got = httpx.get(f"{server.url}{HIT}&en=page_view&dl={SHOP}&epn.x={digits}", timeout=GUARD)
    assert got.status_code == 200
    (sent,) = vendor.wait_for(1)
    assert json.loads(sent.body) == {"event": "page_view", "section": "shop", "x": None}

    # A 1 MiB POST of such lines (the body limit): the old regex would have taken minutes.
    line = f"en=scroll&epn.x={digits}\n".encode()
    body = line * ((1024 * 1024) // len(line))
    got = httpx.post(f"{server.url}{HIT}&dl={SHOP}", content=body, timeout=BODY_GUARD)
    assert got.status_code == 200

    # The catastrophic pattern against 30 slashes and a newline: Python's re would need hours.
    hostile_dl = quote(HOSTILE_DL, safe="")
    got = httpx.get(f"{server.url}{HIT}&en=page_view&dl={hostile_dl}", timeout=GUARD)
    assert got.status_code == 200

    # Headers the stdlib cookie parser and the Sec-CH-UA regex were quadratic on.
    headers = {"cookie": 'a="' + "\\" * 32_768 + '"; b=1', "sec-ch-ua": '"' + '\\"' * 1024}
    got = httpx.get(
        f"{server.url}{HIT}&en=page_view&dl={hostile_dl}", headers=headers, timeout=GUARD
    )
    assert got.status_code == 200

    got = httpx.get(f"{server.url}{HIT}&en=purchase&dl={SHOP}", timeout=GUARD)
    assert got.status_code == 200
    received = vendor.wait_for(102)  # page_view, 100 scroll lines (the batch cap), purchase
    events = [json.loads(r.body)["event"] for r in received]
    assert events.count("scroll") == 100
    assert events[-1] == "purchase"
    assert all(json.loads(r.body)["x"] is None for r in received)
    assert all(json.loads(r.body)["section"] == "shop" for r in received)
    assert '"status":500' not in server.logs()
