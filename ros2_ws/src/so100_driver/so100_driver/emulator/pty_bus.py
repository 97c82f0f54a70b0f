"""A Feetech servo bus on a pseudo-terminal, for LeRobot's ``FeetechMotorsBus`` and our drivers.

``EmulatedBus`` opens a pty pair and hands out the slave side's path (``.port``, e.g.
``/dev/pts/5``); whatever opens it with pyserial talks to emulated servos byte for byte. One
thread reads the host's bytes and answers (each reply after the servo's Return_Delay_Time plus
any injected delay); another advances the physics in real time (``physics_hz``), and plays
trajectories on torque-off servos. Tests change servos and faults while it runs, holding
``bus.lock`` for anything that must be atomic.

Baud rate: on Linux the host's port speed is read from the pty (pyserial sets it there as on a
real adapter); a servo whose Baud_Rate register says otherwise does not hear the host, which is
what LeRobot's port scan and ``setup_motor`` rely on. Elsewhere every servo hears every speed.
Linux and macOS only (no pty on Windows; the pure ``Bus`` works everywhere).

In-process use shares the GIL with the host: with lerobot (torch) imported, a full garbage
collection pauses every thread for ~70 ms, longer than the SDK's ~50 ms wait for a reply. Call
``gc.freeze()`` after the imports (the tests do), or run ``so100_bus_emulator`` as its own process.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import logging
import os
import select
import struct
import sys
import threading
import time
import tty
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from so100_driver.emulator.faults import Faults
from so100_driver.emulator.protocol import Bus, BusStats
from so100_driver.emulator.servo import Frame, Servo
from so100_driver.emulator.trajectory import Playback, TrajectorySource
from so100_driver.errors import EmulatorError

logger = logging.getLogger(__name__)

# Linux TCGETS2 (asm-generic: x86, arm, arm64, riscv): termios2 carries the speed as a number, which
# also covers the non-standard rates pyserial sets with BOTHER (250000, 128000).
_TCGETS2 = 0x802C542A
_TERMIOS2 = struct.Struct("4I B 19B 2I")
# A partial packet older than this is dropped (the host gave up on it).
_STALE_PARTIAL_S = 0.1


class EmulatedBus:
    """Emulated servos on a pseudo-terminal.

    Args:
        ids: servo ids to create (ignored when ``servos`` is given). Ids may repeat.
        model: ``"sts3215"`` or ``"sts3250"``.
        servos: ready-made servos instead of ``ids``.
        physics_hz: physics steps per second in a thread; 0 = no thread, call :meth:`advance`.
        check_baud: servos answer only when the host's port speed equals their Baud_Rate (Linux).
        seed: for the random drop/corrupt faults.
        link: also make this path a symlink to the pty (a stable name for configs); removed on close.
        record: keep the last ``record`` chunks of traffic in :attr:`transcript` as ("host", bytes read
            in one go) or ("servo", one status packet).
        **servo_options: passed to each :class:`Servo` built from ``ids`` (``max_speed``, ``position``, ...).

    Raises:
        EmulatorError: no pseudo-terminal on this platform, or a bad option.
    """

    def __init__(
        self,
        ids: Iterable[int] = range(1, 7),
        *,
        model: str = "sts3215",
        servos: Iterable[Servo] | None = None,
        physics_hz: float = 200.0,
        check_baud: bool = True,
        seed: int | None = None,
        link: str | os.PathLike[str] | None = None,
        record: int = 0,
        **servo_options: Any,
    ) -> None:
        if not hasattr(os, "openpty") or sys.platform == "win32":
            raise EmulatorError("the servo-bus emulator needs a pseudo-terminal (Linux or macOS)")
        if physics_hz < 0:
            raise EmulatorError(f"physics_hz must be >= 0 (0 = step by hand), got {physics_hz}")
        servo_list = list(servos) if servos is not None else [Servo(i, model=model, **servo_options) for i in ids]
        self.faults = Faults()
        self.bus = Bus(servo_list, faults=self.faults, seed=seed)
        #: Held while the bus executes a request or the physics steps; hold it to change several things at once.
        self.lock = threading.RLock()
        self.transcript: deque[tuple[str, bytes]] | None = deque(maxlen=record) if record else None
        self.check_baud = check_baud
        self.physics_hz = float(physics_hz)
        self._clock = 0.0  # emulated seconds since start (real time, or what advance() added)
        self._playbacks: list[tuple[Playback, float]] = []
        self._stop = threading.Event()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF translation: the line carries raw bytes
        self.port: str = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self.link: Path | None = None
        if link is not None:
            try:
                self._make_link(Path(link))
            except EmulatorError:
                for fd in (self._master, self._slave, self._wake_r, self._wake_w):
                    os.close(fd)
                raise
        self._threads = [threading.Thread(target=self._serve, name="so100-bus-emulator-io", daemon=True)]
        if self.physics_hz > 0:
            self._threads.append(
                threading.Thread(target=self._run_physics, name="so100-bus-emulator-physics", daemon=True)
            )
        for t in self._threads:
            t.start()
        logger.debug("emulated bus with ids %s on %s", sorted(self.servos), self.port)

    def __enter__(self) -> EmulatedBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmulatedBus(port={self.port!r}, ids={sorted(self.servos)})"

    # -- what tests and tools use ----------------------------------------------------------

    @property
    def servos(self) -> dict[int, Servo]:
        """The servos by current ID (a live view: rewriting an ID moves a servo to its new key)."""
        return self.bus.servos

    @property
    def stats(self) -> BusStats:
        return self.bus.stats

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    @property
    def clock(self) -> float:
        """Emulated seconds since the bus started."""
        return self._clock

    def advance(self, dt: float) -> None:
        """Step the physics and trajectories by ``dt`` seconds (for ``physics_hz=0``; also works alongside the thread)."""
        with self.lock:
            self._step(dt)

    def play(
        self,
        trajectory: TrajectorySource,
        *,
        ids: Sequence[int] | None = None,
        frame: Frame = "present",
        loop: bool = False,
    ) -> Playback:
        """Move torque-off servos along a trajectory, as a hand on a leader arm would.

        Args:
            trajectory: ``t -> positions`` (ticks, one per id, or a mapping id -> ticks, or None to
                end) or rows ``(t, p_1, ..., p_n)`` interpolated linearly.
            ids: the servos the positions are for, in order (default: all, by ascending id).
            frame: ``"present"`` (Present_Position ticks) or ``"raw"`` (shaft angle, see Playback).
            loop: repeat a table.

        Returns:
            The :class:`Playback`; ``.done`` is set when it ends, ``.stop()`` ends it.
        """
        with self.lock:
            playback = Playback(trajectory, ids if ids is not None else sorted(self.servos), frame=frame, loop=loop)
            playback.apply(self.servos, 0.0)
            self._playbacks.append((playback, self._clock))
        return playback

    @contextlib.contextmanager
    def inject(self, **changes: Any) -> Iterator[Faults]:
        """Set :class:`Faults` fields for the duration of a ``with`` block, then restore them.

        Example: ``with emu.inject(drop_rate=0.5, reply_delay_s=0.002): ...``
        """
        unknown = set(changes) - set(self.faults.snapshot())
        if unknown:
            raise EmulatorError(f"unknown fault(s) {sorted(unknown)}; known: {sorted(self.faults.snapshot())}")
        with self.lock:
            saved = self.faults.snapshot()
            for name, value in changes.items():
                setattr(self.faults, name, value)
        try:
            yield self.faults
        finally:
            with self.lock:
                for name, value in saved.items():
                    setattr(self.faults, name, value)

    def take_offline(self, *ids: int) -> None:
        """These servos stop hearing and answering (a loose cable) until :meth:`bring_online`."""
        with self.lock:
            self.faults.offline = self.faults.offline | set(ids)

    def bring_online(self, *ids: int, power_cycle: bool = False) -> None:
        """These servos are back; with ``power_cycle`` they lost power meanwhile (RAM reset, torque off)."""
        with self.lock:
            self.faults.offline = self.faults.offline - set(ids)
            if power_cycle:
                self._power_cycle(ids)

    def power_cycle(self, *ids: int) -> None:
        """Switch these servos (default: all) off and on: RAM back to power-up values, torque off."""
        with self.lock:
            self._power_cycle(ids or tuple(self.servos))

    def close(self) -> None:
        """Stop the threads and close the pty (the host then sees a dead port)."""
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        for t in self._threads:
            t.join(timeout=2.0)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.link is not None:
            with contextlib.suppress(OSError):
                if self.link.is_symlink():
                    self.link.unlink()

    # -- internals -----------------------------------------------------------------------

    def _power_cycle(self, ids: Iterable[int]) -> None:
        wanted = set(ids)
        for servo in self.bus.members:
            if servo.id in wanted:
                servo.power_cycle()

    def _make_link(self, link: Path) -> None:
        if link.exists() and not link.is_symlink():
            raise EmulatorError(f"{link} exists and is not a symlink; choose another --link path")
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        try:
            link.symlink_to(self.port)
        except OSError as e:
            raise EmulatorError(f"cannot create the symlink {link} -> {self.port}: {e}") from e
        self.link = link

    def _step(self, dt: float) -> None:
        self._clock += dt
        servos = self.servos
        for playback, start in list(self._playbacks):
            playback.apply(servos, self._clock - start)
            if playback.done.is_set():
                self._playbacks.remove((playback, start))
        self.bus.advance(dt)

    def _run_physics(self) -> None:
        period = 1.0 / self.physics_hz
        last = time.monotonic()
        while not self._stop.wait(period):
            now = time.monotonic()
            with self.lock:
                self._step(now - last)
            last = now

    def _host_baud(self) -> int | None:
        """The speed the host set on its end of the pty (Linux), or None: then every servo hears it."""
        if not sys.platform.startswith("linux"):
            return None
        buf = array.array("B", bytes(_TERMIOS2.size))
        try:
            fcntl.ioctl(self._slave, _TCGETS2, buf, True)
        except OSError:
            return None
        return _TERMIOS2.unpack(buf.tobytes())[-1] or None

    def _serve(self) -> None:
        last_rx = time.monotonic()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master, self._wake_r], [], [], _STALE_PARTIAL_S)
            except (OSError, ValueError):
                return
            if self._stop.is_set():
                return
            if self._master not in ready:
                if time.monotonic() - last_rx > _STALE_PARTIAL_S:
                    with self.lock:
                        self.bus.reset_parser()
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:  # EIO: no one has the slave open (cannot happen while we hold it; be safe)
                data = b""
            if not data:
                time.sleep(0.01)
                continue
            last_rx = time.monotonic()
            with self.lock:
                if self.transcript is not None:
                    self.transcript.append(("host", data))
                self.bus.host_baud = self._host_baud() if self.check_baud else None
                try:
                    replies = self.bus.process(data)
                except Exception:  # a bug in the model must not silence the bus for the rest of the run
                    logger.exception("emulated bus failed on %s; request dropped", data.hex(" "))
                    continue
            for reply in replies:
                if reply.delay_s > 0 and self._stop.wait(reply.delay_s):
                    return
                try:
                    os.write(self._master, reply.data)
                except OSError:
                    return
                if self.transcript is not None:
                    self.transcript.append(("servo", reply.data))
