"""gtag-protocol hits from headless Chromium through a real `sgtm serve` (`ga4` client -> `ga4`
tag) to a fake GA4 endpoint: what the page sent arrives at Google's side parameter for
parameter, sessions and engagement intact (first visit, session start, engaged session, session
number, engagement time).

gtag.js itself cannot be fetched on this closed network, so the page runs a small script that
speaks the protocol as gtag does: a `_ga` / `_ga_<id>` cookie pair for client and session, one
`fetch` per single hit, and `sendBeacon` for batches (shared params in the URL, one event per
body line, `text/plain`), client hints from `navigator.userAgentData`. The page is served from
another origin than sgtm, as www.shop.example is to sgtm.shop.example.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import TIMEOUT, PageServer
from tests.plugins import fake_ga4
from tests.servers import FakeVendor, Received, SgtmProcess

MEASUREMENT_ID = "G-BROWSER01"

# The protocol as gtag.js speaks it, reduced to what a page view, a batch and a session need.
GTAG_STYLE = """
(function () {
  const TID = "%(tid)s", ENDPOINT = "%(endpoint)s";
  const started = Date.now();
  const cookie = (name) => (document.cookie.match("(?:^|; )" + name + "=([^;]*)") || [])[1];
  const keep = (name, value) => {
    document.cookie = name + "=" + value + "; path=/; max-age=63072000; SameSite=Lax";
  };
  let firstVisit = false, sessionStart = false;
  let ga = cookie("_ga");
  if (!ga) {
    ga = "GA1.1." + Math.floor(Math.random() * 2147483647) + "." + Math.floor(started / 1000);
    keep("_ga", ga);
    firstVisit = true;
  }
  const cid = ga.split(".").slice(2).join(".");
  // GS1.1.<session id>.<session number>.<engaged>.<last activity, s>
  const gs = (cookie("_ga_" + TID.slice(2)) || "").split(".");
  const fresh = gs.length !== 6 || started / 1000 - Number(gs[5]) > 1800;
  const sessions = gs.length === 6 ? Number(gs[3]) : 0;
  const session = fresh
    ? {sid: String(Math.floor(started / 1000)), sct: sessions + 1, seg: "0"}
    : {sid: gs[2], sct: sessions, seg: gs[4]};
  sessionStart = fresh;
  const save = () => keep("_ga_" + TID.slice(2), ["GS1", "1", session.sid, session.sct,
    session.seg, Math.floor(Date.now() / 1000)].join("."));
  save();
  let hints = {}, requests = 0, lastEngaged = started;

  const query = (params) => Object.entries(params).filter(([, v]) => v !== undefined)
    .map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v)).join("&");
  const shared = () => ({
    v: "2", tid: TID, gtm: "45je5ca1v9000000000za200", _p: String(started), gcs: "G111",
    cid: cid, ul: navigator.language.toLowerCase(), sr: screen.width + "x" + screen.height,
    ...hints, _s: String(++requests), sid: session.sid, sct: String(session.sct),
    seg: session.seg, dl: location.href, dr: document.referrer || undefined, dt: document.title,
  });
  const engagement = () => {
    const now = Date.now(), ms = Math.max(1, now - lastEngaged);
    lastEngaged = now;
    return String(ms);
  };

  window.ga4 = {
    ready: (async () => {
      if (!navigator.userAgentData) return;
      const h = await navigator.userAgentData.getHighEntropyValues(
        ["architecture", "bitness", "fullVersionList", "model", "platformVersion", "wow64"]);
      hints = {
        uaa: h.architecture, uab: h.bitness, uamb: h.mobile ? "1" : "0", uam: h.model,
        uafvl: h.fullVersionList.map((b) => encodeURIComponent(b.brand) + ";" + b.version)
          .join("|"),
        uap: h.platform, uapv: h.platformVersion, uaw: h.wow64 ? "1" : "0",
      };
    })(),
    // One event: its params in the URL, an empty body, as gtag sends a page view.
    hit(en, params) {
      const url = ENDPOINT + "?" + query({...shared(), en: en, ...params});
      return fetch(url, {method: "POST", mode: "no-cors", keepalive: true, credentials: "include"});
    },
    // Several events: shared params in the URL, one line per event.
    batch(events) {
      const lines = events.map(([en, params]) => query({en: en, _et: engagement(), ...params}));
      return navigator.sendBeacon(ENDPOINT + "?" + query(shared()), lines.join("\\n"));
    },
    engaged() { session.seg = "1"; save(); },
    pageView() {
      const first = {_fv: firstVisit ? "1" : undefined, _nsi: firstVisit ? "1" : undefined,
                     _ss: sessionStart ? "1" : undefined};
      return this.hit("page_view", first);
    },
  };
})();
"""

PURCHASE = [
    ["scroll", {"epn.percent_scrolled": "90"}],
    ["user_engagement", {}],
    [
        "purchase",
        {
            "cu": "BRL",
            "ep.transaction_id": "T-9001",
            "epn.value": "89.7",
            "epn.shipping": "9.9",
            "pr1": "idSKU-1~nmMeia de lã~brAcme~caRoupas~pr9.9~qt3~k0fabric~v0wool~k1size~v1M",
            "pr2": "idSKU-2~nmBoné~pr29.9~qt1~cpSUMMER~ds5~lp2",
            "pr3": "idSKU-3~nmPalmilha~pr30~qt1~k0eco~v0true",
        },
    ],
]


@dataclass
class Shop:
    sgtm: SgtmProcess
    ga4: FakeVendor
    pages: PageServer
    sent: list[Received] = field(default_factory=list)  # what the browser sent to sgtm

    def page_html(self, title: str) -> str:
        script = GTAG_STYLE % {"tid": MEASUREMENT_ID, "endpoint": f"{self.sgtm.url}/g/collect"}
        return textwrap.dedent(
            f"""\
            <!doctype html><html><head><title>{title}</title>
            <script>{script}</script></head>
            <body><script>ga4.ready.then(() => ga4.pageView());</script></body></html>
            """
        )

    def browser_events(self) -> list[dict[str, str]]:
        return [params for got in self.sent for params in fake_ga4.hits(got)]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with FakeVendor(default_status=204, check=fake_ga4.problems) as ga4, PageServer() as pages:
        config = tmp_path_factory.mktemp("ga4") / "shop.yaml"
        config.write_text(
            textwrap.dedent(
                f"""\
                version: 1
                origins: [{pages.origin}]
                clients:
                  - {{name: ga4, type: ga4}}
                triggers:
                  everything: {{all: []}}
                tags:
                  - name: ga4
                    type: ga4
                    triggers: [everything]
                    settings: {{endpoint: "{ga4.url}/g/collect"}}
                """
            )
        )
        with SgtmProcess(config) as sgtm:
            yield Shop(sgtm, ga4, pages)
        assert ga4.errors == []


@pytest.fixture
def page(browser: Browser, shop: Shop) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT * 1000)
    opened = context.new_page()

    def record(request: Any) -> None:
        if request.url.startswith(f"{shop.sgtm.url}/g/collect"):
            url = urlsplit(request.url)
            body = (request.post_data or "").encode()
            shop.sent.append(Received(request.method, url.path, url.query, {}, body))

    opened.on("request", record)
    yield opened
    context.close()


def test_a_visit_reaches_ga4_with_sessions_and_engagement_intact(shop: Shop, page: Page) -> None:
    url = shop.pages.origin + shop.pages.add("/socks", shop.page_html("Meias"))
    page.goto(url)
    shop.ga4.wait_for(1)
    page.evaluate("ga4.engaged()")  # gtag marks a session engaged after 10 s of engagement
    assert page.evaluate(f"ga4.batch({PURCHASE!r})") is True
    shop.ga4.wait_for(4)
    page.goto(url + "?again=1")  # the next page of the same session
    received = shop.ga4.wait_for(5)
    user_agent = page.evaluate("navigator.userAgent")

    sent = shop.browser_events()
    got = [params for request in received for params in fake_ga4.hits(request)]
    assert [p["en"] for p in sent] == [
        "page_view",
        "scroll",
        "user_engagement",
        "purchase",
        "page_view",
    ]
    assert sorted(p["en"] for p in got) == sorted(p["en"] for p in sent)
    by_request = {(p["_p"], p["_s"], p["en"]): p for p in got}
    for params in sent:
        forwarded = dict(by_request[params["_p"], params["_s"], params["en"]])
        assert forwarded.pop("_uip") == "127.0.0.1"
        assert fake_ga4.canonical(forwarded) == fake_ga4.canonical(params)
    assert {r.headers["user-agent"] for r in received} == {user_agent}

    first, scroll, engagement, purchase, second = (
        by_request[p["_p"], p["_s"], p["en"]] for p in sent
    )
    # one visitor, one session
    assert len({(p["cid"], p["sid"], p["sct"]) for p in got}) == 1
    assert first["sct"] == "1"
    # the first page view opens the visit: first visit, new to site, session start, not engaged
    assert (first.get("_fv"), first.get("_nsi"), first.get("_ss"), first["seg"]) == (
        "1",
        "1",
        "1",
        "0",
    )
    # engagement time travels with each batched event; the session is engaged by then
    assert all(int(p["_et"]) >= 1 for p in (scroll, engagement, purchase))
    assert {p["seg"] for p in (scroll, engagement, purchase, second)} == {"1"}
    # the next page continues the session
    assert "_ss" not in second and "_fv" not in second and "_nsi" not in second
    assert fake_ga4.canonical(purchase)["items"][0] == {
        "item_id": "SKU-1",
        "item_name": "Meia de lã",
        "item_brand": "Acme",
        "item_category": "Roupas",
        "price": 9.9,
        "quantity": 3,
        "fabric": "wool",
        "size": "M",
    }
    # client hints from navigator.userAgentData arrive as the browser sent them
    assert first["uafvl"] and first["uap"]
