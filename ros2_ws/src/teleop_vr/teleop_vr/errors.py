"""Errors of the teleop_vr package: one type per subsystem, each message naming the bad value and the fix."""

from __future__ import annotations


class TeleopVrError(Exception):
    """Base of every teleop_vr error."""


class ProtocolError(TeleopVrError):
    """A client message that breaks the protocol (dropped; the connection survives)."""


class ConfigError(TeleopVrError):
    """A bad setting, found at start-up."""


class WebAssetsError(TeleopVrError):
    """The page or its npm dependencies are missing."""
