"""Exceptions of act_policy; each names what failed and what to do about it."""

from so100_common.errors import So100Error


class ActPolicyError(So100Error):
    """Base of every error raised by act_policy."""


class RecorderError(ActPolicyError):
    """An episode cannot be started, written, closed or recovered."""
