"""Client frames the reliability benchmark (issue 15) found the protocol let through to the handler or the log."""

from __future__ import annotations

import json

import pytest

from teleop_vr.errors import ProtocolError
from teleop_vr.protocol import Hello, parse_client_message


def test_a_5000_digit_number_is_a_protocol_error():
    """json.loads raises a plain ValueError past 4300 digits; it escaped the parser and killed the connection."""
    with pytest.raises(ProtocolError, match="not a number the protocol accepts"):
        parse_client_message('{"type": "input", "seq": ' + "9" * 5000 + ', "controller": null}')


@pytest.mark.parametrize("name", ["\x1b[2J\x1b[31mowned", "bell\x07", "new\nline", "nul\x00"])
def test_control_characters_in_the_client_name_are_refused(name):
    """The name is logged: terminal escapes must not reach the console."""
    with pytest.raises(ProtocolError, match="printable"):
        parse_client_message(json.dumps({"type": "hello", "client": name}))


@pytest.mark.parametrize("name", ["xr", "desktop", "Quest 3 — ü"])
def test_printable_names_pass(name):
    assert parse_client_message(json.dumps({"type": "hello", "client": name})) == Hello(name)
