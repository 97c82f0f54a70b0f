"""Exceptions of so100_driver; each names what failed and what to do about it."""

from so100_common.errors import So100Error


class DriverError(So100Error):
    """Base of every error raised by so100_driver."""


class PacketError(DriverError):
    """A byte string is not a valid Feetech protocol packet (header, length or checksum)."""


class EmulatorError(DriverError):
    """The servo-bus emulator cannot start, or was given an invalid servo, fault or trajectory."""


class CalibrationError(DriverError):
    """A LeRobot calibration file is missing or incomplete; the message names the file and the command to run."""


class BusError(DriverError):
    """The servo bus cannot be opened, a servo does not answer, or a transfer failed after its retries."""
