"""Second line of defence for form values: drop a field message the policy masks.

The visitor's banner already keeps masked values in the browser; the server drops any that get
through: password inputs (and fields whose autocomplete says they hold one, or a card's number
or code), a selector equal to a masked selector, and an element (rebuilt from the
message's ``tag`` and ``attrs``) that a masked selector matches on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

from cssselect import GenericTranslator, SelectorError
from lxml import etree

from rewriter.masking import SECRET_AUTOCOMPLETE

_TRANSLATOR = GenericTranslator()
_SAFE_TAG = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
ALWAYS_MASKED_TYPES = frozenset({"password"})


@lru_cache(maxsize=1024)
def _xpath(selector: str) -> etree.XPath | None:
    try:
        return etree.XPath(_TRANSLATOR.css_to_xpath(selector, prefix="self::"))
    except (SelectorError, etree.XPathError, ValueError, TypeError):
        return None


def _element(tag: str, attrs: Mapping[str, str]) -> etree._Element | None:
    tag = (tag or "input").lower()
    if not tag or not set(tag) <= _SAFE_TAG or not tag[0].isalpha():
        return None
    element = etree.Element(tag)
    for name, value in attrs.items():
        try:
            element.set(name.lower(), value)
        except ValueError:
            continue
    return element


def is_masked(
    selector: str,
    input_type: str,
    masked_selectors: Iterable[str],
    tag: str = "",
    attrs: Mapping[str, str] | None = None,
) -> bool:
    if input_type.strip().lower() in ALWAYS_MASKED_TYPES:
        return True
    attrs = dict(attrs or {})
    if (attrs.get("type") or "").strip().lower() in ALWAYS_MASKED_TYPES:
        return True
    # a password a "show password" button made type=text still says what it holds
    if SECRET_AUTOCOMPLETE & set((attrs.get("autocomplete") or "").lower().split()):
        return True
    normalized = " ".join(selector.split())
    element = None
    for masked in masked_selectors:
        if " ".join(masked.split()) == normalized:
            return True
        if element is None:
            element = _element(tag, {**attrs, "type": input_type} if input_type else attrs)
            if element is None:
                continue
        xpath = _xpath(masked)
        if xpath is not None and xpath(element):
            return True
    return False
