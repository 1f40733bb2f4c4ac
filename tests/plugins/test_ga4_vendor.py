"""The `ga4` tag in the real `sgtm serve`: the corpus hits go in through the `ga4` client and come
out at a fake GA4 `/g/collect` endpoint on loopback (tests/plugins/fake_ga4.py checks the wire)
with their parameters, the anonymized visitor IP and the visitor's user agent; 5xx is retried
with the identical request, 4xx is a dead letter; a `dry_run` tag logs each hit's shape."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from sgtm.privacy import anonymize_ip
from tests.cli import dead_letters
from tests.plugins import fake_ga4
from tests.plugins.test_ga4_corpus import CORPUS, FILES, NEVER_SENT_BACK, load
from tests.servers import FakeVendor, Received, SgtmServer, wait_until

FAST_ENV = {
    "SGTM_DELIVERY_POLL_INTERVAL": "100ms",
    "SGTM_DELIVERY_BACKOFF_BASE": "100ms",
    "SGTM_DELIVERY_BACKOFF_CAP": "500ms",
    "SGTM_DELIVERY_DISCOVER_INTERVAL": "200ms",
}
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0"


def container(tmp_path: Path, endpoint: str) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            privacy: {{anonymize_ip: true, trusted_proxies: [127.0.0.1/32]}}
            clients:
              - {{name: ga4, type: ga4}}
            triggers:
              everything: {{all: []}}
            tags:
              - name: ga4
                type: ga4
                triggers: [everything]
                settings: {{endpoint: "{endpoint}"}}
              - name: ga4_preview
                type: ga4
                triggers: [everything]
                dry_run: true
            delivery: {{path: "{tmp_path / "var"}"}}
            """
        )
    )
    return path


def send(server: SgtmServer, request: dict[str, Any]) -> None:
    headers = {"user-agent": UA, **request.get("headers", {}), "x-forwarded-for": request["ip"]}
    response = httpx.request(
        request["method"],
        server.url + request["url"],
        headers=headers,
        content=request.get("body", "").encode(),
    )
    assert response.status_code == 200


def key(params: dict[str, str]) -> tuple[str, ...]:
    return tuple(params.get(name, "") for name in ("tid", "cid", "en", "_p", "_s"))


def test_serve_forwards_every_corpus_hit_with_its_parameters(tmp_path: Path) -> None:
    env = {**FAST_ENV, "SGTM_DATA_DIR": str(tmp_path / "var")}
    expected: dict[tuple[str, ...], dict[str, Any]] = {}
    with FakeVendor(default_status=204, check=fake_ga4.problems) as ga4:
        config = container(tmp_path, f"{ga4.url}/g/collect")
        with SgtmServer(config, env) as server:
            for path in FILES:
                record = load(path)
                request = record["request"]
                url = urlsplit(request["url"])
                original = Received(
                    "POST", url.path, url.query, {}, request.get("body", "").encode()
                )
                skipped = NEVER_SENT_BACK | set(record["not_sent_back"])
                for params in fake_ga4.hits(original):
                    expected[key(params)] = {
                        "params": {k: v for k, v in params.items() if k not in skipped},
                        "ip": str(anonymize_ip(request["ip"])),
                        "ua": request.get("headers", {}).get("user-agent", UA),
                    }
                send(server, request)
            received = ga4.wait_for(len(expected), timeout=30)
            logs = _wait_for_logs(server, "dry_run request", len(expected))
    assert ga4.errors == []
    assert len(received) == len(expected)
    shapes = []
    client_ids = set()
    for got in received:
        (sent,) = fake_ga4.hits(got)
        client_ids.add(sent["cid"])
        want = expected.pop(key(sent))
        assert sent.pop("_uip") == want["ip"]  # anonymized, as privacy.anonymize_ip says
        assert fake_ga4.canonical(sent) == fake_ga4.canonical(want["params"])
        assert got.headers["user-agent"] == want["ua"]
        assert got.headers["content-type"] == "text/plain;charset=UTF-8"
        shapes.append((_names(got.query), _names(got.body.decode())))
    assert expected == {}
    # The dry_run tag logs what it would send by shape (core rule: no visitor's value in a log):
    # Google's URL, the query's names (each the same as a sent hit's) and the body's size.
    logged = []
    for record in logs:
        assert record["url"] == "https://region1.google-analytics.com/g/collect"
        assert "body" not in record and record["bytes"] > 0
        assert not [cid for cid in client_ids if cid in json.dumps(record)]
        logged.append(tuple(record["query"]))
    assert sorted(logged) == sorted(query for query, _ in shapes)


def _names(line: str) -> tuple[str, ...]:
    return tuple(name for name, _ in parse_qsl(line, keep_blank_values=True))


def test_serve_retries_5xx_with_the_same_request_and_dead_letters_4xx(tmp_path: Path) -> None:
    env = {**FAST_ENV, "SGTM_DATA_DIR": str(tmp_path / "var")}
    purchase = load(CORPUS / "local_sgtm_purchase.json")["request"]
    page_view = load(CORPUS / "sesamy_page_view.json")["request"]
    with FakeVendor(default_status=204, responses=[503, 204, 400], check=fake_ga4.problems) as ga4:
        config = container(tmp_path, f"{ga4.url}/g/collect")
        with SgtmServer(config, env) as server:
            send(server, purchase)
            first, second = ga4.wait_for(2, timeout=30)
            send(server, page_view)
            (letter,) = _wait_for_dead_letters(config, env)
            received = list(ga4.received)
    assert ga4.errors == []
    assert (first.query, first.body, first.headers["user-agent"]) == (
        second.query,
        second.body,
        second.headers["user-agent"],
    )
    assert letter["reason"] == "HTTP 400: refused by GA4 or a proxy on the way"
    assert len(received) == 3  # the refused hit was tried once


def _wait_for_logs(server: SgtmServer, message: str, count: int) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]]:
        return [r for r in server.log_records() if r.get("msg") == message]

    return wait_until(lambda: len(f := found()) >= count and f, f"{count} {message!r} logs", 30)


def _wait_for_dead_letters(config: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    return wait_until(lambda: dead_letters(config, env), "a dead letter", 30)
