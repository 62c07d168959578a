"""Masking: what the account marks private never reaches the agent's view.

Elements matching a masked selector, every password input, and every field whose ``autocomplete``
says it holds a password, a one-time code or a card's number or code, lose their content: children and
text are replaced by a visible mask, and every attribute except a few structural ones is removed
or masked, so no masked text, value or URL is left anywhere in the output.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from cssselect import SelectorError
from lxml import etree
from lxml.cssselect import CSSSelector

from rewriter.exceptions import InvalidSelector

MASK = "\u2022" * 6
MASKED_ATTRIBUTE = "data-cobrowse-masked"
INPUT_TAGS = ("input", "{http://www.w3.org/1999/xhtml}input")
FIELD_TAGS = (*INPUT_TAGS, "textarea", "select", "{http://www.w3.org/1999/xhtml}textarea",
              "{http://www.w3.org/1999/xhtml}select")
# autocomplete tokens of a secret the page may render into a field (a saved card, a code); the
# visitor's banner never sends such a field either (agent_ui/static/banner.js, control_api/masking.py)
SECRET_AUTOCOMPLETE = frozenset({"current-password", "new-password", "one-time-code", "cc-number", "cc-csc"})
# attributes kept on a masked element (layout and identity; nothing a person typed or a URL)
KEPT_ATTRIBUTES = frozenset(
    {"id", "class", "name", "type", "role", "hidden", "disabled", "width", "height", "size", "cols",
     "rows", "colspan", "rowspan", "for", "tabindex", "dir", "lang", "maxlength", "minlength",
     "autocomplete"}
)  # fmt: skip
# attributes whose text is shown to the user: replaced by the mask rather than removed
VALUE_ATTRIBUTES = frozenset({"value", "placeholder", "title", "alt", "aria-label", "label"})


def compile_selectors(selectors: Sequence[str]) -> tuple[etree.XPath, ...]:
    """Compile the masked selectors (password inputs need none). Raises ``InvalidSelector``."""
    compiled: list[etree.XPath] = []
    for selector in selectors:
        try:
            compiled.append(CSSSelector(selector, translator="html"))
        except (SelectorError, etree.XPathError, TypeError) as exc:
            raise InvalidSelector(f"invalid masked selector {selector!r}: {exc}") from exc
    return tuple(compiled)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].lower()


def mask_element(element: etree._Element) -> None:
    """Replace ``element``'s content and revealing attributes by the mask (its tail is kept)."""
    for child in list(element):
        element.remove(child)  # with its tail: text inside the element is content too
    for name in list(element.attrib):
        local = _local(str(name))
        if local in VALUE_ATTRIBUTES:
            element.set(name, MASK)
        elif local not in KEPT_ATTRIBUTES:
            del element.attrib[name]
    tag = _local(element.tag) if isinstance(element.tag, str) else ""
    if tag == "input":
        element.set("value", MASK)
        element.text = None
    elif tag not in {"img", "br", "hr", "wbr", "source", "track", "embed", "area", "col", "meta"}:
        element.text = MASK
    element.set(MASKED_ATTRIBUTE, "")


def _html_like(element: etree._Element) -> bool:
    """Whether the element's tag and attribute names are as the HTML parser makes them: no
    namespace, lower case (what the ``html`` translator's selectors name)."""
    tag = element.tag
    if not isinstance(tag, str):
        return True
    return not tag.startswith("{") and tag == tag.lower() and all(
        str(name) == str(name).lower() for name in element.attrib
    )


def _selected(root: etree._Element, selectors: Sequence[etree.XPath], xml: bool) -> list[etree._Element]:
    """The elements the selectors match. CSS selectors (the ``html`` translator) name elements
    and attributes without a namespace and in lower case, as the HTML parser makes them; an XHTML
    (XML) tree keeps namespaces and case (``foreignObject``, ``data-Pin``), so it is matched on a
    copy whose elements lost their namespaces and whose names are lower case, and the copy's
    elements lead back to the tree's (the same order). Lower case masks more than a browser's
    case-sensitive ``querySelector`` would, never less."""
    if not xml or all(_html_like(e) for e in root.iter()):  # (the HTML parser's names always are)
        return [e for selector in selectors for e in selector(root) if isinstance(e, etree._Element)]
    target = copy.deepcopy(root)
    back = dict(zip(target.iter(), root.iter(), strict=True))
    for element in target.iter():
        if _html_like(element):
            continue
        element.tag = etree.QName(element).localname.lower()
        for name, value in list(element.attrib.items()):
            lowered = str(name).lower() if not str(name).startswith("{") else str(name)
            if lowered != name:
                del element.attrib[name]
                if lowered not in element.attrib:
                    element.set(lowered, value)
    found = [e for selector in selectors for e in selector(target) if isinstance(e, etree._Element)]
    return [back[e] for e in found]


def apply_masks(root: etree._Element, selectors: Sequence[etree.XPath], *, xml: bool = False) -> int:
    """Mask every password input, every field with a secret ``autocomplete`` and every element a
    selector matches; the number masked. ``xml``: a tree the XML parser made (XHTML, SVG), whose
    names may have namespaces and capitals."""
    matched: dict[etree._Element, None] = {}
    for element in root.iter(*FIELD_TAGS):  # the case of the values does not matter
        if _local(str(element.tag)) == "input" and (element.get("type") or "").strip().lower() == "password":
            matched[element] = None
        elif SECRET_AUTOCOMPLETE & set((element.get("autocomplete") or "").lower().split()):
            matched[element] = None
    if selectors:
        for element in _selected(root, selectors, xml):
            matched[element] = None
    for element in matched:
        mask_element(element)
    return len(matched)
