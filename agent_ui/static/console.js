/* cobrowse agent console: sign in, live visitors, co-browse button, opening the virtual browser.
 * The agent token lives in sessionStorage only (never a URL, never a log line).
 */
(function () {
  "use strict";
  var TOKEN_KEY = "cobrowse.agentToken";
  var API = location.origin + "/api/v1";
  var $ = function (id) { return document.getElementById(id); };

  var me = null;               // GET /me
  var visitors = new Map();    // visitor_id -> visitor record
  var pending = new Map();     // session_id -> {visitorId, win}
  var requests = new Map();    // request_id -> {state: "sending" | "sent", sid}, until settled: what
                               // the window opened for a request asks this console (vb.js)
  var left = new Set();        // visitors the API said are gone
  var ws = null, retry = 0, signedIn = false;

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
          err.status = r.status; err.code = data && data.error; err.data = data;
          throw err;
        }
        return data;
      });
    });
  }

  // ---- sign in / out --------------------------------------------------------------------------
  // A focused element that is hidden leaves the keyboard focus on the page itself: it goes to
  // what takes the hidden part's place instead.
  function hasFocus(el) { return el.contains(document.activeElement); }
  function showSignedIn() {
    var moveFocus = hasFocus($("signin"));
    $("signin").hidden = true;
    $("visitors-panel").hidden = false;
    $("signout").hidden = false;
    $("me").hidden = false;
    $("me").textContent = (me.name || me.display_name || "Agent") + (me.account_name ? " - " + me.account_name : "");
    if (moveFocus) $("visitors-title").focus();
  }
  function showSignedOut(message) {
    var moveFocus = hasFocus($("visitors-panel")) || hasFocus($("signout"));
    signedIn = false;
    $("signin").hidden = false;
    $("visitors-panel").hidden = true;
    $("signout").hidden = true;
    $("me").hidden = true;
    $("conn").hidden = true;
    $("signin-error").textContent = message || "";
    if (moveFocus) $("token").focus();
    if (ws) { try { ws.close(); } catch (e) { /* closed */ } ws = null; }
    // The signed-out agent's requests: with no token left, withdrawing a closed window's request
    // failed (401) and was tried again every 500 ms for as long as the page stayed open. Their
    // windows, asked, now hear "unknown" and go on with the token they hold.
    stopWatching();
    pending.clear();
    requests.clear();
    visitors.clear();
    render();
  }
  function signIn() {
    return api("GET", "/me").then(function (data) {
      me = (data && (data.agent || data)) || {};
      if (data && data.account && !me.account_name) me.account_name = data.account.name;
      if (data && data.policy) me.policy = data.policy;
      signedIn = true;
      showSignedIn();
      return loadVisitors().then(connect);
    }).catch(function (err) {
      if (err.status === 401 || err.status === 403) {
        sessionStorage.removeItem(TOKEN_KEY);
        showSignedOut("That token was not accepted.");
      } else {
        showSignedOut("Could not reach the server: " + err.message);
      }
    });
  }

  $("signin-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var value = $("token").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    signIn();
  });
  $("signout").addEventListener("click", function () {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignedOut("");
  });

  // ---- visitors -------------------------------------------------------------------------------
  function visitorId(v) { return v.visitor_id || v.id; }
  function upsert(v) {
    if (!v) return;
    var id = visitorId(v);
    if (!id) return;
    var old = visitors.get(id);
    // A view read before one we have (docs/PROTOCOL.md, `rev`: views are published by whichever
    // socket changed something, and one can overtake another) would show the page before.
    if (old && typeof v.rev === "number" && typeof old.rev === "number" && v.rev < old.rev) return;
    // Merge in place: pending requests hold on to this object.
    if (old) Object.assign(old, v);
    else visitors.set(id, Object.assign({}, v));
    noteOnline(visitors.get(id));
  }
  function replaceAll(list) {
    var keep = {};
    list.forEach(function (v) { keep[visitorId(v)] = true; upsert(v); });
    Array.from(visitors.keys()).forEach(function (id) { if (!keep[id]) visitors.delete(id); });
  }
  function loadVisitors() {
    return api("GET", "/visitors").then(function (data) {
      var list = Array.isArray(data) ? data : (data && (data.visitors || data.items)) || [];
      replaceAll(list);
      render();
      // A live session of ours survives a console reload: ask for each one we may see.
      list.forEach(function (v) { if (v.live_session) adoptSession(v.live_session); });
    });
  }
  function adoptSession(id) {
    return api("GET", "/sessions/" + encodeURIComponent(id)).then(function (data) {
      var s = normSession(data);
      var v = visitorForSession(s);
      if (v && (s.state === "active" || s.state === "pending")) { v.session = s; render(); }
    }).catch(function () { /* another agent's session: not ours to show */ });
  }

  function sessionOf(v) { return v.session || null; }
  function isLive(v) { var s = sessionOf(v); return !!(s && s.state === "active"); }
  function isPending(v) { var s = sessionOf(v); return !!(s && s.state === "pending") || !!v._requesting; }

  var REASONS = {
    feature_disabled: "Co-browsing is off for this account",
    low_bandwidth: "Visitor's bandwidth is too low",
    visitor_offline: "Visitor is offline",
    visitor_left: "Visitor has left",
    request_pending: "Another co-browsing request is waiting for the visitor's answer",
    session_live: "Already in a co-browsing session",
    origin_not_allowed: "The visitor's site is no longer allowed for co-browsing"
  };
  // A live or pending session outlasts a dropped connection for the grace period: say so, once
  // the gap is longer than a page change makes (AWAY_AFTER_MS).
  var AWAY = "Visitor's page is not connected: waiting for it to come back";
  var AWAY_AFTER_MS = 3000;
  var awayTimers = new Map(); // visitor id -> timer that marks it away
  function noteOnline(v) {
    var id = visitorId(v), timer = awayTimers.get(id);
    if (v.online !== false) {
      if (timer) { clearTimeout(timer); awayTimers.delete(id); }
      v._away = false;
      var w = waitingOnline.get(id);
      if (w) { waitingOnline.delete(id); setTimeout(function () { sendRequest(id, w); }, 0); }
    } else if (!v._away && !timer) {
      awayTimers.set(id, setTimeout(function () {
        awayTimers.delete(id);
        var now = visitors.get(id);
        if (now && now.online !== false) return;
        if (waitingOnline.has(id)) giveUpWaiting(id, now);
        if (now) now._away = true;
        render();
      }, AWAY_AFTER_MS));
    }
  }
  // Between two of the visitor's pages (the one closing, the next not yet connected) the API
  // says "offline" for a moment: the row stays as it was, and a press then is sent when the
  // next page connects (it was lost: the button had greyed under the agent's pointer). The
  // visitor not back within AWAY_AFTER_MS: the request is not sent, and the row says why.
  var waitingOnline = new Map(); // visitor id -> a request pressed in such a gap
  function inPageGap(v) { return v.online === false && !v._away && awayTimers.has(visitorId(v)); }
  function giveUpWaiting(id, v) {
    var w = waitingOnline.get(id);
    waitingOnline.delete(id);
    requests.delete(w.rid);
    if (w.win && !w.win.closed) w.win.close();
    if (v) { v._requesting = false; v._message = "Could not start: " + reasonText("visitor_offline"); }
    flash("Could not start co-browsing: " + reasonText("visitor_offline"), true);
  }
  function availability(v) {
    // The API says whether a visitor can be co-browsed and why not; the console only shows it.
    var a = v.availability || v.cobrowse || {};
    var available = typeof a.available === "boolean" ? a.available
      : typeof v.available === "boolean" ? v.available : v.online !== false;
    var reason = a.reason || v.reason || v.unavailable_reason || (v.online === false ? "offline" : "");
    return { available: available, reason: reason };
  }
  function reasonText(code) {
    if (!code) return "";
    return REASONS[code] || String(code).replace(/_/g, " ");
  }

  function formatKbps(k) {
    if (typeof k !== "number") return "measuring...";
    return k >= 1000 ? (k / 1000).toFixed(1) + " Mbit/s" : k + " kbit/s";
  }

  function render() {
    var list = $("visitors");
    var ids = Array.from(visitors.keys());
    $("empty").hidden = ids.length > 0;
    $("visitor-count").textContent = ids.length ? ids.length + (ids.length === 1 ? " visitor" : " visitors") : "";
    var seen = {};
    ids.forEach(function (id) {
      seen[id] = true;
      var v = visitors.get(id);
      var li = list.querySelector('li[data-visitor-id="' + CSS.escape(id) + '"]');
      if (!li) { li = buildRow(id); list.appendChild(li); }
      fillRow(li, v);
    });
    Array.from(list.children).forEach(function (li) {
      if (!seen[li.getAttribute("data-visitor-id")]) li.remove();
    });
  }
  var rowCount = 0; // names each row's reason element (a visitor id may hold any character)
  function buildRow(id) {
    var li = document.createElement("li");
    var reasonId = "reason-" + (++rowCount);
    li.className = "visitor";
    li.setAttribute("data-visitor-id", id);
    li.innerHTML =
      '<div class="info"><div class="title"></div><div class="url"></div><div class="meta">' +
      '<span class="bw"></span><span class="vp"></span><span class="vid"></span></div></div>' +
      '<div class="toolbox" role="group"><span class="label">Toolbox</span>' +
      '<button type="button" class="cobrowse-btn" aria-describedby="' + reasonId + '"></button>' +
      '<span class="live-mark" hidden>Live session</span>' +
      '<span class="reason" id="' + reasonId + '" aria-live="polite"></span></div>';
    var btn = li.querySelector(".cobrowse-btn");
    // Not open now: aria-disabled, not disabled, so that the button keeps the keyboard focus (a
    // disabled one dropped it to the page as it went pending) and Tab still reaches it and its
    // reason; a press on it does nothing.
    btn.addEventListener("click", function () {
      if (btn.getAttribute("aria-disabled") !== "true") onCobrowse(id);
    });
    return li;
  }
  function fillRow(li, v) {
    li.querySelector(".title").textContent = v.title || "(untitled page)";
    li.querySelector(".url").textContent = v.url || "";
    li.querySelector(".bw").textContent = "Bandwidth: " + formatKbps(v.bandwidth_kbps);
    var vp = v.viewport;
    li.querySelector(".vp").textContent = vp && vp.width ? "Viewport: " + vp.width + "x" + vp.height : "";
    // (the id's "vis_" prefix told nothing: "Visitor vis_wbmk" for every row but four letters)
    li.querySelector(".vid").textContent = "Visitor " + shortId(visitorId(v));
    li.querySelector(".toolbox").setAttribute("aria-label", "Toolbox for " + (v.title || "visitor"));
    var btn = li.querySelector(".cobrowse-btn");
    var reason = li.querySelector(".reason");
    var mark = li.querySelector(".live-mark");
    var av = availability(v);
    if (av.available) v._wasAvailable = true;
    else if (inPageGap(v) && v._wasAvailable) av = { available: true, reason: "" }; // (a page change)
    else v._wasAvailable = false;
    li.classList.toggle("live", isLive(v));
    li.dataset.online = v.online === false ? "false" : "true"; // as the API last said
    mark.hidden = !isLive(v);
    btn.removeAttribute("aria-busy");
    btn.removeAttribute("aria-disabled");
    if (isLive(v)) {
      btn.dataset.state = "live";
      btn.textContent = "Open virtual browser";
      reason.textContent = v._away ? AWAY : "";
    } else if (isPending(v)) {
      btn.dataset.state = "busy";
      btn.setAttribute("aria-disabled", "true");
      btn.setAttribute("aria-busy", "true");
      btn.textContent = "Waiting for the visitor...";
      reason.textContent = v._away ? AWAY
        : v._consent === "none" ? "Starting..." : "Waiting for the visitor to accept";
    } else if (av.available) {
      btn.dataset.state = "available";
      btn.textContent = "Co-browse";
      reason.textContent = v._message || "";
    } else {
      btn.dataset.state = "unavailable";
      btn.setAttribute("aria-disabled", "true");
      btn.textContent = "Co-browse";
      reason.textContent = reasonText(av.reason);
    }
  }

  function flash(text, bad) {
    var f = $("flash");
    f.textContent = text;
    f.hidden = !text;
    f.classList.toggle("bad", !!bad);
  }

  // ---- co-browse ------------------------------------------------------------------------------
  function agentInterface() {
    return (me && me.policy && me.policy.agent_interface) || "popin";
  }
  var POPIN = "popup=yes,width=1280,height=860,left=80,top=60";
  function newRequestId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function openWindow(iface, rid, visitorId) {
    // Opened synchronously inside the click, so no pop-up blocker fires, and on the virtual browser
    // itself, which knows its request: if this console is reloaded or closed before the API has
    // answered, the window asks the API for the session (the request id makes that safe).
    var url = location.origin + "/vb#request=" + rid + "&visitor=" + encodeURIComponent(visitorId);
    return iface === "tab" ? window.open(url, "_blank") : window.open(url, "_blank", POPIN);
  }
  function vbUrl(sessionId) { return location.origin + "/vb#session=" + encodeURIComponent(sessionId); }
  function showSession(win, sessionId) {
    // Only the fragment changes when the window already runs vb.js: it takes the session in place
    // (no reload); replace, so that "back" does not lead to the request again.
    win.location.replace(vbUrl(sessionId));
  }
  function reopen(s) {
    // The virtual browser names its window after the session (vb.js): bring that one back if it is
    // open, else open a new one the way the session's policy says.
    var name = "cobrowse-vb-" + s.id;
    var iface = s.agent_interface || agentInterface();
    var w = iface === "tab" ? window.open("", name) : window.open("", name, POPIN);
    if (!w) { flash("The browser blocked the virtual browser's window: allow pop-ups for this page.", true); return; }
    var blank = true;
    try { blank = w.location.href === "about:blank"; } catch (e) { blank = false; }
    if (blank) w.location.href = vbUrl(s.id);
    w.focus();
  }

  function onCobrowse(id) {
    var v = visitors.get(id);
    if (!v) return;
    if (isLive(v)) {
      reopen(sessionOf(v));
      return;
    }
    flash("");
    var rid = newRequestId();
    var win = openWindow(agentInterface(), rid, id);
    if (!win) {
      // A pop-up blocker: asking the visitor now would share their page with no view open.
      v._message = "";
      flash("The browser blocked the virtual browser's window: allow pop-ups for this page, then press Co-browse again.", true);
      render();
      return;
    }
    var req = { state: "sending", sid: "" };
    requests.set(rid, req);
    v._requesting = true;
    v._message = "";
    var waiting = { rid: rid, win: win, req: req, who: token() };
    if (inPageGap(v)) waitingOnline.set(id, waiting); // sent when the visitor's next page connects
    else sendRequest(id, waiting);
    render();
  }
  function sendRequest(id, waiting) {
    var v = visitors.get(id), rid = waiting.rid, win = waiting.win, req = waiting.req, who = waiting.who;
    if (!v || requests.get(rid) !== req) return; // gone meanwhile, or given up
    if (win && win.closed) { // the agent closed the window meanwhile: nothing to ask for
      requests.delete(rid);
      v._requesting = false;
      render();
      return;
    }
    api("POST", "/sessions", { visitor_id: id, request_id: rid }).then(function (data) {
      var s = normSession(data);
      req.state = "sent"; req.sid = s.id;
      v._requesting = false;
      // Signed out meanwhile: this console no longer speaks for the request (its window does).
      if (token() !== who) return;
      v._consent = s.consent;
      if (s.agent_interface && me.policy) me.policy.agent_interface = s.agent_interface;
      pending.set(s.id, { visitorId: id, win: win });
      watchWindows();
      // Named like the virtual browser's window, so that a reloaded console (which forgets `pending`)
      // still finds this one with the live button.
      try { if (win && !win.closed) win.name = "cobrowse-vb-" + s.id; } catch (e) { /* not ours */ }
      // The session's events may have overtaken this answer (a quick refusal): the latest state wins.
      var known = latest.get(s.id) || s;
      // The window takes the session at once: it waits for the visitor's answer itself, so it
      // opens the view even when this console is reloaded or closed meanwhile.
      if (win && !win.closed && known.state === "pending") { showSession(win, s.id); pending.get(s.id).shown = true; }
      onSessionState(known);
    }).catch(function (err) {
      v._requesting = false;
      // Failed: what the window hears of it now is "unknown", as from a console that never knew it.
      requests.delete(rid);
      if (win && !win.closed && (!err.status || err.status >= 500)) {
        // No answer (the network, or the server failed): the request may or may not have been
        // made. The window sends it again with the same request id, which finds the session if
        // there is one and makes it if not, and says so itself when it cannot.
        render();
        return;
      }
      if (win) win.close();
      var text = reasonText(err.code) || err.message;
      v._message = "Could not start: " + text;
      flash("Could not start co-browsing: " + text, true);
      if (err.code && REASONS[err.code]) v.availability = { available: false, reason: err.code };
      render();
    });
  }
  function normSession(data) {
    var s = (data && (data.session || data)) || {};
    return {
      id: s.session_id || s.id,
      state: s.state,
      visitor_id: s.visitor_id,
      consent: s.consent,
      agent_interface: s.agent_interface,
      reason: s.reason
    };
  }
  function visitorForSession(s) {
    if (s.visitor_id && visitors.has(s.visitor_id)) return visitors.get(s.visitor_id);
    var p = pending.get(s.id);
    if (p && visitors.has(p.visitorId)) return visitors.get(p.visitorId);
    var found = null;
    visitors.forEach(function (v) { var vs = sessionOf(v); if (vs && vs.id === s.id) found = v; });
    return found;
  }
  var MESSAGES = {
    refused: "The visitor refused the co-browsing request.",
    expired: "The visitor did not answer in time: the request expired.",
    ended: "The co-browsing session ended."
  };
  // Why a request or a session is over, when the state alone does not say (an administrator or the
  // account's policy ended it, not the visitor).
  var END_REASONS = {
    visitor_ended: "The visitor ended the co-browsing session.",
    agent_ended: "You ended the co-browsing session.",
    admin_ended: "An administrator ended the co-browsing session.",
    idle_timeout: "The co-browsing session timed out (no activity).",
    session_max: "The co-browsing session reached its maximum duration.",
    visitor_left: "The visitor left the site: the co-browsing session ended.",
    feature_disabled: "Co-browsing was switched off for this account.",
    account_deleted: "The account was deleted.",
    policy_changed: "The account's co-browsing policy changed: start a new session to go on.",
    agent_revoked: "Your access was revoked."
  };
  var withdrawn = new Set(); // requests withdrawn because the agent closed their waiting window
  // ... and for a request that ended before the visitor answered (state "expired")
  var UNANSWERED_REASONS = {
    visitor_left: "The visitor left the site before answering: the request ended.",
    agent_ended: "You withdrew the co-browsing request.",
    admin_ended: "An administrator withdrew the co-browsing request."
  };
  // With other visitors listed, a message about a session says whose it was (the visitor may be
  // gone from the list already: "The visitor left the site" stood over another visitor's row).
  function shortId(id) { return String(id || "").replace(/^vis_/, "").slice(0, 6); }
  function aboutWhom(s) {
    var vid = s.visitor_id || (pending.get(s.id) || {}).visitorId;
    var others = Array.from(visitors.keys()).some(function (id) { return id !== vid; });
    return vid && others ? "Visitor " + shortId(vid) + ": " : "";
  }
  function endMessage(s) {
    if (s.state === "refused") return MESSAGES.refused;
    if (withdrawn.has(s.id)) return "You closed the waiting window: the co-browsing request was withdrawn.";
    if (s.state === "expired" && UNANSWERED_REASONS[s.reason]) return UNANSWERED_REASONS[s.reason];
    return (s.reason && END_REASONS[s.reason]) || MESSAGES[s.state];
  }
  var ORDER = { pending: 1, active: 2, refused: 3, expired: 3, ended: 3 };
  var latest = new Map(); // session id -> the most advanced state seen (events can cross answers)
  function onSessionState(s) {
    if (!s.id) return;
    var seen = latest.get(s.id);
    if (seen && (ORDER[seen.state] || 0) > (ORDER[s.state] || 0)) return;
    latest.set(s.id, s);
    var v = visitorForSession(s);
    var p = pending.get(s.id);
    if (v) v.session = s;
    if (s.state === "active") {
      if (p) {
        if (p.win && !p.win.closed) { if (!p.shown) showSession(p.win, s.id); }
        else reopen(s); // as the session's policy says (it opened a tab whatever the interface)
        pending.delete(s.id);
      }
      if (v) v._message = "";
    } else if (s.state === "refused" || s.state === "expired" || s.state === "ended") {
      if (p) {
        if (p.win && !p.win.closed) p.win.close();
        pending.delete(s.id);
      }
      // Settled: its window was closed above, or has the session and follows it itself.
      requests.forEach(function (r, rid) { if (r.sid === s.id) requests.delete(rid); });
      if (v) { v.session = null; v._message = endMessage(s); }
      flash(aboutWhom(s) + endMessage(s), s.state !== "ended");
    }
    render();
  }

  // An agent who closes the window that waits for the visitor's answer is done with the request:
  // withdraw it, or the visitor is still asked and, on accepting, shared with nobody watching.
  // The window asks this before it goes (vb.js): a request no console watches, it withdraws itself.
  window.cobrowseWatches = function (id) { return signedIn && pending.has(id); };
  var watching = null;
  function stopWatching() {
    if (watching) clearInterval(watching);
    watching = null;
  }
  function watchWindows() {
    if (watching) return;
    watching = setInterval(function () {
      if (!pending.size) { stopWatching(); return; }
      pending.forEach(function (p, id) {
        var s = latest.get(id);
        if (!p.win || !p.win.closed || p.withdrawing || (s && s.state !== "pending")) return;
        p.withdrawing = true;
        withdrawn.add(id);
        api("POST", "/sessions/" + encodeURIComponent(id) + "/end", {}).then(function (data) {
          onSessionState(normSession(data));
        }, function (err) {
          withdrawn.delete(id);
          p.withdrawing = false;
          // The server is away: the next tick tries again. Refused (4xx): the request was answered
          // meanwhile, perhaps while this console's socket was away (a hello lists live sessions
          // only, so no event would ever tell): read how it stands, or every tick would try again.
          if (!err.status || err.status >= 500) return;
          if (err.status === 404) { pending.delete(id); render(); return; }
          api("GET", "/sessions/" + encodeURIComponent(id)).then(function (data) {
            onSessionState(normSession(data));
          }, function () { /* the next tick asks again */ });
        });
      });
    }, 500);
  }

  // ---- live updates ---------------------------------------------------------------------------
  function connect() {
    if (!signedIn) return;
    var sock = new WebSocket(location.origin.replace(/^http/, "ws") + "/api/v1/agent/ws");
    ws = sock;
    sock.onopen = function () { sock.send(JSON.stringify({ type: "auth", token: token() })); };
    sock.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      handle(msg);
    };
    sock.onclose = function (ev) {
      if (ws !== sock) return;
      ws = null;
      setConn(false);
      if (ev.code === 4401 || ev.code === 4403) { sessionStorage.removeItem(TOKEN_KEY); showSignedOut("Signed out: the token is no longer valid."); return; }
      if (!signedIn) return;
      retry = Math.min(retry + 1, 5);
      setTimeout(function () { loadVisitors().then(connect, connect); }, 300 * Math.pow(2, retry));
    };
  }
  function recheckUnlisted(listed) {
    var ids = {};
    visitors.forEach(function (v) {
      var s = sessionOf(v);
      if (s && s.id && (s.state === "active" || s.state === "pending")) ids[s.id] = true;
    });
    pending.forEach(function (p, id) { ids[id] = true; });
    Object.keys(ids).forEach(function (id) {
      if (listed[id]) return;
      api("GET", "/sessions/" + encodeURIComponent(id)).then(function (data) {
        onSessionState(normSession(data));
      }, function () { /* the next hello asks again */ });
    });
  }
  function setConn(up) {
    var c = $("conn");
    c.hidden = false;
    c.textContent = up ? "Live" : "Reconnecting...";
    c.classList.toggle("down", !up);
  }
  function handle(msg) {
    switch (msg.type) {
      case "hello":
        retry = 0; setConn(true);
        if (msg.visitors) replaceAll(msg.visitors);
        var listed = {};
        (msg.sessions || []).forEach(function (s) { var n = normSession(s); listed[n.id] = true; onSessionState(n); });
        // A hello lists live sessions only: one that ended or was answered while this socket was
        // away (refused, expired, ended) is not in it, and no event will tell. A row still shown
        // live or waiting stayed so for good ("Open virtual browser", or a busy button no press
        // could clear): ask how each such session stands.
        if (Array.isArray(msg.sessions)) recheckUnlisted(listed);
        render();
        break;
      case "error":
        flash(msg.detail || msg.error, true);
        break;
      case "visitors":
        replaceAll(msg.visitors || []); render();
        break;
      case "visitor": case "visitor_joined": case "visitor_updated": case "visitor_update": {
        var vv = msg.visitor || msg;
        // A late "offline" view can overtake "visitor_left": a visitor who left stays gone until
        // it is online again (same tab, back within the token's life).
        if (left.has(visitorId(vv)) && !vv.online) break;
        left.delete(visitorId(vv));
        upsert(vv); render();
        break;
      }
      case "visitor_left": case "visitor_gone": {
        var id = msg.visitor_id || (msg.visitor && visitorId(msg.visitor));
        left.add(id);
        visitors.delete(id); render();
        break;
      }
      case "policy":
        if (me) me.policy = msg.policy || msg;
        render();
        break;
      case "session": case "session_state": case "session_update": case "session_ended":
        onSessionState(normSession(msg));
        break;
      default:
        break;
    }
  }

  window.addEventListener("message", function (ev) {
    if (ev.origin !== location.origin || !ev.data || !ev.source) return;
    // The virtual browser asks its opener for the token when its sessionStorage has none.
    if (ev.data.cobrowseConsole === "token?") {
      ev.source.postMessage({ cobrowseConsole: "token", token: token() }, location.origin);
    } else if (ev.data.cobrowseConsole === "request?" && typeof ev.data.request === "string") {
      // The window opened for a request asks what became of it; a console reloaded meanwhile
      // does not know it ("unknown"): the window then asks the API itself.
      var r = requests.get(ev.data.request);
      ev.source.postMessage({ cobrowseConsole: "request", request: ev.data.request,
        state: r ? r.state : "unknown", session: (r && r.sid) || null }, location.origin);
    }
  });

  if (token()) signIn(); else showSignedOut("");
})();
