"""Page helpers for the end-to-end tests: the visitor on the shop, the agent in the console."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import BrowserContext, Frame, Page, expect

from tests.e2e.harness import Stack, wait_until

TIMEOUT_MS = 15000


@dataclass
class Frames:
    """Every WebSocket frame a page sent or received (text only)."""

    texts: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def on_ws(ws: Any) -> None:
            ws.on("framesent", lambda payload: self.texts.append(str(payload)))
            ws.on("framereceived", lambda payload: self.texts.append(str(payload)))

        page.on("websocket", on_ws)

    def wait_for(self, page: Page, text: str, timeout_ms: int = TIMEOUT_MS) -> None:
        """Wait until a recorded frame contains ``text`` (pumping Playwright's events meanwhile)."""
        wait_until(lambda: any(text in t for t in self.texts),
                   lambda: f"a WebSocket frame with {text!r} (last frames: {self.texts[-12:]})",
                   timeout_ms / 1000, page=page)

    def messages(self) -> list[dict[str, Any]]:
        out = []
        for text in self.texts:
            try:
                out.append(json.loads(text))
            except ValueError:
                continue
        return out


@dataclass
class Visitor:
    context: BrowserContext
    page: Page
    frames: Frames

    def dialog(self) -> Any:
        return self.page.get_by_role("dialog")

    def accept(self) -> None:
        dialog = self.dialog()
        expect(dialog).to_be_visible(timeout=TIMEOUT_MS)
        dialog.get_by_role("button", name="Accept").click()
        expect(self.page.get_by_text("Co-browsing with")).to_be_visible(timeout=TIMEOUT_MS)

    def end_button(self) -> Any:
        return self.page.get_by_role("button", name="End co-browsing")


@dataclass
class Agent:
    context: BrowserContext
    page: Page
    frames: Frames

    def row(self) -> Any:
        return self.page.locator("li.visitor").first

    def button(self) -> Any:
        return self.row().locator(".cobrowse-btn")

    def request(self) -> Page:
        """Press co-browse; returns the window the console opened inside the click."""
        expect(self.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        with self.page.expect_popup() as popup:
            self.button().click()
        return popup.value


# Records in window.__notices each text the banner's notice (role=status) shows from now on: a
# notice goes after 4 s, and a loaded machine can take longer than that to look at it.
_RECORD_NOTICES = """() => {
  const root = document.querySelector('[data-cobrowse=banner]').shadowRoot, seen = window.__notices = [];
  new MutationObserver(() => {
    const n = root.querySelector('[role=status]');
    if (n && n.textContent !== seen[seen.length - 1]) seen.push(n.textContent);
  }).observe(root, {childList: true, subtree: true, characterData: true});
}"""


def record_notices(page: Page) -> None:
    """Record, from now on, the notices the banner of ``page`` shows (read by ``wait_for_notice``)."""
    page.evaluate(_RECORD_NOTICES)


def wait_for_notice(page: Page, text: str, timeout_ms: int = TIMEOUT_MS) -> None:
    """Wait until the banner of ``page`` has shown the notice ``text`` (since ``record_notices``)."""
    page.wait_for_function("text => window.__notices.includes(text)", arg=text, timeout=timeout_ms)


# Records in window.__pointerShown whether the agent's pointer has been shown on the visitor's page
# since: it fades 5 s after the agent's last move, and a loaded machine can take longer to look.
_RECORD_POINTER = """() => {
  const root = document.querySelector('[data-cobrowse=banner]').shadowRoot;
  const p = root.querySelector('[data-cobrowse-pointer]');
  window.__pointerShown = p.style.display === 'block';
  new MutationObserver(() => { if (p.style.display === 'block') window.__pointerShown = true; })
    .observe(p, {attributes: true, attributeFilter: ['style']});
}"""


def record_pointer(page: Page) -> None:
    """Record, from now on, whether the agent's pointer shows on ``page`` (``wait_for_pointer``)."""
    page.evaluate(_RECORD_POINTER)


def wait_for_pointer(page: Page, timeout_ms: int = TIMEOUT_MS) -> None:
    """Wait until the agent's pointer has shown on ``page`` (since ``record_pointer``)."""
    page.wait_for_function("() => window.__pointerShown", timeout=timeout_ms)


# The WCAG 2 contrast ratio of an element's text colour on its own background (both as computed,
# the background opaque: a see-through one would need what is behind it).
_CONTRAST = """e => {
  const style = getComputedStyle(e);
  const rgba = (c) => c.match(/[\\d.]+/g).map(Number);
  const luminance = (c) => {
    const [r, g, b] = rgba(c).slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const back = rgba(style.backgroundColor);
  if (back.length > 3 && back[3] < 1) throw new Error("a see-through background: " + style.backgroundColor);
  const [hi, lo] = [luminance(style.color), luminance(style.backgroundColor)].sort((a, b) => b - a);
  return (hi + 0.05) / (lo + 0.05);
}"""


def contrast(locator: Any) -> float:
    """The contrast ratio of ``locator``'s text on its background (WCAG AA asks 4.5 of small text)."""
    return float(locator.evaluate(_CONTRAST))


def open_visitor(browser: Any, stack: Stack, path: str = "/") -> Visitor:
    context = browser.new_context(viewport={"width": 1100, "height": 700})
    page = context.new_page()
    frames = Frames()
    frames.attach(page)
    page.goto(stack.shop.origin + path)
    expect(page.locator("[data-cobrowse=banner]")).to_be_attached(timeout=TIMEOUT_MS)
    return Visitor(context, page, frames)


def open_console(browser: Any, stack: Stack, token: str | None = None) -> Agent:
    """The console in a context of its own, signed in as the stack's agent (or ``token``'s)."""
    return sign_in(browser.new_context(viewport={"width": 1100, "height": 700}), stack, token)


def sign_in(context: BrowserContext, stack: Stack, token: str | None = None) -> Agent:
    """The console in a new page of ``context`` (whose routes the test has set), signed in."""
    page = context.new_page()
    frames = Frames()
    frames.attach(page)
    context.on("page", frames.attach)
    page.goto(stack.console_url)
    page.fill("#token", token or stack.agent_token)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#visitors-panel")).to_be_visible(timeout=TIMEOUT_MS)
    return Agent(context, page, frames)


def view_frame(vb: Page) -> Frame:
    """The proxied page inside the virtual browser."""
    handle = vb.locator("#view").element_handle(timeout=TIMEOUT_MS)
    frame = handle.content_frame()
    assert frame is not None
    return frame
