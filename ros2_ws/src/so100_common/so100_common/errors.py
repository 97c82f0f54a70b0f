"""Exceptions of so100_common; each names what failed and how to fix it."""


class So100Error(Exception):
    """Base of every error raised by the stack."""


class MessageError(So100Error):
    """A message type is unknown, or a payload cannot be (de)serialized."""


class ParameterError(So100Error):
    """A parameter is undeclared, of the wrong type, or fails validation."""


class ArgumentError(So100Error):
    """A ``--ros-args`` command line or a params file cannot be parsed."""


class InvalidNameError(So100Error):
    """A topic, service or node name is invalid."""


class TransportError(So100Error):
    """The transport cannot start, or a call over it failed."""


class ServiceTimeout(TransportError):
    """A service call got no reply in time."""


class LaunchError(So100Error):
    """A launch graph or its arguments are invalid."""
