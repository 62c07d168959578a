"""Helpers for the proxy's Chromium tests: escaped-request accounting and screenshot comparison."""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

DIFF_JS = """async ([a, b]) => {
  const load = (src) => new Promise((ok, bad) => { const i = new Image(); i.onload = () => ok(i);
                                                  i.onerror = bad; i.src = src; });
  const [ia, ib] = await Promise.all([load(a), load(b)]);
  if (ia.width !== ib.width || ia.height !== ib.height) return 1;
  const px = (img) => { const c = document.createElement('canvas'); c.width = img.width;
    c.height = img.height; const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    return g.getImageData(0, 0, img.width, img.height).data; };
  const da = px(ia), db = px(ib); let diff = 0;
  for (let i = 0; i < da.length; i += 4) {
    if (Math.abs(da[i] - db[i]) + Math.abs(da[i+1] - db[i+1]) + Math.abs(da[i+2] - db[i+2]) > 48) diff++;
  }
  return diff / (da.length / 4);
}"""


def screenshot_difference(browser: Any, png_a: bytes, png_b: bytes) -> float:
    """Fraction of pixels that differ noticeably between two same-size PNG screenshots."""
    page = browser.new_page()
    try:
        urls = ["data:image/png;base64," + base64.b64encode(p).decode() for p in (png_a, png_b)]
        return float(page.evaluate(DIFF_JS, urls))
    finally:
        page.close()


def escaped(urls: list[str], sid: str, domain: str, port: int) -> list[str]:
    """Requests that did not go to a proxy origin of session ``sid``."""
    out = []
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("data", "blob", "about", "chrome-error"):
            continue
        host = parts.hostname or ""
        label = host[: -len(domain) - 1] if host.endswith("." + domain) else ""
        ours = label.startswith(sid) and "." not in label and parts.port == port
        if parts.scheme in ("http", "ws") and ours:
            continue
        out.append(url)
    return out
