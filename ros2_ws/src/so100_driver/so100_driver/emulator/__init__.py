"""Feetech STS3215 servo-bus emulator: the real protocol on a pseudo-terminal.

``EmulatedBus`` is what tests and the ``so100_bus_emulator`` command use; ``Servo`` and
``Bus`` are the pure models underneath (no threads, no clock); ``registers`` is the control table.
"""

from so100_driver.emulator.faults import Faults
from so100_driver.emulator.protocol import BROADCAST_ID, Bus, BusStats, Instruction, Packet, PacketParser, Reply
from so100_driver.emulator.pty_bus import EmulatedBus
from so100_driver.emulator.registers import CONTROL_TABLE, REGISTERS, ErrorBit, Register
from so100_driver.emulator.servo import Servo
from so100_driver.emulator.trajectory import Playback, load_csv, sine

__all__ = [
    "BROADCAST_ID",
    "CONTROL_TABLE",
    "REGISTERS",
    "Bus",
    "BusStats",
    "EmulatedBus",
    "ErrorBit",
    "Faults",
    "Instruction",
    "Packet",
    "PacketParser",
    "Playback",
    "Register",
    "Reply",
    "Servo",
    "load_csv",
    "sine",
]
