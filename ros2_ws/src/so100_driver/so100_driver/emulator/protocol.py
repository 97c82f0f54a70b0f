"""Feetech serial protocol (SCS/STS, "protocol 0"): packets, and a pure bus of servos.

Wire format, as scservo_sdk builds and checks it::

    instruction: FF FF ID LEN INSTR PARAM... CHECKSUM      LEN = len(PARAM) + 2
    status:      FF FF ID LEN ERROR PARAM... CHECKSUM      CHECKSUM = ~(ID + LEN + ... ) & 0xFF

Multi-byte values are little-endian. ID 0xFE is the broadcast id: servos execute broadcast
instructions without answering, except PING (every servo answers) and SYNC_READ (the servos
listed answer one after another, in the order of the list, which is the order the SDK reads
them in). A request with a bad checksum is ignored, as a servo ignores it.

:class:`Bus` is pure: bytes in, replies out (one per answering servo, with the delay it waits
before answering); the pseudo-terminal and the clock are ``pty_bus``'s business.
Dependency rule: imports only the emulator's ``servo``, ``registers``, ``faults`` and the
package's ``errors``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from so100_driver.emulator.faults import Faults
from so100_driver.emulator.servo import Servo
from so100_driver.errors import EmulatorError, PacketError

HEADER = b"\xff\xff"
BROADCAST_ID = 0xFE
MAX_ID = 0xFD
# Longest READ answered: a status packet must fit the SDK's 250-byte receive buffer.
MAX_READ = 250 - 6


class Instruction(IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    RESET = 0x06  # not emulated: ignored
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83


def checksum(body: bytes) -> int:
    """Feetech checksum of ID, LEN, instruction/error and parameters: the inverted low byte of their sum."""
    return ~sum(body) & 0xFF


@dataclass(frozen=True)
class Packet:
    """One framed packet. ``code`` is the instruction of a request or the error byte of a status."""

    id: int
    code: int
    params: bytes = b""

    def encode(self) -> bytes:
        if not 0 <= self.id <= 0xFE or not 0 <= self.code <= 0xFF or len(self.params) > 253:
            raise PacketError(f"cannot frame id={self.id} code={self.code} with {len(self.params)} parameter bytes")
        body = bytes((self.id, len(self.params) + 2, self.code)) + bytes(self.params)
        return HEADER + body + bytes((checksum(body),))

    @classmethod
    def decode(cls, data: bytes) -> Packet:
        """Parse exactly one packet.

        Raises:
            PacketError: wrong header, length or checksum.
        """
        data = bytes(data)
        if len(data) < 6 or data[:2] != HEADER:
            raise PacketError(f"not a Feetech packet (needs FF FF and 6+ bytes): {data.hex(' ')}")
        length = data[3]
        if length < 2 or len(data) != length + 4:
            raise PacketError(f"LEN byte says {length + 4} bytes in all, got {len(data)}: {data.hex(' ')}")
        if checksum(data[2:-1]) != data[-1]:
            raise PacketError(f"checksum {data[-1]:#04x} != {checksum(data[2:-1]):#04x}: {data.hex(' ')}")
        return cls(data[2], data[4], data[5:-1])


# -- request builders (what scservo_sdk sends) ------------------------------------------------


def ping(servo_id: int) -> bytes:
    return Packet(servo_id, Instruction.PING).encode()


def read(servo_id: int, address: int, length: int) -> bytes:
    return Packet(servo_id, Instruction.READ, bytes((address, length))).encode()


def write(servo_id: int, address: int, data: bytes) -> bytes:
    return Packet(servo_id, Instruction.WRITE, bytes((address,)) + bytes(data)).encode()


def reg_write(servo_id: int, address: int, data: bytes) -> bytes:
    return Packet(servo_id, Instruction.REG_WRITE, bytes((address,)) + bytes(data)).encode()


def action(servo_id: int = BROADCAST_ID) -> bytes:
    return Packet(servo_id, Instruction.ACTION).encode()


def sync_read(address: int, length: int, ids: Sequence[int]) -> bytes:
    return Packet(BROADCAST_ID, Instruction.SYNC_READ, bytes((address, length, *ids))).encode()


def sync_write(address: int, length: int, data: Mapping[int, bytes]) -> bytes:
    params = bytearray((address, length))
    for servo_id, chunk in data.items():
        if len(chunk) != length:
            raise PacketError(f"sync write of {length} bytes got {len(chunk)} for id {servo_id}")
        params += bytes((servo_id,)) + bytes(chunk)
    return Packet(BROADCAST_ID, Instruction.SYNC_WRITE, bytes(params)).encode()


def status(servo_id: int, error: int = 0, params: bytes = b"") -> bytes:
    return Packet(servo_id, error, params).encode()


class PacketParser:
    """Splits a byte stream into instruction packets, resynchronising on noise and bad checksums."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.bad_checksums = 0
        self.discarded_bytes = 0

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a packet."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget a partial packet (after a silence on the line)."""
        self.discarded_bytes += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> list[Packet]:
        self._buf += data
        packets = []
        buf = self._buf
        while True:
            start = buf.find(HEADER)
            if start < 0:
                keep = 1 if buf[-1:] == b"\xff" else 0
                self._drop(len(buf) - keep)
                break
            if start:
                self._drop(start)
            if len(buf) < 4:
                break
            if buf[2] == 0xFF:  # FF FF FF ...: the header starts one byte later
                self._drop(1)
                continue
            length = buf[3]
            if length < 2:
                self._drop(2)
                continue
            total = length + 4
            if len(buf) < total:
                break
            if checksum(buf[2 : total - 1]) != buf[total - 1]:
                self.bad_checksums += 1
                self._drop(2)
                continue
            packets.append(Packet(buf[2], buf[4], bytes(buf[5 : total - 1])))
            del buf[:total]
        return packets

    def _drop(self, n: int) -> None:
        self.discarded_bytes += n
        del self._buf[:n]


