/*! sgtm.js: sends the page's dataLayer events to a first-party sgtm server (docs/clients/datalayer.md) */
((window, document, navigator) => {
  'use strict';
  const sgtm = (window.sgtm = window.sgtm || {});
  if (sgtm.version) return; // a second copy: the first one already forwards the dataLayer
  sgtm.version = 1;

  // ---- options: data attributes of this script tag -------------------------------------------
  const script = document.currentScript;
  const attr = (name) => (script ? script.getAttribute('data-' + name) : null);
  const base = (script && script.src) || location.href;
  const origin = new URL(base).origin;
  const endpoint = new URL(attr('endpoint') || '/data', base).href;
  const allowed = (attr('events') || '').split(',').map((name) => name.trim()).filter(Boolean);
  const debug = attr('debug') !== null && attr('debug') !== 'false';
  const log = (...args) => debug && console.log('[sgtm]', ...args);

  // ---- helpers --------------------------------------------------------------------------------
  // Lone UTF-16 surrogates (a cut emoji in a title) would make the whole body invalid JSON.
  const wellFormed = (key, value) =>
    typeof value === 'string' && value.toWellFormed ? value.toWellFormed() : value;
  const json = (value) => JSON.stringify(value, wellFormed);

  const uuid = () => {
    if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts only
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; // version 4
    b[8] = (b[8] & 63) | 128; // RFC 4122 variant
    const hex = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join('');
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)]
      .join('-');
  };

  // sendBeacon survives the page being closed; a text/plain body is CORS-safelisted, so no
  // preflight is needed. False when the browser refuses (no API, offline, over its 64 KiB quota).
  const beacon = (url, body) => {
    try {
      return navigator.onLine !== false && !!navigator.sendBeacon && navigator.sendBeacon(url, body);
    } catch (err) {
      return false;
    }
  };

  // Resolves when the server answered; rejects (retry later) on network errors, 408, 429, 5xx.
  // Other 4xx mean the server refused the body: retrying would not help.
  const post = (url, body) =>
    fetch(url, {
      method: 'POST',
      body,
      credentials: 'include',
      keepalive: new Blob([body]).size < 65000,
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
    }).then((res) => {
      if (res.status >= 500 || res.status === 408 || res.status === 429) throw new Error('HTTP ' + res.status);
      if (!res.ok) log('refused', res.status);
    });

  // ---- retry queue in localStorage: {e: event, n: attempts}, oldest first ---------------------
  const KEY = 'sgtm:queue:' + endpoint;
  const MAX_ENTRIES = 50;
  const MAX_ATTEMPTS = 3;
  const load = () => {
    try {
      const queue = JSON.parse(localStorage.getItem(KEY) || '[]');
      return Array.isArray(queue) ? queue.filter((x) => x && x.e && x.e.event_id) : [];
    } catch (err) {
      return [];
    }
  };
  const save = (queue) => {
    if (queue.length > MAX_ENTRIES) log('queue full, dropped', queue.splice(0, queue.length - MAX_ENTRIES));
    try {
      if (queue.length) localStorage.setItem(KEY, json(queue));
      else localStorage.removeItem(KEY);
    } catch (err) {
      log('cannot store the queue', err);
    }
  };
  const inflight = new Set(); // event_ids this page is sending now

  // Sends queued entries with fetch. The attempt is counted in storage before it starts, and an
  // entry leaves storage only once the server answered: a page closed mid-way loses nothing
  // (the next page sends it again with the same event_id, so a vendor can drop a duplicate).
  const deliver = (entries) => {
    entries = entries.filter((x) => !inflight.has(x.e.event_id));
    if (!entries.length || navigator.onLine === false) return Promise.resolve();
    const ids = new Set(entries.map((x) => x.e.event_id));
    ids.forEach((id) => inflight.add(id));
    save(load().map((x) => (ids.has(x.e.event_id) ? { e: x.e, n: (x.n || 0) + 1 } : x)));
    const done = (ok) => {
      ids.forEach((id) => inflight.delete(id));
      save(load().filter((x) => {
        if (!ids.has(x.e.event_id)) return true;
        if (!ok && x.n >= MAX_ATTEMPTS) log('gave up after', x.n, 'attempts', x.e);
        return !ok && x.n < MAX_ATTEMPTS;
      }));
    };
    return post(endpoint, json(entries.map((x) => x.e))).then(
      () => { done(true); log('sent', entries.length, 'queued event(s)'); },
      (err) => { done(false); log('send failed, kept in the queue', err); },
    );
  };
  const flush = () => deliver(load());

  const send = (events) => {
    if (beacon(endpoint, json(events))) {
      log('sent', events);
      return;
    }
    const entries = events.map((e) => ({ e, n: 0 }));
    save(load().concat(entries));
    deliver(entries);
  };

  // ---- consent mode: gtag('consent', 'default' | 'update', {...}) in the dataLayer ------------
  const defaults = {};
  const updates = {};
  const consentCommand = (args) => {
    const [command, action, params] = args;
    if (command !== 'consent' || !params || typeof params !== 'object') return;
    if (action !== 'default' && action !== 'update') return;
    for (const type of Object.keys(params)) {
      const value = params[type];
      if (value !== 'granted' && value !== 'denied') continue; // region, wait_for_update, ...
      // This script cannot know the visitor's region: a default for some regions only counts
      // where it is the stricter choice.
      if (action === 'default' && params.region && value === 'granted') continue;
      (action === 'update' ? updates : defaults)[type] = value === 'granted';
    }
  };
  const consentState = () => {
    const state = Object.assign({}, defaults, updates);
    return Object.keys(state).length ? state : null;
  };

  // ---- the page's user id: the last `user_id` its dataLayer stated ------------------------------
  // From a pushed object, gtag('set', {user_id}), gtag('set', 'user_id', id) or
  // gtag('config', ID, {user_id}); null or '' forgets it (a logout). Events without their own
  // user_id and ad events get it, so a retail-media vendor sees one user id on ad events and
  // conversions (docs/tags/newtail.md, "Session and user ids").
  let userId = null;
  const noteUserId = (params) => {
    if (!params || typeof params !== 'object' || !('user_id' in params)) return;
    const value = params.user_id;
    const text = typeof value === 'string' ? value.trim() : Number.isFinite(value) ? String(value) : '';
    userId = text || null;
  };
  const userCommand = (args) => {
    const [command, first, second] = args;
    if (command === 'set' && first === 'user_id') noteUserId({ user_id: second });
    else if (command === 'set') noteUserId(first);
    else if (command === 'config') noteUserId(second);
  };

  // ---- dataLayer entries -> events --------------------------------------------------------------
  const pageId = uuid(); // one per page view: the server's client id before its cookie exists
  let pending = [];
  const capture = (entry) => {
    if (entry && typeof entry === 'object' && typeof entry.length === 'number') {
      if (entry[0] === 'consent') consentCommand(entry); // gtag() pushes its `arguments`
      else userCommand(entry);
      return;
    }
    noteUserId(entry);
    if (!entry || typeof entry !== 'object' || typeof entry.event !== 'string') return;
    const name = entry.event;
    if (allowed.length ? !allowed.includes(name) : name.startsWith('gtm.')) return;
    let id = entry.event_id;
    if (id == null || id === '') {
      id = uuid();
      try {
        entry.event_id = id; // so the page's own pixel can send the same id
      } catch (err) {
        // a frozen object: the event still gets its id
      }
    }
    const event = {};
    for (const key of Object.keys(entry)) {
      if (!key.startsWith('gtm.') && key !== 'eventCallback' && key !== 'eventTimeout') event[key] = entry[key];
    }
    event.event_id = id;
    const context = {
      page_location: location.href,
      page_referrer: document.referrer,
      page_title: document.title,
      language: (navigator.language || '').toLowerCase(),
      screen_resolution: screen.width + 'x' + screen.height,
      consent_state: consentState(),
      user_id: userId,
      _dcid_temp: pageId,
    };
    for (const key of Object.keys(context)) {
      if (!(key in event) && context[key]) event[key] = context[key];
    }
    try {
      pending.push(JSON.parse(json(event))); // a snapshot: the page may change the object later
    } catch (err) {
      log('cannot serialize', name, err);
      return;
    }
    // Pushes made in one task go out in one request, before the page can unload.
    if (pending.length === 1) {
      Promise.resolve().then(() => {
        const events = pending;
        pending = [];
        send(events);
      });
    }
  };
  const safeCapture = (entry) => {
    try {
      capture(entry);
    } catch (err) {
      log('error', err); // never break the page's own dataLayer.push
    }
  };

  const layerName = attr('layer') || 'dataLayer';
  const layer = (window[layerName] = window[layerName] || []);
  Array.prototype.slice.call(layer).forEach(safeCapture); // pushed before this script loaded
  const push = layer.push;
  layer.push = function (...entries) {
    entries.forEach(safeCapture);
    return push.apply(this, entries);
  };

  sgtm.endpoint = endpoint;
  sgtm.push = (entry) => safeCapture(entry); // forward an event without the dataLayer
  sgtm.flush = flush; // send queued events now; returns a Promise
  window.addEventListener('online', flush);
  flush(); // events a previous page could not send
  log('ready', endpoint);

  // ==== sgtm.adEvent: retail-media ad events for the `beacon` client =============================
  // sgtm.adEvent(kind, url, ids, element) (docs/clients/beacon.md): `impression` is sent at once;
  // `view` once at least half of the element has stayed in the viewport for one continuous
  // second; `click` on the first click. Each kind is sent once per ad URL and page, to
  // <origin of this script><data-beacon-prefix, default /beacon>/<kind>. `ids` are optional:
  // without a session_id the server uses the visitor's persistent first-party id, and without a
  // user_id the page's dataLayer user_id goes, the ids conversions get too.
  const adBase = new URL(attr('beacon-prefix') || '/beacon', base).href.replace(/\/$/, '');
  const adSent = new Set();
  const adSend = (kind, url, ids) => {
    if (adSent.has(kind + ' ' + url)) return;
    adSent.add(kind + ' ' + url);
    const body = { [kind + '_url']: url, page_location: location.href };
    if (ids.session_id != null && ids.session_id !== '') body.session_id = String(ids.session_id);
    const user = ids.user_id != null && ids.user_id !== '' ? String(ids.user_id) : userId;
    if (user != null) body.user_id = user;
    const target = adBase + '/' + kind;
    if (beacon(target, json(body))) log('ad', kind, url);
    else post(target, json(body)).catch((err) => log('ad event not sent', kind, err));
  };
  const VIEW_RATIO = 0.5;
  const VIEW_MS = 1000;
  const watchView = (url, ids, element) => {
    let timer = null;
    const observer = new IntersectionObserver((entries) => {
      const entry = entries[entries.length - 1];
      if (entry.isIntersecting && entry.intersectionRatio >= VIEW_RATIO) {
        timer = timer || setTimeout(() => {
          observer.disconnect();
          adSend('view', url, ids);
        }, VIEW_MS);
      } else {
        clearTimeout(timer); // left before a full second: the next entry starts again
        timer = null;
      }
    }, { threshold: VIEW_RATIO });
    observer.observe(element);
  };
  sgtm.adEvent = (kind, url, ids, element) => {
    ids = ids || {};
    element = element || ids.element;
    if (kind === 'impression') adSend(kind, url, ids);
    else if (kind === 'view' && element instanceof Element) watchView(url, ids, element);
    else if (kind === 'click' && element instanceof Element) element.addEventListener('click', () => adSend(kind, url, ids));
    else throw new TypeError('sgtm.adEvent: kind is impression, view or click; view and click need the ad element');
  };
})(window, document, navigator);
