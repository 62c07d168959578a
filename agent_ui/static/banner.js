/* cobrowse visitor banner: <script src="https://API/banner.js" data-site-key="KEY" async></script>
 *
 * Registers the visitor, keeps a WebSocket to the control API, reports the page (URL, title,
 * scroll anchored to an element, viewport, unmasked field values, bandwidth), asks for consent,
 * shows the live-session bar and draws the agent's pointer, highlights and drawings.
 * Rules it keeps: one global (window.__cobrowseBanner), styles in a shadow root, every callback
 * guarded so that an exception never reaches the host page, password inputs and masked
 * selectors never leave the browser, the overlay never takes a click (pointer-events: none).
 */
(function () {
  "use strict";
  if (window.__cobrowseBanner || parentRunsBanner()) return;
  var NS = (window.__cobrowseBanner = { version: 1 });

  // In a frame of a page that embeds the banner too (the tag is in the site's template), the page is
  // the visitor: a second registration would show the agent the same person twice.
  function parentRunsBanner() {
    try {
      for (var w = window; w !== w.parent;) {
        w = w.parent;
        if (w.__cobrowseBanner || w.document.querySelector("script[data-site-key][src*='banner.js']")) return true;
      }
    } catch (e) { /* an ancestor of another origin: this frame may well be the visitor's page */ }
    return false;
  }

  var script = document.currentScript || document.querySelector("script[data-site-key][src*='banner.js']");
  if (!script) return;

  // ---- the browser's own built-ins ------------------------------------------------------------
  // Sites break globals before the banner loads: Prototype.js's Array toJSON, polyfills that replace
  // fetch, WebSocket, Promise, JSON or URL, wrapped timers or addEventListener. A fresh about:blank
  // frame (same origin, no script of the page) has an untouched set: each built-in below is the
  // page's while it is still the browser's own, else the frame's, and all are taken now, before a
  // later script of the page changes them. Functions taken from the frame keep working, called on
  // this window, after the frame is gone, so the host is taken out again at once (mounted at
  // DOMContentLoaded, as always: a node in the middle of <body> would change the page's cssPaths).
  // A WebSocket made by the frame lives only as long as the frame (reloaded each time the host is
  // mounted), so one is made there only when the page's is not the browser's, once mounted. The
  // frame lives in the UI's shadow root, hidden, in a closed shadow root of its own.
  var host = document.createElement("div");
  host.setAttribute("data-cobrowse", "banner");
  // !important: the page's own !important rules (div { display: none !important }) lose to these.
  host.style.cssText = "all: initial !important; position: fixed !important; top: 0 !important; left: 0 !important;" +
    " width: 0 !important; height: 0 !important; z-index: 2147483647 !important;";
  // In the top layer (a manual popover) nothing of the page covers the UI, not even an overlay added
  // later, and no transform or filter of <body> moves it off the viewport.
  if (host.showPopover) host.setAttribute("popover", "manual");
  var root = host.attachShadow({ mode: "open" });
  var realmFrame = document.createElement("iframe");
  realmFrame.setAttribute("aria-hidden", "true");
  realmFrame.tabIndex = -1;
  realmFrame.style.cssText = "display: none !important";
  var realmHolder = document.createElement("span"); // a closed shadow root of its own: the UI's is open
  realmHolder.attachShadow({ mode: "closed" }).appendChild(realmFrame);
  root.appendChild(realmHolder);
  (document.body || document.documentElement).appendChild(host);
  function realm() { try { return realmFrame.contentWindow; } catch (e) { return null; } }
  var F = realm() || window;
  var apply = F.Reflect.apply, fnText = F.Function.prototype.toString;
  function own(get) { try { return get(); } catch (e) { return undefined; } }
  function isNative(fn, name) {
    try { return typeof fn === "function" && apply(fnText, fn, []) === "function " + name + "() { [native code] }"; } catch (e) { return false; }
  }
  function builtin(name, mine, theirs) { return isNative(mine, name) || !theirs ? mine : theirs; }
  var B = {
    stringify: builtin("stringify", own(function () { return JSON.stringify; }), F.JSON.stringify),
    parse: builtin("parse", own(function () { return JSON.parse; }), F.JSON.parse),
    Promise: builtin("Promise", own(function () { return window.Promise; }), F.Promise),
    URL: builtin("URL", own(function () { return window.URL; }), F.URL),
    fetch: builtin("fetch", own(function () { return window.fetch; }), F.fetch),
    AbortController: builtin("AbortController", own(function () { return window.AbortController; }), F.AbortController),
    WebSocket: builtin("WebSocket", own(function () { return window.WebSocket; }), F.WebSocket),
    MutationObserver: builtin("MutationObserver", own(function () { return window.MutationObserver; }), F.MutationObserver),
    setTimeout: builtin("setTimeout", own(function () { return window.setTimeout; }), F.setTimeout),
    clearTimeout: builtin("clearTimeout", own(function () { return window.clearTimeout; }), F.clearTimeout),
    setInterval: builtin("setInterval", own(function () { return window.setInterval; }), F.setInterval),
    clearInterval: builtin("clearInterval", own(function () { return window.clearInterval; }), F.clearInterval),
    now: builtin("now", own(function () { return Date.now; }), F.Date.now),
    requestAnimationFrame: builtin("requestAnimationFrame", own(function () { return window.requestAnimationFrame; }), F.requestAnimationFrame),
    getRandomValues: builtin("getRandomValues", own(function () { return window.crypto.getRandomValues; }),
      own(function () { return F.crypto.getRandomValues; })),
    Uint8Array: builtin("Uint8Array", own(function () { return window.Uint8Array; }), F.Uint8Array),
    addEventListener: builtin("addEventListener", own(function () { return EventTarget.prototype.addEventListener; }), F.EventTarget.prototype.addEventListener)
  };
  var socketFromFrame = B.WebSocket === F.WebSocket && F !== window;
  var cryptos = [own(function () { return window.crypto; }), own(function () { return F.crypto; })];
  host.remove(); // (the frame's window loses its properties now: everything is taken above)
  function later(fn, ms) { return apply(B.setTimeout, window, [fn, ms]); }
  function cancel(id) { apply(B.clearTimeout, window, [id]); }
  function every(fn, ms) { return apply(B.setInterval, window, [fn, ms]); }
  function stopEvery(id) { apply(B.clearInterval, window, [id]); }
  // The time for the banner's own pacing: the built-in clock (a page may leave a fake one installed),
  // made steady (a wall clock set back would hold every throttled report for as long).
  var clockRaw = apply(B.now, F.Date, []), clockAt = 0;
  function clock() {
    var raw = apply(B.now, F.Date, []);
    if (raw > clockRaw) clockAt += raw - clockRaw;
    clockRaw = raw;
    return clockAt;
  }
  function nextFrame(fn) { return apply(B.requestAnimationFrame, window, [fn]); }
  function on(target, type, fn, options) { apply(B.addEventListener, target, [type, fn, options]); }
  function request(url, init) { return apply(B.fetch, window, [url, init]); }

  function warn(what, err) {
    try { if (window.console && console.warn) console.warn("[cobrowse] " + what, err); } catch (e) { /* ignore */ }
  }
  // JSON of our own values, whatever toJSON the page gave their prototypes (Prototype.js 1.6 gives
  // arrays one that returns a string): the replacer hands back each value as it was.
  function toJson(value) {
    return B.stringify(value, function (key) { return this[key]; });
  }
  function guard(fn, what) {
    return function () {
      try { return apply(fn, this, arguments); } catch (err) { warn(what || "error", err); }
    };
  }

  // ---- configuration -------------------------------------------------------------------------
  var SITE_KEY = script.getAttribute("data-site-key") || "";
  var API = new B.URL(script.src, location.href).origin;
  var API_V1 = API + "/api/v1";
  var STORE_KEY = "__cobrowse:" + SITE_KEY;
  var BANDWIDTH_BYTES = 131072;
  var BANDWIDTH_EVERY_MS = 30000;
  // A measurement ends after this long with what has arrived: on a slow link 128 KiB takes minutes
  // (the agent would see "measuring..." for ever, and measurements would pile up on the visitor's
  // little bandwidth).
  var BANDWIDTH_MAX_MS = 5000;
  // Limits of the API's visitor messages (docs/PROTOCOL.md): a message over one closes the socket
  // (4400), and the reconnect would send it again.
  var MAX_URL = 4096, MAX_TEXT = 1024, MAX_SELECTOR = 1000, MAX_COORD = 10000000;

  // ---- state kept across page navigations of the same tab ------------------------------------
  function loadState() {
    try { return B.parse(sessionStorage.getItem(STORE_KEY) || "null") || {}; } catch (e) { return {}; }
  }
  function saveState() {
    try { sessionStorage.setItem(STORE_KEY, toJson(state)); } catch (e) { /* storage off */ }
  }
  var state = loadState(); // {visitor_id, token, session: {id, state, agent_name}, registration}
  var policy = { masked_selectors: [], seed_cookies: true };

  // ---- the shared selector algorithm (docs/PROTOCOL.md "cssPath") ----------------------------
  function cssEscape(s) {
    return window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/[^a-zA-Z0-9_-]/g, "\\$&");
  }
  function cssPath(el) {
    if (!el || el.nodeType !== 1 || !el.isConnected || el.ownerDocument !== document) return null;
    var steps = [], n = el;
    for (;;) {
      if (n.id && document.querySelectorAll("#" + cssEscape(n.id)).length === 1) { steps.unshift("#" + cssEscape(n.id)); break; }
      if (n === document.documentElement) { steps.unshift("html"); break; }
      var k = 1, sib = n;
      while ((sib = sib.previousElementSibling)) if (sib.localName === n.localName) k++;
      steps.unshift(n.localName + ":nth-of-type(" + k + ")");
      n = n.parentElement;
      if (!n) return null;
    }
    return steps.join(" > ");
  }
  NS.cssPath = cssPath;

  var sessionMasks = [];
  function takeSessionMasks(session) {
    if (session && Array.isArray(session.masked_selectors)) sessionMasks = session.masked_selectors.slice();
  }
  // A password stays a password when a "show password" button makes its input type=text: so does
  // an input that was one on this page, and one whose autocomplete says it holds a secret.
  var SECRET_AUTOCOMPLETE = /(^|\s)(current-password|new-password|one-time-code|cc-number|cc-csc)(\s|$)/i;
  var wasPassword = typeof WeakSet === "function" ? new WeakSet() : null, badSelectorSaid = false;
  function seenAsPassword(el) {
    if (el.localName !== "input") return false;
    if ((el.type || "").toLowerCase() === "password") { if (wasPassword) wasPassword.add(el); return true; }
    return !!wasPassword && wasPassword.has(el);
  }
  if (wasPassword && B.MutationObserver) { // (a toggle before anything was typed)
    new B.MutationObserver(guard(function (records) {
      for (var i = 0; i < records.length; i++) {
        var r = records[i];
        if (r.target.localName === "input" && String(r.oldValue).toLowerCase() === "password") wasPassword.add(r.target);
      }
    }, "password")).observe(document.documentElement, { attributes: true, attributeFilter: ["type"], attributeOldValue: true, subtree: true });
  }
  function isMasked(el) {
    if (!el || el.nodeType !== 1) return false;
    if (seenAsPassword(el) || SECRET_AUTOCOMPLETE.test(el.getAttribute("autocomplete") || "")) return true;
    // the account's masks as this page heard them, and those of the session it runs (made under
    // the policy of its start): a field either names stays in this browser
    var sels = (policy.masked_selectors || []).concat(sessionMasks);
    for (var i = 0; i < sels.length; i++) {
      try { if (el.matches(sels[i]) || el.closest(sels[i])) return true; } catch (e) {
        // a rule this browser cannot read (stored before the API refused such rules) may name
        // this element: it stays here, like every other, rather than go to the agent
        if (!badSelectorSaid) { badSelectorSaid = true; warn("masked selector " + sels[i], e); }
        return true;
      }
    }
    return false;
  }

  // ---- HTTP and WebSocket ---------------------------------------------------------------------
  function api(method, path, body, auth) {
    var headers = { "Content-Type": "application/json" };
    if (auth && state.token) headers.Authorization = "Bearer " + state.token;
    var text = body === undefined ? undefined : toJson(body);
    // keepalive: an answer (accept, refuse, end) still reaches the API when the visitor follows a
    // link right after clicking; browsers cap keepalive bodies at 64 KB, so only small ones
    return request(API_V1 + path, {
      method: method, headers: headers, credentials: "omit", mode: "cors", body: text,
      keepalive: method === "POST" && (text || "").length < 60000
    }).then(function (r) {
      return r.text().then(function (t) {
        var data = null;
        try { data = t ? B.parse(t) : null; } catch (e) { data = null; }
        if (!r.ok) { var err = new Error((data && data.error) || ("HTTP " + r.status)); err.status = r.status; err.data = data; throw err; }
        return data;
      });
    });
  }

  var ws = null, wsMaker = window, connectOnMount = false, wsOpen = false, queue = [], retry = 0, stopped = false, heardHello = false;
  var heldBack = false; // reports of where the visitor is wait for an End on its way (sendSettle)
  // Two tabs of one visitor (a tab the page opens with window.open keeps its sessionStorage, so its
  // identity): where the visitor is, is where the visitor looks. A hidden tab does not report its
  // page, scroll, viewport or fields (a title a timer changes or a pushState in a tab behind took
  // the agent's view), and a tab coming to the front reports them at once. Only a tab that made
  // the identity itself and was never in front (a first visit opened in a background tab) reports
  // while hidden: no other tab can have told the visitor's page.
  var WHERE = { page: 1, scroll: 1, viewport: 1, field: 1 };
  var STATE_NOW = { page: 1, scroll: 1, viewport: 1 }; // what reportAll sends afresh
  var ownIdentity = false, seenInFront = !isHidden();
  function isHidden() { return document.visibilityState === "hidden"; }
  function unsaid(msg) { return WHERE[msg.type] === 1 && isHidden() && (seenInFront || !ownIdentity); }
  // Whether the message is sent, or kept to be sent.
  function send(msg) {
    if (unsaid(msg)) return false;
    if (heldBack && WHERE[msg.type] === 1) return false; // (see the hello)
    if (ws && wsOpen) { budgeted(msg); return true; }
    // Until this page's first `hello` it may not know every mask (those of the session come with
    // it): a field or an element's scroll is not kept for later then (once the socket is open,
    // the changed fields and the scrolled elements are all reported again, masks known).
    if ((heardHello || (msg.type !== "field" && !msg.target)) && queue.length < 50) { queue.push(msg); return true; }
    return false;
  }

  // The API closes a socket that sends more than ws_rate_per_s messages a second (50 by default,
  // 4429). Whatever the page does at once (a slider dragged while the page scrolls and its URL
  // follows, a form of a hundred fields filled, everything told again at hello), the banner stays
  // under SEND_RATE (4/5 of the rate the hello gives, at most 40; the rest is the pings' and the
  // auth's): a message over it waits its turn. A newer one about the same thing (the page, the
  // viewport, the window's or an element's scroll, a field, the bandwidth) takes the waiting one's
  // place, so each thing keeps its turn (one that changes more often than the budget allows is not
  // for ever last: with the URL following a scroll, only pages went), and what arrives last is
  // what is now. But never ahead of a page that waits after it: what came about on the next page
  // goes after that page (the agent's view would put a field of it on the page before's element),
  // as does what came about while it waits. What waited is checked again as it goes: nothing from
  // a tab now behind (the view follows the tab in front), no field masked meanwhile.
  var SEND_RATE = 40;
  var sendTokens = SEND_RATE, sendStamp = clock(), held = [], heldTimer = null;
  function takeRate(perS) {
    if (typeof perS !== "number" || !(perS >= 1)) return; // (an older API says nothing: 40)
    SEND_RATE = Math.max(1, Math.min(40, Math.floor(perS * 4 / 5)));
    sendTokens = Math.min(sendTokens, SEND_RATE);
  }
  function sameThing(msg) {
    if (msg.type === "scroll") return "scroll\n" + (msg.target || "");
    if (msg.type === "field") return "field\n" + msg.selector;
    return msg.type === "page" || msg.type === "viewport" || msg.type === "bandwidth" ? msg.type : null;
  }
  function refill() {
    var now = clock();
    sendTokens = Math.min(SEND_RATE, sendTokens + Math.max(0, now - sendStamp) * SEND_RATE / 1000);
    sendStamp = now;
  }
  function transmit(msg) {
    sendTokens -= 1;
    try { ws.send(toJson(msg)); } catch (e) { warn("send", e); }
  }
  function stillToSay(msg) {
    if (unsaid(msg)) return false;
    if (msg.type !== "field") return true;
    try { var el = document.querySelector(msg.selector); return !!el && isField(el) && !isMasked(el); } catch (e) { return false; }
  }
  function budgeted(msg) {
    refill();
    if (!held.length && sendTokens >= 1) { transmit(msg); return; }
    var key = sameThing(msg), at = -1;
    for (var i = held.length - 1; key !== null && i >= 0; i--) {
      if (held[i].key === key) { at = i; break; }
      if (held[i].key === "page") break; // what waits before a page is of the page before
    }
    if (at < 0) { held.push({ key: key, msg: msg }); releaseHeld(); return; }
    held[at].msg = msg;
    held[at].asNow = false;
    // A newer page in the place of one that waited: what came about on that page and waits after
    // it (a field, an element's scroll) goes as it is now, on this page (its element may be
    // another, or gone); as it was, the agent's view would put it on this page's element.
    if (key === "page") for (var j = at + 1; j < held.length; j++) held[j].asNow = !!(held[j].msg.selector || held[j].msg.target);
    releaseHeld();
  }
  // A field or an element's scroll as it is now on this page (null: no such element to tell of).
  function asItIsNow(msg) {
    var el = null;
    try { el = document.querySelector(msg.selector || msg.target); } catch (e) { return null; }
    if (!el) return null;
    if (msg.type === "field") return isField(el) && !isMasked(el) ? fieldMessage(el) : null;
    if (isFormControl(el) || isMasked(el)) return null;
    return { type: "scroll", target: msg.target, x: coord(el.scrollLeft), y: coord(el.scrollTop) };
  }
  function releaseHeld() {
    if (heldTimer) return;
    heldTimer = later(guard(function () {
      heldTimer = null;
      refill();
      while (held.length && sendTokens >= 1) {
        var next = held.shift(), msg = next.asNow ? asItIsNow(next.msg) : next.msg;
        if (!msg) continue;
        if (!(ws && wsOpen)) send(msg); // the socket went meanwhile: kept as send keeps it
        else if (stillToSay(msg)) transmit(msg);
      }
      if (held.length) releaseHeld();
    }, "send budget"), Math.ceil(Math.max(0, 1 - sendTokens) * 1000 / SEND_RATE));
  }

  // The registration key: random (256 bits), kept in the tab's sessionStorage before the banner
  // asks. A tab the page opens before the answer comes (window.open copies sessionStorage) has
  // the key but no identity yet: it registers with the key, and the API gives it the visitor the
  // key made (a token of its own). Only in sessionStorage and a POST body: never in a URL.
  var REGISTRATION_KEY = /^[A-Za-z0-9_-]{22,128}$/;
  function newRegistrationKey() {
    var bytes = new B.Uint8Array(32), hex = "0123456789abcdef", key = "";
    for (var i = 0; i < cryptos.length; i++) {
      try { apply(B.getRandomValues, cryptos[i], [bytes]); break; } catch (e) { if (i === cryptos.length - 1) return ""; }
    }
    for (var j = 0; j < bytes.length; j++) key += hex[bytes[j] >> 4] + hex[bytes[j] & 15];
    return key;
  }
  function register() {
    // (a key kept from a try that failed, or a reload before the answer, is sent again: the API
    // gives the visitor it made, if it made one)
    if (!REGISTRATION_KEY.test(state.registration || "")) {
      state.registration = newRegistrationKey();
      saveState();
    }
    var body = { site_key: SITE_KEY };
    if (state.registration) body.registration = state.registration;
    return api("POST", "/visitors", body).then(function (data) {
      state.visitor_id = data.visitor_id;
      state.token = data.token || data.visitor_token;
      delete state.registration; // (the identity is there now: a tab opened from here copies it)
      ownIdentity = true;
      if (data.policy) applyPolicy(data.policy);
      saveState();
    });
  }

  // A page whose Content-Security-Policy has no wss://API in connect-src can never connect: one
  // clear message, and no retry (each one would log again and send the site a violation report).
  var WS_ORIGIN = API.replace(/^http/, "ws");
  var blockedByPolicy = false;
  function blockedByThePagesPolicy() {
    if (blockedByPolicy) return;
    blockedByPolicy = true;
    NS.status = "blocked-by-csp";
    try {
      console.error("[cobrowse] this page's Content-Security-Policy does not allow " + WS_ORIGIN +
        " in connect-src: co-browsing is off on this page (README, Content-Security-Policy)");
    } catch (e) { /* ignore */ }
  }
  on(document, "securitypolicyviolation", guard(function (ev) {
    if (String(ev.blockedURI || "").indexOf(WS_ORIGIN) === 0) blockedByThePagesPolicy();
  }, "csp"));
  function connect() {
    if (stopped || blockedByPolicy) return;
    var url = WS_ORIGIN + "/api/v1/visitor/ws";
    var sock;
    // the frame's WebSocket closes, silently, with the frame: made by the frame as it is now
    var maker = socketFromFrame ? realm() : window;
    if (!maker) { connectOnMount = true; return; } // not mounted yet (or not again)
    try { sock = new (socketFromFrame ? maker.WebSocket : B.WebSocket)(url); wsMaker = maker; } catch (e) {
      if (e && e.name === "SecurityError") return blockedByThePagesPolicy();
      warn("ws", e); return scheduleReconnect();
    }
    ws = sock;
    sock.onopen = guard(function () {
      sock.send(toJson({ type: "auth", token: state.token }));
    }, "ws open");
    sock.onmessage = guard(function (ev) {
      var msg = B.parse(ev.data);
      if (msg.type === "hello") {
        wsOpen = true; retry = 0; heardHello = true;
        if (msg.policy) applyPolicy(msg.policy);
        takeSessionMasks(msg.session);
        if (msg.visitor_id) { state.visitor_id = msg.visitor_id; saveState(); }
        takeRate(msg.rate_per_s);
        startPings(sock, msg.heartbeat_s);
        sendSettle(); // an End or Refuse this tab has not got through yet (a page before this one)
        // the session this hello says is live is one the visitor ended, and the API has not heard
        // it yet: nothing of this page goes to the agent until it has (sendSettle's done)
        heldBack = !!(msg.session && settling(msg.session.id));
        restoreSession(msg.session);
        connectionBack();
        // reportAll tells where the page is now: a page, viewport or scroll kept from before would
        // be told twice, the older copy last to arrive at times (the agent then followed a tab the
        // visitor had already left)
        var kept = queue;
        queue = [];
        kept.forEach(function (m) { if (!STATE_NOW[m.type]) send(m); });
        if (!heldBack) reportAll();
        return;
      }
      handle(msg);
    }, "ws message");
    sock.onclose = guard(function (ev) {
      wsOpen = false; ws = null;
      // 4410: the account was deleted, and its site key with it. Registering again cannot work
      // (nor even be told apart from a network failure: no CORS for an origin no account allows),
      // so the banner is off on this page, as when its first registration fails.
      if (ev.code === 4410) {
        stopped = true;
        NS.status = "account-deleted";
        state = {}; saveState();
        hideAll();
        return;
      }
      // 4401/4403: our token is no longer valid; register again as a new visitor.
      if (ev.code === 4401 || ev.code === 4403 || ev.code === 1008) {
        state = {}; saveState();
        hideAll();
        register().then(function () { connect(); measureSoon(); },
          function (e) { warn("register", e); scheduleReconnect(); });
        return;
      }
      connectionLost();
      scheduleReconnect();
    }, "ws close");
  }
  function startPings(sock, everyS) {
    var ms = Math.max(1000, (Number(everyS) || 10) * 1000);
    var timer = every(guard(function () {
      if (ws === sock && reviveSocket()) return;
      if (ws !== sock || sock.readyState !== 1) { stopEvery(timer); return; }
      sock.send('{"type":"ping"}');
    }, "ping"), ms);
  }
  // A socket made by the frame of built-ins went with it (an app replaced <body> and the frame
  // unloaded): no close event comes, so connect again.
  function reviveSocket() {
    if (!ws || wsMaker === window || !wsMaker.closed) return false;
    var dead = ws;
    dead.onopen = dead.onmessage = dead.onclose = null;
    ws = null; wsOpen = false;
    connect();
    return true;
  }
  function scheduleReconnect() {
    if (stopped) return;
    retry = Math.min(retry + 1, 6);
    // 250 ms, 0.5, 1, 2, 4, then every 5 s (plus a little jitter so many visitors do not align)
    later(guard(connect, "reconnect"), Math.min(5000, 125 * Math.pow(2, retry)) + Math.random() * 100);
  }

  function applyPolicy(p) {
    if (!p) return;
    if (p.masked_selectors) policy.masked_selectors = p.masked_selectors.slice();
    if (typeof p.seed_cookies === "boolean") policy.seed_cookies = p.seed_cookies;
  }

  // ---- reports --------------------------------------------------------------------------------
  function reportableUrl(href) {
    if (href.length > MAX_URL) href = href.split("#")[0]; // most long URLs are a long #fragment
    return href.length <= MAX_URL ? href : null;
  }
  function coord(n) { return Math.max(-MAX_COORD, Math.min(MAX_COORD, Math.round(n))); }
  var lastPage = null; // the URL and title last reported
  function reportPage() {
    var url = reportableUrl(location.href);
    var title = String(document.title).slice(0, MAX_TEXT);
    lastPage = url && send({ type: "page", url: url, title: title }) ? url + "\n" + title : null;
  }
  function reportViewport() { send({ type: "viewport", width: innerWidth, height: innerHeight }); }
  function scrollAnchor() {
    var x = Math.max(1, Math.floor(innerWidth / 2)), el = null;
    for (var y = 1; y < Math.min(innerHeight, 200) && !el; y += 20) {
      var hit = document.elementFromPoint(x, y);
      if (hit && hit !== host && hit !== document.documentElement && hit !== document.body) el = hit;
    }
    if (!el) return null;
    // offset: the element's top relative to the viewport top (docs/PROTOCOL.md, runtime "scroll").
    var selector = cssPath(el), offset = Math.round(el.getBoundingClientRect().top);
    if (!selector || selector.length > MAX_SELECTOR || Math.abs(offset) > MAX_COORD) return null;
    return { selector: selector, offset: offset };
  }
  function reportScroll() {
    send({ type: "scroll", x: coord(scrollX), y: coord(scrollY), anchor: scrollAnchor() });
  }
  function fieldMessage(el) {
    // Never called for a masked element: its value stays in this browser.
    var t = (el.type || el.localName || "").toLowerCase();
    var attrs = {};
    ["id", "class", "name", "type", "autocomplete"].forEach(function (a) {
      var v = el.getAttribute(a);
      if (v != null && v.length <= 500) attrs[a] = v;
    });
    var selector = cssPath(el);
    if (!selector || selector.length > MAX_SELECTOR) return null; // the agent's copy could not place it
    var msg = { type: "field", selector: selector, input_type: t, tag: el.localName, attrs: attrs };
    if (t === "checkbox" || t === "radio") msg.checked = !!el.checked;
    else msg.value = String(el.value == null ? "" : el.value).slice(0, 10000);
    return msg;
  }
  function sendField(el) {
    var msg = fieldMessage(el);
    if (msg) send(msg);
  }
  function isField(el) {
    if (!el || el.nodeType !== 1) return false;
    var n = el.localName;
    if (n === "textarea" || n === "select") return true;
    if (n !== "input") return false;
    var t = (el.type || "text").toLowerCase();
    return t !== "hidden" && t !== "file" && t !== "submit" && t !== "button" && t !== "image" && t !== "reset";
  }
  function reportFields() {
    var all = document.querySelectorAll("input, textarea, select");
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      if (!isField(el)) continue;
      var t = (el.type || "").toLowerCase();
      var changed = (t === "checkbox" || t === "radio") ? el.checked !== el.defaultChecked
        : el.localName === "select" ? true : el.value !== el.defaultValue;
      if (changed && !isMasked(el)) sendField(el);
    }
  }
  function reportAll() {
    reportPage(); reportViewport(); reportScroll(); reportBoxScrolls();
    if (state.session && state.session.state === "active") reportFields();
  }
  NS.report = reportAll;

  var measuring = false, measureAfter = false;
  // Measure now, or as soon as the measurement under way ends (it may have been refused: it ran
  // with the token that was just replaced, and the next round is BANDWIDTH_EVERY_MS away).
  function measureSoon() {
    if (measuring) measureAfter = true;
    else measureBandwidth();
  }
  function measureBandwidth() {
    if (measuring) return; // the last one is still running: never two at once on a slow link
    if (stopped) return; // off on this page
    measuring = true;
    var t0 = performance.now(), got = 0, over = false, timer = null;
    var aborter = B.AbortController ? new B.AbortController() : null;
    function end() { // false if it was over already
      if (over) return false;
      over = true;
      measuring = false;
      cancel(timer);
      // a download still running is cut: its bytes would go on taking the visitor's bandwidth
      if (aborter) { try { aborter.abort(); } catch (e) { /* done */ } }
      if (measureAfter) { measureAfter = false; later(guard(measureBandwidth, "bandwidth"), 0); }
      return true;
    }
    function finish() {
      if (!end()) return;
      var ms = Math.max(1, performance.now() - t0);
      var kbps = Math.round((got * 8) / ms); // bits per millisecond = kilobits per second
      NS.bandwidthKbps = kbps;
      send({ type: "bandwidth", kbps: kbps });
    }
    timer = later(guard(finish, "bandwidth"), BANDWIDTH_MAX_MS);
    request(API_V1 + "/bandwidth?bytes=" + BANDWIDTH_BYTES, {
      cache: "no-store", credentials: "omit", headers: { Authorization: "Bearer " + state.token },
      signal: aborter ? aborter.signal : undefined
    }).then(function (r) {
      if (over) return null;
      if (!r.ok) throw new Error("HTTP " + r.status);
      if (!r.body || typeof r.body.getReader !== "function") {
        return r.arrayBuffer().then(function (buf) { got = buf.byteLength; finish(); });
      }
      var reader = r.body.getReader();
      function next() {
        if (over) return null;
        return reader.read().then(function (chunk) {
          if (chunk.done) { finish(); return null; }
          got += chunk.value.byteLength;
          return next();
        });
      }
      return next();
    }).catch(function (e) {
      if (end()) warn("bandwidth", e); // (after the end: our own abort)
    });
  }

  // ---- the host page's events -----------------------------------------------------------------
  function wrapHistory(name) {
    var orig = history[name];
    if (typeof orig !== "function") return;
    history[name] = function () {
      var out = apply(orig, this, arguments);
      try { onHistory(); } catch (e) { /* ignore */ }
      return out;
    };
  }
  // Apps call pushState/replaceState as often as every frame (a URL that follows the scroll, a
  // router keeping the scroll position in history.state): the page is reported at most every
  // PAGE_EVERY_MS, the last report where the app stopped, and not at all when neither its URL nor
  // its title changed since the last one told (each report is stored, and told to the account's
  // agents); its scroll is told each time.
  var PAGE_EVERY_MS = 100;
  var pageTimer = null, pageSentAt = -Infinity;
  // The agent's strokes and highlights marked what this route showed: they go when the app routes
  // elsewhere (not for a #fragment), as they go in the agent's view (and with a page load).
  var annotatedRoute = location.href.split("#")[0];
  function onHistory() {
    var route = location.href.split("#")[0];
    if (route !== annotatedRoute) {
      annotatedRoute = route;
      if (annotations.strokes.length || annotations.highlights.length) {
        annotations.strokes = []; annotations.highlights = [];
        redrawOverlay();
      }
    }
    if (pageTimer) return;
    pageTimer = later(guard(function () {
      pageTimer = null; pageSentAt = clock();
      if (lastPage !== reportableUrl(location.href) + "\n" + String(document.title).slice(0, MAX_TEXT)) reportPage();
      reportScroll(); // (a title the app set with it has reported the page already, not its scroll)
    }, "history"), Math.max(0, pageSentAt + PAGE_EVERY_MS - clock()));
  }
  // A scroll event comes every frame (120 a second on some screens) and the API closes a socket that
  // sends more than 50 messages a second (4429): the overlay follows each frame, reports go at most
  // every SCROLL_EVERY_MS, the last one carrying where the scroll stopped.
  var SCROLL_EVERY_MS = 40;
  var scrollPending = false, scrollTimer = null, scrollSentAt = -Infinity;
  function onScroll() {
    if (scrollPending) return;
    scrollPending = true;
    nextFrame(guard(function () { scrollPending = false; redrawOverlay(); scheduleScrollReport(); }, "scroll"));
  }
  function scheduleScrollReport() {
    if (scrollTimer) return;
    scrollTimer = later(guard(function () {
      scrollTimer = null; scrollSentAt = clock(); reportScroll();
    }, "scroll report"), Math.max(0, scrollSentAt + SCROLL_EVERY_MS - clock()));
  }
  // A window dragged to a new size fires a resize event every frame too: its size is reported at
  // most every VIEWPORT_EVERY_MS, the last report carrying the size it stopped at (beside the
  // scroll reports a resize also makes, under the API's rate).
  var VIEWPORT_EVERY_MS = 100;
  var viewportTimer = null, viewportSentAt = -Infinity;
  function onResize() {
    if (viewportTimer) return;
    viewportTimer = later(guard(function () {
      viewportTimer = null; viewportSentAt = clock(); reportViewport();
    }, "viewport report"), Math.max(0, viewportSentAt + VIEWPORT_EVERY_MS - clock()));
  }
  // An app that scrolls an element of its own (a <main> with overflow: auto under a fixed layout)
  // never scrolls the window: such scrolls are reported with the element's cssPath as `target`, at
  // most every SCROLL_EVERY_MS together, and the boxes seen are reported again with everything else
  // (a view that opens late). Scroll events do not bubble, so they are heard in the capture phase.
  // All elements share one budget, one report every BOX_EVERY_MS (panes a grid keeps in step would
  // otherwise add up past the API's rate), sent only in a session; form controls never count (a
  // field's own scroll follows its text: the width of a masked value).
  var boxes = [], boxesDue = [], boxTimer = null, boxSentAt = -Infinity, MAX_BOXES = 20, BOX_EVERY_MS = 80;
  function isFormControl(el) { return el.localName === "input" || el.localName === "textarea" || el.localName === "select"; }
  function onBoxScroll(ev) {
    var el = ev.target;
    if (!el || el.nodeType !== 1 || el === document.scrollingElement || el === host) return;
    if (isFormControl(el) || isMasked(el)) return;
    if (boxes.indexOf(el) < 0) { boxes.push(el); if (boxes.length > MAX_BOXES) boxes.shift(); }
    if (!state.session || state.session.state !== "active") return; // remembered for the session's start
    if (boxesDue.indexOf(el) < 0) boxesDue.push(el);
    scheduleBoxReport();
  }
  function scheduleBoxReport() {
    if (boxTimer || !boxesDue.length) return;
    boxTimer = later(guard(function () {
      boxTimer = null; boxSentAt = clock();
      reportBoxScroll(boxesDue.shift());
      scheduleBoxReport();
    }, "box scroll report"), Math.max(0, boxSentAt + BOX_EVERY_MS - clock()));
  }
  function reportBoxScroll(el) {
    // checked when sent, not only when it scrolled: the masks may have come (or grown) since
    if (!el || !state.session || state.session.state !== "active" || isFormControl(el) || isMasked(el)) return;
    var selector = cssPath(el);
    if (!selector || selector.length > MAX_SELECTOR) return;
    send({ type: "scroll", target: selector, x: coord(el.scrollLeft), y: coord(el.scrollTop) });
  }
  function reportBoxScrolls() {
    boxes = boxes.filter(function (el) { return el.isConnected; });
    if (!state.session || state.session.state !== "active") return;
    boxes.forEach(function (el) { if (boxesDue.indexOf(el) < 0) boxesDue.push(el); });
    scheduleBoxReport();
  }
  function onField(ev) {
    if (!state.session || state.session.state !== "active") return;
    var el = ev.target;
    if (isField(el) && !isMasked(el)) sendField(el);
  }

  // A link the visitor follows: tell the agent at click time, so the agent's view loads the next page
  // while the visitor's does (the next page's own report confirms or corrects it).
  function onLinkClick(ev) {
    if (!state.session || state.session.state !== "active") return;
    if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    var a = ev.target && ev.target.closest ? ev.target.closest("a[href]") : null;
    if (!a || (a.target && a.target !== "_self") || a.hasAttribute("download")) return;
    later(guard(function () {
      if (ev.defaultPrevented) return; // the page routed it itself (pushState is reported anyway)
      var url = new B.URL(a.href, location.href);
      if (url.protocol !== "http:" && url.protocol !== "https:") return;
      if (url.href.split("#")[0] === location.href.split("#")[0]) return;
      var href = reportableUrl(url.href);
      if (href && send({ type: "page", url: href })) lastPage = null; // (the app may stay, or go back)
    }, "link"), 0);
  }

  // ---- UI: shadow root with the prompt, the live bar and the overlay --------------------------
  function onTop() {
    try { if (host.showPopover && host.isConnected && !host.matches(":popover-open")) host.showPopover(); } catch (e) { warn("top layer", e); }
  }
  var STYLE = [
    ":host { all: initial; }",
    "* { box-sizing: border-box; font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; }",
    ".overlay { position: fixed; inset: 0; pointer-events: none; z-index: 1; }",
    ".overlay svg { position: absolute; inset: 0; width: 100%; height: 100%; overflow: visible; }",
    ".pointer { position: fixed; width: 22px; height: 22px; margin: -11px 0 0 -11px; border-radius: 50%;",
    "  background: rgba(230, 57, 70, .85); border: 3px solid #fff; box-shadow: 0 0 0 2px rgba(230,57,70,.5), 0 2px 8px rgba(0,0,0,.4);",
    "  pointer-events: none; display: none; transition: left .06s linear, top .06s linear; }",
    ".pointer span { position: absolute; left: 24px; top: 14px; white-space: nowrap; font-size: 12px; color: #fff;",
    "  background: #c62834; padding: 1px 6px; border-radius: 4px; }",
    ".hl { position: fixed; border: 3px solid #ffb703; background: rgba(255, 183, 3, .18); border-radius: 4px; pointer-events: none; }",
    ".dialog { position: fixed; right: 20px; bottom: 20px; width: 340px; max-width: calc(100vw - 40px); z-index: 3;",
    "  background: #fff; color: #1d2433; border-radius: 12px; padding: 18px 18px 14px; box-shadow: 0 10px 40px rgba(0,0,0,.3);",
    "  border: 1px solid #d0d5e2; pointer-events: auto; }",
    ".dialog h2 { font-size: 16px; margin: 0 0 6px; }",
    ".dialog p { font-size: 14px; margin: 0 0 14px; line-height: 1.4; color: #3b4456; }",
    ".row { display: flex; gap: 10px; justify-content: flex-end; }",
    "button { font: 600 14px system-ui, sans-serif; border-radius: 8px; padding: 8px 16px; cursor: pointer; border: 1px solid transparent; }",
    "button:focus-visible { outline: 3px solid #4d90fe; outline-offset: 2px; }",
    ".accept { background: #1b7a3e; color: #fff; }",
    ".refuse { background: #fff; color: #1d2433; border-color: #aab2c5; }",
    ".bar { position: fixed; left: 50%; transform: translateX(-50%); bottom: 12px; z-index: 2; pointer-events: auto;",
    "  display: flex; align-items: center; gap: 12px; background: #1d2433; color: #fff; padding: 8px 10px 8px 16px;",
    "  border-radius: 999px; font-size: 14px; box-shadow: 0 4px 18px rgba(0,0,0,.35); }",
    ".bar .dot { width: 10px; height: 10px; border-radius: 50%; background: #ff4d4d; }",
    ".bar button { background: #c62834; color: #fff; padding: 6px 14px; border-radius: 999px; }",
    ".notice { position: fixed; right: 20px; bottom: 20px; z-index: 2; background: #1d2433; color: #fff; padding: 10px 14px;",
    "  border-radius: 8px; font-size: 14px; pointer-events: none; }",
    "[hidden] { display: none !important; }"
  ].join("\n");

  // A constructed style sheet is not inline style to a Content-Security-Policy: a page whose
  // style-src has no 'unsafe-inline' would block a <style> element, and the UI would be bare text.
  var sheet = null;
  try { sheet = new CSSStyleSheet(); sheet.replaceSync(STYLE); root.adoptedStyleSheets = [sheet]; } catch (e) { sheet = null; }
  if (!sheet) {
    var style = document.createElement("style");
    style.textContent = STYLE;
    root.appendChild(style);
  }

  var overlay = document.createElement("div");
  overlay.className = "overlay";
  overlay.setAttribute("aria-hidden", "true");
  overlay.setAttribute("data-cobrowse-overlay", "");
  var svgNS = "http://www.w3.org/2000/svg";
  var svg = document.createElementNS(svgNS, "svg");
  overlay.appendChild(svg);
  var pointer = document.createElement("div");
  pointer.className = "pointer";
  pointer.setAttribute("data-cobrowse-pointer", "");
  var pointerLabel = document.createElement("span");
  pointer.appendChild(pointerLabel);
  overlay.appendChild(pointer);
  root.appendChild(overlay);

  var annotations = { pointer: null, highlights: [], strokes: [] };
  // At most one full report a second; a request inside that second is answered at its end.
  var lastResync = 0, resyncTimer = null;
  function resync() {
    var wait = lastResync + 1000 - Date.now();
    if (wait > 0) {
      if (!resyncTimer) resyncTimer = later(guard(function () { resyncTimer = null; resync(); }, "resync"), wait);
      return;
    }
    lastResync = Date.now();
    reportAll(); // fields and element scrolls only in a session
  }
  var pointerTimer = null;

  function anchorPoint(a) {
    // A point given as {selector, rx, ry} (fractions of the element's box) or document {x, y}.
    if (a.selector) {
      var el = null;
      try { el = document.querySelector(a.selector); } catch (e) { el = null; }
      if (el) {
        var r = el.getBoundingClientRect();
        return { x: r.left + (a.rx || 0) * r.width, y: r.top + (a.ry || 0) * r.height };
      }
    }
    return { x: (a.x || 0) - scrollX, y: (a.y || 0) - scrollY };
  }
  function redrawOverlay() {
    if (annotations.pointer) {
      var p = anchorPoint(annotations.pointer);
      pointer.style.left = p.x + "px";
      pointer.style.top = p.y + "px";
      pointer.style.display = "block";
    } else {
      pointer.style.display = "none";
    }
    var old = overlay.querySelectorAll(".hl");
    for (var i = 0; i < old.length; i++) old[i].remove();
    annotations.highlights.forEach(function (sel) {
      var el = null;
      try { el = document.querySelector(sel); } catch (e) { el = null; }
      if (!el) return;
      var r = el.getBoundingClientRect();
      var box = document.createElement("div");
      box.className = "hl";
      box.setAttribute("data-cobrowse-highlight", sel);
      box.style.cssText = "left:" + (r.left - 4) + "px;top:" + (r.top - 4) + "px;width:" + (r.width + 8) + "px;height:" + (r.height + 8) + "px";
      overlay.appendChild(box);
    });
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    annotations.strokes.forEach(function (s) {
      var path = document.createElementNS(svgNS, "polyline");
      path.setAttribute("points", s.points.map(function (pt) {
        return (pt[0] - scrollX) + "," + (pt[1] - scrollY);
      }).join(" "));
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", s.color || "#e63946");
      path.setAttribute("stroke-width", String(s.width || 4));
      path.setAttribute("stroke-linecap", "round");
      path.setAttribute("stroke-linejoin", "round");
      svg.appendChild(path);
    });
  }
  function clearAnnotations() {
    annotations.pointer = null; annotations.highlights = []; annotations.strokes = [];
    redrawOverlay();
  }

  // Consent prompt: role=dialog aria-modal, focus moved to it (then to Refuse) and given back afterwards.
  var dialog = null, returnFocus = null;
  var ARM_MS = 600;
  function showPrompt(sessionId, agentName) {
    var back = dialog ? returnFocus : document.activeElement; // shown again: focus still goes back there
    hidePrompt(false);
    returnFocus = back;
    dialog = document.createElement("div");
    dialog.className = "dialog";
    dialog.setAttribute("role", "dialog");
    dialog.setAttribute("aria-modal", "true");
    dialog.setAttribute("aria-labelledby", "cb-title");
    dialog.setAttribute("aria-describedby", "cb-desc");
    var h = document.createElement("h2");
    h.id = "cb-title";
    h.textContent = "Screen sharing request";
    var p = document.createElement("p");
    p.id = "cb-desc";
    p.textContent = (agentName || "An agent") + " would like to see your screen. Passwords and protected fields stay hidden.";
    var row = document.createElement("div");
    row.className = "row";
    var refuse = document.createElement("button");
    refuse.type = "button"; refuse.className = "refuse"; refuse.textContent = "Refuse";
    var accept = document.createElement("button");
    accept.type = "button"; accept.className = "accept"; accept.textContent = "Accept";
    row.appendChild(refuse); row.appendChild(accept);
    dialog.appendChild(h); dialog.appendChild(p); dialog.appendChild(row);
    // No answer by accident: a visitor typing (Enter, Space, Escape) or clicking just as the
    // prompt appears must not answer it. For ARM_MS the buttons are disabled and the dialog
    // itself holds the focus (screen readers read its title and text); then focus goes to Refuse,
    // the answer that shares nothing (browsers' own permission prompts wait the same way).
    var armed = false;
    accept.disabled = refuse.disabled = true;
    dialog.tabIndex = -1;
    on(accept, "click", guard(function () { if (armed) answer(sessionId, true); }, "accept"));
    on(refuse, "click", guard(function () { if (armed) answer(sessionId, false); }, "refuse"));
    on(dialog, "keydown", guard(function (ev) {
      if (ev.key === "Escape") { ev.preventDefault(); if (armed) answer(sessionId, false); }
      else if (ev.key === "Tab") {
        ev.preventDefault(); // keep focus inside the modal dialog: two buttons, cycle between them
        if (armed) (root.activeElement === refuse ? accept : refuse).focus();
      } else if (!armed) ev.preventDefault();
    }, "dialog keys"));
    root.appendChild(dialog);
    dialog.focus({ preventScroll: true });
    var shown = dialog;
    later(guard(function () {
      if (dialog !== shown) return; // answered or replaced meanwhile
      armed = true;
      accept.disabled = refuse.disabled = false;
      refuse.focus({ preventScroll: true });
    }, "arm prompt"), ARM_MS);
  }
  // The tab the visitor comes back to (or a window they focus, two side by side) is where they are
  // now. A prompt waiting there is shown again, as new: its first ARM_MS answer nothing (a key
  // pressed on the way back to the tab must not answer it).
  var frontAt = 0;
  function toFront(shown) {
    seenInFront = true;
    var s = state.session;
    if (shown && dialog && s && s.state === "pending") showPrompt(s.id, s.agent_name);
    if (Date.now() - frontAt < 500) return; // visibilitychange and focus come together
    frontAt = Date.now();
    resync();
  }
  function hidePrompt(restore) {
    if (!dialog) return;
    dialog.remove();
    dialog = null;
    if (restore !== false && returnFocus && returnFocus.focus && document.contains(returnFocus)) {
      try { returnFocus.focus(); } catch (e) { /* ignore */ }
    }
    returnFocus = null;
  }

  var bar = null;
  function showBar(agentName) {
    pointerLabel.textContent = agentName || "Agent";
    if (bar) { bar.querySelector(".who").textContent = "Co-browsing with " + (agentName || "an agent"); return; }
    bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("role", "region");
    bar.setAttribute("aria-label", "Co-browsing");
    var dot = document.createElement("span"); dot.className = "dot"; dot.setAttribute("aria-hidden", "true");
    var who = document.createElement("span"); who.className = "who";
    who.textContent = "Co-browsing with " + (agentName || "an agent");
    var end = document.createElement("button");
    end.type = "button"; end.textContent = "End";
    end.setAttribute("aria-label", "End co-browsing");
    on(end, "click", guard(function () { endSession(); }, "end"));
    bar.appendChild(dot); bar.appendChild(who); bar.appendChild(end);
    root.appendChild(bar);
  }
  function hideBar() { if (bar) { bar.remove(); bar = null; } }
  // Without its socket for 2 s (a network drop; a quick reconnect does not show) the bar says so:
  // the agent sees nothing of the page meanwhile, and the visitor should not think otherwise.
  var lostTimer = null;
  function barText(up) {
    var s = state.session, name = (s && s.agent_name) || "an agent";
    return "Co-browsing with " + name + (up ? "" : " (connection lost, reconnecting\u2026)");
  }
  function connectionLost() {
    if (lostTimer !== null) return;
    lostTimer = later(guard(function () {
      lostTimer = null;
      // (the browser keeps a socket open while it is offline: being offline is enough)
      if (bar && (!wsOpen || navigator.onLine === false)) bar.querySelector(".who").textContent = barText(false);
    }, "connection lost"), 2000);
  }
  function connectionBack() {
    cancel(lostTimer); lostTimer = null;
    if (bar) bar.querySelector(".who").textContent = barText(true);
  }
  on(window, "offline", guard(connectionLost, "offline"));
  on(window, "online", guard(function () { if (wsOpen) connectionBack(); }, "online"));

  var noticeTimer = null;
  function notice(text) {
    var n = root.querySelector(".notice");
    if (!n) { n = document.createElement("div"); n.className = "notice"; n.setAttribute("role", "status"); root.appendChild(n); }
    n.textContent = text;
    cancel(noticeTimer);
    noticeTimer = later(guard(function () { n.remove(); }, "notice"), 4000);
  }
  function hideAll() { hidePrompt(); hideBar(); clearAnnotations(); }

  // ---- session ------------------------------------------------------------------------------
  // The API refuses the whole accept for one cookie it cannot take (control_api/seed_cookies.py) or
  // for a body over 256 KiB: hand over only the cookies it takes, up to SEED_CHARS characters.
  var SEED_COOKIES = 200, SEED_CHARS = 60000;
  function pageCookies() {
    var out = [], chars = 0, url = location.origin + "/"; // the jar keeps the host only
    (document.cookie || "").split(";").forEach(function (part) {
      var i = part.indexOf("=");
      var name = (i < 0 ? part : part.slice(0, i)).trim(), value = i < 0 ? "" : part.slice(i + 1).trim();
      if (!name || name.length > 256 || /[=;,\s]/.test(name) || value.length > 4096 || /[;\r\n]/.test(value)) return;
      if (out.length >= SEED_COOKIES || chars + name.length + value.length > SEED_CHARS) return;
      chars += name.length + value.length;
      out.push({ name: name, value: value, url: url });
    });
    return out;
  }
  // The visitor's End or Refuse is kept (state.settling, across this tab's pages) and sent again
  // until the API has it: one lost on the way (offline, the API out of reach) left the session
  // live, and the socket's next hello brought it back, the agent seeing the visitor's pages
  // again after they had ended it. Another answer than a network error, a 5xx, 408 or 429 (the
  // session was over already, or is not this visitor's) is as good as done: nothing to retry.
  var settleTimer = null, settleBusy = false, settleTries = 0;
  // A session another tab of the visitor accepted while this tab's Refuse was still unsent (the
  // API out of reach): the Refuse then gets a 409, and this tab shows the bar as the other does
  // (it showed none, and its pages reached the agent with no bar to say so).
  var startLater = null;
  function settle(sessionId, action) {
    state.settling = { id: sessionId, action: action };
    saveState();
    sendSettle();
  }
  function settling(sessionId) { return !!(state.settling && state.settling.id === sessionId); }
  function sendSettle() {
    var s = state.settling;
    if (!s || settleBusy || !state.token) return;
    cancel(settleTimer); settleTimer = null;
    settleBusy = true;
    function done(status) {
      settleBusy = false; settleTries = 0;
      if (state.settling && state.settling.id === s.id) { delete state.settling; saveState(); }
      var go = startLater && startLater.id === s.id ? startLater : null;
      if (go) startLater = null;
      if (go && status === 409 && s.action === "refuse") startSession(go.id, go.agent);
      if (state.settling) return sendSettle(); // another, settled while this one was on its way
      if (heldBack) { heldBack = false; if (ws && wsOpen) reportAll(); }
    }
    api("POST", "/sessions/" + encodeURIComponent(s.id) + "/" + s.action, {}, true).then(function () { done(0); }, function (e) {
      var st = e && e.status;
      if (st && st < 500 && st !== 408 && st !== 429) return done(st);
      settleBusy = false;
      warn(s.action, e);
      settleTimer = later(guard(sendSettle, "settle"), Math.min(30000, 3000 * Math.pow(2, settleTries++)));
    });
  }
  on(window, "online", guard(sendSettle, "online"));
  function answer(sessionId, yes) {
    hidePrompt();
    if (!yes) {
      state.session = null;
      settle(sessionId, "refuse");
      return;
    }
    var body = {};
    if (policy.seed_cookies) body = { cookies: pageCookies() };
    api("POST", "/sessions/" + encodeURIComponent(sessionId) + "/accept", body, true).then(function (data) {
      var agent = (data && (data.agent_name || (data.agent && data.agent.name))) || (state.session && state.session.agent_name);
      startSession(sessionId, agent);
    }).catch(function (e) {
      warn("accept", e);
      notice(e.status === 409 || e.status === 410 ? "This request has expired." : "Could not start co-browsing.");
      state.session = null; saveState();
    });
  }
  function startSession(sessionId, agentName) {
    if (settling(sessionId)) { // the visitor ended it: not back until the API has it
      if (state.settling.action === "refuse") startLater = { id: sessionId, agent: agentName };
      return sendSettle();
    }
    if (state.session && state.session.id === sessionId && state.session.state === "active" && bar) return;
    state.session = { id: sessionId, state: "active", agent_name: agentName };
    saveState();
    hidePrompt();
    showBar(agentName);
    pointerLabel.textContent = agentName || "Agent";
    reportAll(); // (with the fields: the session is active now)
  }
  // ``why``: the transition's reason (an agent who withdraws a request expires it too).
  function sessionOver(reason, why) {
    var was = state.session;
    startLater = null;
    state.session = null; saveState();
    boxesDue = []; // nothing more is reported for it
    hideAll();
    if (was && was.state === "active") notice("Co-browsing has ended.");
    else if (reason === "expired") {
      notice(why === "agent_ended" ? "The agent withdrew the screen sharing request."
        : !why || why === "consent_timeout" ? "The screen sharing request expired."
          : "The screen sharing request was withdrawn.");
    }
  }
  function endSession() {
    var s = state.session;
    if (!s) return;
    settle(s.id, "end");
    sessionOver("visitor");
  }
  NS.end = endSession;

  function restoreSession(live) {
    // The server says which session is live for this visitor (after a navigation or reconnect).
    // A session this tab was to show once its Refuse got a 409 (``startLater``) and that is no
    // longer live ended while the socket was away: its 409 says that too, and shows no bar.
    if (startLater && !(live && live.id === startLater.id && live.state === "active")) startLater = null;
    if (live && live.state === "active") startSession(live.id, live.agent_name);
    else if (live && live.state === "pending") {
      if (settling(live.id)) sendSettle();
      else if (!dialog) { state.session = { id: live.id, state: "pending", agent_name: live.agent_name }; saveState(); showPrompt(live.id, live.agent_name); }
    } else if (state.session) {
      sessionOver(""); // it ended while this page was away or offline: say so, as for any end
    }
  }
  function sid(msg) { return msg.session_id || (msg.session && msg.session.id); }
  function agentName(msg) {
    return msg.agent_name || (msg.agent && (msg.agent.name || msg.agent.display_name)) || (msg.session && msg.session.agent_name);
  }

  function handle(msg) {
    var s = state.session;
    switch (msg.type) {
      case "consent_request":
        if (settling(sid(msg))) { sendSettle(); break; }
        state.session = { id: sid(msg), state: "pending", agent_name: agentName(msg) };
        saveState();
        showPrompt(sid(msg), agentName(msg));
        break;
      case "session": case "session_state": case "session_update": {
        takeSessionMasks(msg.session);
        var st = msg.state || (msg.session && msg.session.state);
        if (st === "active") startSession(sid(msg), agentName(msg) || (s && s.agent_name));
        else if (st === "pending" && settling(sid(msg))) sendSettle();
        else if (st === "pending") { state.session = { id: sid(msg), state: "pending", agent_name: agentName(msg) }; saveState(); showPrompt(sid(msg), agentName(msg)); }
        else if (st) sessionOver(st, msg.reason);
        break;
      }
      case "session_ended": case "session_refused": case "session_expired":
        sessionOver(msg.state || msg.reason, msg.reason);
        break;
      case "policy":
        applyPolicy(msg.policy || msg);
        break;
      case "pointer":
        if (!s || s.state !== "active") break;
        annotations.pointer = msg;
        redrawOverlay();
        // The agent's pointer fades out when the agent stops moving it.
        cancel(pointerTimer);
        pointerTimer = later(guard(function () { annotations.pointer = null; redrawOverlay(); }, "pointer"), 5000);
        break;
      case "highlight":
        if (!s || s.state !== "active" || !msg.selector) break;
        annotations.highlights = [msg.selector];
        redrawOverlay();
        break;
      case "draw":
        if (!s || s.state !== "active" || !msg.points) break;
        annotations.strokes.push({ points: msg.points, color: msg.color, width: msg.width });
        if (annotations.strokes.length > 200) annotations.strokes.shift();
        redrawOverlay();
        break;
      case "clear":
        clearAnnotations();
        break;
      case "resync":
        // The agent's view (re)connected after our last reports: send what it missed.
        if (s && s.state === "active") resync();
        break;
      case "navigate":
        // The API relays "navigate" only when the policy lets agents navigate, to an allowed origin.
        // Only the tab in front goes: the visitor's other tabs keep their pages.
        if (!s || s.state !== "active" || isHidden()) break;
        try {
          var target = new B.URL(msg.url, location.href);
          if (target.protocol === "http:" || target.protocol === "https:") {
            location.assign(target.href);
          }
        } catch (e) { warn("navigate", e); }
        break;
      case "measure_bandwidth":
        measureBandwidth();
        break;
      default:
        break;
    }
  }
  NS._handle = guard(handle, "handle");

  // ---- start ---------------------------------------------------------------------------------
  // Boot at once (the WebSocket need not wait for the document: the agent's view follows sooner);
  // mount the UI once the body exists.
  var boot = guard(function () {
    wrapHistory("pushState");
    wrapHistory("replaceState");
    on(window, "popstate", guard(onHistory, "popstate"));
    on(window, "hashchange", guard(onHistory, "hashchange"));
    // an app routing with the Navigation API (navigate event, intercept) changes the URL without
    // pushState: report it once the navigation is done (Chromium fires it for pushState too)
    if (window.navigation && window.navigation.addEventListener) {
      on(window.navigation, "navigatesuccess", guard(onHistory, "navigation"));
    }
    // Two tabs of one visitor (a tab the page opened with window.open shares its identity): the
    // view follows the one the visitor comes back to
    on(document, "visibilitychange", guard(function () { if (!isHidden()) toFront(true); }, "visible"));
    on(window, "focus", guard(function () { if (!isHidden()) toFront(false); }, "focus"));
    on(window, "scroll", guard(onScroll, "scroll"), { passive: true });
    on(document, "scroll", guard(onBoxScroll, "box scroll"), { capture: true, passive: true });
    on(window, "resize", guard(function () { onResize(); onScroll(); }, "resize"));
    on(document, "input", guard(onField, "input"), true);
    on(document, "change", guard(onField, "change"), true);
    on(document, "click", guard(onLinkClick, "click"), false);
    if (state.session && state.session.state === "active") showBar(state.session.agent_name);
    var ready = state.token ? new B.Promise(function (done) { done(); }) : register();
    ready.then(function () {
      connect();
      measureBandwidth();
      every(guard(measureBandwidth, "bandwidth"), BANDWIDTH_EVERY_MS);
    }, function (e) { warn("register", e); });
  }, "boot");
  // An app that boots or hydrates may replace <body> or <html>, or empty the body: the UI goes back
  // (the prompt, the bar and the session live in the shadow root, which moves with the host).
  var keeper = B.MutationObserver ? new B.MutationObserver(guard(keepMounted, "remount")) : null;
  var watched = [];
  function keepMounted() {
    var html = document.documentElement, body = document.body, parent = body || html;
    if (parent && host.parentNode !== parent) {
      parent.appendChild(host); // (the frame of built-ins loads anew: a socket it made is gone)
      if (connectOnMount) { connectOnMount = false; connect(); } else reviveSocket();
    }
    onTop();
    if (!keeper || (watched[0] === html && watched[1] === body)) return;
    watched = [html, body];
    keeper.disconnect();
    keeper.observe(document, { childList: true });
    if (html) keeper.observe(html, { childList: true });
    if (body) keeper.observe(body, { childList: true });
  }
  var mount = guard(function () {
    keepMounted();
    var titleEl = document.querySelector("title");
    if (titleEl && B.MutationObserver) {
      new B.MutationObserver(guard(reportPage, "title")).observe(titleEl, { childList: true, characterData: true, subtree: true });
    }
    if (wsOpen) { // connected before the document was complete: report what is now there
      reportPage(); reportScroll();
      if (state.session && state.session.state === "active") reportFields();
    }
  }, "mount");

  boot();
  if (document.readyState === "loading") on(document, "DOMContentLoaded", mount);
  else mount();
})();