# (the id a status packet carries, [(servo, its reply parameters), ...]); two servos = a collision
_Answer = tuple[int, list[tuple[Servo, bytes]]]


@dataclass(frozen=True)
class Reply:
    """One servo's status packet, and how long it waits before sending it."""

    servo_id: int
    data: bytes
    delay_s: float = 0.0


@dataclass
class BusStats:
    """Counters for tests and logs."""

    requests: int = 0  # well-formed instruction packets received
    bad_checksums: int = 0  # requests ignored for their checksum
    replies: int = 0  # status packets sent (corrupted ones included)
    dropped: int = 0  # replies lost to Faults.drop_rate
    corrupted: int = 0  # replies sent with a wrong checksum (Faults.corrupt_rate or a collision)
    collisions: int = 0  # requests answered by two servos with the same id at once


class Bus:
    """Servos sharing one half-duplex line; executes instruction packets and composes the replies.

    Args:
        servos: the servos on the line (ids may repeat, as on a bus of factory-new servos).
        faults: what goes wrong; shared with and changed by the caller.
        seed: for the random drop/corrupt decisions.
    """

    def __init__(self, servos: Iterable[Servo] = (), *, faults: Faults | None = None, seed: int | None = None) -> None:
        self._servos: list[Servo] = list(servos)
        self.faults = faults if faults is not None else Faults()
        self.stats = BusStats()
        #: Speed the host's port is set to (bits/s); servos set to another speed hear nothing.
        #: None: every servo hears the host (no baud-rate check).
        self.host_baud: int | None = None
        self._parser = PacketParser()
        self._rng = random.Random(seed)

    @property
    def servos(self) -> dict[int, Servo]:
        """The servos by their current ID (a servo whose ID is rewritten moves to its new key)."""
        return {s.id: s for s in self._servos}

    @property
    def members(self) -> list[Servo]:
        """Every servo on the line, in the order added (servos sharing an id included)."""
        return list(self._servos)

    def add(self, servo: Servo) -> None:
        self._servos.append(servo)

    def remove(self, servo_id: int) -> Servo:
        for i, s in enumerate(self._servos):
            if s.id == servo_id:
                return self._servos.pop(i)
        raise EmulatorError(f"no servo with id {servo_id} on the bus (ids: {sorted(self.servos)})")

    def advance(self, dt: float) -> None:
        """Let ``dt`` seconds of physics pass for every servo."""
        for s in self._servos:
            s.advance(dt)

    def reset_parser(self) -> None:
        """Drop a partial request (the line went quiet in the middle of a packet)."""
        self._parser.reset()

    def process(self, data: bytes) -> list[Reply]:
        """Feed bytes from the host; returns the replies of every complete request, in order."""
        replies: list[Reply] = []
        for packet in self._parser.feed(data):
            replies += self.handle(packet)
        self.stats.bad_checksums = self._parser.bad_checksums
        return replies

    def handle(self, packet: Packet) -> list[Reply]:
        """Execute one instruction packet; returns the replies in the order they go on the wire."""
        self.stats.requests += 1
        if self.faults.unplugged:
            return []
        listening = [
            s
            for s in self._servos
            if s.id not in self.faults.offline and (self.host_baud is None or s.baud_rate == self.host_baud)
        ]
        broadcast = packet.id == BROADCAST_ID
        targets = listening if broadcast else [s for s in listening if s.id == packet.id]
        if not targets:
            return []
        return self._transmit(self._execute(packet, targets, broadcast))

    def _execute(self, packet: Packet, targets: list[Servo], broadcast: bool) -> list[_Answer]:
        """Run the instruction; returns who answers, in wire order, keyed by the id they answer as."""
        ins, params = packet.code, packet.params
        # Keyed by the id before the instruction runs: a servo whose ID is rewritten answers as the old one.
        by_id: dict[int, list[Servo]] = {}
        for s in targets:
            by_id.setdefault(s.id, []).append(s)

        def answers(ids: Iterable[int], data: dict[Servo, bytes] | None = None, *, ack: bool = False) -> list[_Answer]:
            out = []
            for i in ids:
                # A write or action is acknowledged only by servos with Response_Status_Level >= 1.
                group = [
                    (s, data[s] if data else b"") for s in by_id.get(i, []) if not ack or s.status_return_level >= 1
                ]
                if group:
                    out.append((i, group))
            return out

        if ins == Instruction.PING:
            return answers(sorted(by_id))
        if ins == Instruction.READ:
            if broadcast or len(params) != 2 or params[1] > MAX_READ:
                return []
            return answers([packet.id], {s: s.read(params[0], params[1]) for s in targets})
        if ins in (Instruction.WRITE, Instruction.REG_WRITE):
            if len(params) < 2:
                return []
            for s in targets:
                (s.write if ins == Instruction.WRITE else s.reg_write)(params[0], params[1:])
            return [] if broadcast else answers([packet.id], ack=True)
        if ins == Instruction.ACTION:
            for s in targets:
                s.action()
            return [] if broadcast else answers([packet.id], ack=True)
        if ins == Instruction.SYNC_READ:
            if not broadcast or len(params) < 3:
                return []
            address, length, ids = params[0], params[1], list(params[2:])
            if length > MAX_READ:
                return []
            return answers(ids, {s: s.read(address, length) for s in targets})
        if ins == Instruction.SYNC_WRITE:
            if not broadcast or len(params) < 2:
                return []
            address, length, body = params[0], params[1], params[2:]
            if length == 0 or len(body) % (length + 1):
                return []
            for k in range(0, len(body), length + 1):
                for s in by_id.get(body[k], []):
                    s.write(address, body[k + 1 : k + 1 + length])
            return []
        return []  # RESET and unknown instructions: no reply (not emulated)

    def _transmit(self, answers: list[_Answer]) -> list[Reply]:
        replies = []
        for servo_id, group in answers:
            servo, params = group[0]
            data = bytearray(status(servo_id, int(servo.error), params))
            if len(group) > 1:  # two servos talking at once: the host gets garbage
                self.stats.collisions += 1
                data[-1] ^= 0xFF
                self.stats.corrupted += 1
            elif self._rng.random() < self.faults.drop_rate:
                self.stats.dropped += 1
                continue
            elif self._rng.random() < self.faults.corrupt_rate:
                data[-1] ^= 0xFF
                self.stats.corrupted += 1
            self.stats.replies += 1
            replies.append(Reply(servo_id, bytes(data), servo.return_delay_s + self.faults.reply_delay_s))
        return replies
