"""The GA4 parser's memoized paths (sgtm_plugins.ga4.parse): the same event data, byte for byte,
as the parser before the caches, cold and warm; no event shares state with a cache; the caches
stay bounded whatever a client sends.

`ga4_parse_expected.json` holds what the parser before the caches (commit d515069) made of
`cases()`: synthetic hits around what is memoized (client hints, consent, items, escaped values,
repeated and unknown names) and hostile variants of each. After a deliberate change of the
client, `python -m tests.plugins.test_ga4_parse_memo update` rewrites it; review the diff.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sgtm_plugins.ga4 import GA4Client, GA4Settings, parse

from sgtm.plugin import ClientContext, ContainerInfo
from sgtm.request import HitRequest

EXPECTED = Path(__file__).with_name("ga4_parse_expected.json")
NOW = 1_767_225_600.0
UAFVL = "Google%2520Chrome%3B131.0.6778.86%7CChromium%3B131.0.6778.86%7CNot_A%2520Brand%3B24.0.0.0"
SEC_CH_UA = '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"'
ITEM = "idSKU_1~nmT%20shirt~pr10.5~qt2~k0color~v0blue~k1size~v1M~ds0.5~lp1~caApparel"


def cases() -> list[dict[str, Any]]:
    base = f"v=2&tid=G-MEMO1&cid=1.2&sid=3&sct=4&_p=123&uafvl={UAFVL}&uamb=0&uap=macOS"
    hits = [
        (
            f"{base}&en=page_view&gcs=G111&gcd=13l3l3l3l1l1&dl=https%3A%2F%2Fa.example%2F%3Fq%3D1",
            "",
        ),
        (f"{base}&en=page_view&gcs=G100&gcd=13p3p3p2p5l1&dt=Caf%C3%A9%20%E2%80%93%20shop", ""),
        (f"{base}&en=purchase&pr1={ITEM}&pr2={ITEM}&pr3=idX~prNaN~qt1e999&cu=EUR&epn.value=21", ""),
        (f"{base}&en=x&pr1=~~~&pr2=k0a~v0&pr10=v10x~k1n~k10m~v10y&ep.user_data.email=a%40b.c", ""),
        (f"{base}&en=x&gcd=13&gcd=ZZZZZZZZZZ&gcs=G1&_uip=198.51.100.1&uip=x&tag_exp=1~2", ""),
        (f"{base}&en=x&%E0%A4=1&bad%ZZescape=%ZZ&lone=%ED%A0%80&plus=a+b&_zz=1&gap.x=2&1bad=3", ""),
        (f"{base}&en=x&epn.big={'9' * 400}&epn.n=+1.5e3&epn.h=0x10&_et=NaN&upn.n=007", ""),
        (
            f"v=2&tid=G-MEMO1&cid=1.2&uafvl={UAFVL}",
            "en=page_view&_et=1\r\nen=scroll&epn.percent=90\n\nen=x",
        ),
        (f"{base}&uafvl={'%7C' * 40}{'A%3B1%7C' * 40}&en=x", f"en=y&pr1={ITEM}&uafvl=B%253B2"),
        (f"{base}&en=x&pr1={'~k' * 500}&gcd={'l' * 3000}", ""),
    ]
    headers = {
        "user-agent": "Mozilla/5.0 memo",
        "sec-ch-ua": SEC_CH_UA,
        "sec-ch-ua-mobile": "?0",
        "sec-ch-ua-platform": '"macOS"',
    }
    odd_headers = {**headers, "sec-ch-ua": '"A\\"B";v="1", "C";v="2\\\\", "unclosed;v="3'}
    out = []
    for number, (query, body) in enumerate(hits):
        out.append(
            {"query": query, "body": body, "headers": headers if number % 3 else odd_headers}
        )
    return out


def parse_case(case: dict[str, Any]) -> dict[str, Any]:
    request = HitRequest(
        method="POST" if case["body"] else "GET",
        path="/g/collect",
        query_string=case["query"],
        headers=dict(case["headers"]),
        body=case["body"].encode(),
        client_ip="203.0.113.5",
    )
    ctx = ClientContext(client_name="ga4", container=ContainerInfo(name="memo"), now=NOW)
    events = GA4Client().parse(request, GA4Settings(), ctx)
    return {"events": events, "dropped": dict(sorted(ctx.dropped.items()))}


def expected() -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = json.loads(EXPECTED.read_text())
    return recorded


@pytest.mark.parametrize("number", range(len(cases())))
def test_the_same_event_data_as_before_the_caches_cold_and_warm(number: int) -> None:
    case, want = cases()[number], expected()[number]
    for _ in range(3):  # the first pass fills the caches, the others read them
        got = parse_case(case)
        assert msgspec.json.encode(got) == msgspec.json.encode(want)


def test_events_share_nothing_with_the_caches() -> None:
    for number in (0, 2):  # consent; items
        for event in parse_case(cases()[number])["events"]:
            for item in event.get("items", []):
                item["item_name"] = "changed"
            event.get("items", []).append({"item_id": "added"})
            event["client_hints"]["full_version_list"][0]["brand"] = "changed"
            event["client_hints"]["brands"].clear()
            state = event["x-sst-system_properties"].get("consent", {}).get("consentGrantedState")
            if state is not None:
                state["ad_storage"] = None
        again = parse_case(cases()[number])
        assert msgspec.json.encode(again) == msgspec.json.encode(expected()[number])


def test_two_events_of_one_request_share_nothing() -> None:
    (first, second, _third) = parse_case(cases()[7])["events"]
    first["client_hints"]["brands"][0]["brand"] = "changed"
    first["client_hints"]["full_version_list"].clear()
    assert second["client_hints"]["brands"][0]["brand"] != "changed"
    assert second["client_hints"]["full_version_list"]


def test_the_caches_stay_bounded_under_endless_distinct_values() -> None:
    caches = [parse._pair, parse._item, parse._version_pairs, parse._consent_state]
    caches += [parse._header_brands, parse._plan]
    for n in range(5000):
        parse.parse_hits(
            f"v=2&en=x&dl=%2F{n}&pr1=id{n}&uafvl=A%3B{n}&gcd=13{n}&name{n}=1&k{'x' * 300}{n}=1",
            b"",
        )
        parse.header_client_hints({"sec-ch-ua": f'"B";v="{n}"'})
    for cache in caches:
        info = cache.cache_info()  # type: ignore[attr-defined]
        assert info.maxsize is not None and info.currsize <= info.maxsize, cache
    # Values over the memo's size are decoded, never kept.
    parse._pair.cache_clear()
    assert parse.parse_query("dl=" + "%41" * 5000) == {"dl": "A" * 5000}
    assert parse._pair.cache_info().currsize == 0
    assert parse.parse_query("dl=%41&dl=%42") == {"dl": "A"}
    assert parse._pair.cache_info().currsize == 2


if __name__ == "__main__" and sys.argv[1:] == ["update"]:
    EXPECTED.write_text(
        json.dumps([parse_case(case) for case in cases()], indent=1, ensure_ascii=False) + "\n"
    )
    print(f"wrote {EXPECTED}")
