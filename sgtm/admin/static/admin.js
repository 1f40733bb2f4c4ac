// sgtm admin UI: plain DOM, no framework, no CDN. Every value from the server (event data
// included, which visitors control) is set with textContent, never parsed as HTML.
"use strict";

const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
const CSRF = meta("sgtm-csrf");

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

async function api(method, path, body) {
  const options = { method, headers: { "X-Sgtm-Csrf": CSRF }, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(`/_sgtm/api/${path}`, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

const pretty = (value) => (typeof value === "string" ? value : JSON.stringify(value, null, 2));
const when = (epoch) => new Date(epoch * 1000).toISOString().replace(".000", "");

function section(title, ...children) {
  return el("section", {}, el("h2", { text: title }), ...children);
}

function table(headers, rows) {
  return el(
    "table",
    {},
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows),
  );
}

function errorBox(error) {
  return el("p", { class: "error", role: "alert", text: String(error.message || error) });
}

// -- home: health, preview, event search, dead letters -------------------------------------

function healthSection() {
  const body = el("div", { id: "health" });
  async function refresh() {
    try {
      const data = await api("GET", "health");
      const rows = data.lanes.map((lane) =>
        el(
          "tr",
          { class: `breaker-${lane.breaker}` },
          el("td", { text: lane.lane }),
          el("td", { class: "num", text: String(lane.depth) }),
          el("td", { class: "num", text: `${lane.rate}/s` }),
          el("td", { text: lane.breaker }),
          el("td", { text: lane.last_error ? `${when(lane.last_error.at)} ${lane.last_error.error}` : "" }),
        ),
      );
      const note = data.sends ? "" : "This process does not send (role ingest): depth only.";
      body.replaceChildren(
        rows.length ? table(["Lane", "Queue", "Rate", "Breaker", "Last error"], rows)
          : el("p", { text: "No lane has work or has sent since this process started." }),
        ...(note ? [el("p", { class: "note", text: note })] : []),
      );
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
  }
  refresh();
  setInterval(refresh, 3000);
  return section("Delivery health", body);
}

function previewSection() {
  const out = el("div");
  const start = el("button", {
    id: "start-preview",
    text: "Start a preview session",
    onclick: async () => {
      try {
        const session = await api("POST", "preview");
        window.location.assign(`/_sgtm/preview/${encodeURIComponent(session.id)}`);
      } catch (error) {
        out.replaceChildren(errorBox(error));
      }
    },
  });
  return section(
    "Preview",
    el("p", { text: "Trace live requests for an hour: every event, each tag's decision, the exact request and the vendor's answer." }),
    start,
    out,
  );
}

function deliveriesTable(deliveries) {
  return table(
    ["At (UTC)", "Event", "Tag", "State", "Attempts", "Status"],
    deliveries.map((d) =>
      el(
        "tr",
        { class: `state-${d.state}` },
        el("td", { text: d.at }),
        el("td", { text: d.event_id }),
        el("td", { text: `${d.container}/${d.tag}` }),
        el("td", { text: d.state }),
        el("td", { class: "num", text: String(d.attempts) }),
        el("td", { class: "num", text: d.status === null ? "-" : String(d.status) }),
      ),
    ),
  );
}

function searchSection() {
  const input = el("input", { name: "q", id: "search", placeholder: "event_id or transaction_id", maxlength: "256" });
  const out = el("div", { id: "search-result" });
  const form = el("form", { class: "inline" }, input, el("button", { type: "submit", text: "Find deliveries" }));
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    try {
      let found = await api("GET", `events/${encodeURIComponent(key)}`);
      if (!found.deliveries.length) found = await api("GET", `transactions/${encodeURIComponent(key)}`);
      out.replaceChildren(
        found.deliveries.length ? deliveriesTable(found.deliveries)
          : el("p", { text: `No delivery recorded for ${key} (the history keeps each outcome for delivery.history).` }),
      );
    } catch (error) {
      out.replaceChildren(errorBox(error));
    }
  });
  return section("Find an event", form, out);
}

function confirmButton(label, question, action) {
  const holder = el("span", { class: "confirm" });
  const ask = el("button", {
    text: label,
    onclick: () => {
      const yes = el("button", { class: "danger", text: `Yes, ${label.toLowerCase()}`, onclick: action });
      const no = el("button", { text: "Cancel", onclick: () => holder.replaceChildren(ask) });
      holder.replaceChildren(el("span", { text: question }), yes, no);
    },
  });
  holder.append(ask);
  return holder;
}

function deadLettersSection() {
  const body = el("div", { id: "dead-letters" });
  const detail = el("pre", { id: "dead-letter", class: "hidden" });
  const status = el("p", { class: "note" });
  async function refresh() {
    try {
      const data = await api("GET", "dlq?limit=100");
      const rows = data.dead_letters.map((x) =>
        el(
          "tr",
          {},
          el("td", { text: x.id }),
          el("td", { text: x.died }),
          el("td", { text: `${x.container}/${x.tag}` }),
          el("td", { class: "num", text: String(x.attempts) }),
          el("td", { class: "num", text: x.status === null ? "-" : String(x.status) }),
          el("td", { text: x.reason }),
          el(
            "td",
            {},
            el("button", {
              text: "Show",
              onclick: async () => {
                detail.textContent = pretty(await api("GET", `dlq/${encodeURIComponent(x.id)}`));
                detail.classList.remove("hidden");
              },
            }),
            confirmButton("Replay", "Send it again?", async () => {
              const done = await api("POST", "dlq/replay", { ids: [x.id] });
              status.textContent = `Replayed ${done.replayed}.`;
              refresh();
            }),
          ),
        ),
      );
      body.replaceChildren(
        rows.length ? table(["Id", "Died (UTC)", "Tag", "Tries", "Status", "Reason", ""], rows)
          : el("p", { text: "No dead letters." }),
      );
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
  }
  const before = el("input", { name: "before", value: "7d", size: "8", "aria-label": "older than" });
  const purge = confirmButton("Purge", "Delete these dead letters for good?", async () => {
    try {
      const done = await api("POST", "dlq/purge", { before: before.value });
      status.textContent = `Purged ${done.purged}.`;
      refresh();
    } catch (error) {
      status.textContent = String(error.message);
    }
  });
  const replayAll = confirmButton("Replay all", "Send every dead letter again?", async () => {
    const done = await api("POST", "dlq/replay", { all: true });
    status.textContent = `Replayed ${done.replayed}.`;
    refresh();
  });
  refresh();
  return section(
    "Dead letters",
    el("div", { class: "toolbar" }, replayAll, el("span", { text: " Purge older than " }), before, purge),
    status,
    body,
    detail,
  );
}

// -- a preview session ----------------------------------------------------------------------

function previewSiteForm(id) {
  const form = (label, stop) =>
    el(
      "form",
      { method: "post", action: `/_sgtm/preview/${encodeURIComponent(id)}/site`, class: "inline" },
      el("input", { type: "hidden", name: "csrf", value: CSRF }),
      stop ? el("input", { type: "hidden", name: "stop", value: "1" }) : null,
      el("button", { type: "submit", id: stop ? "stop-preview-site" : "preview-site", text: label }),
    );
  return el(
    "div",
    { class: "toolbar" },
    form("Preview this site (this browser's hits to this domain)", false),
    form("Stop previewing", true),
  );
}

function deliveryText(delivery) {
  if (!delivery) return "not sent (dry run)";
  const status = delivery.status === null ? "" : ` · HTTP ${delivery.status}`;
  const tries = delivery.attempts ? ` · ${delivery.attempts} attempt(s)` : "";
  return `${delivery.state}${status}${tries}`;
}

function tagView(tag) {
  const requests = tag.requests.map((request) =>
    el(
      "div",
      { class: "request" },
      el("div", { class: "line", text: `${request.method} ${request.url}` }),
      el("pre", { text: pretty({ headers: request.headers, body: request.body }) }),
      el("div", { class: `delivery state-${request.delivery ? request.delivery.state : "none"}`, text: deliveryText(request.delivery) }),
      request.delivery && request.delivery.response
        ? el("pre", { class: "response", text: request.delivery.response })
        : null,
    ),
  );
  const decision = tag.fired ? "fired" : `not fired: ${tag.reason}`;
  return el(
    "div",
    { class: `tag ${tag.fired ? "fired" : "skipped"}` },
    el("div", { class: "tag-head" }, el("strong", { text: tag.name }), el("span", { text: ` (${tag.type}) · ${decision}` })),
    ...(tag.warnings || []).map((w) => el("div", { class: "warning", text: w })),
    ...requests,
  );
}

function eventView(event) {
  const name = event.data && event.data.event_name ? String(event.data.event_name) : "(no event_name)";
  return el(
    "details",
    { class: "event", open: "" },
    el("summary", {}, el("strong", { text: name }), el("span", { class: "muted", text: event.event_id ? ` · event_id ${event.event_id}` : "" })),
    el("div", { class: "columns" },
      el("div", {}, el("h4", { text: "Event data" }), el("pre", { text: pretty(event.data) })),
      el("div", {}, el("h4", { text: "Variables" }), el("pre", { text: pretty(event.variables || {}) })),
    ),
    el("h4", { text: "Tags" }),
    ...event.tags.map(tagView),
  );
}

function traceView(trace) {
  const status = trace.response ? trace.response.status : "-";
  return el(
    "article",
    { class: "trace" },
    el(
      "header",
      {},
      el("span", { class: "muted", text: when(trace.at) }),
      el("span", { class: "line", text: ` ${trace.request.method} ${trace.request.url}` }),
      el("span", { text: ` → ${status} · client ${trace.client || "none"}` }),
    ),
    trace.error ? el("p", { class: "error", text: trace.error }) : null,
    ...trace.events.map(eventView),
  );
}

function previewPage(id) {
  const list = el("div", { id: "traces" });
  const info = el("p", { class: "note" });
  async function refresh() {
    try {
      const data = await api("GET", `preview/${encodeURIComponent(id)}`);
      info.textContent = `${data.traces.length} request(s) traced · session ends ${when(data.expires)}`;
      list.replaceChildren(...data.traces.slice().reverse().map(traceView));
    } catch (error) {
      info.textContent = String(error.message);
    }
  }
  refresh();
  setInterval(refresh, 1000);
  return [
    section(
      "Preview session",
      el("p", {}, "Requests with the header ", el("code", { text: `X-Sgtm-Preview: ${id}` }), " or this browser's preview cookie appear below."),
      previewSiteForm(id),
      info,
    ),
    list,
  ];
}

const app = document.getElementById("app");
if (meta("sgtm-page") === "preview") {
  app.append(...previewPage(meta("sgtm-preview")));
} else {
  app.append(healthSection(), previewSection(), searchSection(), deadLettersSection());
}
