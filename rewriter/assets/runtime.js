/*
 * cobrowse client runtime (docs/PROTOCOL.md "Runtime bridge", docs/ARCHITECTURE.md "URL codec").
 *
 * Injected first in every proxied document as
 *   <script src="/__cobrowse/runtime.js" data-cobrowse-config="{...}"></script>
 * it keeps every dynamic URL inside the proxy, shows the session jar's cookies to document.cookie,
 * masks sensitive elements that scripts add later, and talks to the agent's virtual browser.
 *
 * Rules this file keeps:
 *  - it never throws into the page: every patch maps inside try/catch and then calls the native
 *    function outside it, so native errors (a malformed URL, a SecurityError) stay what they were;
 *  - the network is never reached outside the proxy: an absolute http(s)/ws(s) URL that cannot be
 *    mapped goes to the proxy origin of a blocked upstream (cobrowse-blocked.invalid), never out;
 *  - natives are captured before any page script runs, so a page that overrides
 *    Array.prototype.map or String.prototype.replace does not break it;
 *  - one global only: window.__cobrowse, frozen.
 * Readable ES2017, no build step.
 */
(function cobrowseRuntime(global) {
  'use strict';

  if (global.__cobrowse) {
    // injected twice (document.write of a whole page, etc.), or a pop-up's copy after its opener's
    // runtime adopted it: its tag, the config and cookies it carries, leaves the page's DOM all the same
    try {
      var again = global.document && global.document.currentScript;
      if (again && again.getAttribute('data-cobrowse-config') !== null && again.parentNode) {
        again.parentNode.removeChild(again);
      }
    } catch (e) { /* keep */ }
    return;
  }

  // ------------------------------------------------------------------------------------------
  // natives, captured before any page script runs

  var Reflect_ = global.Reflect;
  var apply = Reflect_.apply;
  var construct = Reflect_.construct;
  var ObjectCtor = Object;
  var defineProperty = ObjectCtor.defineProperty;
  var getOwnPropertyDescriptor = ObjectCtor.getOwnPropertyDescriptor;
  var getPrototypeOf = ObjectCtor.getPrototypeOf;
  var freeze = ObjectCtor.freeze;
  var ProxyCtor = global.Proxy;
  var WeakMapCtor = global.WeakMap;
  var WeakSetCtor = global.WeakSet;
  var ArrayCtor = Array;
  var isArray = ArrayCtor.isArray;
  var arrayFrom = ArrayCtor.from;
  var StringCtor = String;
  var NumberCtor = Number;
  var DateCtor = Date;
  var dateNow = DateCtor.now;
  var dateParse = DateCtor.parse;
  var JSONparse = JSON.parse;
  var JSONstringify = JSON.stringify;
  var mathFloor = Math.floor;
  var encodeURIComponent_ = global.encodeURIComponent;
  var decodeURIComponent_ = global.decodeURIComponent;
  var setTimeout_ = global.setTimeout;
  var NativeURL = global.URL;
  var TextEncoderCtor = global.TextEncoder;
  var objectCreate = ObjectCtor.create;
  var BlobCtor = global.Blob;
  var createObjectURL_ = NativeURL.createObjectURL;
  var revokeObjectURL_ = NativeURL.revokeObjectURL;

  function uncurry(fn) {
    return function (thisArg) {
      var args = [];
      for (var i = 1; i < arguments.length; i++) args[i - 1] = arguments[i];
      return apply(fn, thisArg, args);
    };
  }
  function getter(proto, name) {
    var desc = getOwnPropertyDescriptor(proto, name);
    return desc && desc.get ? uncurry(desc.get) : null;
  }

  var hasOwn = uncurry(ObjectCtor.prototype.hasOwnProperty);
  var strSlice = uncurry(StringCtor.prototype.slice);
  var strIndexOf = uncurry(StringCtor.prototype.indexOf);
  var strLastIndexOf = uncurry(StringCtor.prototype.lastIndexOf);
  var strLower = uncurry(StringCtor.prototype.toLowerCase);
  var strTrim = uncurry(StringCtor.prototype.trim);
  var strCharCodeAt = uncurry(StringCtor.prototype.charCodeAt);
  var arrJoin = uncurry(ArrayCtor.prototype.join);
  var strSplit = uncurry(StringCtor.prototype.split);
  var arrSplice = uncurry(ArrayCtor.prototype.splice);
  var weakMapGet = uncurry(WeakMapCtor.prototype.get);
  var weakMapSet = uncurry(WeakMapCtor.prototype.set);
  var weakSetHas = uncurry(WeakSetCtor.prototype.has);
  var weakSetAdd = uncurry(WeakSetCtor.prototype.add);
  var funcToString = uncurry(Function.prototype.toString);
  var urlHref = getter(NativeURL.prototype, 'href');
  var urlProtocol = getter(NativeURL.prototype, 'protocol');
  var urlHostname = getter(NativeURL.prototype, 'hostname');
  var urlPort = getter(NativeURL.prototype, 'port');
  var urlHost = getter(NativeURL.prototype, 'host');
  var urlUsername = getter(NativeURL.prototype, 'username');
  var urlPassword = getter(NativeURL.prototype, 'password');
  var textEncode = TextEncoderCtor ? uncurry(TextEncoderCtor.prototype.encode) : null;
  var textEncoder = TextEncoderCtor ? new TextEncoderCtor() : null;

  function push(list, item) { list[list.length] = item; return list; }
  function noop() {}
  function guard(fn) { try { fn(); } catch (e) { /* a patch that cannot apply is left out */ } }
  function startsWith(s, prefix) { return strSlice(s, 0, prefix.length) === prefix; }
  function endsWith(s, suffix) { return s.length >= suffix.length && strSlice(s, s.length - suffix.length) === suffix; }
  function replaceAll(s, from, to) {
    var out = '';
    var i = 0;
    for (;;) {
      var j = strIndexOf(s, from, i);
      if (j < 0) return out + strSlice(s, i);
      out += strSlice(s, i, j) + to;
      i = j + from.length;
    }
  }
  function isWhite(c) { return c === 32 || c === 9 || c === 10 || c === 12 || c === 13; }

  // ------------------------------------------------------------------------------------------
  // SHA-256 (synchronous: label mapping must happen inside setters) and base32

  var SHA_K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ];

  function utf8(s) {
    if (textEncode) return textEncode(textEncoder, s);
    var out = [];
    var enc = encodeURIComponent_(s);
    for (var i = 0; i < enc.length; i++) {
      if (enc[i] === '%') { push(out, NumberCtor.parseInt(strSlice(enc, i + 1, i + 3), 16)); i += 2; }
      else push(out, strCharCodeAt(enc, i));
    }
    return out;
  }

  function sha256(bytes) {
    var m = [];
    var n = bytes.length;
    for (var i = 0; i < n; i++) m[i] = bytes[i];
    m[n] = 0x80;
    while (m.length % 64 !== 56) m[m.length] = 0;
    var hi = mathFloor(n / 0x20000000);
    var lo = (n * 8) >>> 0;
    var tail = [hi >>> 24, hi >>> 16, hi >>> 8, hi, lo >>> 24, lo >>> 16, lo >>> 8, lo];
    for (i = 0; i < 8; i++) m[m.length] = tail[i] & 0xff;
    var H = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    var W = [];
    function ror(x, k) { return (x >>> k) | (x << (32 - k)); }
    for (var off = 0; off < m.length; off += 64) {
      for (var t = 0; t < 16; t++) {
        var p = off + 4 * t;
        W[t] = (m[p] << 24) | (m[p + 1] << 16) | (m[p + 2] << 8) | m[p + 3];
      }
      for (t = 16; t < 64; t++) {
        var w15 = W[t - 15];
        var w2 = W[t - 2];
        var s0 = ror(w15, 7) ^ ror(w15, 18) ^ (w15 >>> 3);
        var s1 = ror(w2, 17) ^ ror(w2, 19) ^ (w2 >>> 10);
        W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
      }
      var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (t = 0; t < 64; t++) {
        var S1 = ror(e, 6) ^ ror(e, 11) ^ ror(e, 25);
        var ch = (e & f) ^ (~e & g);
        var t1 = (h + S1 + ch + SHA_K[t] + W[t]) | 0;
        var S0 = ror(a, 2) ^ ror(a, 13) ^ ror(a, 22);
        var maj = (a & b) ^ (a & c) ^ (b & c);
        var t2 = (S0 + maj) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      H[0] = (H[0] + a) | 0; H[1] = (H[1] + b) | 0; H[2] = (H[2] + c) | 0; H[3] = (H[3] + d) | 0;
      H[4] = (H[4] + e) | 0; H[5] = (H[5] + f) | 0; H[6] = (H[6] + g) | 0; H[7] = (H[7] + h) | 0;
    }
    var out = [];
    for (i = 0; i < 8; i++) {
      push(out, (H[i] >>> 24) & 0xff); push(out, (H[i] >>> 16) & 0xff);
      push(out, (H[i] >>> 8) & 0xff); push(out, H[i] & 0xff);
    }
    return out;
  }

  var BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
  function base32(bytes) { // RFC 4648, lower-case, no padding
    var out = '';
    var buffer = 0;
    var bits = 0;
    for (var i = 0; i < bytes.length; i++) {
      buffer = ((buffer << 8) | bytes[i]) & 0xffff;
      bits += 8;
      while (bits >= 5) { out += BASE32[(buffer >>> (bits - 5)) & 31]; bits -= 5; }
    }
    if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31];
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // the URL codec (docs/ARCHITECTURE.md "URL codec"; rewriter/urls.py is the server twin)

  var DEFAULT_PORTS = { http: 80, https: 443, ws: 80, wss: 443 };
  var ORIGIN_SCHEME = { http: 'http', https: 'https', ws: 'http', wss: 'https' };
  var MAX_LABEL = 63;
  var BLOCKED_HOST = 'cobrowse-blocked.invalid';

  function isLDH(host) { // every dot-separated label matches [a-z0-9]([a-z0-9-]*[a-z0-9])?
    var start = 0;
    for (var i = 0; i <= host.length; i++) {
      var c = i < host.length ? strCharCodeAt(host, i) : 46;
      if (c === 46) {
        if (i === start) return false;
        if (strCharCodeAt(host, start) === 45 || strCharCodeAt(host, i - 1) === 45) return false;
        start = i + 1;
      } else if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45)) {
        return false;
      }
    }
    return true;
  }

  // origin of a parsed URL: {scheme: http|https, host (IPv6 unbracketed), port: int, v6: bool}, or null
  function originOf(u) {
    var proto = strSlice(urlProtocol(u), 0, -1);
    var scheme = ORIGIN_SCHEME[proto];
    if (!scheme || !hasOwn(ORIGIN_SCHEME, proto)) return null;
    var host = urlHostname(u);
    var v6 = false;
    if (host[0] === '[') { host = strSlice(host, 1, -1); v6 = true; }
    else if (endsWith(host, '.')) host = strSlice(host, 0, -1);
    if (!host) return null;
    var port = urlPort(u);
    var number = port === '' ? DEFAULT_PORTS[proto] : NumberCtor(port);
    if (number === 0) return null; // the URL parser takes port 0, rewriter/urls.py refuses it
    return { scheme: scheme, host: host, port: number, v6: v6 };
  }

  function canonicalOrigin(o) {
    return o.scheme + '://' + (o.v6 ? '[' + o.host + ']' : o.host) + ':' + o.port;
  }

  function encodeLabel(sid, o) {
    var port = o.port === DEFAULT_PORTS[o.scheme] ? '' : StringCtor(o.port);
    var direct = '';
    if (o.v6) direct = sid + (o.scheme === 'http' ? 'i' : 'j') + port + '-' + replaceAll(o.host, ':', 'x');
    else if (isLDH(o.host)) {
      direct = sid + (o.scheme === 'http' ? 'h' : 's') + port + '-' + replaceAll(replaceAll(o.host, '-', '--'), '.', '-');
    }
    if (direct && direct.length <= MAX_LABEL) return direct;
    return sid + 'x' + base32(arrSplice(sha256(utf8(canonicalOrigin(o))), 0, 8));
  }

  // A session's codec. cfg is the runtime config (docs/PROTOCOL.md).
  function makeCodec(cfg) {
    var sid = StringCtor(cfg.sid);
    var domain = strLower(StringCtor(cfg.proxyDomain));
    if (endsWith(domain, '.')) domain = strSlice(domain, 0, -1);
    var scheme = cfg.proxyScheme === 'https' ? 'https' : 'http';
    var port = NumberCtor(cfg.proxyPort);
    var portPart = port === DEFAULT_PORTS[scheme] ? '' : ':' + port;
    var suffix = '.' + domain;
    var hashed = {}; // x label -> origin, for the known origins
    var labels = {}; // canonical origin -> label (cache)

    function labelFor(o) {
      var key = canonicalOrigin(o);
      if (!hasOwn(labels, key)) labels[key] = encodeLabel(sid, o);
      return labels[key];
    }
    function parseOrigin(text) {
      try { return originOf(new NativeURL(StringCtor(text))); } catch (e) { return null; }
    }
    var known = isArray(cfg.knownOrigins) ? cfg.knownOrigins : [];
    var candidates = [];
    for (var i = 0; i < known.length; i++) push(candidates, known[i]);
    push(candidates, cfg.origin);
    for (i = 0; i < candidates.length; i++) {
      var o = parseOrigin(candidates[i]);
      if (o) hashed[labelFor(o)] = o;
    }

    // the label of a proxy host name (lower-case, no port), or null when it is not one
    function labelOfHostname(hostname) {
      if (!endsWith(hostname, suffix)) return null;
      var label = strSlice(hostname, 0, hostname.length - suffix.length);
      return label && strIndexOf(label, '.') < 0 ? label : null;
    }

    function decodeLabel(label) { // -> origin of this session, or null
      if (label.length > MAX_LABEL || label.length < 12 || strSlice(label, 0, 10) !== sid) return null;
      if (hasOwn(hashed, label)) return hashed[label];
      var kind = label[10];
      var body = strSlice(label, 11);
      var isV6 = kind === 'i' || kind === 'j';
      if (!isV6 && kind !== 'h' && kind !== 's') return null;
      var dash = strIndexOf(body, '-');
      if (dash < 0 || dash > 5) return null;
      var portText = strSlice(body, 0, dash);
      var hostBody = strSlice(body, dash + 1);
      var originScheme = kind === 'h' || kind === 'i' ? 'http' : 'https';
      var host;
      if (isV6) host = replaceAll(hostBody, 'x', ':');
      else { // runs of 2k hyphens are k hyphens, a single hyphen is a dot
        host = '';
        for (var j = 0; j < hostBody.length;) {
          if (hostBody[j] !== '-') { host += hostBody[j]; j++; continue; }
          var k = j;
          while (k < hostBody.length && hostBody[k] === '-') k++;
          var run = k - j;
          if (run === 1) host += '.';
          else if (run % 2) return null;
          else for (var r = 0; r < run / 2; r++) host += '-';
          j = k;
        }
      }
      var o;
      try {
        var u = new NativeURL(originScheme + '://' + (isV6 ? '[' + host + ']' : host) + (portText ? ':' + portText : '') + '/');
        o = originOf(u);
      } catch (e) { return null; }
      if (!o || labelFor(o) !== label) return null; // not canonical
      return o;
    }

    function proxyBase(o, ws) {
      var s = ws ? (scheme === 'https' ? 'wss' : 'ws') : scheme;
      return s + '://' + labelFor(o) + suffix + portPart;
    }
    function originString(o) {
      var host = o.v6 ? '[' + o.host + ']' : o.host;
      return o.scheme + '://' + host + (o.port === DEFAULT_PORTS[o.scheme] ? '' : ':' + o.port);
    }
    // path + query + fragment of a parsed URL, as the URL serialised it
    function restOf(u) {
      var user = urlUsername(u);
      var pass = urlPassword(u);
      var prefix = urlProtocol(u) + '//' + (user || pass ? user + (pass ? ':' + pass : '') + '@' : '') + urlHost(u);
      return strSlice(urlHref(u), prefix.length);
    }
    // a parsed URL on a proxy origin of this session: the proxy's scheme (or its ws twin) and
    // port, and a label that decodes to this session. Such a URL is mapped already (a server may
    // echo location.href back); any other host, another session's proxy host included, is mapped
    // like an upstream one, to a label of this session that the proxy serves only within the
    // session's scope (rewriter/urls.py is_own_proxy_origin is the twin)
    function isProxyURL(u) {
      var proto = strSlice(urlProtocol(u), 0, -1);
      if (!hasOwn(ORIGIN_SCHEME, proto) || ORIGIN_SCHEME[proto] !== scheme) return false;
      var p = urlPort(u);
      if ((p === '' ? DEFAULT_PORTS[proto] : NumberCtor(p)) !== port) return false;
      var label = labelOfHostname(urlHostname(u));
      if (label === null) return false;
      if (decodeLabel(label) !== null) return true;
      // this session's hashed label of an origin outside its scope (the proxy refuses it): kept,
      // so that mapping stays idempotent
      if (label.length !== 24 || strSlice(label, 0, 10) !== sid || label[10] !== 'x') return false;
      for (var k = 11; k < 24; k++) if (strIndexOf(BASE32, label[k]) < 0) return false;
      return true;
    }
    var blockedOrigin = { scheme: 'http', host: BLOCKED_HOST, port: 80, v6: false };

    return {
      sid: sid,
      scheme: scheme,
      domain: domain,
      labelFor: labelFor,
      blockedURL: function (ws) { return proxyBase(blockedOrigin, ws) + '/'; },
      // upstream origin served at a parsed proxy URL, or null
      upstreamOriginOf: function (u) {
        var label = labelOfHostname(urlHostname(u));
        return label === null ? null : decodeLabel(label);
      },
      // a parsed absolute URL -> its proxy URL string (unchanged when it is a proxy URL already)
      mapParsed: function (u, ws) {
        var proto = strSlice(urlProtocol(u), 0, -1);
        if (!hasOwn(ORIGIN_SCHEME, proto)) return urlHref(u);
        if (isProxyURL(u)) return urlProtocol(u) + '//' + urlHost(u) + restOf(u); // userinfo dropped, as below
        var o = originOf(u);
        if (!o) return proxyBase(blockedOrigin, ws) + '/';
        return proxyBase(o, ws || proto === 'ws' || proto === 'wss') + restOf(u);
      },
      // a parsed proxy URL -> the upstream URL string, or null
      unmapParsed: function (u) {
        var label = labelOfHostname(urlHostname(u));
        var o = label === null ? null : decodeLabel(label);
        if (!o) return null;
        var proto = strSlice(urlProtocol(u), 0, -1);
        var ws = proto === 'ws' || proto === 'wss';
        var up = originString(o);
        if (ws) up = (o.scheme === 'https' ? 'wss' : 'ws') + strSlice(up, o.scheme.length);
        return up + restOf(u);
      },
      originString: originString
    };
  }

  // ------------------------------------------------------------------------------------------
  // URL mapping for a context (a window or a worker)

  var SCHEME_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.';

  // strip what the URL parser strips: leading/trailing C0 and space, and every tab/newline
  function cleanURL(s) {
    var start = 0;
    var end = s.length;
    while (start < end && strCharCodeAt(s, start) <= 32) start++;
    while (end > start && strCharCodeAt(s, end - 1) <= 32) end--;
    var out = '';
    for (var i = start; i < end; i++) {
      var c = strCharCodeAt(s, i);
      if (c !== 9 && c !== 10 && c !== 13) out += s[i];
    }
    return out;
  }
  // 'abs' (has a scheme), 'net' (protocol-relative) or 'rel'
  function urlForm(s) {
    if (s.length >= 2 && (s[0] === '/' || s[0] === '\\') && (s[1] === '/' || s[1] === '\\')) return 'net';
    var c = strCharCodeAt(s, 0);
    if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122))) return 'rel';
    for (var i = 1; i < s.length; i++) {
      if (s[i] === ':') return 'abs';
      if (strIndexOf(SCHEME_CHARS, s[i]) < 0) return 'rel';
    }
    return 'rel';
  }
  function schemeOf(s) { return strLower(strSlice(s, 0, strIndexOf(s, ':'))); }

  function makeMapper(codec, baseFn) {
    // baseFn() -> the upstream base URL string for relative references
    function toProxy(input, opts) {
      var s;
      try { s = StringCtor(input); } catch (e) { return input; }
      var ws = !!(opts && opts.ws);
      var absolute = !!(opts && opts.absolute);
      var clean = cleanURL(s);
      var form = urlForm(clean);
      if (form === 'abs' && !hasOwn(ORIGIN_SCHEME, schemeOf(clean))) return s; // data:, blob:, mailto:...
      if (form === 'rel' && !absolute && !ws) return s; // resolves on the proxy origin already
      try {
        var u = new NativeURL(clean, baseFn());
        if (ws) {
          var proto = strSlice(urlProtocol(u), 0, -1);
          if (proto === 'http' || proto === 'https') return codec.mapParsed(u, true);
        }
        return codec.mapParsed(u, ws);
      } catch (e) {
        if (form === 'rel' && !absolute && !ws) return s;
        return codec.blockedURL(ws);
      }
    }
    function toUpstream(input) {
      try { return codec.unmapParsed(new NativeURL(StringCtor(input))); } catch (e) { return null; }
    }
    return { toProxy: toProxy, toUpstream: toUpstream };
  }

  // srcset: the HTML spec's candidate parsing (URLs may contain commas)
  function mapSrcset(value, mapOne) {
    var s = StringCtor(value);
    var out = [];
    var i = 0;
    var n = s.length;
    while (i < n) {
      while (i < n && (isWhite(strCharCodeAt(s, i)) || s[i] === ',')) i++;
      if (i >= n) break;
      var start = i;
      while (i < n && !isWhite(strCharCodeAt(s, i))) i++;
      var url = strSlice(s, start, i);
      var descriptors = '';
      var trailingCommas = 0;
      while (url.length && url[url.length - 1] === ',') { url = strSlice(url, 0, -1); trailingCommas++; }
      if (!trailingCommas) {
        var dStart = i;
        var inParens = false;
        while (i < n) {
          var ch = s[i];
          if (ch === '(') inParens = true;
          else if (ch === ')') inParens = false;
          else if (ch === ',' && !inParens) break;
          i++;
        }
        descriptors = strTrim(strSlice(s, dStart, i));
        if (i < n) i++; // the comma
      }
      if (url) push(out, mapOne(url) + (descriptors ? ' ' + descriptors : ''));
    }
    return arrJoin(out, ', ');
  }

  // image-set("a.png" 1x, url(b.png) 2x): its direct string arguments are URLs too
  function mapImageSetStrings(s, mapOne) {
    var lower = strLower(s);
    var out = '';
    var i = 0;
    for (;;) {
      var at = strIndexOf(lower, 'image-set(', i); // -webkit-image-set( too
      if (at < 0) return out + strSlice(s, i);
      var p = at + 10;
      var depth = 0;
      while (p < s.length) {
        var c = s[p];
        if (c === '"' || c === "'") {
          var close = strIndexOf(s, c, p + 1);
          if (close < 0) return out + strSlice(s, i);
          if (depth === 0) {
            out += strSlice(s, i, p + 1) + mapOne(strSlice(s, p + 1, close));
            i = close;
          }
          p = close + 1;
        } else if (c === '(') {
          depth++; p++;
        } else if (c === ')') {
          if (depth === 0) break;
          depth--; p++;
        } else {
          p++;
        }
      }
      out += strSlice(s, i, p);
      i = p;
    }
  }

  // CSS: map url(...), @import "..." and image-set("...") references
  function mapCss(text, mapOne) {
    var s = StringCtor(text);
    if (strIndexOf(s, '//') < 0 && strIndexOf(s, ':') < 0 && strIndexOf(s, '\\') < 0) return s;
    if (strIndexOf(strLower(s), 'image-set(') >= 0) s = mapImageSetStrings(s, mapOne);
    var out = '';
    var i = 0;
    var lower = strLower(s);
    for (;;) {
      var u = strIndexOf(lower, 'url(', i);
      var imp = strIndexOf(lower, '@import', i);
      if (u < 0 && imp < 0) return out + strSlice(s, i);
      if (imp >= 0 && (u < 0 || imp < u)) { // @import "x" (url(...) is handled by the other branch)
        var q = imp + 7;
        while (q < s.length && isWhite(strCharCodeAt(s, q))) q++;
        if (s[q] === '"' || s[q] === "'") {
          var close = strIndexOf(s, s[q], q + 1);
          if (close < 0) return out + strSlice(s, i);
          out += strSlice(s, i, q + 1) + mapOne(strSlice(s, q + 1, close)) + s[q];
          i = close + 1;
        } else {
          out += strSlice(s, i, q);
          i = q;
        }
        continue;
      }
      var p = u + 4;
      while (p < s.length && isWhite(strCharCodeAt(s, p))) p++;
      if (s[p] === '"' || s[p] === "'") {
        var endQuote = strIndexOf(s, s[p], p + 1);
        if (endQuote < 0) return out + strSlice(s, i);
        out += strSlice(s, i, p + 1) + mapOne(strSlice(s, p + 1, endQuote));
        i = endQuote;
      } else {
        var closeParen = strIndexOf(s, ')', p);
        if (closeParen < 0) return out + strSlice(s, i);
        var valueEnd = closeParen;
        while (valueEnd > p && isWhite(strCharCodeAt(s, valueEnd - 1))) valueEnd--;
        out += strSlice(s, i, p) + (valueEnd > p ? mapOne(strSlice(s, p, valueEnd)) : '');
        i = valueEnd;
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // the context: one per config (shared by a document and its same-origin about:blank children)

  function makeContext(cfg) {
    var codec = makeCodec(cfg);
    var ctx = {
      cfg: cfg,
      codec: codec,
      mask: typeof cfg.mask === 'string' && cfg.mask ? cfg.mask : '\u2022\u2022\u2022\u2022\u2022\u2022',
      masked: [],
      cookies: [],
      consoleOrigin: typeof cfg.consoleOrigin === 'string' ? cfg.consoleOrigin : null,
      // the agent's clock less the proxy's: the jar's expiry times are the proxy's
      skew: typeof cfg.now === 'number' && cfg.now === cfg.now ? dateNow() - cfg.now * 1000 : 0,
      // the public suffixes above the upstream host: no cookie Domain may name one
      publicDomains: []
    };
    var pub = isArray(cfg.publicDomains) ? cfg.publicDomains : [];
    for (var pi = 0; pi < pub.length; pi++) if (typeof pub[pi] === 'string') push(ctx.publicDomains, strLower(pub[pi]));
    var sel = isArray(cfg.masked) ? cfg.masked : [];
    for (var i = 0; i < sel.length; i++) if (typeof sel[i] === 'string' && sel[i]) push(ctx.masked, sel[i]);
    var jar = cfg.cookies;
    if (typeof jar === 'string') jar = parseCookieHeader(jar);
    if (isArray(jar)) {
      for (i = 0; i < jar.length; i++) {
        var c = jar[i];
        if (c && typeof c.name === 'string' && typeof c.value === 'string') {
          push(ctx.cookies, { name: c.name, value: c.value, path: typeof c.path === 'string' ? c.path : null,
            expires: typeof c.expires === 'number' ? c.expires * 1000 + ctx.skew : null });
        }
      }
    }
    return ctx;
  }

  function parseCookieHeader(text) {
    var out = [];
    var parts = StringCtor(text);
    var i = 0;
    while (i <= parts.length) {
      var j = strIndexOf(parts, ';', i);
      if (j < 0) j = parts.length;
      var pair = strTrim(strSlice(parts, i, j));
      if (pair) {
        var eq = strIndexOf(pair, '=');
        push(out, eq < 0 ? { name: '', value: pair } : { name: strTrim(strSlice(pair, 0, eq)), value: strTrim(strSlice(pair, eq + 1)) });
      }
      i = j + 1;
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // patching helpers (a wrapped function reports the native's source through toString)

  var nativeOf = new WeakMapCtor();
  var installed = new WeakSetCtor();
  var pendingBlank = new WeakSetCtor(); // pop-ups sent to an empty document of their own
  var movedFrom = new WeakMapCtor(); // such a pop-up's first document -> the pop-up (movedTo)

  function disguise(wrapper, native) {
    // a wrapper of a wrapper still answers for the browser's own function
    try { weakMapSet(nativeOf, wrapper, weakMapGet(nativeOf, native) || native); } catch (e) { /* ignore */ }
    try { defineProperty(wrapper, 'name', { value: native.name, configurable: true }); } catch (e) { /* ignore */ }
    try { defineProperty(wrapper, 'length', { value: native.length, configurable: true }); } catch (e) { /* ignore */ }
    return wrapper;
  }

  function patchToString(win) {
    var proto = win.Function.prototype;
    var native = proto.toString;
    var wrapper = function toString() {
      var target = weakMapGet(nativeOf, this);
      return apply(native, target || this, arguments);
    };
    disguise(wrapper, native);
    defineProperty(proto, 'toString', { value: wrapper, writable: true, configurable: true, enumerable: false });
  }

  // the object on proto's chain that owns name (worker globals keep fetch on WorkerGlobalScope.prototype)
  function owner(proto, name) {
    while (proto && !getOwnPropertyDescriptor(proto, name)) proto = getPrototypeOf(proto);
    return proto;
  }

  // replace proto[name] (a method) by makeWrapper(native)
  function wrapMethod(proto, name, makeWrapper) {
    proto = owner(proto, name);
    if (!proto) return;
    var desc = getOwnPropertyDescriptor(proto, name);
    if (!desc || typeof desc.value !== 'function') return;
    var wrapper = disguise(makeWrapper(desc.value), desc.value);
    defineProperty(proto, name, { value: wrapper, writable: desc.writable, enumerable: desc.enumerable, configurable: desc.configurable });
  }

  // map the argument at index i through fn before calling the native method
  function mapArgument(proto, name, index, fn) {
    wrapMethod(proto, name, function (native) {
      return function () {
        var args = [];
        for (var k = 0; k < arguments.length; k++) args[k] = arguments[k];
        if (args.length > index && args[index] !== undefined && args[index] !== null) {
          try { args[index] = fn(args[index], this); } catch (e) { /* keep */ }
        }
        return apply(native, this, args);
      };
    });
  }

  // replace an accessor's setter by one that maps the value first
  function wrapSetter(proto, prop, fn) {
    proto = owner(proto, prop);
    if (!proto) return;
    var desc = getOwnPropertyDescriptor(proto, prop);
    if (!desc || !desc.set) return;
    var nativeSet = desc.set;
    var setter = function (value) {
      var mapped = value;
      try { mapped = fn(value, this); } catch (e) { /* keep */ }
      return apply(nativeSet, this, [mapped]);
    };
    disguise(setter, nativeSet);
    defineProperty(proto, prop, { get: desc.get, set: setter, enumerable: desc.enumerable, configurable: desc.configurable });
  }

  // replace an accessor's getter by one that passes what the native returns through fn
  function wrapGetter(proto, prop, fn) {
    proto = owner(proto, prop);
    if (!proto) return;
    var desc = getOwnPropertyDescriptor(proto, prop);
    if (!desc || !desc.get) return;
    var nativeGet = desc.get;
    var getterFn = function () {
      var value = apply(nativeGet, this, []);
      try { fn(value, this); } catch (e) { /* keep */ }
      return value;
    };
    disguise(getterFn, nativeGet);
    defineProperty(proto, prop, { get: getterFn, set: desc.set, enumerable: desc.enumerable, configurable: desc.configurable });
  }

  // replace a constructor on win by a Proxy that maps argument 0
  // ownsPrototype false: a named constructor (Audio) sharing its interface's prototype, whose
  // `constructor` must stay the interface (HTMLAudioElement)
  // anyFirst: fn maps other arguments too, so it runs whatever the first one is
  function wrapConstructor(win, name, fn, ownsPrototype, anyFirst) {
    var Native = win[name];
    if (typeof Native !== 'function') return;
    var handler = {
      construct: function (target, args, newTarget) {
        var copy = [];
        for (var k = 0; k < args.length; k++) copy[k] = args[k];
        // anyFirst 'always': even with no argument at all (a default the hook must override)
        if ((copy.length > 0 || anyFirst === 'always') && (anyFirst || (copy[0] !== undefined && copy[0] !== null))) {
          try { copy = fn(copy) || copy; } catch (e) { /* keep */ }
        }
        return construct(target, copy, newTarget === proxy ? target : newTarget);
      }
    };
    var proxy = new ProxyCtor(Native, handler);
    var desc = getOwnPropertyDescriptor(win, name);
    defineProperty(win, name, { value: proxy, writable: desc ? desc.writable : true, enumerable: false, configurable: true });
    if (ownsPrototype === false) return;
    guard(function () {
      defineProperty(Native.prototype, 'constructor', { value: proxy, writable: true, enumerable: false, configurable: true });
    });
  }

  // ------------------------------------------------------------------------------------------
  // network APIs shared by windows and workers

  function installNetwork(win, ctx, mapper) {
    var map = function (v) { return mapper.toProxy(v); };
    var mapAbs = function (v) { return mapper.toProxy(v, { absolute: true }); };
    var isWorker = !win.document;
    var mapURLArg = isWorker ? mapAbs : map;

    var NativeRequest = win.Request;
    var requestURL = NativeRequest ? getter(NativeRequest.prototype, 'url') : null;
    guard(function () {
      wrapConstructor(win, 'Request', function (args) {
        if (!(args[0] instanceof NativeRequest)) args[0] = mapURLArg(args[0]);
        return args;
      });
    });
    function wrapFetch(name) { // fetch, and fetchLater (a deferred fetch with the same arguments)
      wrapMethod(win, name, function (native) {
        return function (input, init) {
          var args = [];
          for (var k = 0; k < arguments.length; k++) args[k] = arguments[k];
          if (args.length > 0 && args[0] !== undefined && args[0] !== null) {
            try {
              if (NativeRequest && args[0] instanceof NativeRequest) {
                var url = requestURL(args[0]);
                var mapped = mapAbs(url);
                if (mapped !== url) {
                  try { args[0] = new NativeRequest(mapped, args[0]); } catch (e) { args[0] = ctx.codec.blockedURL(false); }
                }
              } else {
                args[0] = mapURLArg(args[0]);
              }
            } catch (e) { /* keep */ }
          }
          return apply(native, this, args);
        };
      });
    }
    guard(function () { wrapFetch('fetch'); });
    guard(function () { wrapFetch('fetchLater'); });
    guard(function () { mapArgument(win.XMLHttpRequest && win.XMLHttpRequest.prototype, 'open', 1, mapURLArg); });
    guard(function () {
      wrapConstructor(win, 'WebSocket', function (args) { args[0] = mapper.toProxy(args[0], { ws: true }); return args; });
    });
    guard(function () {
      wrapConstructor(win, 'EventSource', function (args) { args[0] = mapURLArg(args[0]); return args; });
    });
    guard(function () { mapArgument(win.Navigator && win.Navigator.prototype, 'sendBeacon', 0, mapURLArg); });
    guard(function () { mapArgument(win.Cache && win.Cache.prototype, 'add', 0, mapURLArg); });
    guard(function () {
      mapArgument(win.Cache && win.Cache.prototype, 'addAll', 0, function (list) {
        var out = [];
        for (var k = 0; k < list.length; k++) out[k] = list[k] instanceof NativeRequest ? list[k] : mapURLArg(list[k]);
        return out;
      });
    });
    // new FontFace(family, 'url(...)'): a CSS src value, fetched by load() inside the browser
    guard(function () {
      wrapConstructor(win, 'FontFace', function (args) {
        if (typeof args[1] === 'string') args[1] = mapCss(args[1], mapURLArg);
        return args;
      });
    });
    // WebRTC: a peer connection gathers its candidates from the STUN and TURN servers the page
    // names, over UDP or TCP straight from the agent's browser (no CSP directive covers it): those
    // servers, and through a server-reflexive candidate the page itself, learn the agent's own
    // address. Without servers and with relay candidates only, it gathers nothing and sends nothing
    // (a call the page makes with it does not connect).
    guard(function () {
      var NativePC = win.RTCPeerConnection;
      if (typeof NativePC !== 'function') return;
      // never throws, and always confines: with no configuration, or none that can be read, the
      // browser's default is every candidate (a connection made with no argument, or a
      // setConfiguration() without one, reset to it)
      var confine = function (config) {
        var out = {};
        try {
          if (config !== null && typeof config === 'object') for (var key in config) out[key] = config[key];
        } catch (e) { out = {}; }
        out.iceServers = [];
        out.iceTransportPolicy = 'relay';
        return out;
      };
      wrapConstructor(win, 'RTCPeerConnection', function (args) { args[0] = confine(args[0]); return args; }, true, 'always');
      if (win.webkitRTCPeerConnection === NativePC) {
        defineProperty(win, 'webkitRTCPeerConnection', { value: win.RTCPeerConnection, writable: true, enumerable: false, configurable: true });
      }
      wrapMethod(NativePC.prototype, 'setConfiguration', function (native) {
        return function (config) { return apply(native, this, [confine(config)]); };
      });
    });
    if (isWorker) {
      guard(function () {
        wrapMethod(win, 'importScripts', function (native) {
          return function importScripts() {
            var args = [];
            for (var k = 0; k < arguments.length; k++) {
              args[k] = arguments[k];
              try { args[k] = mapAbs(arguments[k]); } catch (e) { /* keep */ }
            }
            return apply(native, this, args);
          };
        });
      });
    }
    installWorkers(win, ctx, mapper);
  }

  // Workers load from the proxy, which puts the runtime (and this session's config) in front of
  // their script (rewriter.runtime.worker_prelude): self.location stays the script's own URL and
  // a shared worker is one per URL, as upstream
  function installWorkers(win, ctx, mapper) {
    var fromBlob = null;
    guard(function () { fromBlob = installBlobWorkers(win, ctx, mapper); });
    var workerURL = function (shared) {
      return function (args) {
        var wrapped = null;
        try { wrapped = fromBlob && fromBlob(args, shared); } catch (e) { /* as it came */ }
        args[0] = wrapped || mapper.toProxy(args[0], { absolute: true });
        return args;
      };
    };
    guard(function () { wrapConstructor(win, 'Worker', workerURL(false)); });
    guard(function () { wrapConstructor(win, 'SharedWorker', workerURL(true)); });
    guard(function () {
      mapArgument(win.Worklet && win.Worklet.prototype, 'addModule', 0, function (v) { return mapper.toProxy(v); });
    });
    guard(function () {
      var container = win.ServiceWorkerContainer && win.ServiceWorkerContainer.prototype;
      var PromiseCtor = win.Promise;
      var DOMExceptionCtor = win.DOMException;
      wrapMethod(container, 'register', function () {
        return function register() {
          return PromiseCtor.reject(new DOMExceptionCtor(
            'cobrowse: service workers cannot be registered while co-browsing', 'SecurityError'));
        };
      });
    });
  }

  // A worker made from a blob: URL (bundlers make them with URL.createObjectURL(new Blob([code])))
  // never passes the proxy, so nothing puts the runtime in front of its script. The blobs this
  // context turns into URLs are remembered (until revoked), and such a worker starts from a small
  // script of ours instead: the runtime with the worker's config, then the page's own blob, each
  // a script of its own (the page's keeps its directive prologue; in a module worker, its imports
  // run after the runtime). Our URLs for the runtime and for each blob are made once and kept:
  // the worker loads them after the constructor returns, when the page may have revoked its own.
  // A shared worker's starting script is one per blob URL, so it stays one worker.
  // Returns fromBlob(args, shared) -> the URL to start from, or null (not a blob of ours).
  function installBlobWorkers(win, ctx, mapper) {
    var URLCtor = win.URL;
    var blobSize = BlobCtor ? getter(BlobCtor.prototype, 'size') : null;
    if (!URLCtor || !blobSize || typeof createObjectURL_ !== 'function') return null;
    var state = ctx.blobWorkers;
    if (!state) {
      state = ctx.blobWorkers = {
        blobs: objectCreate(null), // page's blob URL -> its Blob
        own: new WeakMapCtor(), // Blob -> our URL for it
        shared: objectCreate(null), // page's blob URL + type -> a shared worker's start
        runtime: null
      };
    }
    wrapMethod(URLCtor, 'createObjectURL', function (native) {
      return function createObjectURL(object) {
        var url = apply(native, this, arguments);
        try {
          blobSize(object); // throws unless a Blob or File (a MediaSource is never a script)
          state.blobs[StringCtor(url)] = object;
        } catch (e) { /* not a blob */ }
        return url;
      };
    });
    wrapMethod(URLCtor, 'revokeObjectURL', function (native) {
      return function revokeObjectURL(url) {
        try { delete state.blobs[StringCtor(url)]; } catch (e) { /* keep */ }
        return apply(native, this, arguments);
      };
    });
    function objectURL(parts) {
      return apply(createObjectURL_, NativeURL, [new BlobCtor(parts, { type: 'text/javascript' })]);
    }
    function runtimeURL() {
      if (state.runtime) return state.runtime;
      var cfg = ctx.cfg;
      var keys = ['sid', 'proxyDomain', 'proxyPort', 'proxyScheme', 'origin', 'knownOrigins', 'base'];
      var config = {};
      for (var i = 0; i < keys.length; i++) if (hasOwn(cfg, keys[i])) config[keys[i]] = cfg[keys[i]];
      var own = null;
      try { own = mapper.toUpstream(StringCtor(win.location.href)); } catch (e) { /* keep */ }
      if (own) config.base = own;
      state.runtime = objectURL([
        '(' + funcToString(cobrowseRuntime) + ")(typeof globalThis !== 'undefined' ? globalThis : self);\n" +
        ';self.__cobrowse.init(' + JSONstringify(config) + ');\n'
      ]);
      return state.runtime;
    }
    return function fromBlob(args, shared) {
      var url = StringCtor(args[0]);
      if (!startsWith(url, 'blob:') || !hasOwn(state.blobs, url)) return null;
      var options = args[1];
      var module = false;
      if (options !== null && typeof options === 'object') module = StringCtor(options.type) === 'module';
      var key = url + (module ? ' module' : ' classic');
      if (shared && hasOwn(state.shared, key)) return state.shared[key];
      var blob = state.blobs[url];
      var own = weakMapGet(state.own, blob);
      if (!own) {
        own = apply(createObjectURL_, NativeURL, [blob]);
        weakMapSet(state.own, blob, own);
      }
      var start = runtimeURL();
      var text = module
        ? 'import ' + JSONstringify(start) + ';import ' + JSONstringify(own) + ';'
        : 'importScripts(' + JSONstringify(start) + ');importScripts(' + JSONstringify(own) + ');';
      var wrapper = objectURL([text]);
      if (shared) state.shared[key] = wrapper;
      else setTimeout_(function () { apply(revokeObjectURL_, NativeURL, [wrapper]); }, 0); // the constructor holds it
      return wrapper;
    };
  }

  // ------------------------------------------------------------------------------------------
  // documents: attributes, setters, markup, forms, navigation

  // attribute (lower-case) -> how its value holds URLs ('drop': emptied, as the server drops it:
  // integrity, since the proxy rewrites stylesheets and the hash would fail)
  var URL_ATTRS = {
    href: 'url', src: 'url', action: 'url', formaction: 'url', poster: 'url', data: 'url',
    background: 'url', manifest: 'url', 'xlink:href': 'url', srcset: 'srcset', imagesrcset: 'srcset',
    ping: 'list', style: 'css', integrity: 'drop'
  };
  // the only elements whose attribute of that name is one (`data` is a URL only on <object>)
  var URL_ONLY_ON = { data: { object: true }, integrity: { link: true, script: true } };
  var PROP_SETTERS = [
    ['HTMLAnchorElement', 'href', 'url'], ['HTMLAreaElement', 'href', 'url'], ['HTMLLinkElement', 'href', 'url'],
    ['HTMLBaseElement', 'href', 'url'], ['HTMLImageElement', 'src', 'url'], ['HTMLImageElement', 'srcset', 'srcset'],
    ['HTMLSourceElement', 'src', 'url'], ['HTMLSourceElement', 'srcset', 'srcset'], ['HTMLScriptElement', 'src', 'url'],
    ['HTMLIFrameElement', 'src', 'url'], ['HTMLFrameElement', 'src', 'url'], ['HTMLEmbedElement', 'src', 'url'],
    ['HTMLMediaElement', 'src', 'url'], ['HTMLTrackElement', 'src', 'url'], ['HTMLInputElement', 'src', 'url'],
    ['HTMLVideoElement', 'poster', 'url'], ['HTMLObjectElement', 'data', 'url'], ['HTMLFormElement', 'action', 'url'],
    ['HTMLInputElement', 'formAction', 'url'], ['HTMLButtonElement', 'formAction', 'url'],
    ['HTMLAnchorElement', 'ping', 'list'], ['HTMLAreaElement', 'ping', 'list'], ['HTMLLinkElement', 'imageSrcset', 'srcset'],
    ['HTMLLinkElement', 'integrity', 'drop'], ['HTMLScriptElement', 'integrity', 'drop']
  ];
  // SVG elements with an href property (SVGURIReference)
  var SVG_HREF_ELEMENTS = ['SVGAElement', 'SVGImageElement', 'SVGUseElement', 'SVGFEImageElement', 'SVGScriptElement',
    'SVGGradientElement', 'SVGPatternElement', 'SVGFilterElement', 'SVGTextPathElement', 'SVGMPathElement'];
  // frames whose documents the runtime never reaches, and the sandbox they get (confineFrame)
  var UNREACHED_SCHEMES = { data: 1, blob: 1, javascript: 1 };
  var FRAME_SANDBOX = ['allow-same-origin', 'allow-scripts', 'allow-forms', 'allow-modals', 'allow-downloads',
    'allow-pointer-lock', 'allow-orientation-lock', 'allow-presentation'];
  // masking, as rewriter/masking.py: attributes kept (layout and identity), attributes masked
  var MASK_KEPT_ATTRS = {};
  var MASK_VALUE_ATTRS = { value: 1, placeholder: 1, title: 1, alt: 1, 'aria-label': 1, label: 1 };
  var VOID_TAGS = { img: 1, br: 1, hr: 1, wbr: 1, source: 1, track: 1, embed: 1, area: 1, col: 1, meta: 1 };
  (function (kept) { for (var i = 0; i < kept.length; i++) MASK_KEPT_ATTRS[kept[i]] = 1; })([
    'id', 'class', 'name', 'type', 'role', 'hidden', 'disabled', 'width', 'height', 'size', 'cols', 'rows',
    'colspan', 'rowspan', 'for', 'tabindex', 'dir', 'lang', 'maxlength', 'minlength', 'autocomplete']);

  function installDocument(win, ctx, mapper) {
    var doc = win.document;
    var ElementProto = win.Element.prototype;
    var nativeSetAttribute = uncurry(ElementProto.setAttribute);
    var nativeGetAttribute = uncurry(ElementProto.getAttribute);
    var nativeRemoveAttribute = uncurry(ElementProto.removeAttribute);
    var nativeHasAttribute = uncurry(ElementProto.hasAttribute);
    var nativeMatches = uncurry(ElementProto.matches);
    var nativeClosest = uncurry(ElementProto.closest);
    var nativeQSA = uncurry(win.Document.prototype.querySelectorAll);
    var elementQSA = uncurry(ElementProto.querySelectorAll);
    var fragmentQSA = uncurry(win.DocumentFragment.prototype.querySelectorAll);
    var localNameOf = getter(ElementProto, 'localName');
    var innerHTMLDesc = getOwnPropertyDescriptor(ElementProto, 'innerHTML');
    var textContentDesc = getOwnPropertyDescriptor(win.Node.prototype, 'textContent');
    var isConnected = getter(win.Node.prototype, 'isConnected');
    var firstElementChildOf = getter(ElementProto, 'firstElementChild');
    var nativeCreateElement = uncurry(win.Document.prototype.createElement);
    var templateContent = getter(win.HTMLTemplateElement.prototype, 'content');
    var nodeType = getter(win.Node.prototype, 'nodeType');
    var parentNodeOf = getter(win.Node.prototype, 'parentNode');
    var textData = getter(win.CharacterData.prototype, 'data');
    var setTextData = uncurry(getOwnPropertyDescriptor(win.CharacterData.prototype, 'data').set);
    var inputValueDesc = getOwnPropertyDescriptor(win.HTMLInputElement.prototype, 'value');
    var textareaValueDesc = getOwnPropertyDescriptor(win.HTMLTextAreaElement.prototype, 'value');
    var inputType = getter(win.HTMLInputElement.prototype, 'type');
    var createTreeWalker = uncurry(win.Document.prototype.createTreeWalker);
    var walkerNext = uncurry(win.TreeWalker.prototype.nextNode);
    var SHOW_TEXT = 4;

    var map = function (v) { return mapper.toProxy(v); };
    function mapValue(kind, value) {
      if (kind === 'url') return map(value);
      if (kind === 'srcset') return mapSrcset(value, map);
      if (kind === 'css') return mapCss(value, map);
      if (kind === 'drop') return '';
      if (kind === 'list') { // space-separated URLs (ping)
        var parts = [];
        var s = StringCtor(value);
        var i = 0;
        while (i < s.length) {
          while (i < s.length && isWhite(strCharCodeAt(s, i))) i++;
          var st = i;
          while (i < s.length && !isWhite(strCharCodeAt(s, i))) i++;
          if (i > st) push(parts, map(strSlice(s, st, i)));
        }
        return arrJoin(parts, ' ');
      }
      return value;
    }
    function attrKind(el, name) {
      var lname = strLower(StringCtor(name));
      if (!hasOwn(URL_ATTRS, lname)) return null;
      if (hasOwn(URL_ONLY_ON, lname)) {
        var tag = '';
        try { tag = localNameOf(el); } catch (e) { return null; }
        if (!hasOwn(URL_ONLY_ON[lname], tag)) return null;
      }
      return URL_ATTRS[lname];
    }

    // ---- masking
    // password inputs, and fields whose autocomplete says they hold a secret (SECRET_AUTOCOMPLETE)
    var passwordSelector = 'input[type="password" i]';
    var SECRET_TOKENS = ['current-password', 'new-password', 'one-time-code', 'cc-number', 'cc-csc'];
    var FIELD_TAGS = ['input', 'textarea', 'select']; // fields only: a form may say it too
    for (var secretIndex = 0; secretIndex < SECRET_TOKENS.length; secretIndex++) {
      for (var tagIndex = 0; tagIndex < FIELD_TAGS.length; tagIndex++) {
        passwordSelector += ', ' + FIELD_TAGS[tagIndex] + '[autocomplete~="' + SECRET_TOKENS[secretIndex] + '" i]';
      }
    }
    var maskSelector = passwordSelector;
    for (var s = 0; s < ctx.masked.length; s++) maskSelector += ', ' + ctx.masked[s];
    function validSelector(sel) {
      try { nativeQSA(doc, sel); return true; } catch (e) { return false; }
    }
    if (!validSelector(maskSelector)) { // one bad selector must not disable the others
      maskSelector = passwordSelector;
      for (s = 0; s < ctx.masked.length; s++) if (validSelector(ctx.masked[s])) maskSelector += ', ' + ctx.masked[s];
    }
    function isMasked(el) {
      try { return nativeClosest(el, maskSelector) !== null; } catch (e) { return false; }
    }
    var masking = false;
    // the same as the server's rewriter/masking.py: children gone, the mask as text (value for
    // inputs), every attribute but a few structural ones removed, text-bearing ones masked
    function maskElement(el) {
      if (masking) return;
      masking = true;
      try {
        var names = [];
        var attrs = el.attributes;
        for (var i = 0; i < attrs.length; i++) push(names, strLower(attrs[i].name));
        for (i = 0; i < names.length; i++) {
          var local = strSlice(names[i], strIndexOf(names[i], ':') + 1);
          if (local === 'data-cobrowse-masked' || hasOwn(MASK_KEPT_ATTRS, local)) continue;
          if (hasOwn(MASK_VALUE_ATTRS, local)) {
            if (nativeGetAttribute(el, names[i]) !== ctx.mask) nativeSetAttribute(el, names[i], ctx.mask);
          } else {
            nativeRemoveAttribute(el, names[i]);
          }
        }
        var tag = localNameOf(el);
        if (tag === 'input') {
          var type = strLower(inputType(el));
          if (type !== 'checkbox' && type !== 'radio' && type !== 'file') {
            if (nativeGetAttribute(el, 'value') !== ctx.mask) nativeSetAttribute(el, 'value', ctx.mask);
            if (apply(inputValueDesc.get, el, []) !== ctx.mask) apply(inputValueDesc.set, el, [ctx.mask]);
          }
        } else if (!hasOwn(VOID_TAGS, tag)) {
          var first = el.firstChild;
          if (!first || first !== el.lastChild || nodeType(first) !== 3 || textData(first) !== ctx.mask) {
            el.textContent = ctx.mask;
          }
          if (tag === 'textarea' && apply(textareaValueDesc.get, el, []) !== ctx.mask) {
            apply(textareaValueDesc.set, el, [ctx.mask]);
          }
        } else {
          while (el.firstChild) el.removeChild(el.firstChild);
        }
        if (!nativeHasAttribute(el, 'data-cobrowse-masked')) nativeSetAttribute(el, 'data-cobrowse-masked', '');
      } catch (e) { /* best effort */ }
      masking = false;
    }
    function maskTree(root) {
      if (!root) return;
      var type = nodeType(root);
      if (type === 3) { // text
        var parent = parentNodeOf(root);
        if (parent && nodeType(parent) === 1 && isMasked(parent)) maskElement(nativeClosest(parent, maskSelector));
        return;
      }
      if (type === 1) {
        if (isMasked(root)) { maskElement(nativeClosest(root, maskSelector)); }
        var found = elementQSA(root, maskSelector);
        for (var i = 0; i < found.length; i++) maskElement(found[i]);
      } else if (type === 11 || type === 9) {
        var all = type === 11 ? fragmentQSA(root, maskSelector) : nativeQSA(root, maskSelector);
        for (var j = 0; j < all.length; j++) maskElement(all[j]);
      }
    }

    // A frame whose document the runtime never reaches (a data:, blob: or javascript: URL) may
    // not open pop-ups: a pop-up is a top-level navigation, which the confinement policy does not
    // cover, and without the runtime it loaded the upstream directly. Before such a frame loads,
    // its sandbox (the page's, or one that allows all else) loses allow-popups.
    function confineFrame(el, src) {
      try {
        if (localNameOf(el) !== 'iframe' || el.namespaceURI !== 'http://www.w3.org/1999/xhtml') return false;
        if (src === undefined) src = nativeGetAttribute(el, 'src');
        if (src === null || src === undefined) return false;
        var clean = cleanURL(StringCtor(src));
        if (urlForm(clean) !== 'abs' || !hasOwn(UNREACHED_SCHEMES, schemeOf(clean))) return false;
        var had = nativeGetAttribute(el, 'sandbox');
        var tokens = FRAME_SANDBOX;
        if (had !== null) {
          var spaced = strLower(had);
          var blanks = ['\t', '\n', '\f', '\r'];
          for (var b = 0; b < blanks.length; b++) spaced = replaceAll(spaced, blanks[b], ' ');
          tokens = strSplit(spaced, ' ');
        }
        var kept = [];
        for (var i = 0; i < tokens.length; i++) {
          var t = tokens[i];
          if (t && t !== 'allow-popups' && t !== 'allow-popups-to-escape-sandbox' &&
              strIndexOf(t, 'allow-top-navigation') !== 0) push(kept, t);
        }
        var value = arrJoin(kept, ' ');
        if (value === had) return false;
        nativeSetAttribute(el, 'sandbox', value);
        return true;
      } catch (e) { return false; }
    }

    // ---- URL attributes of a subtree (markup parsed in an inert template, MutationObserver fallback)
    function fixElement(el) {
      var changed = false;
      for (var name in URL_ATTRS) {
        if (!hasOwn(URL_ATTRS, name)) continue;
        if (!nativeHasAttribute(el, name)) continue;
        var kind = attrKind(el, name);
        if (!kind) continue;
        var value = nativeGetAttribute(el, name);
        var mapped = value;
        try { mapped = mapValue(kind, value); } catch (e) { mapped = value; }
        if (mapped !== value) { nativeSetAttribute(el, name, mapped); changed = true; }
      }
      var tag = localNameOf(el);
      if (tag === 'style') {
        var text = el.textContent;
        var css = mapCss(text, map);
        if (css !== text) { el.textContent = css; changed = true; }
      } else if (tag === 'script') {
        if (mapJsonScript(el)) changed = true;
      } else if (tag === 'iframe' && confineFrame(el)) {
        changed = true;
      }
      if (tag === 'iframe' && nativeHasAttribute(el, 'srcdoc')) {
        var srcdoc = nativeGetAttribute(el, 'srcdoc');
        var withRuntime = injectSrcdoc(srcdoc);
        if (withRuntime !== srcdoc) { nativeSetAttribute(el, 'srcdoc', withRuntime); changed = true; }
      }
      return changed;
    }
    function fixTree(root) {
      var changed = false;
      var type = nodeType(root);
      if (type === 1 && fixElement(root)) changed = true;
      var list = type === 11 ? fragmentQSA(root, '*') : elementQSA(root, '*');
      for (var i = 0; i < list.length; i++) {
        if (fixElement(list[i])) changed = true;
        // a template's content (declarative shadow roots included) is a tree of its own
        if (localNameOf(list[i]) === 'template' && fixTree(templateContent(list[i]))) changed = true;
      }
      return changed;
    }
    function markupMayHoldURLs(html) {
      return strIndexOf(html, ':') >= 0 || strIndexOf(html, '//') >= 0 || strIndexOf(html, '\\') >= 0 ||
        strIndexOf(html, 'srcdoc') >= 0 || strIndexOf(strLower(html), 'integrity') >= 0;
    }
    function rewriteMarkup(html) {
      var s = StringCtor(html);
      if (!markupMayHoldURLs(s)) return s;
      var tpl = nativeCreateElement(doc, 'template');
      apply(innerHTMLDesc.set, tpl, [s]);
      var changed = fixTree(templateContent(tpl));
      return changed ? apply(innerHTMLDesc.get, tpl, []) : s;
    }
    function injectSrcdoc(html) {
      var s = StringCtor(html);
      if (strIndexOf(s, 'data-cobrowse-config') >= 0) return s;
      var cfg = {};
      for (var key in ctx.cfg) if (hasOwn(ctx.cfg, key)) cfg[key] = ctx.cfg[key];
      cfg.consoleOrigin = null;
      var attr = replaceAll(replaceAll(replaceAll(JSONstringify(cfg), '&', '&amp;'), '"', '&quot;'), '<', '&lt;');
      return '<script src="/__cobrowse/runtime.js" data-cobrowse-config="' + attr + '"></script>' +
        routesMarkup(s) + rewriteMarkup(s);
    }
    // JSON that names URLs the browser fetches: an import map (imports values, scopes) and
    // speculation rules (the urls of list rules), as rewriter/url_values.py maps the server's
    function scriptJSONType(el) {
      var type = strLower(strTrim(StringCtor(nativeGetAttribute(el, 'type') || '')));
      return type === 'importmap' || type === 'speculationrules' ? type : null;
    }
    function isPlainObject(v) { return v !== null && typeof v === 'object' && !isArray(v); }
    function scriptJSON(data) { // nothing in it can end the element once serialised
      return replaceAll(replaceAll(JSONstringify(data), '</', '<\\/'), '<!--', '<\\u0021--');
    }
    function mapJsonScript(el) {
      var type = scriptJSONType(el);
      if (!type) return false;
      var text = apply(textContentDesc.get, el, []);
      if (!text || !markupMayHoldURLs(text)) return false;
      var data;
      try { data = JSONparse(text); } catch (e) { return false; }
      if (!isPlainObject(data)) return false;
      var changed = false;
      var one = function (v) {
        if (typeof v !== 'string') return v;
        var mapped = map(v);
        if (mapped !== v) changed = true;
        return mapped;
      };
      var k;
      if (type === 'importmap') {
        if (isPlainObject(data.imports)) for (k in data.imports) if (hasOwn(data.imports, k)) data.imports[k] = one(data.imports[k]);
        if (isPlainObject(data.scopes)) {
          var scopes = {};
          for (k in data.scopes) {
            if (!hasOwn(data.scopes, k)) continue;
            var table = data.scopes[k];
            if (isPlainObject(table)) for (var t in table) if (hasOwn(table, t)) table[t] = one(table[t]);
            scopes[one(k)] = table;
          }
          data.scopes = scopes;
        }
      } else {
        var actions = ['prefetch', 'prerender'];
        for (var a = 0; a < actions.length; a++) {
          var rules = data[actions[a]];
          if (!isArray(rules)) continue;
          for (var r = 0; r < rules.length; r++) {
            if (isPlainObject(rules[r]) && isArray(rules[r].urls)) {
              for (var u = 0; u < rules[r].urls.length; u++) rules[r].urls[u] = one(rules[r].urls[u]);
            }
          }
        }
      }
      if (!changed) return false;
      apply(textContentDesc.set, el, [scriptJSON(data)]);
      return true;
    }
    // the import map the server gives every document (rewriter/import_maps.py), for a srcdoc
    // document a script writes: module specifiers of the session's origins go to the proxy; the
    // keys the document's own maps set are left to them
    function routesMarkup(html) {
      var taken = {};
      if (strIndexOf(html, 'importmap') >= 0) {
        var tpl = nativeCreateElement(doc, 'template');
        apply(innerHTMLDesc.set, tpl, [html]);
        var scripts = fragmentQSA(templateContent(tpl), 'script');
        for (var i = 0; i < scripts.length; i++) {
          if (scriptJSONType(scripts[i]) !== 'importmap') continue;
          try {
            var data = JSONparse(apply(textContentDesc.get, scripts[i], []));
            if (isPlainObject(data) && isPlainObject(data.imports)) for (var key in data.imports) if (hasOwn(data.imports, key)) taken[key] = 1;
          } catch (e) { /* a map the browser rejects sets nothing */ }
        }
      }
      var known = ctx.cfg.knownOrigins || [];
      var knownKeys = {};
      for (var j = 0; j < known.length; j++) knownKeys[known[j] + '/'] = 1;
      var routes = {};
      var any = false;
      for (j = 0; j < known.length; j++) {
        var proxied = mapper.toProxy(known[j] + '/', { absolute: true });
        var relative = ctx.cfg.proxyScheme + '://' + urlHost(new NativeURL(known[j])) + '/';
        var keys = [known[j] + '/', relative];
        for (var n = 0; n < keys.length; n++) {
          if (n === 1 && hasOwn(knownKeys, relative)) continue;
          if (hasOwn(routes, keys[n]) || hasOwn(taken, keys[n])) continue;
          routes[keys[n]] = proxied;
          any = true;
        }
      }
      return any ? '<script type="importmap">' + scriptJSON({ imports: routes }) + '</script>' : '';
    }

    // setters of URL properties
    for (var p = 0; p < PROP_SETTERS.length; p++) {
      (function (entry) {
        guard(function () {
          var ctor = win[entry[0]];
          wrapSetter(ctor && ctor.prototype, entry[1], function (v) { return mapValue(entry[2], v); });
        });
      })(PROP_SETTERS[p]);
    }
    guard(function () {
      wrapSetter(win.HTMLIFrameElement.prototype, 'srcdoc', function (v) { return injectSrcdoc(v); });
    });
    guard(function () {
      wrapSetter(win.HTMLIFrameElement.prototype, 'src', function (v, el) { confineFrame(el, v); return v; });
    });
    // svgElement.href.baseVal = url: the href of an SVG element is an SVGAnimatedString, a type
    // other attributes (className) share; only those an href getter returned are URLs
    guard(function () {
      var hrefStrings = new WeakSetCtor();
      var remember = function (animated) { if (animated) weakSetAdd(hrefStrings, animated); };
      for (var h = 0; h < SVG_HREF_ELEMENTS.length; h++) {
        var ctor = win[SVG_HREF_ELEMENTS[h]];
        if (ctor) guard(function () { wrapGetter(ctor.prototype, 'href', remember); });
      }
      wrapSetter(win.SVGAnimatedString.prototype, 'baseVal', function (v, animated) {
        return weakSetHas(hrefStrings, animated) ? map(v) : v;
      });
    });

    // attributes
    guard(function () {
      wrapMethod(ElementProto, 'setAttribute', function (native) {
        return function setAttribute(name, value) {
          var args = [];
          for (var k = 0; k < arguments.length; k++) args[k] = arguments[k];
          try {
            if (args.length >= 2) {
              var lname = strLower(StringCtor(name));
              var kind = attrKind(this, name);
              if (kind) args[1] = mapValue(kind, value);
              else if (lname === 'srcdoc') args[1] = injectSrcdoc(value);
              if (lname === 'src') confineFrame(this, args[1]);
            }
          } catch (e) { /* keep */ }
          return apply(native, this, args);
        };
      });
    });
    guard(function () {
      wrapMethod(ElementProto, 'setAttributeNS', function (native) {
        return function setAttributeNS(ns, qname, value) {
          var args = [];
          for (var k = 0; k < arguments.length; k++) args[k] = arguments[k];
          try {
            if (args.length >= 3) {
              var q = strLower(StringCtor(qname));
              var local = strSlice(q, strIndexOf(q, ':') + 1);
              var kind = attrKind(this, local === 'href' ? 'href' : q);
              if (kind) args[2] = mapValue(kind, value);
            }
          } catch (e) { /* keep */ }
          return apply(native, this, args);
        };
      });
    });
    guard(function () {
      var AttrProto = win.Attr.prototype;
      var attrName = getter(AttrProto, 'name');
      var attrOwner = getter(AttrProto, 'ownerElement');
      var attrValue = getOwnPropertyDescriptor(AttrProto, 'value');
      var nodeType = getter(win.Node.prototype, 'nodeType');
      var mapAttrValue = function (v, attr, owner) {
        var kind = owner ? attrKind(owner, attrName(attr)) : null;
        return kind ? mapValue(kind, v) : v;
      };
      wrapSetter(AttrProto, 'value', function (v, attr) { return mapAttrValue(v, attr, attrOwner(attr)); });
      // the same value, through Node (attr.nodeValue = url, attr.textContent = url): an accessor
      // on Attr.prototype in front of Node's, so elements and text nodes pay nothing for it
      var throughNode = function (prop) {
        var desc = getOwnPropertyDescriptor(win.Node.prototype, prop);
        if (!desc || !desc.set || getOwnPropertyDescriptor(AttrProto, prop)) return;
        var nativeSet = desc.set;
        var setter = function (value) {
          var mapped = value;
          try {
            // null empties an attribute here (as it does any node's text), it is no URL "null"
            if (value !== null && nodeType(this) === 2) mapped = mapAttrValue(value, this, attrOwner(this));
          } catch (e) { /* keep */ }
          return apply(nativeSet, this, [mapped]);
        };
        disguise(setter, nativeSet);
        defineProperty(AttrProto, prop, { get: desc.get, set: setter, enumerable: desc.enumerable, configurable: true });
      };
      guard(function () { throughNode('nodeValue'); });
      guard(function () { throughNode('textContent'); });
      // an attribute made apart (document.createAttribute) gets its element here
      var adopt = function (native) {
        return function (attr) {
          try {
            if (nodeType(attr) === 2 && !attrOwner(attr)) {
              var value = apply(attrValue.get, attr, []);
              var mapped = mapAttrValue(value, attr, this);
              if (mapped !== value) apply(attrValue.set, attr, [mapped]);
            }
          } catch (e) { /* keep */ }
          return apply(native, this, arguments);
        };
      };
      guard(function () { wrapMethod(ElementProto, 'setAttributeNode', adopt); });
      guard(function () { wrapMethod(ElementProto, 'setAttributeNodeNS', adopt); });
    });

    // markup
    guard(function () { wrapSetter(ElementProto, 'innerHTML', function (v) { return rewriteMarkup(v); }); });
    // new Audio(url) sets its src attribute inside the browser, past every setter
    guard(function () {
      wrapConstructor(win, 'Audio', function (args) { args[0] = mapper.toProxy(args[0]); return args; }, false);
    });
    guard(function () { wrapSetter(ElementProto, 'outerHTML', function (v) { return rewriteMarkup(v); }); });
    guard(function () { wrapSetter(win.ShadowRoot && win.ShadowRoot.prototype, 'innerHTML', function (v) { return rewriteMarkup(v); }); });
    guard(function () { mapArgument(ElementProto, 'insertAdjacentHTML', 1, function (v) { return rewriteMarkup(v); }); });
    guard(function () { mapArgument(ElementProto, 'setHTMLUnsafe', 0, function (v) { return rewriteMarkup(v); }); });
    guard(function () { mapArgument(win.Range.prototype, 'createContextualFragment', 0, function (v) { return rewriteMarkup(v); }); });
    function wrapParser(proto, name) {
      wrapMethod(proto, name, function (native) {
        return function () {
          var result = apply(native, this, arguments);
          try { if (result && result.documentElement) fixTree(result.documentElement); } catch (e) { /* keep */ }
          return result;
        };
      });
    }
    guard(function () { wrapParser(win.DOMParser.prototype, 'parseFromString'); });
    // the static Document.parseHTMLUnsafe(html) and Document.parseHTML(html): DOMParser's kin
    guard(function () { if (hasOwn(win.Document, 'parseHTMLUnsafe')) wrapParser(win.Document, 'parseHTMLUnsafe'); });
    guard(function () { if (hasOwn(win.Document, 'parseHTML')) wrapParser(win.Document, 'parseHTML'); });
    function wrapWrite(name) {
      wrapMethod(win.Document.prototype, name, function (native) {
        return function () {
          var moved = movedTo(this);
          if (moved) return apply(moved[name], moved, arguments);
          var args = [];
          for (var k = 0; k < arguments.length; k++) {
            args[k] = arguments[k];
            try { args[k] = rewriteWritten(StringCtor(arguments[k])); } catch (e) { /* keep */ }
          }
          return apply(native, this, args);
        };
      });
    }
    guard(function () {
      wrapMethod(win.Document.prototype, 'close', function (native) {
        return function close() {
          var moved = movedTo(this);
          return moved ? apply(moved.close, moved, arguments) : apply(native, this, arguments);
        };
      });
    });
    // document.write may get half a tag: find the URL attributes by parsing a copy, then replace
    // exactly those attribute values in the original text
    function rewriteWritten(html) {
      if (!markupMayHoldURLs(html)) return html;
      var tpl = nativeCreateElement(doc, 'template');
      apply(innerHTMLDesc.set, tpl, [html]);
      var list = fragmentQSA(templateContent(tpl), '*');
      var out = html;
      for (var i = 0; i < list.length; i++) {
        for (var name in URL_ATTRS) {
          if (!hasOwn(URL_ATTRS, name) || !nativeHasAttribute(list[i], name)) continue;
          var kind = attrKind(list[i], name);
          if (!kind) continue;
          var value = nativeGetAttribute(list[i], name);
          var mapped = mapValue(kind, value);
          if (mapped === value) continue;
          var escaped = replaceAll(replaceAll(mapped, '&', '&amp;'), '"', '&quot;');
          var forms = [value, replaceAll(value, '&', '&amp;')];
          for (var f = 0; f < forms.length; f++) {
            out = replaceAll(out, '="' + forms[f] + '"', '="' + escaped + '"');
            out = replaceAll(out, "='" + forms[f] + "'", '="' + escaped + '"');
            out = replaceAll(out, '=' + forms[f] + '>', '="' + escaped + '">');
            out = replaceAll(out, '=' + forms[f] + ' ', '="' + escaped + '" ');
          }
        }
      }
      return out;
    }
    guard(function () { wrapWrite('write'); });
    guard(function () { wrapWrite('writeln'); });

    // CSS
    guard(function () { mapArgument(win.CSSStyleDeclaration.prototype, 'setProperty', 1, function (v) { return mapCss(v, map); }); });
    guard(function () { wrapSetter(win.CSSStyleDeclaration.prototype, 'cssText', function (v) { return mapCss(v, map); }); });
    guard(function () {
      var styleProto = win.CSSStyleDeclaration.prototype;
      var props = ['background', 'backgroundImage', 'borderImage', 'borderImageSource', 'listStyle', 'listStyleImage',
        'content', 'cursor', 'mask', 'maskImage', 'webkitMaskImage', 'shapeOutside', 'filter', 'src'];
      // Chromium (156) has no accessors for them: each declaration answers them as named
      // properties, which an accessor on the prototype comes before (the MutationObserver fallback
      // is too late once a script reads the style back, and never sees a style sheet rule's style)
      var setPropertyNative = weakMapGet(nativeOf, styleProto.setProperty) || styleProto.setProperty;
      var getPropertyValue = styleProto.getPropertyValue;
      var probe = nativeCreateElement(doc, 'div').style;
      var cssName = function (prop) {
        var out = startsWith(prop, 'webkit') ? '-' : '';
        for (var k = 0; k < prop.length; k++) {
          var c = prop[k];
          out += c !== strLower(c) ? '-' + strLower(c) : c;
        }
        return out;
      };
      for (var i = 0; i < props.length; i++) {
        (function (prop) {
          guard(function () {
            var proto = styleProto;
            while (proto && !getOwnPropertyDescriptor(proto, prop)) proto = getPrototypeOf(proto);
            if (proto) { wrapSetter(proto, prop, function (v) { return mapCss(v, map); }); return; }
            if (!(prop in probe)) return;
            var name = cssName(prop);
            defineProperty(styleProto, prop, {
              get: function () { return apply(getPropertyValue, this, [name]); },
              set: function (value) {
                var v = value === null ? '' : StringCtor(value);
                try { v = mapCss(v, map); } catch (e) { /* keep */ }
                apply(setPropertyNative, this, [name, v]);
              },
              enumerable: true,
              configurable: true
            });
          });
        })(props[i]);
      }
    });
    guard(function () { mapArgument(win.CSSStyleSheet.prototype, 'insertRule', 0, function (v) { return mapCss(v, map); }); });
    guard(function () { mapArgument(win.CSSStyleSheet.prototype, 'replace', 0, function (v) { return mapCss(v, map); }); });
    guard(function () { mapArgument(win.CSSStyleSheet.prototype, 'replaceSync', 0, function (v) { return mapCss(v, map); }); });
    // Web Animations: keyframes are CSS values (el.animate([{backgroundImage: 'url(...)'}]));
    // a copy is mapped, the page's own objects are left as they are
    guard(function () {
      var mapFrame = function (frame) {
        if (frame === null || typeof frame !== 'object') return frame;
        var out = {};
        var keys = ObjectCtor.keys(frame);
        for (var i = 0; i < keys.length; i++) {
          var v = frame[keys[i]];
          if (typeof v === 'string') v = mapCss(v, map);
          else if (isArray(v)) {
            var list = [];
            for (var j = 0; j < v.length; j++) list[j] = typeof v[j] === 'string' ? mapCss(v[j], map) : v[j];
            v = list;
          }
          out[keys[i]] = v;
        }
        return out;
      };
      var iteratorKey = global.Symbol && global.Symbol.iterator;
      var mapKeyframes = function (frames) {
        if (frames !== null && typeof frames === 'object' && !isArray(frames) && iteratorKey &&
            typeof frames[iteratorKey] === 'function') {
          frames = arrayFrom(frames); // any iterable of keyframes (read once, as the browser would)
        }
        if (isArray(frames)) {
          var out = [];
          for (var i = 0; i < frames.length; i++) out[i] = mapFrame(frames[i]);
          return out;
        }
        return mapFrame(frames); // property-indexed: {backgroundImage: ['url(a)', 'url(b)']}
      };
      guard(function () { mapArgument(ElementProto, 'animate', 0, mapKeyframes); });
      guard(function () { mapArgument(win.KeyframeEffect && win.KeyframeEffect.prototype, 'setKeyframes', 0, mapKeyframes); });
      guard(function () {
        wrapConstructor(win, 'KeyframeEffect', function (args) {
          if (args.length > 1 && args[1] !== null && args[1] !== undefined) args[1] = mapKeyframes(args[1]);
          return args;
        }, true, true); // new KeyframeEffect(null, frames): a target may come later
      });
    });

    // masked values: a page script that sets a masked field's value sets the mask
    guard(function () {
      wrapSetter(win.HTMLInputElement.prototype, 'value', function (v, el) {
        if (isMasked(el)) {
          var t = strLower(inputType(el));
          if (t !== 'checkbox' && t !== 'radio' && t !== 'file') return ctx.mask;
        }
        return v;
      });
    });
    guard(function () {
      wrapSetter(win.HTMLTextAreaElement.prototype, 'value', function (v, el) { return isMasked(el) ? ctx.mask : v; });
    });

    // forms: submit() fires no submit event
    function fixForm(form, submitter) {
      try {
        fixElement(form);
        if (submitter && nodeType(submitter) === 1) fixElement(submitter);
      } catch (e) { /* keep */ }
    }
    guard(function () {
      wrapMethod(win.HTMLFormElement.prototype, 'submit', function (native) {
        return function submit() { fixForm(this, null); return apply(native, this, arguments); };
      });
    });
    guard(function () {
      wrapMethod(win.HTMLFormElement.prototype, 'requestSubmit', function (native) {
        return function requestSubmit(submitter) { fixForm(this, submitter); return apply(native, this, arguments); };
      });
    });
    var addEventListener = uncurry(win.EventTarget.prototype.addEventListener);
    addEventListener(win, 'submit', function (event) {
      try { fixForm(event.target, event.submitter); } catch (e) { /* keep */ }
    }, true);
    addEventListener(win, 'click', function (event) {
      try {
        var t = event.target;
        var link = t && nodeType(t) === 1 ? nativeClosest(t, 'a[href], area[href]') : null;
        if (link) fixElement(link);
      } catch (e) { /* keep */ }
    }, true);

    // history
    var postNavigated = noop;
    ctx.setNavigatedHook = function (fn) { postNavigated = fn; };
    var historyMethods = ['pushState', 'replaceState'];
    for (var hm = 0; hm < historyMethods.length; hm++) (function (name) {
      guard(function () {
        wrapMethod(win.History.prototype, name, function (native) {
          return function () {
            var args = [];
            for (var k = 0; k < arguments.length; k++) args[k] = arguments[k];
            if (args.length > 2 && args[2] !== undefined && args[2] !== null) {
              try { args[2] = map(args[2]); } catch (e) { /* keep */ }
            }
            var result = apply(native, this, args);
            try { postNavigated(); } catch (e) { /* keep */ }
            return result;
          };
        });
      });
    })(historyMethods[hm]);

    // window.open: map the URL; a same-origin window it returns gets the runtime too
    guard(function () {
      wrapMethod(win, 'open', function (native) {
        return function open(url) {
          var args = [];
          for (var k = 0; k < arguments.length; k++) args[k] = arguments[k];
          if (args.length > 0 && args[0] !== undefined && args[0] !== null && args[0] !== '') {
            try { args[0] = map(args[0]); } catch (e) { /* keep */ }
          }
          var fresh = isBlankURL(args[0]);
          var child = apply(native, this, args);
          if (child) openedWindow(child, fresh);
          return child;
        };
      });
    });
    function isBlankURL(url) {
      if (url === undefined || url === null || url === '') return true;
      try { return strLower(strTrim(StringCtor(url))) === 'about:blank'; } catch (e) { return false; }
    }
    // A window opened on no URL (or about:blank) shows the browser's initial about:blank, whose
    // navigations fire no `navigate` event (Chromium): `w.location = upstream` later left the
    // proxy. It is moved at once to an empty document of its own, made by a javascript: URL (no
    // request, still about:blank, same origin), where the event fires. That takes one task: a
    // page that writes into it or changes its DOM first keeps its document (writing cancels the
    // move; a change stops it), and a navigation in the same task is not caught (docs/PROTOCOL.md).
    function openedWindow(child, fresh) {
      var before = weakSetHas(installed, child);
      adoptWindow(child, ctx);
      if (!fresh || before) return; // a window the page had already (a name, _self)
      try {
        if (child.location.href !== 'about:blank' || child.__cobrowse === undefined) return;
        var origin = win.location.origin;
        var runtimeURL = origin + '/__cobrowse/runtime.js';
        // only from a page on a proxy origin of this session (not an opaque sandboxed frame)
        if (origin === 'null' || mapper.toProxy(runtimeURL, { absolute: true }) !== runtimeURL) return;
        var cdoc = child.document;
        var root = cdoc.documentElement;
        if (!root || root.childNodes.length !== 2 || !cdoc.head || cdoc.head.firstChild ||
            !cdoc.body || cdoc.body.firstChild) return;
        weakSetAdd(pendingBlank, child);
        weakMapSet(movedFrom, cdoc, child);
        var superseded = false;
        var watch = new child.MutationObserver(function () {
          try {
            watch.disconnect();
            // a page that builds the window with DOM calls keeps what it built (but a navigation
            // the page started meanwhile is its own: never stopped)
            if (!superseded && child.location.href === 'about:blank' && cdoc === child.document) {
              child.stop();
            }
          } catch (e) { /* closed, or gone */ }
        });
        watch.observe(cdoc, { childList: true, subtree: true, attributes: true, characterData: true });
        child.location.replace('javascript:' + encodeURIComponent_(JSONstringify(blankMarkup(runtimeURL))));
        // (after ours: a navigation the page starts fires it at once, in its own call)
        child.addEventListener('beforeunload', function () { superseded = true; });
      } catch (e) { /* closed, cross-origin, or refused by a policy: as it was */ }
    }
    // the empty document: the opener's runtime is put in it from inside (before any other task
    // may run), else its own copy from the proxy (a page that set `opener` to null)
    function blankMarkup(runtimeURL) {
      var cfg = {};
      for (var key in ctx.cfg) if (hasOwn(ctx.cfg, key)) cfg[key] = ctx.cfg[key];
      cfg.consoleOrigin = null;
      var attr = replaceAll(replaceAll(replaceAll(JSONstringify(cfg), '&', '&amp;'), '"', '&quot;'), '<', '&lt;');
      return '<!DOCTYPE html><html><head><script>try{document.currentScript.remove();' +
        'opener.__cobrowse.adopt(window)}catch(e){}</script><script async src="' +
        replaceAll(runtimeURL, '"', '&quot;') + '" data-cobrowse-config="' + attr +
        '"></script></head><body></body></html>';
    }
    // same-origin frames (about:blank, srcdoc) get the runtime when a script reaches into them
    var frameTypes = ['HTMLIFrameElement', 'HTMLFrameElement', 'HTMLObjectElement'];
    var frameProps = ['contentWindow', 'contentDocument'];
    for (var ft = 0; ft < frameTypes.length; ft++) (function (name) {
      guard(function () {
        var proto = win[name].prototype;
        for (var fp = 0; fp < frameProps.length; fp++) (function (prop) {
          var desc = getOwnPropertyDescriptor(proto, prop);
          if (!desc || !desc.get) return;
          var nativeGet = desc.get;
          var get = function () {
            var value = apply(nativeGet, this, []);
            try {
              if (value) adoptWindow(prop === 'contentWindow' ? value : value.defaultView, ctx);
            } catch (e) { /* cross-origin */ }
            return value;
          };
          disguise(get, nativeGet);
          defineProperty(proto, prop, { get: get, set: desc.set, enumerable: desc.enumerable, configurable: desc.configurable });
        })(frameProps[fp]);
      });
    })(frameTypes[ft]);

    // navigation.navigate(url) is mapped before the browser starts it: cancelled and re-issued (as
    // below), it would reject the promises it returned to the page
    guard(function () { mapArgument(win.Navigation.prototype, 'navigate', 0, function (v) { return map(v); }); });
    // location cannot be redefined: the Navigation API catches any navigation of this window to an
    // upstream URL (location.href=, assign, replace, links, forms) and re-issues it mapped
    guard(function () {
      var navigation = win.navigation;
      if (!navigation) return;
      var destURL = getter(win.NavigationDestination.prototype, 'url');
      addEventListener(navigation, 'navigate', function (event) {
        try {
          var url = destURL(event.destination);
          var mapped = mapper.toProxy(url, { absolute: true });
          if (mapped === url || !event.cancelable) return;
          event.preventDefault();
          var replace = event.navigationType === 'replace';
          var formData = event.formData;
          var download = event.downloadRequest;
          // the browser honours `download` only for a URL of the page's own origin, which an
          // upstream URL never is (its proxy URL may be, as the upstream URL was for the upstream
          // page): the link's own attribute says, and the browser decides again for the proxy URL
          if (download === null || download === undefined) download = downloadOf(event.sourceElement);
          setTimeout_(function () {
            try { renavigate(mapped, replace, formData, download); } catch (e) { /* nothing more to do */ }
          }, 0);
        } catch (e) { /* keep */ }
      });
    });
    // the download attribute of a link (<a>, <area>) that started a navigation, else null
    function downloadOf(element) {
      try {
        if (!element || element.namespaceURI !== 'http://www.w3.org/1999/xhtml') return null;
        if (element.localName !== 'a' && element.localName !== 'area') return null;
        return nativeHasAttribute(element, 'download') ? nativeGetAttribute(element, 'download') : null;
      } catch (e) { return null; }
    }
    function renavigate(url, replace, formData, download) {
      if (download !== null && download !== undefined) {
        var a = nativeCreateElement(doc, 'a');
        nativeSetAttribute(a, 'href', url);
        nativeSetAttribute(a, 'download', StringCtor(download));
        a.click();
        return;
      }
      if (formData) { // POST navigation: submit an equivalent form (files cannot be carried over)
        var form = nativeCreateElement(doc, 'form');
        nativeSetAttribute(form, 'method', 'post');
        nativeSetAttribute(form, 'action', url);
        nativeSetAttribute(form, 'style', 'display:none');
        formData.forEach(function (value, key) {
          if (typeof value !== 'string') return;
          var input = nativeCreateElement(doc, 'input');
          nativeSetAttribute(input, 'type', 'hidden');
          nativeSetAttribute(input, 'name', key);
          apply(inputValueDesc.set, input, [value]);
          form.appendChild(input);
        });
        (doc.body || doc.documentElement).appendChild(form);
        apply(win.HTMLFormElement.prototype.submit, form, []);
        return;
      }
      if (replace) win.location.replace(url); else win.location.assign(url);
    }

    // postMessage receivers see the upstream origin of a message from another origin (sites
    // compare event.origin with the origins they expect, written out); a message from this
    // window's own origin keeps it, as location.origin and window.origin do (sites compare the two)
    var nativeMessageOrigin = getter(win.MessageEvent.prototype, 'origin');
    var ownOrigin = win.origin;
    guard(function () {
      var desc = getOwnPropertyDescriptor(win.MessageEvent.prototype, 'origin');
      var get = function () {
        var origin = apply(desc.get, this, []);
        if (origin === ownOrigin) return origin;
        try {
          var up = mapper.toUpstream(origin + '/');
          if (up) return strSlice(up, 0, up.length - 1);
        } catch (e) { /* keep */ }
        return origin;
      };
      disguise(get, desc.get);
      defineProperty(win.MessageEvent.prototype, 'origin', { get: get, enumerable: desc.enumerable, configurable: desc.configurable });
    });
    // ...and senders name upstream origins: postMessage(data, "https://shop.example") to this window
    // (from itself or a same-origin frame, which reach this property) targets its proxy origin.
    // A cross-origin window's postMessage is the browser's own and cannot be patched (ARCHITECTURE.md).
    guard(function () {
      var reflectGet = Reflect_.get;
      // only a valid absolute URL names an origin: '*' and '/' are keywords, and anything else is
      // left for the browser to refuse with its own SyntaxError
      var mapTarget = function (target) {
        if (typeof target !== 'string') return target;
        var clean = cleanURL(target);
        if (urlForm(clean) !== 'abs') return target;
        try { new NativeURL(clean); } catch (e) { return target; }
        return mapper.toProxy(target);
      };
      wrapMethod(win, 'postMessage', function (native) {
        return function postMessage(message, target) {
          var args = [];
          for (var k = 0; k < arguments.length; k++) args[k] = arguments[k];
          if (typeof target === 'string') {
            try { args[1] = mapTarget(target); } catch (e) { /* as given */ }
          } else if (target !== null && (typeof target === 'object' || typeof target === 'function')) {
            // the options form: targetOrigin read once (as the browser reads it), the rest of the
            // object as it is (transfer lists, getters, private fields), through a Proxy
            var given;
            try { given = target.targetOrigin; } catch (e) { return apply(native, this, args); }
            var origin = given;
            if (given !== undefined) {
              try { origin = mapTarget(typeof given === 'string' ? given : StringCtor(given)); } catch (e) { /* as given */ }
            }
            args[1] = new ProxyCtor(target, {
              get: function (t, key) { return key === 'targetOrigin' ? origin : reflectGet(t, key); }
            });
          }
          return apply(native, this, args);
        };
      });
    });

    // nodes a script inserts into the document: import maps and speculation rules are read as
    // they go in (so their URLs are mapped first), and a frame without a source has its window
    // once in (it gets the runtime at once, before a script reaches it through window[i])
    var INSERTED = 'iframe, frame, script';
    function collectInserted(node, into) {
      var type = nodeType(node);
      var list = null;
      if (type === 1) {
        var tag = localNameOf(node);
        if (tag === 'iframe' || tag === 'frame' || tag === 'script') push(into, node);
        if (firstElementChildOf(node)) list = elementQSA(node, INSERTED);
      } else if (type === 11) {
        list = fragmentQSA(node, INSERTED);
      }
      if (list) for (var i = 0; i < list.length; i++) push(into, list[i]);
    }
    function adoptBlankFrame(el) {
      var src = nativeGetAttribute(el, 'src');
      if (src !== null && strTrim(src) !== '' && strLower(strTrim(src)) !== 'about:blank') return;
      var w = el.contentWindow; // the wrapped getter adopts a same-origin window
      return w;
    }
    function wrapInsertion(proto, name, from, to) {
      wrapMethod(proto, name, function (native) {
        return function () {
          var found = null;
          try {
            if (isConnected(this)) {
              found = [];
              var end = to < 0 ? arguments.length : to;
              for (var k = from; k < end && k < arguments.length; k++) {
                try { collectInserted(arguments[k], found); } catch (e) { /* a string, or not a node */ }
              }
              for (var i = 0; i < found.length; i++) {
                var what = localNameOf(found[i]);
                if (what === 'script') mapJsonScript(found[i]);
                else if (what === 'iframe') confineFrame(found[i]);
              }
            }
          } catch (e) { found = null; }
          var result = apply(native, this, arguments);
          if (found) {
            for (var j = 0; j < found.length; j++) {
              try { if (localNameOf(found[j]) !== 'script') adoptBlankFrame(found[j]); } catch (e) { /* next */ }
            }
          }
          return result;
        };
      });
    }
    var insertions = [
      [win.Node.prototype, 'appendChild', 0, 1], [win.Node.prototype, 'insertBefore', 0, 1],
      [win.Node.prototype, 'replaceChild', 0, 1], [ElementProto, 'append', 0, -1], [ElementProto, 'prepend', 0, -1],
      [ElementProto, 'before', 0, -1], [ElementProto, 'after', 0, -1], [ElementProto, 'replaceWith', 0, -1],
      [ElementProto, 'replaceChildren', 0, -1], [ElementProto, 'insertAdjacentElement', 1, 2]
    ];
    for (var ins = 0; ins < insertions.length; ins++) (function (entry) {
      guard(function () { wrapInsertion(entry[0], entry[1], entry[2], entry[3]); });
    })(insertions[ins]);

    // markup a script sets makes its frames inside the browser, past the insertion wrappers: the
    // frames without a source it made get the runtime right after (window[i] comes next)
    function adoptFramesUnder(node) {
      try {
        if (!node || !isConnected(node)) return;
        var frames = nodeType(node) === 9 ? nativeQSA(node, 'iframe, frame') :
          nodeType(node) === 11 ? fragmentQSA(node, 'iframe, frame') : elementQSA(node, 'iframe, frame');
        for (var i = 0; i < frames.length; i++) adoptBlankFrame(frames[i]);
      } catch (e) { /* keep */ }
    }
    function thenAdopt(proto, name, where) {
      wrapMethod(proto, name, function (native) {
        return function () {
          var target = null;
          try { target = where(this); } catch (e) { target = null; }
          var result = apply(native, this, arguments);
          adoptFramesUnder(target);
          return result;
        };
      });
    }
    function setterThenAdopt(proto, prop, where) {
      proto = owner(proto, prop);
      var desc = proto && getOwnPropertyDescriptor(proto, prop);
      if (!desc || !desc.set) return;
      var set = desc.set;
      var setter = function (value) {
        var target = null;
        try { target = where(this); } catch (e) { target = null; }
        var result = apply(set, this, [value]);
        adoptFramesUnder(target);
        return result;
      };
      disguise(setter, set);
      defineProperty(proto, prop, { get: desc.get, set: setter, enumerable: desc.enumerable, configurable: desc.configurable });
    }
    var self = function (node) { return node; };
    var parentOf = function (node) { return parentNodeOf(node); };
    guard(function () { setterThenAdopt(ElementProto, 'innerHTML', self); });
    guard(function () { setterThenAdopt(ElementProto, 'outerHTML', parentOf); });
    guard(function () { setterThenAdopt(win.ShadowRoot.prototype, 'innerHTML', self); });
    guard(function () { thenAdopt(ElementProto, 'insertAdjacentHTML', parentOf); });
    guard(function () { thenAdopt(ElementProto, 'setHTMLUnsafe', self); });
    guard(function () { thenAdopt(win.ShadowRoot.prototype, 'setHTMLUnsafe', self); });
    guard(function () { thenAdopt(win.Document.prototype, 'write', self); });
    guard(function () { thenAdopt(win.Document.prototype, 'writeln', self); });

    // shadow roots: their markup mapped like the document's, and the fallback below watches them too
    guard(function () { mapArgument(win.ShadowRoot.prototype, 'setHTMLUnsafe', 0, function (v) { return rewriteMarkup(v); }); });
    guard(function () {
      wrapMethod(ElementProto, 'attachShadow', function (native) {
        return function attachShadow() {
          var root = apply(native, this, arguments);
          try { observer.observe(root, observed); } catch (e) { /* keep */ }
          return root;
        };
      });
    });

    // CSS rules added inside other rules, and the legacy addRule(selector, declarations)
    var mapCssArgument = function (v) { return mapCss(v, map); };
    guard(function () { mapArgument(win.CSSGroupingRule.prototype, 'insertRule', 0, mapCssArgument); });
    guard(function () {
      if (hasOwn(win.CSSStyleRule.prototype, 'insertRule')) mapArgument(win.CSSStyleRule.prototype, 'insertRule', 0, mapCssArgument);
    });
    guard(function () { mapArgument(win.CSSKeyframesRule.prototype, 'appendRule', 0, mapCssArgument); });
    guard(function () { mapArgument(win.CSSStyleSheet.prototype, 'addRule', 1, mapCssArgument); });

    // document.open(url, name, features) is window.open by another name
    guard(function () {
      wrapMethod(win.Document.prototype, 'open', function (native) {
        return function open() {
          var args = [];
          for (var k = 0; k < arguments.length; k++) args[k] = arguments[k];
          if (args.length < 3) {
            var moved = movedTo(this);
            return moved ? apply(moved.open, moved, args) : apply(native, this, args);
          }
          if (args[0] !== undefined && args[0] !== null && args[0] !== '') {
            try { args[0] = map(args[0]); } catch (e) { /* keep */ }
          }
          var fresh = isBlankURL(args[0]);
          var child = apply(native, this, args);
          if (child) openedWindow(child, fresh);
          return child;
        };
      });
    });

    // the MutationObserver fallback: URLs and masking for whatever got past the patches
    var MutationObserverCtor = win.MutationObserver;
    var observer = new MutationObserverCtor(function (records) {
      for (var i = 0; i < records.length; i++) {
        try {
          var r = records[i];
          if (r.type === 'childList') {
            for (var j = 0; j < r.addedNodes.length; j++) {
              var node = r.addedNodes[j];
              var t = nodeType(node);
              if (t === 1) {
                if (!isUI(node)) { fixTree(node); maskTree(node); }
                var frames = [];
                collectInserted(node, frames);
                for (var f = 0; f < frames.length; f++) if (localNameOf(frames[f]) !== 'script') adoptBlankFrame(frames[f]);
              }
              else if (t === 3 && nodeType(r.target) === 1) { fixStyleText(node); maskTree(node); }
            }
          } else if (r.type === 'attributes') {
            if (nodeType(r.target) === 1 && !isUI(r.target)) {
              if (r.attributeName !== 'value' && r.attributeName !== 'type' && r.attributeName !== 'class' && r.attributeName !== 'id') fixElement(r.target);
              maskTree(r.target);
            }
          } else if (r.type === 'characterData') {
            fixStyleText(r.target);
            maskTree(r.target);
          }
        } catch (e) { /* next record */ }
      }
    });
    function fixStyleText(textNode) { // <style> text set by a script: map its url()s before style recalc
      var parent = parentNodeOf(textNode);
      if (parent && nodeType(parent) === 1 && localNameOf(parent) === 'style') fixElement(parent);
    }
    function isUI(el) {
      try { return nativeHasAttribute(el, 'data-cobrowse-ui'); } catch (e) { return false; }
    }
    var attributeFilter = ['value', 'type', 'class', 'id', 'autocomplete'];
    for (var name in URL_ATTRS) if (hasOwn(URL_ATTRS, name) && name !== 'xlink:href') push(attributeFilter, name);
    push(attributeFilter, 'srcdoc');
    var observed = { childList: true, subtree: true, attributes: true, attributeFilter: attributeFilter, characterData: true };
    observer.observe(doc, observed);
    if (doc.documentElement) { guard(function () { fixTree(doc.documentElement); maskTree(doc.documentElement); }); }

    return { maskSelector: maskSelector, isMasked: isMasked, maskElement: maskElement, nativeQSA: nativeQSA };
  }

  // ------------------------------------------------------------------------------------------
  // document.cookie: the session jar's view (docs/ARCHITECTURE.md "document.cookie")

  function installCookies(win, ctx, mapper) {
    var doc = win.document;
    var proto = win.Document.prototype;
    var desc = getOwnPropertyDescriptor(proto, 'cookie');
    if (!desc || !desc.get) return;
    var nativeGet = desc.get;
    var nativeSet = desc.set;
    var nativeFetch = win.fetch && weakMapGet(nativeOf, win.fetch) || win.fetch;
    // the session's own names: a page of another session can write a cookie for the whole proxy
    // domain (with a Document cookie setter of a frame the runtime is not in), which every
    // session's requests would carry, but it knows no other session id. Where the browser keeps
    // __Host- cookies (https, and localhost names), the prefix stops a page of this session from
    // planting them for its other origins: the browser refuses a __Host- cookie with a Domain
    // (the proxy computes the same names: proxy/cookie_sync.py)
    var domain = ctx.codec.domain;
    var hostOnly = ctx.codec.scheme === 'https' || domain === 'localhost' || endsWith(domain, '.localhost');
    var SCRIPT_COOKIE = (hostOnly ? '__Host-cbjs_' : '__cbjs_') + ctx.codec.sid;
    var VIEW_COOKIE = (hostOnly ? '__Host-cbjv_' : '__cbjv_') + ctx.codec.sid;

    function upstreamURL() {
      return mapper.toUpstream(win.location.href) || ctx.cfg.origin + '/';
    }
    function pathMatches(path, cookiePath) {
      if (path === cookiePath) return true;
      if (!startsWith(path, cookiePath)) return false;
      return endsWith(cookiePath, '/') || path[cookiePath.length] === '/';
    }
    // the proxy keeps the jar's script-visible cookies of this origin in the browser cookie
    // __cbjv_{sid} (proxy/cookie_sync.py): a cookie that a fetch's answer sets shows at once, and a page
    // the browser had cached shows the jar as it is now. Writes still on their way to the jar
    // (in __cbjs_{sid}) stay on top of it.
    var lastView = null;
    function nativeCookie(name) {
      var current = '; ' + apply(nativeGet, doc, []);
      var at = strIndexOf(current, '; ' + name + '=');
      if (at < 0) return null;
      var start = at + name.length + 3;
      var end = strIndexOf(current, ';', start);
      return strSlice(current, start, end < 0 ? current.length : end);
    }
    // the browser's own XMLHttpRequest, as it was before any script of the page could wrap it
    var XHR = win.XMLHttpRequest;
    var xhrOpen = weakMapGet(nativeOf, XHR.prototype.open) || XHR.prototype.open;
    var xhrHeader = XHR.prototype.setRequestHeader;
    var xhrSend = XHR.prototype.send;
    var xhrText = getter(XHR.prototype, 'responseText');
    function askView() { // too large for a cookie: the proxy says (a synchronous request, rare)
      var xhr = new XHR();
      apply(xhrOpen, xhr, ['POST', '/__cobrowse/cookies', false]);
      apply(xhrHeader, xhr, ['Content-Type', 'application/json']);
      apply(xhrSend, xhr, [JSONstringify({ url: upstreamURL(), cookies: [] })]);
      var got = JSONparse(xhrText(xhr)).cookies;
      var list = [];
      for (var i = 0; i < got.length; i++) push(list, [got[i].name, got[i].value, got[i].path, got[i].expires]);
      return list;
    }
    function refresh() {
      var raw = nativeCookie(VIEW_COOKIE);
      if (raw === null || raw === lastView) return;
      lastView = raw;
      var list = raw[0] === '!' ? askView() : JSONparse(decodeURIComponent_(raw));
      if (!isArray(list)) return;
      var path = new NativeURL(upstreamURL()).pathname;
      var next = [];
      for (var i = 0; i < list.length; i++) {
        var c = list[i];
        if (isArray(c) && typeof c[0] === 'string' && typeof c[1] === 'string' && typeof c[2] === 'string' &&
            pathMatches(path, c[2])) {
          push(next, { name: c[0], value: c[1], path: c[2], expires: typeof c[3] === 'number' ? c[3] * 1000 + ctx.skew : null });
        }
      }
      arrSplice(ctx.cookies, 0, ctx.cookies.length);
      for (i = 0; i < next.length; i++) push(ctx.cookies, next[i]);
      var pending = [];
      try { pending = JSONparse(decodeURIComponent_(nativeCookie(SCRIPT_COOKIE) || '%5B%5D')); } catch (e) { pending = []; }
      if (isArray(pending)) for (i = 0; i < pending.length; i++) if (typeof pending[i] === 'string') write(pending[i], true);
    }
    // a cookie whose Max-Age or Expires has passed is gone from document.cookie at once, as in a
    // browser (it showed until the next answer of the proxy brought a new view)
    function dropExpired() {
      var now = dateNow();
      for (var i = ctx.cookies.length - 1; i >= 0; i--) {
        var until = ctx.cookies[i].expires;
        if (typeof until === 'number' && until <= now) arrSplice(ctx.cookies, i, 1);
      }
    }
    function fresh() { try { refresh(); } catch (e) { /* keep what we have */ } dropExpired(); }
    function view() {
      fresh();
      var parts = [];
      for (var i = 0; i < ctx.cookies.length; i++) {
        var c = ctx.cookies[i];
        push(parts, c.name === '' ? c.value : c.name + '=' + c.value);
      }
      return arrJoin(parts, '; ');
    }
    function write(raw, fromPeer) {
      var semi = strIndexOf(raw, ';');
      var pair = semi < 0 ? raw : strSlice(raw, 0, semi);
      var eq = strIndexOf(pair, '=');
      var name = eq < 0 ? '' : strTrim(strSlice(pair, 0, eq));
      var value = eq < 0 ? strTrim(pair) : strTrim(strSlice(pair, eq + 1));
      // the proxy's own cookie names are not the page's
      if (startsWith(name, '__cb') || startsWith(name, '__Host-cbj')) return;
      var upstream = new NativeURL(upstreamURL());
      var host = urlHostname(upstream);
      var path = new NativeURL(upstreamURL()).pathname;
      var expired = false;
      var visible = true;
      var cookiePath = null;
      var attrs = semi < 0 ? '' : strSlice(raw, semi + 1);
      var i = 0;
      var maxAgeSeen = false;
      var expiresAt = null; // ms since the epoch, for a cookie that is not a session cookie
      while (i < attrs.length) {
        var j = strIndexOf(attrs, ';', i);
        if (j < 0) j = attrs.length;
        var av = strSlice(attrs, i, j);
        var aeq = strIndexOf(av, '=');
        var key = strLower(strTrim(aeq < 0 ? av : strSlice(av, 0, aeq)));
        var val = aeq < 0 ? '' : strTrim(strSlice(av, aeq + 1));
        if (key === 'httponly') return; // a script cannot set an HttpOnly cookie
        if (key === 'secure' && urlProtocol(upstream) !== 'https:') return;
        if (key === 'max-age' && val !== '') {
          var seconds = NumberCtor(val);
          if (seconds === seconds) { maxAgeSeen = true; expired = seconds <= 0; expiresAt = dateNow() + seconds * 1000; }
        } else if (key === 'expires' && !maxAgeSeen) {
          var when = dateParse(val);
          if (when === when) { expired = when <= dateNow(); expiresAt = when; }
        } else if (key === 'domain' && val !== '') {
          var d = strLower(val);
          if (d[0] === '.') d = strSlice(d, 1);
          if (host !== d && !endsWith(host, '.' + d)) return; // the jar would reject it
          // nor a public suffix (Domain=github.io from alice.github.io: bob.github.io's too), as
          // the jar (rewriter/cookies.py); from the suffix's own host it is that host's cookie
          if (host !== d) for (var pd = 0; pd < ctx.publicDomains.length; pd++) if (ctx.publicDomains[pd] === d) return;
        } else if (key === 'path' && val[0] === '/') {
          cookiePath = val;
          visible = pathMatches(path, val);
        }
        i = j + 1;
      }
      if (cookiePath === null) { // RFC 6265 default-path: the directory of the document's path
        var slash = strLastIndexOf(path, '/');
        cookiePath = slash <= 0 ? '/' : strSlice(path, 0, slash);
      }
      // a cookie is its name and path (a path the proxy did not say matches any); a new one goes
      // after every cookie of a path as long or longer, as browsers order document.cookie
      var index = -1;
      for (var k = 0; k < ctx.cookies.length; k++) {
        var known = ctx.cookies[k];
        if (known.name === name && (known.path === null || known.path === cookiePath)) { index = k; break; }
      }
      if (expired) { if (index >= 0) arrSplice(ctx.cookies, index, 1); }
      else if (visible) {
        var entry = { name: name, value: value, path: cookiePath, expires: expiresAt };
        if (index >= 0) ctx.cookies[index] = entry;
        else {
          var at = 0;
          for (var m = 0; m < ctx.cookies.length; m++) {
            var other = ctx.cookies[m].path;
            if ((other === null ? 1 : other.length) >= cookiePath.length) at = m + 1;
          }
          arrSplice(ctx.cookies, at, 0, entry);
        }
      }
      if (fromPeer) return;
      persist(raw);
      guard(function () { if (channel) channel.postMessage(raw); });
    }
    function persist(raw) {
      // 1. __cbjs_{sid}: travels with the very next request, even if the page navigates away at once
      guard(function () {
        var current = apply(nativeGet, doc, []);
        var list = [];
        var at = strIndexOf('; ' + current, '; ' + SCRIPT_COOKIE + '=');
        if (at >= 0) {
          var start = at + SCRIPT_COOKIE.length + 1;
          var end = strIndexOf(current, ';', start);
          try { list = JSONparse(decodeURIComponent_(strSlice(current, start, end < 0 ? current.length : end))); } catch (e) { list = []; }
          if (!isArray(list)) list = [];
        }
        push(list, raw);
        var encoded = encodeURIComponent_(JSONstringify(list));
        while (encoded.length > 3800 && list.length > 1) { // the POST below still carries the dropped ones
          arrSplice(list, 0, 1);
          encoded = encodeURIComponent_(JSONstringify(list));
        }
        apply(nativeSet, doc, [SCRIPT_COOKIE + '=' + encoded + '; Path=/; SameSite=Lax' + (hostOnly ? '; Secure' : '')]);
      });
      // 2. the POST, for requests that carry no cookies
      guard(function () {
        var body = JSONstringify({ url: upstreamURL(), cookies: [raw] });
        var p = apply(nativeFetch, win, ['/__cobrowse/cookies', {
          method: 'POST', keepalive: true, credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json' }, body: body
        }]);
        if (p && p.catch) p.catch(noop);
      });
    }
    var get = function () { try { return view(); } catch (e) { return ''; } };
    var set = function (value) { try { write(StringCtor(value), false); } catch (e) { /* never throws */ } };
    disguise(get, nativeGet);
    disguise(set, nativeSet);
    defineProperty(proto, 'cookie', { get: get, set: set, enumerable: desc.enumerable, configurable: desc.configurable });

    // other documents of this proxy origin (frames, tabs) see a write at once
    var channel = null;
    guard(function () {
      // only the document the runtime script ran in: adopted about:blank frames share its copy
      if (!win.BroadcastChannel || win !== global) return;
      channel = new win.BroadcastChannel('__cobrowse_cookies');
      channel.onmessage = function (event) {
        try { if (typeof event.data === 'string') write(event.data, true); } catch (e) { /* keep */ }
      };
    });

    // the async Cookie Store API shows the same jar
    guard(function () {
      var store = win.CookieStore && win.CookieStore.prototype;
      var PromiseCtor = win.Promise;
      if (!store) return;
      function entry(c) { return { name: c.name, value: c.value, domain: null, path: '/', expires: typeof c.expires === 'number' ? c.expires : null, secure: false, sameSite: 'lax', partitioned: false }; }
      function nameOf(arg) { return arg && typeof arg === 'object' ? arg.name : arg; }
      function replaceMethod(name, impl) {
        wrapMethod(store, name, function () {
          return function () {
            try { return PromiseCtor.resolve(impl(arguments)); } catch (e) { return PromiseCtor.reject(e); }
          };
        });
      }
      replaceMethod('get', function (args) {
        fresh();
        var name = nameOf(args[0]);
        for (var i = 0; i < ctx.cookies.length; i++) {
          if (name === undefined || ctx.cookies[i].name === StringCtor(name)) return entry(ctx.cookies[i]);
        }
        return null;
      });
      replaceMethod('getAll', function (args) {
        fresh();
        var name = nameOf(args[0]);
        var out = [];
        for (var i = 0; i < ctx.cookies.length; i++) {
          if (name === undefined || ctx.cookies[i].name === StringCtor(name)) push(out, entry(ctx.cookies[i]));
        }
        return out;
      });
      replaceMethod('set', function (args) {
        var opts = args[0] && typeof args[0] === 'object' ? args[0] : { name: args[0], value: args[1] };
        var raw = StringCtor(opts.name) + '=' + StringCtor(opts.value === undefined ? '' : opts.value);
        if (opts.path) raw += '; Path=' + StringCtor(opts.path);
        if (opts.domain) raw += '; Domain=' + StringCtor(opts.domain);
        if (typeof opts.expires === 'number') raw += '; Expires=' + new DateCtor(opts.expires).toUTCString();
        write(raw, false);
        return undefined;
      });
      replaceMethod('delete', function (args) {
        var opts = args[0] && typeof args[0] === 'object' ? args[0] : { name: args[0] };
        var raw = StringCtor(opts.name) + '=; Max-Age=0';
        if (opts.path) raw += '; Path=' + StringCtor(opts.path);
        if (opts.domain) raw += '; Domain=' + StringCtor(opts.domain);
        write(raw, false);
        return undefined;
      });
    });
  }

  // ------------------------------------------------------------------------------------------
  // cssPath: the selector scheme shared with the visitor banner (docs/PROTOCOL.md)

  function makeCssPath(win) {
    var doc = win.document;
    var qsa = uncurry(win.Document.prototype.querySelectorAll);
    var escape = win.CSS && win.CSS.escape;
    var localNameOf = getter(win.Element.prototype, 'localName');
    var idOf = getter(win.Element.prototype, 'id');
    var parentOf = getter(win.Node.prototype, 'parentElement');
    var prevOf = getter(win.Element.prototype, 'previousElementSibling');
    var isConnected = getter(win.Node.prototype, 'isConnected');
    var ElementCtor = win.Element;
    return function cssPath(element) {
      try {
        if (!(element instanceof ElementCtor) || !isConnected(element) || element.ownerDocument !== doc) return null;
        var steps = [];
        var node = element;
        while (node) {
          var id = idOf(node);
          if (id !== '') {
            var selector = '#' + apply(escape, win.CSS, [id]);
            if (qsa(doc, selector).length === 1) { push(steps, selector); break; }
          }
          if (node === doc.documentElement) { push(steps, 'html'); break; }
          var tag = localNameOf(node);
          var k = 1;
          for (var sib = prevOf(node); sib; sib = prevOf(sib)) if (localNameOf(sib) === tag) k++;
          push(steps, tag + ':nth-of-type(' + k + ')');
          node = parentOf(node);
        }
        if (!node) return null; // not under the document element
        var ordered = [];
        for (var i = steps.length - 1; i >= 0; i--) push(ordered, steps[i]);
        return arrJoin(ordered, ' > ');
      } catch (e) {
        return null;
      }
    };
  }

  // ------------------------------------------------------------------------------------------
  // the bridge with the agent's virtual browser (docs/PROTOCOL.md)

  function installBridge(win, ctx, mapper, dom, cssPath) {
    var doc = win.document;
    var parent = win.parent;
    var consoleOrigin = ctx.consoleOrigin;
    // a frame whose parent is a proxied page has no console to talk to (where the browser says)
    var ancestors = null;
    try { ancestors = win.location.ancestorOrigins; } catch (e) { ancestors = null; }
    // ("null" when the frame's referrer policy hides it: unknown, so the console may be there)
    var framed = parent && parent !== win &&
      !(ancestors && ancestors.length && ancestors[0] !== consoleOrigin && ancestors[0] !== 'null');
    var addEventListener = uncurry(win.EventTarget.prototype.addEventListener);
    var messageOrigin = getOwnPropertyDescriptor(win.MessageEvent.prototype, 'origin');
    var nativeOriginGet = weakMapGet(nativeOf, messageOrigin.get) || messageOrigin.get;
    var messageSource = getter(win.MessageEvent.prototype, 'source');
    var messageData = getter(win.MessageEvent.prototype, 'data');
    var stopImmediate = uncurry(win.Event.prototype.stopImmediatePropagation);
    var preventDefault = uncurry(win.Event.prototype.preventDefault);
    var scrollTo = win.scrollTo;
    var state = { mode: 'none', follow: false, lastPointer: 0, pointerTimer: null, expected: null, lastScroll: 0, scrollTimer: null };
    var held = new WeakMapCtor(); // field -> the state the agent's edits are put back to (putBack)

    function post(message) {
      if (!framed || !consoleOrigin) return;
      try {
        message.cobrowse = 1;
        parent.postMessage(message, consoleOrigin);
      } catch (e) { /* parent gone */ }
    }
    function upstreamURL() { return mapper.toUpstream(win.location.href) || win.location.href; }
    function title() { try { return StringCtor(doc.title || ''); } catch (e) { return ''; } }

    var lastNavigated = null;
    function navigated() {
      var url = upstreamURL();
      var t = title();
      var key = url + '\n' + t;
      if (key === lastNavigated) return;
      lastNavigated = key;
      post({ type: 'navigated', url: url, title: t });
    }
    ctx.setNavigatedHook(navigated);
    addEventListener(win, 'popstate', function () { navigated(); }, true);
    addEventListener(win, 'hashchange', function () { navigated(); }, true);
    // The page has begun (its body is not parsed yet): what the console drew over the page before
    // goes now, not at "ready" (the page shows before it is ready; the agent may draw on it then).
    post({ type: 'loading', url: upstreamURL() });
    function ready() {
      lastNavigated = upstreamURL() + '\n' + title();
      post({ type: 'ready', url: upstreamURL(), title: title() });
      postPosition();
    }
    if (doc.readyState === 'loading') addEventListener(doc, 'DOMContentLoaded', function () { ready(); }, true);
    else setTimeout_(ready, 0);

    // ---- overlay (highlight box, visitor pointer), in a closed shadow root
    var overlay = null;
    function layer() {
      if (overlay && overlay.host.isConnected) return overlay;
      var host = doc.createElement('cobrowse-overlay');
      host.setAttribute('data-cobrowse-ui', '1');
      host.setAttribute('style', 'position:absolute;left:0;top:0;width:0;height:0;overflow:visible;z-index:2147483647;pointer-events:none;');
      var root = host.attachShadow({ mode: 'closed' });
      var box = doc.createElement('div');
      box.setAttribute('style', 'position:absolute;display:none;box-sizing:border-box;border:3px solid #ff6a00;border-radius:3px;background:rgba(255,106,0,.12);pointer-events:none;');
      var dot = doc.createElement('div');
      dot.setAttribute('style', 'position:absolute;display:none;width:14px;height:14px;margin:-7px 0 0 -7px;border-radius:50%;background:#1a73e8;border:2px solid #fff;box-shadow:0 0 4px rgba(0,0,0,.5);pointer-events:none;');
      root.appendChild(box);
      root.appendChild(dot);
      doc.documentElement.appendChild(host);
      overlay = { host: host, box: box, dot: dot };
      return overlay;
    }
    var highlighted = null;
    function drawHighlight() {
      if (!highlighted) return;
      var l = layer();
      var r = highlighted.getBoundingClientRect();
      l.box.style.left = (r.left + win.scrollX) + 'px';
      l.box.style.top = (r.top + win.scrollY) + 'px';
      l.box.style.width = r.width + 'px';
      l.box.style.height = r.height + 'px';
      l.box.style.display = 'block';
    }
    function highlight(selector) {
      var el = null;
      try { el = doc.querySelector(StringCtor(selector)); } catch (e) { el = null; }
      highlighted = el;
      if (el) drawHighlight(); else if (overlay) overlay.box.style.display = 'none';
    }
    function clear() {
      highlighted = null;
      if (overlay) { overlay.box.style.display = 'none'; overlay.dot.style.display = 'none'; }
    }
    addEventListener(win, 'resize', function () { try { drawHighlight(); } catch (e) { /* keep */ } }, true);

    function find(selector) {
      try { return doc.querySelector(StringCtor(selector)); } catch (e) { return null; }
    }
    var elementScrollTo = win.Element.prototype.scrollTo;
    function applyScroll(msg) {
      var x = NumberCtor(msg.x) || 0;
      var y = NumberCtor(msg.y) || 0;
      if (typeof msg.target === 'string') { // an element the visitor scrolled, not the page
        var box = find(msg.target);
        if (box) apply(elementScrollTo, box, [{ left: x, top: y, behavior: 'instant' }]);
        return;
      }
      var anchor = msg.anchor;
      if (anchor && typeof anchor.selector === 'string') {
        var el = find(anchor.selector);
        if (el) {
          y = el.getBoundingClientRect().top + win.scrollY - (NumberCtor(anchor.offset) || 0);
        }
      }
      apply(scrollTo, win, [{ left: x, top: y, behavior: 'instant' }]);
      state.expected = { x: win.scrollX, y: win.scrollY };
    }
    function applyField(msg) {
      var el = find(msg.selector);
      if (!el) return;
      var masked = msg.masked === true || dom.isMasked(el);
      var tag = el.localName;
      if (masked) {
        dom.maskElement(el); // the mask is shown, and the page is told nothing
        return;
      } else if (tag === 'input' && (el.type === 'checkbox' || el.type === 'radio')) {
        el.checked = msg.checked === true || msg.value === true;
      } else if (tag === 'input' || tag === 'textarea' || tag === 'select') {
        el.value = msg.value === undefined || msg.value === null ? '' : StringCtor(msg.value);
      } else if (el.isContentEditable) {
        el.textContent = msg.value === undefined || msg.value === null ? '' : StringCtor(msg.value);
      } else {
        return;
      }
      if (weakMapGet(held, el)) weakMapSet(held, el, { value: el.value, checked: !!el.checked }); // (see putBack)
      el.dispatchEvent(new win.Event('input', { bubbles: true }));
    }
    function visitorPointer(msg) {
      var l = layer();
      l.dot.style.left = (NumberCtor(msg.x) || 0) + 'px';
      l.dot.style.top = (NumberCtor(msg.y) || 0) + 'px';
      l.dot.style.display = 'block';
    }
    var MODES = { none: true, pointer: true, highlight: true };
    var handlers = {
      scroll: applyScroll,
      field: applyField,
      highlight: function (msg) { highlight(msg.selector); },
      clear: function () { clear(); },
      mode: function (msg) { if (typeof msg.mode === 'string' && hasOwn(MODES, msg.mode)) state.mode = msg.mode; },
      follow: function (msg) { state.follow = msg.on === true; },
      'visitor-pointer': visitorPointer
    };

    addEventListener(win, 'message', function (event) {
      try {
        if (!framed || !consoleOrigin) return;
        if (messageSource(event) !== parent) return;
        if (apply(nativeOriginGet, event, []) !== consoleOrigin) return;
        var msg = messageData(event);
        if (!msg || typeof msg !== 'object' || msg.cobrowse !== 1 || typeof msg.type !== 'string') return;
        stopImmediate(event); // the page's own listeners never see the bridge
        if (hasOwn(handlers, msg.type)) handlers[msg.type](msg);
      } catch (e) { /* never throws */ }
    }, true);

    // ---- the agent's mouse and scrolling
    addEventListener(win, 'mousemove', function (event) {
      try {
        if (state.mode !== 'pointer') return;
        state.x = event.pageX;
        state.y = event.pageY;
        var now = dateNow();
        var send = function () {
          state.lastPointer = dateNow();
          state.pointerTimer = null;
          if (state.mode === 'pointer') post({ type: 'agent-pointer', x: state.x, y: state.y });
        };
        if (now - state.lastPointer >= 33) send();
        else if (!state.pointerTimer) {
          state.pointerTimer = setTimeout_(function () { try { send(); } catch (e) { /* keep */ } }, 33 - (now - state.lastPointer));
        }
      } catch (e) { /* keep */ }
    }, { capture: true, passive: true });
    // The agent using the page (clicks, keys, the wheel, a touch): the console counts it as the
    // session's activity, so that a session does not end idle under an agent browsing with Follow
    // off while the visitor reads. Trusted input only, one message every 5 s at most.
    var lastInput = -1e9;
    var onAgentInput = function (event) {
      try {
        if (!event.isTrusted) return;
        var now = dateNow();
        if (now - lastInput < 5000) return;
        lastInput = now;
        post({ type: 'agent-input' });
      } catch (e) { /* keep */ }
    };
    var inputEvents = ['pointerdown', 'keydown', 'wheel', 'touchstart'];
    for (var ie = 0; ie < inputEvents.length; ie++) {
      addEventListener(win, inputEvents[ie], onAgentInput, { capture: true, passive: true });
    }
    addEventListener(win, 'click', function (event) {
      try {
        if (state.mode !== 'highlight' || !event.isTrusted) return;
        preventDefault(event);
        stopImmediate(event);
        var selector = cssPath(event.target);
        if (selector) { highlight(selector); post({ type: 'agent-click-highlight', selector: selector }); }
      } catch (e) { /* keep */ }
    }, true);
    // ---- links and forms aimed at the window above (target _top or _parent): in the view that is
    // the agent's whole virtual browser, which the view's frame may not navigate (its sandbox, so
    // that a frame-busting script cannot take the console away): they load in the frame instead,
    // as they load in the visitor's window. The target becomes _self for the moment the browser
    // reads it (decided in the capture phase: a page handler that stops the event does not keep
    // it aimed above; one that prevents it still prevents it), and for a script's form.submit().
    function aimedAbove(target) {
      var t = StringCtor(target || '').toLowerCase();
      return t === '_top' || t === '_parent';
    }
    function baseTarget() {
      var base = doc.querySelector('base[target]');
      return base ? base.getAttribute('target') : '';
    }
    function ownTarget(el, attr) { return el.hasAttribute(attr) ? el.getAttribute(attr) : null; }
    function toSelf(holder, attr) { // true when it was aimed above (and is _self until the next task)
      var before = ownTarget(holder, attr);
      if (!aimedAbove(before === null ? baseTarget() : before)) return false;
      holder.setAttribute(attr, '_self');
      setTimeout_(function () {
        try {
          if (before === null) holder.removeAttribute(attr); else holder.setAttribute(attr, before);
        } catch (e) { /* keep */ }
      }, 0);
      return true;
    }
    function formHolder(form, submitter) {
      return submitter && ownTarget(submitter, 'formtarget') !== null ? [submitter, 'formtarget'] : [form, 'target'];
    }
    if (framed && consoleOrigin) {
      addEventListener(win, 'click', function (event) {
        try {
          if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
          var el = event.target;
          var link = el && el.closest ? el.closest('a[href], area[href]') : null;
          if (link) toSelf(link, 'target');
        } catch (e) { /* keep */ }
      }, true);
      addEventListener(win, 'submit', function (event) {
        try {
          var holder = formHolder(event.target, event.submitter);
          toSelf(holder[0], holder[1]);
        } catch (e) { /* keep */ }
      }, true);
      guard(function () {
        wrapMethod(win.HTMLFormElement.prototype, 'submit', function (native) {
          return function submit() {
            try { if (this instanceof win.HTMLFormElement) toSelf(this, 'target'); } catch (e) { /* keep */ }
            return apply(native, this, arguments);
          };
        });
      });
    }

    // ---- the agent's edits of the page's fields, while the view follows the visitor
    // The view shows the visitor's fields as the visitor fills them: what the agent typed, ticked
    // or chose there would reach nobody (and the visitor's next keystroke would undo it). While
    // Follow is on such an edit does not happen, and the console is told (it says why); with
    // Follow off the page is the agent's own (a search box, to find a page to send the visitor to).
    function refuseEdit(event) {
      if (!state.follow || !event.isTrusted) return;
      preventDefault(event);
      post({ type: 'edit-refused' });
    }
    function isToggle(el) {
      return !!el && el.localName === 'input' && (el.type === 'checkbox' || el.type === 'radio');
    }
    function isSelect(el) { return !!el && el.localName === 'select'; }
    function isField(el) {
      return !!el && (el.localName === 'input' || el.localName === 'textarea' || el.localName === 'select');
    }
    function fieldState(el) { return { value: el.value, checked: !!el.checked }; }
    function sameState(a, b) { return a.value === b.value && a.checked === b.checked; }
    function setFieldState(el, was) {
      if (isToggle(el)) el.checked = was.checked; else el.value = was.value;
    }
    if (framed && consoleOrigin) {
      addEventListener(win, 'beforeinput', function (event) {
        try { refuseEdit(event); } catch (e) { /* keep */ }
      }, true);
      addEventListener(win, 'click', function (event) {
        try { if (isToggle(event.target)) refuseEdit(event); } catch (e) { /* keep */ }
      }, true);
      addEventListener(win, 'mousedown', function (event) { // (a select's list would open)
        try { if (isSelect(event.target)) refuseEdit(event); } catch (e) { /* keep */ }
      }, true);
      addEventListener(win, 'keydown', function (event) { // (a select changes with arrows, letters)
        try {
          if (isSelect(event.target) && event.key !== 'Tab' && event.key !== 'Escape') refuseEdit(event);
        } catch (e) { /* keep */ }
      }, true);
      // What no event lets us prevent (an input method's composition, a range slider, a date or
      // colour picker) is put back: as the field was when it took the focus, or as the visitor's
      // last value made it (applyField), once the edit is done.
      addEventListener(win, 'focusin', function (event) {
        try { if (isField(event.target)) weakMapSet(held, event.target, fieldState(event.target)); } catch (e) { /* keep */ }
      }, true);
      var putBack = function (event) {
        try {
          var el = event.target;
          if (!state.follow || !event.isTrusted || event.isComposing || !isField(el)) return;
          var was = weakMapGet(held, el);
          if (!was || sameState(was, fieldState(el))) return;
          setFieldState(el, was);
          post({ type: 'edit-refused' });
        } catch (e) { /* keep */ }
      };
      addEventListener(win, 'input', putBack, true);
      addEventListener(win, 'compositionend', putBack, true);
      addEventListener(win, 'change', putBack, true);
    }
    // Where the window is scrolled, whatever scrolled it (the console keeps its ink on the page as
    // it scrolls): at most one message every 16 ms, the last position always sent, none when the
    // window did not move (an element scrolled); and once at "ready".
    var positionTimer = null, lastPosition = null;
    function postPosition() {
      positionTimer = null;
      var x = win.scrollX, y = win.scrollY;
      if (lastPosition && lastPosition.x === x && lastPosition.y === y) return;
      lastPosition = { x: x, y: y };
      post({ type: 'position', x: x, y: y });
    }
    addEventListener(win, 'scroll', function () {
      if (!positionTimer) positionTimer = setTimeout_(postPosition, 16);
    }, { capture: true, passive: true });
    addEventListener(win, 'scroll', function () {
      try {
        var x = win.scrollX;
        var y = win.scrollY;
        if (state.expected && state.expected.x === x && state.expected.y === y) { state.expected = null; return; }
        state.expected = null;
        if (state.follow) return;
        if (state.scrollTimer) return;
        state.scrollTimer = setTimeout_(function () {
          state.scrollTimer = null;
          if (!state.follow) post({ type: 'scrolled', x: win.scrollX, y: win.scrollY });
        }, 50);
      } catch (e) { /* keep */ }
    }, { capture: true, passive: true });
  }

  // ------------------------------------------------------------------------------------------
  // install

  function publicAPI(win, ctx, mapper, cssPath, init) {
    var api = freeze({
      version: 1,
      cssPath: cssPath || function () { return null; },
      toProxy: function (url) { return mapper ? mapper.toProxy(url) : url; },
      toUpstream: function (url) { return mapper ? mapper.toUpstream(url) : null; },
      init: init || function () { return false; },
      // the empty document a pop-up of this page is moved to asks for the runtime (openedWindow)
      adopt: function (child) { return adoptBlank(child, ctx); }
    });
    defineProperty(win, '__cobrowse', { value: api, writable: false, enumerable: false, configurable: false });
  }

  function documentMapper(win, ctx) {
    var cache = { baseURI: null, base: null };
    return makeMapper(ctx.codec, function () {
      var baseURI = win.document.baseURI;
      if (baseURI !== cache.baseURI) {
        var up = null;
        try { up = ctx.codec.unmapParsed(new NativeURL(baseURI)); } catch (e) { up = null; }
        cache.baseURI = baseURI;
        cache.base = up || ctx.cfg.origin + '/';
      }
      return cache.base;
    });
  }

  // document.domain: a page that relaxes it to its site (`document.domain = "shop.example"` on
  // www.shop.example, legacy code) names a domain the proxy's host does not end with, and the
  // browser threw, stopping the page's script. A value the upstream host would accept is a
  // no-op here, as it is in today's browsers (origin-keyed); any other still throws, natively.
  function installDomain(win, ctx) {
    var proto = win.Document.prototype;
    var desc = getOwnPropertyDescriptor(proto, 'domain');
    if (!desc || !desc.set) return;
    var nativeSet = desc.set;
    var hosts = [];
    try { hosts = [new NativeURL(ctx.cfg.origin).hostname.toLowerCase(), win.location.hostname.toLowerCase()]; } catch (e) { return; }
    function takes(host, v) {
      return v === host || (host.length > v.length && host.slice(-v.length - 1) === '.' + v && v.indexOf('.') > 0);
    }
    // (the proxy's host too: `document.domain = document.domain` reads it; and in the agent's
    // view, a sandboxed frame, the browser's setter throws whatever the value)
    var set = function (value) {
      var v = StringCtor(value).toLowerCase();
      if (v && (takes(hosts[0], v) || takes(hosts[1], v))) return;
      return apply(nativeSet, this, [value]);
    };
    disguise(set, nativeSet);
    defineProperty(proto, 'domain', { get: desc.get, set: set, enumerable: desc.enumerable, configurable: desc.configurable });
  }

  function installWindow(win, ctx, again) {
    // (`again`: a window whose new document has a new global, behind the same WindowProxy)
    if (!again && weakSetHas(installed, win)) return;
    weakSetAdd(installed, win);
    var mapper = documentMapper(win, ctx);
    guard(function () { patchToString(win); });
    guard(function () { installNetwork(win, ctx, mapper); });
    var dom = null;
    guard(function () { dom = installDocument(win, ctx, mapper); });
    guard(function () { installCookies(win, ctx, mapper); });
    guard(function () { installDomain(win, ctx); });
    var cssPath = null;
    guard(function () { cssPath = makeCssPath(win); });
    if (!ctx.setNavigatedHook) ctx.setNavigatedHook = noop;
    if (dom && cssPath && win === global) guard(function () { installBridge(win, ctx, mapper, dom, cssPath); });
    guard(function () { publicAPI(win, ctx, mapper, cssPath, null); });
  }

  // a same-origin window (about:blank iframe, popup) reached by a script: give it the runtime
  function adoptWindow(child, ctx) {
    try {
      if (!child || weakSetHas(installed, child)) return;
      if (child.__cobrowse) { weakSetAdd(installed, child); return; } // its own copy (a proxied page)
      var href = child.location.href; // throws when cross-origin
      if (href !== 'about:blank' && href !== 'about:srcdoc') return;
      installWindow(child, ctx);
    } catch (e) { /* cross-origin: it has its own runtime */ }
  }

  // The document a pop-up's first document was replaced by (openedWindow), else null: a page
  // that kept the first one (`const d = w.document`) and writes into it after a wait (a print
  // or report window that loads its data first) writes into the pop-up's document as it is.
  function movedTo(document) {
    try {
      var child = weakMapGet(movedFrom, document);
      if (!child) return null;
      var now = child.document;
      return now && now !== document ? now : null;
    } catch (e) { return null; } // (closed)
  }

  // a pop-up this runtime moved to an empty document (openedWindow), asking from inside it
  function adoptBlank(child, ctx) {
    try {
      if (!ctx || !child || !weakSetHas(pendingBlank, child) || hasOwn(child, '__cobrowse')) return false;
      if (child.location.href !== 'about:blank') return false;
      installWindow(child, ctx, true);
      return true;
    } catch (e) { return false; }
  }

  function installWorker(cfg) {
    var ctx = makeContext(cfg);
    var base = typeof cfg.base === 'string' ? cfg.base : cfg.origin + '/';
    var mapper = null;
    // the worker's own URL (a proxy URL) gives the base, whichever script of it started us
    mapper = makeMapper(ctx.codec, function () {
      var own = null;
      try { own = mapper.toUpstream(String(global.location.href)); } catch (e) { /* keep */ }
      return own || base;
    });
    guard(function () { patchToString(global); });
    guard(function () { installNetwork(global, ctx, mapper); });
    return mapper;
  }

  guard(function () {
    var doc = global.document;
    if (doc) {
      var script = doc.currentScript;
      var text = script && script.getAttribute('data-cobrowse-config');
      if (!text) return;
      var cfg = JSONparse(text);
      var ctx = makeContext(cfg);
      if (script.parentNode) script.parentNode.removeChild(script);
      if (hasOwn(global, '__cobrowse')) return; // the opener's runtime is here already (adoptBlank)
      installWindow(global, ctx);
    } else {
      // a worker: the prelude the proxy puts before its script calls __cobrowse.init(config)
      var done = false;
      var api = {};
      var init = function (cfg) {
        if (done) return false;
        done = true;
        var mapper = installWorker(cfg);
        api.mapper = mapper;
        return true;
      };
      publicAPI(global, null, {
        toProxy: function (u) { return api.mapper ? api.mapper.toProxy(u, { absolute: true }) : u; },
        toUpstream: function (u) { return api.mapper ? api.mapper.toUpstream(u) : null; }
      }, null, init);
    }
  });
})(typeof globalThis !== 'undefined' ? globalThis : self);
