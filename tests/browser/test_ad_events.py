"""sgtm.adEvent in headless Chromium against a real `sgtm serve` with the `beacon` client.

Impressions go at once; a view only after half the ad stayed in the viewport for one continuous
second; clicks on click; each once per ad and page. Timers run on Playwright's fake clock
(`page.clock`), so "0.5 s" and "1 s" are exact and nothing depends on the wall clock. The page
records every sendBeacon call; the fake vendor behind an http_request tag shows what reached
the server, each event once.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.conftest import TIMEOUT, PageServer, check_event
from tests.servers import FakeVendor, SgtmProcess

IMPRESSION = "https://events.newtail-media.newtail.com.br/v1/beacon/impression/AD-1?sign=1"
VIEW = "https://events.newtail-media.newtail.com.br/v1/beacon/view/AD-1?sign=2"
CLICK = "https://events.newtail-media.newtail.com.br/v1/beacon/click/AD-1?sign=3"
AD_TOP = 2000  # px from the top of the page; the ad is 200 px high, the viewport 600 px


def page_html(sgtm_url: str) -> str:
    return textwrap.dedent(
        f"""\
        <!doctype html>
        <html><head><title>Ads</title>
        <script>
          window.beacons = [];
          const realBeacon = navigator.sendBeacon.bind(navigator);
          navigator.sendBeacon = (url, data) => {{
            window.beacons.push([new URL(url).pathname, JSON.parse(data)]);
            return realBeacon(url, data);
          }};
        </script>
        <script src="{sgtm_url}/sgtm.js" data-beacon-prefix="/beacon"></script>
        <style>body {{margin: 0}} #ad {{height: 200px; width: 300px}}</style>
        </head><body>
        <div style="height: {AD_TOP}px"></div>
        <div id="ad">ad</div>
        <div style="height: 2000px"></div>
        <script>
          const ad = document.getElementById('ad');
          const ids = {{session_id: 's-1', user_id: 'u-7'}};
          sgtm.adEvent('impression', '{IMPRESSION}', ids);
          sgtm.adEvent('impression', '{IMPRESSION}', ids);
          sgtm.adEvent('view', '{VIEW}', ids, ad);
          sgtm.adEvent('click', '{CLICK}', {{...ids, element: ad}});
          // Observed after sgtm's observer, so this callback runs after sgtm's: the test's sign
          // that the page has seen the ad cross the threshold.
          window.crossings = [];
          new IntersectionObserver(
            (entries) => entries.forEach((e) => window.crossings.push(e.intersectionRatio)),
            {{threshold: 0.5}},
          ).observe(ad);
        </script>
        </body></html>
        """
    )


class AdSite:
    def __init__(self, sgtm: SgtmProcess, vendor: FakeVendor, url: str) -> None:
        self.sgtm, self.vendor, self.url = sgtm, vendor, url

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in list(self.vendor.received)]

    def settle(self) -> None:
        """A marker beacon straight to sgtm, awaited at the vendor: the browser's are in by then."""
        marker = "https://ads.example/marker"
        body = json.dumps({"session_id": "marker", "url": marker})
        assert httpx.post(f"{self.sgtm.url}/beacon/impression", content=body).status_code == 202
        deadline = time.monotonic() + TIMEOUT
        while not any(e["ad_event_url"] == marker for e in self.events()):
            if time.monotonic() > deadline:
                raise AssertionError(f"the marker never arrived; the vendor got {self.events()}")
            time.sleep(0.02)


@pytest.fixture(scope="module")
def ad_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdSite]:
    with FakeVendor(check=check_event) as vendor, PageServer() as pages:
        config = tmp_path_factory.mktemp("ads") / "ads.yaml"
        config.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                origins: [{pages.origin}]
                clients:
                  - {{name: web, type: datalayer}}
                  - {{name: ads, type: beacon}}
                triggers:
                  ad_events: {{var: event_name, starts_with: ad_}}
                tags:
                  - name: ads
                    type: http_request
                    triggers: [ad_events]
                    settings: {{url: "{vendor.url}/ads"}}
                """
            )
        )
        with SgtmProcess(config) as sgtm:
            url = pages.origin + pages.add("/ads.html", page_html(sgtm.url))
            yield AdSite(sgtm, vendor, url)
        assert vendor.errors == []


@pytest.fixture
def ad_page(context: BrowserContext, ad_site: AdSite) -> Page:
    page = context.new_page()
    page.set_viewport_size({"width": 800, "height": 600})
    page.clock.install()  # setTimeout runs only when the test advances the clock
    page.goto(ad_site.url)
    crossed(page, 1)  # the observer's first report: not in view
    return page


def crossed(page: Page, count: int) -> float:
    """Wait until the page's own observer has reported `count` times; the last ratio."""
    page.wait_for_function("n => window.crossings.length >= n", arg=count)
    ratio: float = page.evaluate("window.crossings[window.crossings.length - 1]")
    return ratio


