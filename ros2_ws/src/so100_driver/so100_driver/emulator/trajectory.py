"""Positions over time that stand in for a human moving an arm with its torque off.

A trajectory is either a callable ``t -> positions`` (``t`` in seconds since playback started;
positions in ticks, one per id, or a mapping id -> ticks, or None when it is over) or a table of
rows ``(t, p_1, ..., p_n)`` interpolated linearly. :class:`Playback` applies one to servos whose
torque is off; servos holding torque are not moved (a hand cannot overpower them here).

Pure: the caller supplies the time. Dependency rule: imports ``servo``, ``so100_common.names`` and
the package's ``errors``.
"""

from __future__ import annotations

import csv
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from so100_common.names import JOINT_NAMES
from so100_driver.emulator.servo import Frame, Servo
from so100_driver.errors import EmulatorError

Positions = Sequence[float] | Mapping[int, float]
TrajectoryFn = Callable[[float], Positions | None]
TrajectorySource = TrajectoryFn | Sequence[Sequence[float]] | np.ndarray


class Playback:
    """One trajectory being played on some servos; ``done`` is set when it ends or is stopped.

    Args:
        source: a callable or a table (see the module docstring).
        ids: the servo ids the positions are for, in order.
        frame: ``"present"`` (ticks of Present_Position, what LeRobot reads with normalize=False)
            or ``"raw"`` (the shaft's encoder angle, independent of Homing_Offset: use it to move
            an arm while its calibration is being rewritten).
        loop: start a table again from its first row when it ends.
    """

    def __init__(
        self, source: TrajectorySource, ids: Sequence[int], *, frame: Frame = "present", loop: bool = False
    ) -> None:
        if frame not in ("present", "raw"):
            raise EmulatorError(f"frame must be 'present' or 'raw', got {frame!r}")
        self.ids = tuple(ids)
        self.frame: Frame = frame
        self.loop = loop
        self.done = threading.Event()
        self._fn: TrajectoryFn | None = None
        self._table: np.ndarray | None = None
        if callable(source):
            self._fn = source
        else:
            self._table = _check_table(source, len(self.ids))

    @property
    def duration(self) -> float | None:
        """Length of a table in seconds; None for a callable."""
        if self._table is None:
            return None
        return float(self._table[-1, 0] - self._table[0, 0])

    def stop(self) -> None:
        self.done.set()

    def positions(self, t: float) -> dict[int, float] | None:
        """Target positions at ``t`` seconds after the start; None once finished."""
        if self.done.is_set():
            return None
        if self._table is not None:
            table = self._table
            t0, duration = table[0, 0], table[-1, 0] - table[0, 0]
            if self.loop and duration > 0:
                t = t % duration
            elif t > duration:
                self.done.set()
                return dict(zip(self.ids, map(float, table[-1, 1:]), strict=True))  # hold the last row
            row = [float(np.interp(t0 + t, table[:, 0], table[:, k])) for k in range(1, table.shape[1])]
            return dict(zip(self.ids, row, strict=True))
        assert self._fn is not None
        value = self._fn(t)
        if value is None:
            self.done.set()
            return None
        if isinstance(value, Mapping):
            return {int(k): float(v) for k, v in value.items()}
        value = list(value)
        if len(value) != len(self.ids):
            raise EmulatorError(
                f"trajectory gave {len(value)} positions at t={t:.3f} s for {len(self.ids)} ids {self.ids}"
            )
        return dict(zip(self.ids, map(float, value), strict=True))

    def apply(self, servos: Mapping[int, Servo], t: float) -> None:
        """Move the torque-off servos among ``servos`` to their positions at ``t``."""
        targets = self.positions(t)
        for servo_id, ticks in (targets or {}).items():
            servo = servos.get(servo_id)
            if servo is not None and not servo.torque_enabled and math.isfinite(ticks):
                servo.set_position(ticks, frame=self.frame)


def _check_table(source: Sequence[Sequence[float]] | np.ndarray, n_ids: int) -> np.ndarray:
    try:
        table = np.asarray(source, dtype=float)
    except (TypeError, ValueError) as e:
        raise EmulatorError(f"a trajectory table must be rows of numbers (t, p_1..p_n): {e}") from e
    if table.ndim != 2 or table.shape[0] < 1 or table.shape[1] != n_ids + 1:
        raise EmulatorError(
            f"a trajectory table needs rows of 1 + {n_ids} numbers (t, then one per id), got shape {table.shape}"
        )
    if not np.all(np.isfinite(table)):
        raise EmulatorError("a trajectory table must not contain NaN or inf")
    if np.any(np.diff(table[:, 0]) <= 0):
        raise EmulatorError("trajectory times must increase strictly from row to row")
    return table


def sine(
    ids: Sequence[int],
    *,
    center: float | Mapping[int, float] = 2048.0,
    amplitude: float | Mapping[int, float] = 300.0,
    period: float = 4.0,
) -> TrajectoryFn:
    """Every joint sways around ``center`` by ``amplitude`` ticks, each a little out of phase."""
    if period <= 0:
        raise EmulatorError(f"period must be > 0 s, got {period}")
    ids = tuple(ids)

    def per_id(value: float | Mapping[int, float], i: int) -> float:
        return float(value[i]) if isinstance(value, Mapping) else float(value)

    centers = [per_id(center, i) for i in ids]
    amplitudes = [per_id(amplitude, i) for i in ids]

    def fn(t: float) -> list[float]:
        return [
            c + a * math.sin(2 * math.pi * t / period + k * 2 * math.pi / max(len(ids), 1))
            for k, (c, a) in enumerate(zip(centers, amplitudes, strict=True))
        ]

    return fn


def load_csv(path: str | Path) -> tuple[list[int], np.ndarray]:
    """Read a trajectory table from CSV: a header ``t,<col>,...`` then rows of seconds and ticks.

    Columns name servo ids (``1``) or LeRobot motor names (``shoulder_pan`` = id 1 ... ``gripper``
    = id 6). Returns the ids and the table.
    """
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = [row for row in csv.reader(f) if row and not row[0].lstrip().startswith("#")]
    except OSError as e:
        raise EmulatorError(f"cannot read trajectory file {path}: {e}") from e
    if len(rows) < 2 or rows[0][0].strip() != "t":
        raise EmulatorError(f"{path}: the first row must be a header 't,<id or motor name>,...' followed by data rows")
    ids = []
    for col in rows[0][1:]:
        col = col.strip()
        if col.isdigit():
            ids.append(int(col))
        elif col in JOINT_NAMES:
            ids.append(JOINT_NAMES.index(col) + 1)
        else:
            raise EmulatorError(f"{path}: column {col!r} is neither a servo id nor one of {JOINT_NAMES}")
    try:
        data = [[float(x) for x in row] for row in rows[1:]]
    except ValueError as e:
        raise EmulatorError(f"{path}: {e}") from e
    return ids, _check_table(data, len(ids))
