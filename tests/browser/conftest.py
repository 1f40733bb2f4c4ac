"""Headless Chromium against a real `sgtm serve`: the harness for sgtm.js.

- The browser is Debian's /usr/bin/chromium driven by Playwright (`playwright install` is never
  run; nothing downloads a browser). Missing Chromium is a failure, not a skip: `.ci/run`
  installs it.
- `sgtm serve` (in this process: tests/servers.py SgtmServer) runs a container with the
  `datalayer` client and `http_request` tags pointing at a FakeVendor; it listens on
  127.0.0.1:PORT.
- Test pages come from a small static server on another port, opened as http://localhost:PORT2:
  another origin than sgtm, as www.shop.example is to sgtm.shop.example. The container's
  `origins` lists it; http://127.0.0.1:PORT2 is a second origin that it does not list.
"""

from __future__ import annotations

import json
import textwrap
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.servers import FakeVendor, Received, SgtmServer, free_port, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT = 10.0


class PageServer:
    """Serves HTML registered by the tests: `add(path, html)` -> path."""

    def __init__(self) -> None:
        pages: dict[str, bytes] = {}
        self.pages = pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("cache-control", "no-store")
                self.send_header("content-length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://localhost:{self.port}"
        self.unlisted_origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, path: str, html: str) -> str:
        self.pages[path] = html.encode()
        return path

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def check_event(got: Received) -> str | None:
    """What the http_request tag sends by default: the event data as a JSON object."""
    try:
        event = json.loads(got.body)
    except ValueError:
        return "body is not JSON"
    if not isinstance(event, dict) or not isinstance(event.get("event_name"), str):
        return "no event_name"
    return None


@dataclass
class Site:
    """Everything a browser test needs: the servers, and helpers to read what the vendor got."""

    sgtm: SgtmServer
    vendor: FakeVendor
    pages: PageServer
    dead_endpoint: str
    requests_seen: list[dict[str, Any]] = field(default_factory=list)

    def page_html(self, before: str = "", after: str = "", attrs: str = "data-debug") -> str:
        """A shop page: inline JS before sgtm.js, the script tag, inline JS after it."""
        return textwrap.dedent(
            f"""\
            <!doctype html>
            <html><head><title>Shop page</title>
            <script>
              window.dataLayer = window.dataLayer || [];
              function gtag() {{ dataLayer.push(arguments); }}
              {before}
            </script>
            <script src="{self.sgtm.url}/sgtm.js" {attrs}></script>
            </head><body><a id="buy" href="#">Buy</a>
            <script>{after}</script>
            </body></html>
            """
        )

    def events(self, path: str = "/collect") -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in list(self.vendor.received) if r.path == path]

    def names(self, prefix: str, path: str = "/collect") -> Counter[str]:
        return Counter(
            e["event_name"] for e in self.events(path) if e["event_name"].startswith(prefix)
        )

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        try:
            wait_until(condition, what, TIMEOUT)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; vendor got {self.events()}") from None

    def wait_for(self, *names: str, path: str = "/collect") -> None:
        self.wait_until(lambda: all(n in self.names(n, path) for n in names), f"{names} on {path}")

    def settle(self) -> None:
        """Send a marker event straight to sgtm and wait until the vendor has it on both paths:
        what the browser sent before is in by then, so counts taken now catch duplicates."""
        name = f"sentinel_{uuid.uuid4().hex}"
        body = json.dumps({"event": name, "consent_state": {"ad_storage": True}})
        assert httpx.post(f"{self.sgtm.url}/data", content=body).status_code == 200
        self.wait_for(name)
        self.wait_for(name, path="/ads")

    def by_name(self, prefix: str, path: str = "/collect") -> dict[str, dict[str, Any]]:
        return {e["event_name"]: e for e in self.events(path) if e["event_name"].startswith(prefix)}

    def logged_methods(self, path: str) -> list[str]:
        methods = []
        for line in self.sgtm.logs().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("msg") == "request" and record.get("path") == path:
                methods.append(record["method"])
        return methods


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); "
            ".ci/run does it"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with FakeVendor(check=check_event) as vendor, PageServer() as pages:
        config = tmp_path_factory.mktemp("browser") / "shop.yaml"
        config.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                origins: [{pages.origin}]
                clients:
                  - name: web
                    type: datalayer
                triggers:
                  everything: {{all: []}}
                tags:
                  - name: vendor
                    type: http_request
                    triggers: [everything]
                    settings: {{url: "{vendor.url}/collect"}}
                  - name: ads
                    type: http_request
                    triggers: [everything]
                    consent: [ad_storage]
                    settings: {{url: "{vendor.url}/ads"}}
                """
            )
        )
        with SgtmServer(config) as sgtm:
            yield Site(sgtm, vendor, pages, f"http://127.0.0.1:{free_port()}/data")
        assert vendor.errors == []


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context()
    ctx.set_default_timeout(TIMEOUT * 1000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext, site: Site) -> Page:
    opened = context.new_page()
    site.requests_seen.clear()
    opened.on(
        "request",
        lambda r: site.requests_seen.append(
            {"url": r.url, "method": r.method, "headers": r.headers, "type": r.resource_type}
        ),
    )
    return opened
