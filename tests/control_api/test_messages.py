"""The WebSocket message table and the server-side masking of field values."""

from __future__ import annotations

import json

import pytest

from control_api import messages
from control_api.masking import is_masked
from control_api.messages import ProtocolViolation, parse


def test_valid_messages_keep_only_known_fields() -> None:
    msg = parse("visitor", json.dumps({"type": "scroll", "x": 1, "y": 2.5, "evil": "<script>"}), 65536)
    assert msg.type == "scroll"
    assert dict(msg.data) == {"x": 1, "y": 2.5}
    msg = parse(
        "agent", json.dumps({"type": "highlight", "session_id": "k3j9x2ab7q", "selector": "#a"}), 65536
    )
    assert dict(msg.data) == {"session_id": "k3j9x2ab7q", "selector": "#a"}
    box = {"type": "field", "selector": "#gift", "input_type": "checkbox", "checked": False,
           "tag": "input", "attrs": {"id": "gift", "type": "checkbox"}}
    expected = {k: v for k, v in box.items() if k != "type"}
    assert dict(parse("visitor", json.dumps(box), 65536).data) == expected


@pytest.mark.parametrize(
    ("side", "payload", "code"),
    [
        ("visitor", "not json", messages.CLOSE_INVALID),
        ("visitor", "[1]", messages.CLOSE_INVALID),
        ("visitor", '{"type": "teleport"}', messages.CLOSE_INVALID),
        ("visitor", '{"type": "navigate", "url": "https://a.example/"}', messages.CLOSE_INVALID),
        ("agent", '{"type": "page", "url": "https://a.example/"}', messages.CLOSE_INVALID),
        ("agent", '{"type": "pointer", "x": 1, "y": 2}', messages.CLOSE_INVALID),
        ("agent", '{"type": "pointer", "session_id": "BAD", "x": 1, "y": 2}', messages.CLOSE_INVALID),
        ("visitor", '{"type": "scroll", "x": "1", "y": 2}', messages.CLOSE_INVALID),
        ("visitor", '{"type": "scroll", "x": 1e308, "y": 2}', messages.CLOSE_INVALID),
        # integers past float range (math.isfinite raised OverflowError on them)
        pytest.param("visitor", '{"type": "scroll", "x": 1' + "0" * 400 + ', "y": 2}',
                     messages.CLOSE_INVALID, id="huge-int-scroll"),
        pytest.param("visitor", '{"type": "bandwidth", "kbps": 1' + "0" * 400 + "}",
                     messages.CLOSE_INVALID, id="huge-int-bandwidth"),
        pytest.param("agent", '{"type": "draw", "session_id": "k3j9x2ab7q", "points": [[1, -1'
                     + "0" * 400 + "]]}", messages.CLOSE_INVALID, id="huge-int-draw"),
        ("visitor", '{"type": "page", "url": "javascript:alert(1)"}', messages.CLOSE_INVALID),
        ("agent", '{"type": "draw", "session_id": "k3j9x2ab7q", "points": []}', messages.CLOSE_INVALID),
        ("agent", "[" * 60000, messages.CLOSE_INVALID),  # too deep for the parser
        ("visitor", '{"type": "viewport", "width": -1, "height": 600}', messages.CLOSE_INVALID),
        ("visitor", '{"type": "page", "url": "https://a.example/", "title": 7}', messages.CLOSE_INVALID),
        ("visitor", json.dumps({"type": "page", "url": "https://a.example/", "title": "t" * 20_000}),
         messages.CLOSE_INVALID),
        ("agent", '{"type": "highlight", "session_id": "k3j9x2ab7q", "selector": ""}',
         messages.CLOSE_INVALID),
        ("visitor", '{"type": "scroll", "x": 0, "y": 0, "anchor": "#top"}', messages.CLOSE_INVALID),
        ("visitor", '{"type": "scroll", "x": 0, "y": 0, "anchor": {"selector": "", "offset": 0}}',
         messages.CLOSE_INVALID),
        ("visitor", '{"type": "field", "selector": "#a", "input_type": "checkbox", "checked": "yes"}',
         messages.CLOSE_INVALID),
        ("visitor", json.dumps({"type": "field", "selector": "#a", "input_type": "text",
                                "attrs": {f"a{i}": "v" for i in range(21)}}), messages.CLOSE_INVALID),
        ("visitor", '{"type": "field", "selector": "#a", "input_type": "text", "attrs": {"": "v"}}',
         messages.CLOSE_INVALID),
        ("visitor", '{"type": "field", "selector": "#a", "input_type": "text", "attrs": {"id": 1}}',
         messages.CLOSE_INVALID),
        ("visitor", '{"type": "field", "selector": "#a", "input_type": "text", "attrs": ["id"]}',
         messages.CLOSE_INVALID),
        ("agent", '{"type": "draw", "session_id": "k3j9x2ab7q", "points": [[1, 2, 3]]}',
         messages.CLOSE_INVALID),
        ("agent", '{"type": "draw", "session_id": "k3j9x2ab7q", "points": [1, 2]}', messages.CLOSE_INVALID),
        ("agent", '{"type": "draw", "session_id": "k3j9x2ab7q", "points": [[1, 2]], "width": -3}',
         messages.CLOSE_INVALID),
        ("visitor", '{"type": "page", "url": "https://a.example/", "title": "\\ud800"}',
         messages.CLOSE_INVALID),  # a lone surrogate
        ("visitor", '{"type": "page", "url": "https://a.example/", "url": "https://b.example/"}',
         messages.CLOSE_INVALID),  # a name twice
        (
            "visitor",
            json.dumps({"type": "page", "url": "https://a.example/" + "x" * 70000}),
            messages.CLOSE_TOO_BIG,
        ),
    ],
)
def test_invalid_messages_carry_their_close_code(side: str, payload: str, code: int) -> None:
    with pytest.raises(ProtocolViolation) as info:
        parse(side, payload, 65536)
    assert info.value.code == code


