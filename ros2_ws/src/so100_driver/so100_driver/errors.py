"""Exceptions of so100_driver; each names what failed and what to do about it."""

from so100_common.errors import So100Error


class DriverError(So100Error):
    """Base of every error raised by so100_driver."""


class PacketError(DriverError):
    """A byte string is not a valid Feetech protocol packet (header, length or checksum)."""


class EmulatorError(DriverError):
    """The servo-bus emulator cannot start, or was given an invalid servo, fault or trajectory."""
