/* cobrowse virtual browser: the visitor's page through the proxy, following the visitor.
 *
 * vb.html#session=SID, or vb.html#request=RID&visitor=VID as the console opens it for a request
 * (the session comes with the API's answer; see findSession). Talks to the control API (agent token from
 * sessionStorage, or from the opener console) and to the client runtime inside the proxied iframe
 * (postMessage, docs/PROTOCOL.md "Runtime bridge").
 */
(function () {
  "use strict";
  var TOKEN_KEY = "cobrowse.agentToken";
  var API = location.origin + "/api/v1";
  var $ = function (id) { return document.getElementById(id); };
  var frame = $("view");

  var SID = /^[a-z][a-z0-9]{9}$/;
  var hash = new URLSearchParams(location.hash.slice(1));
  var sid = hash.get("session") || "";
  // Opened by the console for a request it is sending (POST /sessions with this request id).
  var request = sid ? null : { id: hash.get("request") || "", visitor: hash.get("visitor") || "" };
  if (request && !(/^[A-Za-z0-9_-]{16,64}$/.test(request.id) && request.visitor)) request = null;
  // The console finds this window again by name (its live button), instead of opening a second one.
  if (sid) window.name = "cobrowse-vb-" + sid;
  var session = null;          // GET /sessions/{sid}
  var started = false;         // the session is active and the view follows the visitor
  var ended = false;
  var ws = null, retry = 0;
  var follow = true, mode = "none", drawing = false;
  var visitor = { url: "", title: "", scroll: null, fields: {}, boxes: {} }; // what the visitor has now
  // The revision of the visitor's reported state (docs/PROTOCOL.md, `rev`): a view of the visitor
  // read before a write can arrive after the page it predates (the old page's socket closing as
  // the visitor moves on), and must not take the view back to the page before.
  var visitorRev = -1;
  function fresh(rev) {
    if (typeof rev !== "number") return true;
    if (rev < visitorRev) return false;
    visitorRev = rev;
    return true;
  }
  var frameInfo = { origin: null, url: "", ready: false };       // what the iframe shows now
  var loadingUrl = "";

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function api(method, path, body) {
    return fetch(API + path, {
      method: method,
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token() },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
        if (!r.ok) {
          var err = new Error((data && (data.detail || data.error)) || ("HTTP " + r.status));
          err.status = r.status; err.code = data && data.error;
          throw err;
        }
        return data;
      });
    });
  }

  // With Follow off the view may show another page than the visitor's: what the agent points at,
  // highlights or draws there would land on whatever the visitor's page has in that place (or
  // nowhere). It stays in the view, and the status line says why.
  var OTHER_PAGE = "Your view shows another page than the visitor's: pointing, highlighting and " +
    "drawing reach the visitor only on the page they are on. Tick Follow to go there.";
  var EDIT_REFUSED = "The fields show what the visitor types: what you type, tick or choose here " +
    "would reach nobody. Untick Follow to use the page yourself.";
  function onVisitorsPage() {
    if (!frameInfo.url || !visitor.url || sameUrl(frameInfo.url, visitor.url)) return true;
    if (!follow) status(OTHER_PAGE); // (following, the view is on its way there)
    return false;
  }
  // A page that is ready clears the status line, unless the line was set after that page began
  // loading: then it says something newer (a navigate just refused) than the page.
  var statusAt = 0, pageBeganAt = 0;
  function status(text) {
    var s = $("vb-status");
    s.textContent = text || "";
    s.hidden = !text;
    statusAt = performance.now();
  }

  // ---- token: our sessionStorage (copied from the console by window.open) or the opener ------
  function obtainToken() {
    if (token()) return Promise.resolve(token());
    if (!window.opener) return Promise.reject(new Error("Sign in to the agent console first."));
    return new Promise(function (resolve, reject) {
      var done = false;
      function onMsg(ev) {
        if (ev.origin !== location.origin || !ev.data || ev.data.cobrowseConsole !== "token") return;
        window.removeEventListener("message", onMsg);
        done = true;
        if (ev.data.token) { sessionStorage.setItem(TOKEN_KEY, ev.data.token); resolve(ev.data.token); }
        else reject(new Error("Sign in to the agent console first."));
      }
      window.addEventListener("message", onMsg);
      try { window.opener.postMessage({ cobrowseConsole: "token?" }, location.origin); } catch (e) { /* gone */ }
      setTimeout(function () { if (!done) reject(new Error("Sign in to the agent console first.")); }, 3000);
    });
  }

  // ---- the proxied iframe -------------------------------------------------------------------
  function toRuntime(msg) {
    if (!frameInfo.ready || !frameInfo.origin || !frame.contentWindow) return false;
    msg.cobrowse = 1;
    frame.contentWindow.postMessage(msg, frameInfo.origin);
    return true;
  }
  // The proxy URL of an upstream URL (docs/ARCHITECTURE.md "URL codec"), for the direct label
  // kinds h/s; anything else (IPv6, long or non-LDH hosts) goes through a new ticket instead.
  // {scheme, domain, port} learnt from an enter_url, used once a page it led to is ready (the
  // credential cookie is set then: a direct URL while the first entry still loads would replace
  // that navigation, and the frame would never get the cookie)
  var proxyBase = null, enteredBase = null;
  function directProxyUrl(upstream) {
    if (!proxyBase) return null;
    var u;
    try { u = new URL(upstream); } catch (e) { return null; }
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    var host = u.hostname.toLowerCase().replace(/\.$/, "");
    if (!/^[a-z0-9.-]+$/.test(host) || host.indexOf("..") >= 0) return null;
    var label = sid + (u.protocol === "https:" ? "s" : "h") + (u.port || "") + "-" +
      host.replace(/-/g, "--").replace(/\./g, "-");
    if (label.length > 63) return null;
    var port = proxyBase.port ? ":" + proxyBase.port : "";
    return proxyBase.scheme + "//" + label + "." + proxyBase.domain + port + u.pathname + u.search + u.hash;
  }
  function learnProxyBase(enterUrl) {
    try {
      var u = new URL(enterUrl);
      var dot = u.hostname.indexOf(".");
      if (dot > 0 && u.hostname.slice(0, sid.length) === sid) {
        enteredBase = { scheme: u.protocol, domain: u.hostname.slice(dot + 1), port: u.port };
      }
    } catch (e) { enteredBase = null; }
  }
  // The proxied pages load in a sandbox without top navigation: a frame-busting script
  // (`top.location = location`) would replace this whole window, console and tools. Set as a
  // proxy page is loaded, not in the markup: a blank document in the frame is this window's
  // origin, and sandboxed with scripts and its own origin the browser warns it could lift it.
  var SANDBOX = "allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox " +
    "allow-modals allow-downloads allow-pointer-lock";
  function showProxied(url) {
    if (frame.getAttribute("sandbox") !== SANDBOX) frame.setAttribute("sandbox", SANDBOX);
    frame.src = url;
  }
  function load(upstreamUrl) {
    if (ended || !started) return; // nothing to show before the visitor accepts (the proxy refuses)
    loadingUrl = sentUrl = upstreamUrl || "";
    // Until the runtime says ready the frame shows nothing we know (an error page has no runtime).
    frameInfo.ready = false;
    frameInfo.url = "";
    var direct = upstreamUrl && directProxyUrl(upstreamUrl);
    if (direct) {
      showProxied(direct); // the credential cookie already covers every proxy origin of the session
      return Promise.resolve();
    }
    // The ticket's enter_url targets the visitor's current page (the API knows it).
    return api("POST", "/sessions/" + encodeURIComponent(sid) + "/proxy-ticket").then(function (t) {
      if (ended) return;
      learnProxyBase(t.enter_url);
      // The ticket targets the visitor's page as the API knows it: remember which one is loading.
      try { loadingUrl = new URL(t.enter_url).searchParams.get("url") || loadingUrl; } catch (e) { /* keep */ }
      sentUrl = loadingUrl;
      showProxied(t.enter_url);
    }).catch(function (err) {
      if (err.status === 409 || err.status === 410 || err.status === 403) checkSession();
      else status("Could not open the visitor's page: " + err.message);
    });
  }
  function sameUrl(a, b) {
    try {
      var x = new URL(a), y = new URL(b);
      x.hash = ""; y.hash = "";
      return x.href === y.href;
    } catch (e) { return a === b; }
  }
  // The visitor's URL the view was last sent to: a page that redirects the agent elsewhere (other
  // cookies, a client-side route) is not reloaded again and again, only when the visitor moves on.
  var followedUrl = "";
  // The page the frame was last sent to: a ticket targets the visitor's page as the API has it
  // stored when it is made, which may be the page before (the visitor moved on again meanwhile,
  // or an older API stored after relaying). A view that lands elsewhere than
  // the visitor was sent elsewhere then, and goes on (once per visitor page: a ticket that always
  // targets another page, an origin outside the scope, must not reload the view for ever).
  var sentUrl = "", resentFor = "";
  function followVisitor(force) {
    if (!follow || ended || !started || !visitor.url) return;
    var here = sameUrl(visitor.url, frameInfo.url) || sameUrl(visitor.url, loadingUrl);
    if (here || (!force && sameUrl(visitor.url, followedUrl))) { syncView(); return; }
    followedUrl = visitor.url;
    load(visitor.url);
  }
  function syncView() {
    // Bring a freshly loaded (or re-followed) page to the visitor's scroll and field values.
    if (!frameInfo.ready || !sameUrl(visitor.url, frameInfo.url)) return;
    if (follow && visitor.scroll) toRuntime(scrollMessage(visitor.scroll));
    if (follow) Object.keys(visitor.boxes).forEach(function (sel) { toRuntime(Object.assign({}, visitor.boxes[sel])); });
    Object.keys(visitor.fields).forEach(function (sel) { toRuntime(Object.assign({}, visitor.fields[sel])); });
  }
  // "ready" comes at DOMContentLoaded, before style sheets and images have settled the layout: an
  // anchored scroll applied then lands elsewhere once they have, so apply it again at load.
  frame.addEventListener("load", function () { syncView(); });
  function scrollMessage(s) {
    var msg = { type: "scroll", x: s.x || 0, y: s.y || 0 };
    if (s.anchor && s.anchor.selector) msg.anchor = { selector: s.anchor.selector, offset: s.anchor.offset || 0 };
    return msg;
  }

  // A proxy origin of this session (sid + kind label under the proxy domain the ticket named):
  // the only pages whose runtime the view talks to. Whatever else the frame may come to show
  // (a page of another origin it was led to) gets neither the visitor's field values nor the
  // view's messages, and cannot point or highlight on the visitor's page.
  function sessionOrigin(origin) {
    var base = proxyBase || enteredBase, u;
    if (!base || !sid) return false;
    try { u = new URL(origin); } catch (e) { return false; }
    var host = u.hostname.toLowerCase(), suffix = "." + base.domain.toLowerCase();
    if (u.protocol !== base.scheme || u.port !== base.port) return false;
    if (host.length <= suffix.length || host.slice(-suffix.length) !== suffix) return false;
    var label = host.slice(0, -suffix.length);
    return label.indexOf(".") < 0 && label.slice(0, sid.length) === sid && label.length > sid.length;
  }

  window.addEventListener("message", function (ev) {
    if (ev.source !== frame.contentWindow || !ev.data || ev.data.cobrowse !== 1) return;
    if (!sessionOrigin(ev.origin)) return;
    var msg = ev.data;
    switch (msg.type) {
      case "loading":
        // the agent's strokes were drawn over the page this view showed: gone with it, as the
        // visitor's are with theirs (they pointed at whatever the next page has there). Now, as
        // the next page begins: it shows before it is ready, and the agent may draw on it then.
        // (a page that loads itself again keeps them, as the visitor's page does; a new page
        // starts at the top until it says where it is)
        if (!sameUrl(msg.url || "", inkUrl)) clearInk();
        inkUrl = msg.url || "";
        placeInk(0, 0);
        pageBeganAt = performance.now();
        break;
      case "ready":
        if (!proxyBase) proxyBase = enteredBase;
        frameInfo.origin = ev.origin;
        frameInfo.url = msg.url || "";
        frameInfo.ready = true;
        loadingUrl = "";
        toRuntime({ type: "follow", on: follow });
        toRuntime({ type: "mode", mode: mode === "draw" ? "none" : mode });
        showLocation();
        var elsewhere = follow && visitor.url && !sameUrl(visitor.url, frameInfo.url);
        var stale = elsewhere && !sameUrl(visitor.url, sentUrl) && !sameUrl(visitor.url, resentFor);
        // Sent to the visitor's page but landed elsewhere (a redirect for the agent): say so.
        if (elsewhere && !stale && sameUrl(visitor.url, followedUrl)) {
          status("Your view shows " + frameInfo.url + " (the visitor is on " + visitor.url + ").");
        } else if (statusAt <= pageBeganAt) {
          status("");
        }
        if (stale) resentFor = visitor.url;
        if (elsewhere) followVisitor(stale); else syncView();
        break;
      case "navigated":
        if (msg.url && !sameUrl(msg.url, inkUrl)) clearInk(); // (as at "loading")
        if (msg.url) inkUrl = msg.url;
        frameInfo.url = msg.url || frameInfo.url;
        showLocation();
        if (follow && !sameUrl(visitor.url, frameInfo.url)) followVisitor();
        else syncView();
        break;
      case "position":
        placeInk(msg.x, msg.y);
        break;
      case "agent-pointer":
        if (onVisitorsPage()) sendPointer(msg.x, msg.y);
        echoPointer(msg.x, msg.y);
        break;
      case "edit-refused":
        status(EDIT_REFUSED);
        break;
      case "agent-click-highlight":
        if (onVisitorsPage()) sendWs({ type: "highlight", selector: msg.selector });
        break;
      case "agent-input":
        markActive();
        break;
      default:
        break;
    }
  });

  // Show the page at the visitor's viewport size, scaled down to fit the window when needed.
  var visitorViewport = null;
  function fit() {
    var stage = $("stage"), box = $("viewport");
    var sw = stage.clientWidth, sh = stage.clientHeight;
    if (!visitorViewport || !visitorViewport.width || !visitorViewport.height) {
      box.style.width = sw + "px"; box.style.height = sh + "px"; box.style.transform = "";
      $("vb-size").textContent = "";
      return;
    }
    var w = visitorViewport.width, h = visitorViewport.height;
    var scale = Math.min(1, sw / w, sh / h);
    box.style.width = w + "px"; box.style.height = h + "px";
    box.style.transform = "scale(" + scale + ")";
    box.style.left = Math.max(0, (sw - w * scale) / 2) + "px";
    $("vb-size").textContent = Math.round(w) + "\u00d7" + Math.round(h) + (scale < 1 ? " at " + Math.round(scale * 100) + "%" : "");
  }
  window.addEventListener("resize", fit);
  function setViewport(vp) {
    if (!vp || !vp.width || !vp.height) return;
    if (visitorViewport && visitorViewport.width === vp.width && visitorViewport.height === vp.height) return;
    visitorViewport = { width: vp.width, height: vp.height };
    fit();
  }

  // Echo the pointer where the visitor's banner draws it: document coordinates minus the scroll
  // position of the view being followed (the cursor itself is not visible in the iframe to others).
  var echoTimer = null;
  function echoPointer(x, y) {
    var sc = inkAt; // where the view's page is scrolled (the runtime's "position")
    var echo = $("pointer-echo");
    echo.style.left = (x - (sc.x || 0)) + "px";
    echo.style.top = (y - (sc.y || 0)) + "px";
    echo.hidden = mode !== "pointer";
    clearTimeout(echoTimer);
    echoTimer = setTimeout(function () { echo.hidden = true; }, 5000);
  }

  function showLocation() {
    $("vb-title").textContent = visitor.title || "(untitled page)";
    $("vb-url").textContent = visitor.url;
    $("vb-url").title = visitor.url;
    document.title = !started && !ended ? "cobrowse - waiting for the visitor"
      : (visitor.title ? visitor.title + " - " : "") + "cobrowse virtual browser";
  }

  // ---- the control API's live channel -------------------------------------------------------
  // The agent using the page in the view (the runtime's `agent-input`: clicks, keys, the wheel) is
  // the session's activity, as every relayed message is: with Follow off the agent may use the
  // site while the visitor reads, and the session ended idle under them (docs/PROTOCOL.md, `active`).
  var ACTIVE_EVERY_MS = 10000, lastActive = -1e9;
  function markActive() {
    var now = performance.now();
    if (!started || ended || now - lastActive < ACTIVE_EVERY_MS) return;
    lastActive = now;
    sendWs({ type: "active" });
  }
  function sendWs(msg) {
    if (!ws || ws.readyState !== 1 || ended) return;
    msg.session_id = sid;
    spend();
    ws.send(JSON.stringify(msg));
  }
  // The API closes a socket that sends more than ws_rate_per_s messages a second (4429; the hello
  // says how many): the pointer (the runtime sends up to 30 a second) keeps under 4/5 of it, what
  // is over waits and only its newest position goes. Highlights, drawings and the like are the
  // agent's clicks: always sent, they count too.
  var sendRate = 40, sendTokens = 40, sendStamp = performance.now(), pointerHeld = null, pointerTimer = null;
  function takeRate(perS) {
    if (typeof perS !== "number" || !(perS >= 1)) return;
    sendRate = Math.max(1, Math.floor(perS * 4 / 5));
    sendTokens = Math.min(sendTokens, sendRate);
  }
  function refillTokens() {
    var now = performance.now();
    sendTokens = Math.min(sendRate, sendTokens + Math.max(0, now - sendStamp) * sendRate / 1000);
    sendStamp = now;
  }
  function spend() { refillTokens(); sendTokens -= 1; }
  function sendPointer(x, y) {
    pointerHeld = { type: "pointer", x: x, y: y };
    if (pointerTimer) return;
    refillTokens();
    if (sendTokens >= 1) { var msg = pointerHeld; pointerHeld = null; sendWs(msg); return; }
    pointerTimer = setTimeout(function () {
      pointerTimer = null;
      var msg = pointerHeld;
      pointerHeld = null;
      if (msg) sendPointer(msg.x, msg.y);
    }, Math.ceil((1 - sendTokens) * 1000 / sendRate));
  }
  function connect() {
    if (ended || ws) return;
    var sock = new WebSocket(location.origin.replace(/^http/, "ws") + "/api/v1/agent/ws");
    ws = sock;
    sock.onopen = function () {
      sock.send(JSON.stringify({ type: "auth", token: token() }));
    };
    sock.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      handle(msg);
    };
    sock.onclose = function (ev) {
      if (ws !== sock || ended) return;
      ws = null;
      // 4401: the token is no longer valid (the agent was revoked, which ends its sessions too).
      if (ev.code === 4401) { sessionStorage.removeItem(TOKEN_KEY); stop("ended", "agent_revoked"); return; }
      retry = Math.min(retry + 1, 5);
      setTimeout(function () { checkSession().then(function () { if (!ended) connect(); }); }, 300 * Math.pow(2, retry));
    };
  }
  function forThisSession(msg) {
    var id = msg.session_id || (msg.session && (msg.session.session_id || msg.session.id));
    return !id || id === sid;
  }
  function handle(msg) {
    switch (msg.type) {
      case "hello":
        retry = 0;
        takeRate(msg.rate_per_s);
        // Events published while this socket was not yet subscribed are lost to it: if the
        // session is no longer among the agent's live ones, ask the API how it ended.
        var mine = Array.isArray(msg.sessions) ? msg.sessions.filter(function (s) { return s && s.id === sid; })[0] : null;
        if (Array.isArray(msg.sessions) && !mine) checkSession();
        // What the visitor reported before this socket subscribed (a scroll, fields typed before the
        // consent, everything before a reload of this view) went to nobody: ask for it again.
        else if (started) sendWs({ type: "resync" });
        // accepted while this socket was away: start now
        else if (mine && mine.state === "active") checkSession();
        (msg.visitors || []).forEach(function (v) { if (session && v.id === session.visitor_id) handle({ type: "visitor", visitor: v }); });
        break;
      case "error":
        status(ERRORS[msg.error] ? ERRORS[msg.error](msg.detail) : msg.detail || msg.error);
        break;
      case "visitor_state": case "visitor": case "visitor_updated": case "visitor_update": {
        var v = msg.visitor || msg;
        if (!session || (v.visitor_id || v.id) !== session.visitor_id) break;
        if (!fresh(v.rev)) break; // read before a state we have: all of it as old
        if (v.url && v.url !== visitor.url) { visitor.url = v.url; visitor.title = v.title || ""; visitor.fields = {}; visitor.boxes = {}; showLocation(); followVisitor(); }
        else if (v.title) { visitor.title = v.title; showLocation(); }
        if (v.scroll) { visitor.scroll = v.scroll; if (follow) toRuntime(scrollMessage(v.scroll)); }
        if (v.viewport) setViewport(v.viewport);
        if (typeof v.online === "boolean") {
          visitorOnline = v.online;
          document.body.dataset.visitorOnline = String(v.online);
          if (v.online && heldNavigate) { sendWs({ type: "navigate", url: heldNavigate }); heldNavigate = null; status(""); }
          visitorAway(!v.online);
        }
        break;
      }
      case "viewport":
        if (forThisSession(msg) && fresh(msg.rev)) setViewport(msg);
        break;
      case "page":
        if (!forThisSession(msg) || !fresh(msg.rev)) break;
        if (!sameUrl(msg.url, visitor.url)) { visitor.fields = {}; visitor.boxes = {}; }
        visitor.url = msg.url; visitor.title = msg.title || "";
        showLocation();
        followVisitor();
        break;
      case "scroll":
        if (!forThisSession(msg)) break;
        if (typeof msg.target === "string" && msg.target) { // an element of the page scrolled
          var box = visitor.boxes[msg.target] = { type: "scroll", target: msg.target, x: msg.x || 0, y: msg.y || 0 };
          if (follow) toRuntime(Object.assign({}, box));
          break;
        }
        visitor.scroll = { x: msg.x, y: msg.y, anchor: msg.anchor };
        if (follow) toRuntime(scrollMessage(visitor.scroll));
        break;
      case "field": {
        if (!forThisSession(msg) || !msg.selector) break;
        var f = { type: "field", selector: msg.selector };
        if (msg.masked) f.masked = true;
        else if (typeof msg.checked === "boolean") f.checked = msg.checked;
        else f.value = msg.value;
        // replayed in the order last changed: of a radio group picked twice, the last pick wins
        delete visitor.fields[msg.selector];
        visitor.fields[msg.selector] = f;
        toRuntime(Object.assign({}, f));
        break;
      }
      case "session": case "session_state": case "session_update": case "session_ended": {
        var s = msg.session || msg;
        if ((s.session_id || s.id) !== sid) break;
        if (s.state && s.state !== "active" && s.state !== "pending") stop(s.state, s.reason || msg.reason);
        else if (s.state === "active" && !started) checkSession(); // the visitor accepted
        break;
      }
      default:
        break;
    }
  }
  // The visitor's page lost its connection (tab closed, reload, network, a page of another site):
  // the session lasts the grace period in case it comes back, and the agent is told meanwhile
  // instead of pointing at nobody.
  var AWAY = "The visitor's page is not connected (closed, reloading, offline, or a page without co-browsing): waiting for it to come back.";
  // A page change drops the connection for a moment too: only a gap longer than AWAY_AFTER_MS is told.
  var AWAY_AFTER_MS = 3000;
  var away = false, awayTimer = null;
  function visitorAway(on) {
    if (!on && awayTimer) { clearTimeout(awayTimer); awayTimer = null; }
    if (on && !away && !awayTimer) {
      awayTimer = setTimeout(function () { awayTimer = null; showAway(true); }, AWAY_AFTER_MS);
    }
    if (!on) showAway(false);
  }
  function showAway(on) {
    if (on === away || ended) return;
    away = on;
    var dropped = on && heldNavigate; // (gone longer than a page change: not sent)
    if (dropped) heldNavigate = null;
    document.body.classList.toggle("visitor-away", on);
    if (on) status(AWAY + (dropped ? " The address you typed was not sent." : ""));
    else if ($("vb-status").textContent === AWAY) status(started ? "" : "Waiting for the visitor to accept...");
  }
  // ---- session ------------------------------------------------------------------------------
  var REASONS = {
    visitor_ended: "The visitor ended the session.",
    agent_ended: "You ended the session.",
    admin_ended: "An administrator ended the session.",
    idle_timeout: "The session timed out (no activity).",
    session_max: "The session reached its maximum duration.",
    visitor_left: "The visitor left the site.",
    feature_disabled: "Co-browsing was switched off for this account.",
    account_deleted: "The account was deleted.",
    policy_changed: "The account's co-browsing policy changed: start a new session to go on.",
    agent_revoked: "Your access was revoked."
  };
  // A request that never became a session (this window waits for the visitor's answer itself).
  var UNANSWERED = {
    refused: ["Request refused", "The visitor refused the co-browsing request."],
    expired: ["Request expired", "The visitor did not answer in time: the request expired."],
    withdrawn: ["Request withdrawn", "You withdrew the co-browsing request."]
  };
  // ... ended by someone else before the visitor answered
  var UNANSWERED_REASONS = {
    visitor_left: "The visitor left the site before answering.",
    admin_ended: "An administrator withdrew the co-browsing request."
  };
  function stop(state, reason) {
    if (ended) return;
    var title = "Session ended", text;
    var unanswered = !started && UNANSWERED[reason === "agent_ended" ? "withdrawn" : state];
    if (!started && state === "expired" && UNANSWERED_REASONS[reason]) {
      title = "Request ended";
      text = UNANSWERED_REASONS[reason];
    } else if (unanswered && (reason === "agent_ended" || !REASONS[reason])) {
      title = unanswered[0];
      text = unanswered[1];
    } else {
      text = REASONS[reason] || (reason ? "Reason: " + String(reason).replace(/_/g, " ") + "." : "");
      if (state && state !== "ended" && started) text = "The session is " + state + ". " + text;
    }
    over(title, text || "The co-browsing session is over.");
  }
  function over(title, text) {
    if (ended) return;
    ended = true;
    stopAsking();
    document.body.classList.remove("active");
    document.body.classList.remove("waiting");
    $("ended-title").textContent = title;
    $("ended-reason").textContent = text;
    document.title = title + " - cobrowse virtual browser"; // (it kept the visitor's page title)
    $("ended").hidden = false;
    // an alert dialog over the view: nothing behind it is reached by Tab or a screen reader
    $("viewport").inert = true;
    document.querySelector("header.toolbar").inert = true;
    $("close-window").focus();
    // the tools' marks belonged to the visitor's page: none stays over the card
    drawing = false;
    clearInk();
    $("draw-layer").hidden = true;
    $("pointer-echo").hidden = true;
    frameInfo.ready = false; // the blank page's load must not be synced as the visitor's page
    frame.removeAttribute("sandbox"); // (see SANDBOX: the blank page runs nothing)
    frame.src = "about:blank";
    Array.prototype.forEach.call(document.querySelectorAll(".toolbar button, .toolbar input"), function (b) { b.disabled = true; });
    status("");
    if (ws) { try { ws.close(); } catch (e) { /* closed */ } }
  }
  function checkSession() {
    return api("GET", "/sessions/" + encodeURIComponent(sid)).then(function (data) {
      session = (data && (data.session || data)) || {};
      if (session.state === "pending") { waitForAnswer(); return; }
      if (session.state !== "active") { stop(session.state, session.end_reason || session.reason); return; }
      $("navigate-form").hidden = !session.agent_can_navigate;
      showLocation();
      begin();
    }).catch(function (err) {
      if (err.status === 404 || err.status === 403) stop("ended", "");
      else if (err.status === 401) { sessionStorage.removeItem(TOKEN_KEY); stop("ended", "agent_revoked"); }
      else status("Could not reach the server: " + err.message);
    });
  }

  // ---- tools --------------------------------------------------------------------------------
  function setMode(next) {
    mode = mode === next ? "none" : next;
    ["pointer", "highlight", "draw"].forEach(function (m) {
      $("tool-" + m).setAttribute("aria-pressed", String(mode === m));
    });
    // Outside draw mode the layer lets the pointer through to the page but keeps showing the ink
    // (hidden, the agent's strokes vanished from the view while the visitor still saw them).
    $("draw-layer").classList.toggle("inactive", mode !== "draw");
    if (mode !== "pointer") $("pointer-echo").hidden = true;
    toRuntime({ type: "mode", mode: mode === "draw" ? "none" : mode });
  }
  $("tool-pointer").addEventListener("click", function () { setMode("pointer"); });
  $("tool-highlight").addEventListener("click", function () { setMode("highlight"); });
  $("tool-draw").addEventListener("click", function () { setMode("draw"); });
  $("clear").addEventListener("click", function () {
    toRuntime({ type: "clear" });
    clearInk();
    sendWs({ type: "clear" });
  });
  $("follow").addEventListener("change", function () {
    follow = $("follow").checked;
    toRuntime({ type: "follow", on: follow });
    if (!follow && $("vb-status").textContent === EDIT_REFUSED) status("");
    if (follow) followVisitor(true);
  });
  $("reload").addEventListener("click", function () { load(visitor.url || frameInfo.url); });
  $("end").addEventListener("click", function () {
    api("POST", "/sessions/" + encodeURIComponent(sid) + "/end", {}).then(function () { stop("ended", "agent_ended"); },
      function (err) { status((started ? "Could not end the session: " : "Could not withdraw the request: ") + err.message); });
  });
  $("close-window").addEventListener("click", function () { window.close(); });
  $("navigate-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = $("navigate-url").value.trim();
    if (!text) return;
    var url = navigateTarget(text);
    if (!url) return;
    $("navigate-url").value = "";
    // Between two of the visitor's pages no page of theirs listens: a navigate sent then reached
    // none. It waits for the next page (a page change takes a moment), not longer than AWAY_AFTER_MS.
    if (!visitorOnline) { heldNavigate = url; status(NAVIGATE_HELD); return; }
    sendWs({ type: "navigate", url: url });
  });
  // What the agent typed, as an address: a URL, a path on the visitor's site ("/cart", "cart",
  // "?q=x"), or an address without its scheme ("shop.example/cart", "127.0.0.1:8002/cart": the
  // visitor's scheme is added; it was taken for a path, and the visitor sent to a 404).
  var FILE_NAME = /\.(html?|php|aspx?|jsp|cgi|pdf|png|jpe?g|gif|svg|json|xml|txt|css|js)$/i;
  function navigateTarget(text) {
    var scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text);
    var first = text.split(/[/?#]/)[0];
    var hostLike = /^(localhost|[a-z0-9-]+(\.[a-z0-9-]+)+)(:\d+)?$/i.test(first) && !FILE_NAME.test(first);
    if (scheme && !/^\d+$/.test(text.slice(scheme[0].length).split(/[/?#]/)[0])) {
      if (!/^https?$/i.test(scheme[1])) {
        status("Not sent: only web addresses (http or https) can be sent to the visitor.");
        return null;
      }
    } else if (hostLike) {
      var visitorScheme = "https:";
      try { visitorScheme = new URL(visitor.url).protocol; } catch (e) { /* https */ }
      try { return new URL(visitorScheme + "//" + text).href; } catch (e) { /* then a path ("v1.2/notes") */ }
    }
    try { return new URL(text, visitor.url || undefined).href; } catch (e) { status("Not a web address: " + text); return null; }
  }
  var visitorOnline = true, heldNavigate = null;
  var NAVIGATE_HELD = "The visitor's page is changing: the address goes to the next one as it connects.";
  var ERRORS = {
    navigate_forbidden: function (detail) {
      return /outside/.test(detail || "") ? "Not sent: that address is outside the sites this account co-browses."
        : "Not sent: this account does not let agents send the visitor to another page.";
    }
  };

  // Drawing: an ink layer above the iframe. Strokes are kept in the view's page coordinates (the
  // point drawn plus where the page was scrolled then) and the layer moves as the page scrolls
  // (the runtime's "position"), so they stay on what they mark, as the visitor's do; they go to
  // the visitor in document coordinates.
  var svgNS = "http://www.w3.org/2000/svg";
  var inkLayer = document.createElementNS(svgNS, "svg");
  inkLayer.setAttribute("width", "100%"); inkLayer.setAttribute("height", "100%");
  inkLayer.style.cssText = "position:absolute;inset:0;pointer-events:none";
  var ink = document.createElementNS(svgNS, "g");
  inkLayer.appendChild(ink);
  $("draw-layer").appendChild(inkLayer);
  var stroke = null, line = null, inkAt = { x: 0, y: 0 }, inkUrl = "";
  function clearInk() { while (ink.firstChild) ink.removeChild(ink.firstChild); }
  function placeInk(x, y) {
    inkAt = { x: Number(x) || 0, y: Number(y) || 0 };
    ink.setAttribute("transform", "translate(" + -inkAt.x + "," + -inkAt.y + ")");
  }
  function drawStroke() {
    line.setAttribute("points", stroke.map(function (p) { return p[2] + "," + p[3]; }).join(" "));
  }
  function strokePoint(ev) { return [ev.offsetX, ev.offsetY, ev.offsetX + inkAt.x, ev.offsetY + inkAt.y]; }
  $("draw-layer").addEventListener("pointerdown", function (ev) {
    drawing = true;
    stroke = [strokePoint(ev)];
    line = document.createElementNS(svgNS, "polyline");
    line.setAttribute("fill", "none"); line.setAttribute("stroke", "#e63946");
    line.setAttribute("stroke-width", "4"); line.setAttribute("stroke-linecap", "round");
    ink.appendChild(line);
    drawStroke();
    $("draw-layer").setPointerCapture(ev.pointerId);
  });
  $("draw-layer").addEventListener("pointermove", function (ev) {
    if (!drawing) return;
    stroke.push(strokePoint(ev));
    drawStroke();
  });
  $("draw-layer").addEventListener("pointerup", function () {
    if (!drawing) return;
    drawing = false;
    // The visitor draws in document coordinates: those of the view's page, as the pointer's.
    var pts = stroke.slice(0, 1000).map(function (p) { return [Math.round(p[2]), Math.round(p[3])]; });
    if (pts.length > 1 && onVisitorsPage()) sendWs({ type: "draw", points: pts, color: "#e63946", width: 4 });
    stroke = null;
  });

  // ---- start --------------------------------------------------------------------------------
  // The console opens this window as soon as it asks the visitor: it waits for the answer itself,
  // so a console reloaded or closed meanwhile loses nothing.
  // Until the visitor accepts there is nothing to point at: the tools wait, and "End session"
  // withdraws the request.
  var TOOLS = ".toolbar button:not(#end), .toolbar input";
  function setWaiting(on) {
    Array.prototype.forEach.call(document.querySelectorAll(TOOLS), function (b) { b.disabled = on; });
    $("end").textContent = on ? "Withdraw request" : "End session";
  }
  // body class "waiting": the API said pending (the visitor has not answered yet)
  function waitForAnswer() {
    document.body.classList.add("waiting");
    setWaiting(true);
    status(away ? AWAY : "Waiting for the visitor to accept...");
    document.title = "cobrowse - waiting for the visitor";
    connect(); // the session's events say when the visitor answers
  }
  var beginning = false;
  function begin() {
    if (beginning || ended) return;
    beginning = true;
    document.body.classList.remove("waiting");
    status(away ? AWAY : "");
    api("GET", "/visitors").then(function (data) {
      var list = Array.isArray(data) ? data : (data && (data.visitors || data.items)) || [];
      list.forEach(function (v) {
        if ((v.id || v.visitor_id) !== session.visitor_id || !fresh(v.rev)) return;
        if (v.url) { visitor.url = v.url; visitor.title = v.title || ""; }
        setViewport(v.viewport);
      });
      showLocation();
    }, function () { /* the ticket's default URL is the visitor's page anyway */ }).then(function () {
      if (ended) return;
      // only now: a visitor report meanwhile must not load a page of its own beside this one (two
      // tickets redeemed at once can leave the frame with the older credential)
      started = true;
      setWaiting(false);
      document.body.classList.add("active");
      if (ws) sendWs({ type: "resync" }); // subscribed while waiting: what the visitor has now
      else connect();
      return load(visitor.url);
    }).catch(function (err) {
      status(err.message);
    });
  }
  // ---- a request the console is sending: which session is ours ------------------------------
  // The console names the session when the API answers (it changes this window's fragment to
  // #session=SID, or says so when asked). A console reloaded or closed before that cannot: then
  // this window sends the request again with the same request id, which the API answers with the
  // session the first one made, or makes it if that one never arrived, or says why not.
  var ASK_EVERY_MS = 250, UNANSWERED_ASKS = 4;
  var asking = null, silent = 0, resending = false, resendTries = 0;
  var NOT_SENT = {
    visitor_offline: "The visitor is offline.",
    visitor_left: "The visitor has left the site.",
    visitor_not_found: "The visitor has left the site.",
    request_pending: "Another co-browsing request is waiting for the visitor's answer.",
    session_live: "The visitor is already in a co-browsing session.",
    low_bandwidth: "The visitor's bandwidth is too low.",
    feature_disabled: "Co-browsing is off for this account.",
    origin_not_allowed: "The visitor's site is no longer allowed for co-browsing.",
    invalid_token: "Your access was revoked."
  };
  function adopt(id) {
    if (sid || ended || !SID.test(id || "")) return;
    sid = id;
    stopAsking();
    window.name = "cobrowse-vb-" + sid;
    if (location.hash !== "#session=" + sid) history.replaceState(history.state, "", "#session=" + sid);
    $("end").disabled = false;
    tokenReady.then(checkSession, function () { /* said already */ });
  }
  window.addEventListener("hashchange", function () {
    if (request && !sid) adopt(new URLSearchParams(location.hash.slice(1)).get("session"));
  });
  function onConsoleAnswer(ev) {
    var d = ev.data;
    if (ev.origin !== location.origin || ev.source !== window.opener || !d || d.cobrowseConsole !== "request" ||
        d.request !== request.id) return;
    if (d.session) adopt(d.session);
    else if (d.state === "sending") silent = 0;
    else sendAgain(); // a console that does not know the request (reloaded), or got no answer
  }
  function stopAsking() {
    if (asking) clearInterval(asking);
    asking = null;
    window.removeEventListener("message", onConsoleAnswer);
  }
  function findSession() {
    window.addEventListener("message", onConsoleAnswer);
    function ask() {
      if (sid || ended) { stopAsking(); return; }
      var opener = window.opener;
      if (!opener || opener.closed || silent >= UNANSWERED_ASKS) { sendAgain(); return; }
      silent += 1;
      try { opener.postMessage({ cobrowseConsole: "request?", request: request.id }, location.origin); }
      catch (e) { silent = UNANSWERED_ASKS; }
    }
    asking = setInterval(ask, ASK_EVERY_MS);
    ask();
  }
  function sendAgain() {
    stopAsking();
    if (sid || ended || resending) return;
    resending = true;
    api("POST", "/sessions", { visitor_id: request.visitor, request_id: request.id }).then(function (data) {
      resending = false;
      var s = (data && (data.session || data)) || {};
      adopt(s.id || s.session_id);
    }, function (err) {
      resending = false;
      if (sid || ended) return;
      if (err.status && err.status < 500) {
        over("Request not sent", "The co-browsing request was not sent: " +
          (NOT_SENT[err.code] || err.message.replace(/\.?$/, ".")));
      } else if (++resendTries < 5) {
        status("Could not reach the server: trying again...");
        setTimeout(sendAgain, 1000 * resendTries);
      } else {
        over("Request not sent", "The co-browsing request was not sent: the server could not be reached.");
      }
    });
  }

  // Closed while it waits for the visitor's answer: the console that sent the request withdraws
  // it when it sees the window closed. A console closed or signed out meanwhile will not; then
  // the window withdraws it itself as it goes (keepalive: the request outlives the page). A
  // reload goes this way too (a page cannot tell it from a close): the reloaded window then says
  // the request was withdrawn, and the agent asks again.
  function consoleWatches() {
    try {
      var o = window.opener;
      return !!(o && !o.closed && typeof o.cobrowseWatches === "function" && o.cobrowseWatches(sid));
    } catch (e) { return false; } // another page now, of another origin
  }
  window.addEventListener("pagehide", function () {
    // only a request the API said was waiting (a window reopened on a live session, whose state
    // is still being asked for, must not end it)
    var waiting = document.body.classList.contains("waiting");
    if (!sid || !waiting || started || beginning || ended || !token() || consoleWatches()) return;
    try {
      fetch(API + "/sessions/" + encodeURIComponent(sid) + "/end", {
        method: "POST", keepalive: true, body: "{}",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + token() }
      }).catch(function () { /* gone with the page */ });
    } catch (e) { /* keepalive refused: nothing more to do as the page goes */ }
  });

  // Back from the page cache (a browser may keep a window it could restore): what it shows may
  // be over, or withdrawn as it went: ask again.
  window.addEventListener("pageshow", function (ev) { if (ev.persisted && sid && !ended) checkSession(); });

  fit();
  if (!sid && !request) { // (it said "Connecting..." with every tool enabled and doing nothing)
    over("No session", "This window belongs to no co-browsing session: open it from the console.");
    return;
  }
  var tokenReady = obtainToken();
  if (request) {
    // the same look as waiting for the visitor's answer, which is what comes next
    setWaiting(true);
    $("end").disabled = true; // nothing to withdraw before the session is known
    status("Waiting for the visitor to accept...");
    document.title = "cobrowse - waiting for the visitor";
  }
  tokenReady.then(function () {
    return request ? findSession() : checkSession();
  }).catch(function (err) {
    status(err.message);
  });
})();