def sent(page: Page) -> list[str]:
    return [path.rsplit("/", 1)[1] for path, _ in page.evaluate("window.beacons")]


def scroll_to(page: Page, y: int) -> None:
    page.evaluate("y => window.scrollTo(0, y)", y)


def test_view_needs_one_continuous_second_in_view(ad_page: Page, ad_site: AdSite) -> None:
    page = ad_page
    assert sent(page) == ["impression"]  # at once, and once though asked twice

    scroll_to(page, AD_TOP - 200)  # the whole ad in view
    assert crossed(page, 2) == 1
    page.clock.run_for(500)
    assert sent(page) == ["impression"]  # not at 0.5 s

    scroll_to(page, 0)  # it leaves before a full second...
    assert crossed(page, 3) == 0
    page.clock.run_for(900)
    scroll_to(page, AD_TOP - 200)  # ...and comes back: the second starts again
    assert crossed(page, 4) == 1
    page.clock.run_for(900)
    assert sent(page) == ["impression"]
    page.clock.run_for(100)
    assert sent(page) == ["impression", "view"]

    scroll_to(page, 0)
    crossed(page, 5)
    scroll_to(page, AD_TOP - 200)
    crossed(page, 6)
    page.clock.run_for(5000)
    page.click("#ad")
    page.click("#ad")
    assert sent(page) == ["impression", "view", "click"]  # each once per ad and page

    beacons = page.evaluate("window.beacons")
    assert [body for _, body in beacons] == [
        {
            "session_id": "s-1",
            "user_id": "u-7",
            "impression_url": IMPRESSION,
            "page_location": ad_site.url,
        },
        {"session_id": "s-1", "user_id": "u-7", "view_url": VIEW, "page_location": ad_site.url},
        {"session_id": "s-1", "user_id": "u-7", "click_url": CLICK, "page_location": ad_site.url},
    ]

    ad_site.settle()
    events = [e for e in ad_site.events() if e["session_id"] == "s-1"]
    assert Counter(e["event_name"] for e in events) == {
        "ad_impression": 1,
        "ad_view": 1,
        "ad_click": 1,
    }
    by_name = {e["event_name"]: e for e in events}
    assert by_name["ad_view"]["ad_event_url"] == VIEW
    assert {e["ad_id"] for e in events} == {"AD-1"}
    assert len({e["event_id"] for e in events}) == 3


def test_ids_left_to_sgtm_are_the_ones_conversions_get(ad_page: Page, ad_site: AdSite) -> None:
    # No session id: the server gives the visitor's persistent id (tested with the beacon
    # client). No user id: the dataLayer's, which sgtm.js also adds to the page's events.
    base = "https://events.newtail-media.newtail.com.br/v1/beacon/impression/"
    bodies = ad_page.evaluate(
        """base => {
          dataLayer.push(['set', {user_id: 'u-9'}]);
          sgtm.adEvent('impression', base + 'AD-2');
          dataLayer.push(['set', 'user_id', 77]);
          sgtm.adEvent('impression', base + 'AD-3', {user_id: 'mine', session_id: 's-2'});
          dataLayer.push({user_id: null});
          sgtm.adEvent('impression', base + 'AD-4');
          return window.beacons.slice(-3).map((b) => b[1]);
        }""",
        base,
    )
    page = ad_site.url
    assert bodies == [
        {"impression_url": base + "AD-2", "page_location": page, "user_id": "u-9"},
        {"impression_url": base + "AD-3", "page_location": page, "user_id": "mine",
         "session_id": "s-2"},
        {"impression_url": base + "AD-4", "page_location": page},
    ]  # fmt: skip


def test_an_ad_less_than_half_visible_is_not_viewed(ad_page: Page) -> None:
    page = ad_page
    scroll_to(page, AD_TOP + 80 - 600)  # 80 of 200 px visible: 40%
    page.clock.run_for(3000)
    assert sent(page) == ["impression"]
    scroll_to(page, AD_TOP + 120 - 600)  # 60%
    assert crossed(page, 2) >= 0.5
    page.clock.run_for(1000)
    assert sent(page) == ["impression", "view"]


def test_view_and_click_need_the_element(ad_page: Page) -> None:
    error = ad_page.evaluate(
        """() => {
          try { sgtm.adEvent('view', 'https://ads.example/v', {session_id: 's'}); }
          catch (e) { return e.name + ': ' + e.message; }
        }"""
    )
    assert error.startswith("TypeError: sgtm.adEvent: kind is impression, view or click")
