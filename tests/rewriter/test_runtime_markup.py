"""rewriter/runtime.py without a browser: the injection markup and the asset."""

from __future__ import annotations

import json
from collections.abc import Mapping
from html.parser import HTMLParser
from types import MappingProxyType
from typing import Any

import pytest

from rewriter.exceptions import RewriteError
from rewriter.runtime import (
    RUNTIME_PATH,
    RuntimeConfigError,
    injection_markup,
    prelude_offset,
    runtime_js,
    worker_prelude,
)

CONFIG: dict[str, Any] = {
    "sid": "k3j9x2ab7q",
    "proxyDomain": "cobrowse.localhost",
    "proxyPort": 8001,
    "proxyScheme": "http",
    "origin": "https://shop.example.com",
    "knownOrigins": ["https://shop.example.com", "https://cdn.example"],
    "cookies": [{"name": "sess", "value": "abc"}],
    "masked": [".card-number"],
    "consoleOrigin": "http://cobrowse.localhost:8000",
}


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.data.append(data)


def parse(markup: str) -> _Collect:
    parser = _Collect()
    parser.feed(markup)
    parser.close()
    return parser


def test_markup_is_one_external_script_carrying_the_config() -> None:
    parsed = parse(injection_markup(CONFIG))
    assert [tag for tag, _ in parsed.tags] == ["script"]
    attrs = parsed.tags[0][1]
    assert attrs["src"] == RUNTIME_PATH == "/__cobrowse/runtime.js"
    assert json.loads(attrs["data-cobrowse-config"] or "") == CONFIG
    assert "".join(parsed.data) == ""  # no inline code


@pytest.mark.parametrize(
    "hostile", ["</script><script>alert(1)</script>", "<!--", "\u2028\u2029", '" onload="x', "&amp;&lt;"]
)
def test_hostile_cookie_values_cannot_break_out(hostile: str) -> None:
    config = {**CONFIG, "cookies": [{"name": "c", "value": hostile}]}
    markup = injection_markup(config)
    assert markup.count("<") == 2 and markup.count(">") == 2  # <script ...> and </script>
    assert "\u2028" not in markup and "\u2029" not in markup
    parsed = parse(markup)
    assert len(parsed.tags) == 1
    assert json.loads(parsed.tags[0][1]["data-cobrowse-config"] or "")["cookies"][0]["value"] == hostile


def test_mapping_and_tuple_inputs_are_accepted() -> None:
    config: Mapping[str, Any] = MappingProxyType(
        {
            **CONFIG,
            "knownOrigins": tuple(CONFIG["knownOrigins"]),
            "cookies": (MappingProxyType({"name": "a", "value": "b"}),),
        }
    )
    attr = parse(injection_markup(config)).tags[0][1]["data-cobrowse-config"] or ""
    decoded = json.loads(attr)
    assert decoded["knownOrigins"] == CONFIG["knownOrigins"]
    assert decoded["cookies"] == [{"name": "a", "value": "b"}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sid": "Bad"}, "session id"),
        ({"proxyPort": 0}, "proxyPort"),
        ({"proxyPort": True}, "wrong type"),
        ({"proxyScheme": "ftp"}, "proxyScheme"),
        ({"origin": "https://shop.example.com/path"}, "origin"),
        ({"knownOrigins": ["javascript:alert(1)"]}, "knownOrigins"),
        ({"cookies": [{"name": "a"}]}, "cookies"),
        ({"masked": [3]}, "masked"),
        ({"consoleOrigin": "*"}, "consoleOrigin"),
        ({"unexpected": 1}, "unknown"),
    ],
)
def test_bad_config_is_a_typed_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RuntimeConfigError, match=message) as info:
        injection_markup({**CONFIG, **change})
    assert isinstance(info.value, RewriteError)


def test_missing_required_key() -> None:
    config = dict(CONFIG)
    del config["origin"]
    with pytest.raises(RuntimeConfigError, match="origin"):
        injection_markup(config)


def test_runtime_asset_is_read_once() -> None:
    asset = runtime_js()
    assert asset is runtime_js()
    assert b"data-cobrowse-config" in asset and asset.startswith(b"/*")


def test_a_worker_prelude_is_the_runtime_then_its_start_with_what_a_worker_needs() -> None:
    prelude = worker_prelude({**CONFIG, "base": "https://shop.example.com/js/w.js"})
    assert prelude.startswith(b"\n;" + runtime_js())  # ";": a directive before it is ended
    call = prelude[len(runtime_js()) + 2 :].decode()
    assert call.startswith("\n;self.__cobrowse.init(") and call.endswith(");\n")
    config = json.loads(call[len("\n;self.__cobrowse.init(") : -len(");\n")])
    # no cookies, masks or console: a worker has no document
    assert config == {k: v for k, v in CONFIG.items() if k not in ("cookies", "masked", "consoleOrigin")} | {
        "base": "https://shop.example.com/js/w.js"}
    with pytest.raises(RuntimeConfigError):
        worker_prelude({**CONFIG, "base": 7})


@pytest.mark.parametrize(
    ("script", "head"),
    [
        (b"x()", b""),
        (b'"use strict";\nx()', b'"use strict";'),
        (b"'use strict'\nx()", b"'use strict'"),  # ended by the newline: the prelude's ";" ends it
        (b'/* c */ "use strict"; // c\n"a";x', b'/* c */ "use strict"; // c\n"a";'),
        (b'"abc".length', b""),  # an expression, not a directive
        (b"#!/usr/bin/env node\n'use strict';x", b"#!/usr/bin/env node\n'use strict';"),
        (b"\xef\xbb\xbf'use strict';x", b"\xef\xbb\xbf'use strict';"),
        (b'"unterminated', b""),
        (b"", b""),
    ],
)
def test_a_workers_prelude_goes_after_its_hashbang_and_directives(script: bytes, head: bytes) -> None:
    assert script[: prelude_offset(script)] == head