def test_a_message_of_exactly_the_size_limit_passes_and_one_byte_more_does_not() -> None:
    def scroll(size: int) -> str:
        text = json.dumps({"type": "scroll", "x": 1, "y": 2, "pad": ""})
        return text.replace('"pad": ""', '"pad": "' + "p" * (size - len(text)) + '"')

    assert len(scroll(65536).encode()) == 65536
    assert parse("visitor", scroll(65536), 65536).data == {"x": 1, "y": 2}
    with pytest.raises(ProtocolViolation) as info:
        parse("visitor", scroll(65537), 65536)
    assert info.value.code == messages.CLOSE_TOO_BIG


def test_every_documented_type_is_in_protocol_md() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text()
    for side, table in messages.MESSAGES.items():
        for name in table:
            assert f"`{name}`" in text, f"{side} message {name} missing from docs/PROTOCOL.md"


@pytest.mark.parametrize(
    ("selector", "input_type", "masked", "tag", "attrs", "expected"),
    [
        ("#pw", "password", [], "input", {}, True),
        ("#pw", "text", [], "input", {"type": "password"}, True),
        ("#card", "text", ["#card"], "input", {}, True),
        ("#x", "text", ["#card"], "input", {"id": "x"}, False),
        ("#x", "text", ["input[name=cc]"], "input", {"name": "cc"}, True),
        ("#x", "text", ["[autocomplete^=cc-]"], "input", {"autocomplete": "cc-number"}, True),
        ("#x", "text", [".secret"], "input", {"class": "a secret b"}, True),
        ("#x", "text", [".secret"], "input", {"class": "a b"}, False),
        ("#x", "text", ["textarea"], "input", {}, False),
        # a password a "show password" button made type=text, a card's number: whatever the policy
        ("#pw", "text", [], "input", {"type": "text", "autocomplete": "current-password"}, True),
        ("#pw", "text", [], "input", {"autocomplete": "section-a New-Password"}, True),
        ("#c", "text", [], "input", {"autocomplete": "cc-number"}, True),
        ("#n", "text", [], "input", {"autocomplete": "cc-name"}, False),
    ],
)
def test_masking(
    selector: str, input_type: str, masked: list[str], tag: str, attrs: dict[str, str], expected: bool
) -> None:
    assert is_masked(selector, input_type, masked, tag, attrs) is expected


def test_a_surrogate_pair_is_one_character_and_fine() -> None:
    msg = parse("visitor", '{"type": "page", "url": "https://a.example/", "title": "\\ud83d\\ude00"}', 65536)
    assert msg.data["title"] == "\U0001F600"
