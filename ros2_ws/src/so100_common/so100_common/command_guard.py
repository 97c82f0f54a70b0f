"""The follower's safety core: which joint commands may reach the arm, and what it holds.

Shared by every follower (``sim_bridge``, ``follower_arm``) so they fail the same way
(DESIGN.md §6): commands with unknown, duplicate or missing names, a wrong count, or
NaN/inf are rejected whole; targets beyond the joint limits are clamped; when
commands go stale the arm holds the position it had at that moment; each tick's
motion can be limited to ``max_step`` radians. Nothing non-finite ever leaves it: a non-finite
measured position (a servo read gone wrong) holds the last target it gave, or gives nothing to
write when there is none. Pure: no runtime, no clock of its own.

Dependency rule: imports only ``names`` and ``errors`` from the project.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from so100_common.errors import So100Error
from so100_common.names import JOINT_NAMES


@dataclass(frozen=True)
class GuardConfig:
    """Limits and timing of a follower (radians, seconds)."""

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    joint_names: tuple[str, ...] = JOINT_NAMES
    # A teleop source that dies must not leave the arm chasing its last target forever.
    stale_timeout: float = 0.5
    # Largest move per control tick (rad); None = no limit. Protects against jumps in the stream.
    max_step: float | None = None

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if len(self.lower) != n or len(self.upper) != n:
            raise So100Error(f"limits for {len(self.lower)}/{len(self.upper)} joints, expected {n}")
        if any(lo >= hi for lo, hi in zip(self.lower, self.upper, strict=True)):
            raise So100Error(f"every lower limit must be below its upper limit: {self.lower} / {self.upper}")
        if not np.all(np.isfinite(self.lower)) or not np.all(np.isfinite(self.upper)):
            raise So100Error(f"joint limits must be finite: {self.lower} / {self.upper}")
        # an infinite timeout or step would switch the safety off: refused, not taken as "no limit"
        if not (self.stale_timeout > 0 and np.isfinite(self.stale_timeout)):
            raise So100Error(f"stale_timeout must be a finite number of seconds > 0, got {self.stale_timeout}")
        if self.max_step is not None and not (self.max_step > 0 and np.isfinite(self.max_step)):
            raise So100Error(f"max_step must be a finite angle > 0 rad or None, got {self.max_step}")


@dataclass
class Verdict:
    """What became of one command message."""

    accepted: bool
    reason: str = ""
    kind: str = ""  # why it was rejected: "count", "names" or "non_finite" (one log burst each)
    clamped: dict[str, float] = field(default_factory=dict)  # joint -> requested value that was clamped


class CommandGuard:
    """Validates commands and yields the target to apply at each control tick."""

    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self._lower = np.asarray(config.lower, dtype=float)
        self._upper = np.asarray(config.upper, dtype=float)
        self._index = {name: i for i, name in enumerate(config.joint_names)}
        self._target: np.ndarray | None = None
        self._last_command: float | None = None
        self._hold: np.ndarray | None = None
        self._last_out: np.ndarray | None = None
        self.rejected = 0
        self.clamped = 0
        self.non_finite_states = 0  # ticks whose measured position was not finite

    def submit(self, names: Sequence[str], positions: Sequence[float], now: float) -> Verdict:
        """Check one command (names + positions); an accepted one becomes the new target."""
        names = list(names)
        pos = np.asarray(positions, dtype=float).reshape(-1)
        verdict = self._check(names, pos)
        if not verdict.accepted:
            self.rejected += 1
            return verdict
        target = np.empty(len(self._index))
        for name, value in zip(names, pos, strict=True):
            target[self._index[name]] = value
        clipped = np.clip(target, self._lower, self._upper)
        for i in np.flatnonzero(clipped != target):
            verdict.clamped[self.config.joint_names[i]] = float(target[i])
        if verdict.clamped:
            self.clamped += 1
        self._target = clipped
        self._last_command = now
        self._hold = None
        return verdict

    def _check(self, names: list[str], pos: np.ndarray) -> Verdict:
        expected = self.config.joint_names
        if len(names) != len(pos):
            return Verdict(False, f"{len(names)} names but {len(pos)} positions", "count")
        unknown = [n for n in names if n not in self._index]
        if unknown:
            return Verdict(False, f"unknown joint(s) {unknown}; expected {list(expected)}", "names")
        if len(set(names)) != len(names):
            return Verdict(False, f"duplicate joint names in {names}", "names")
        if len(names) != len(expected):
            missing = [n for n in expected if n not in names]
            return Verdict(False, f"missing joint(s) {missing}: commands must name all {len(expected)} joints", "names")
        if not np.all(np.isfinite(pos)):
            bad = [n for n, v in zip(names, pos, strict=True) if not np.isfinite(v)]
            return Verdict(False, f"non-finite target for {bad}", "non_finite")
        return Verdict(True)

    def stale(self, now: float) -> bool:
        return self._last_command is None or now - self._last_command > self.config.stale_timeout

    def target(self, current: Sequence[float], now: float) -> np.ndarray | None:
        """The position to command this tick, given the arm's current position; None = write nothing.

        Fresh command: the target, limited to ``max_step`` from ``current``. Stale or none:
        the position the arm had when commands stopped (held, not chased). A ``current`` with a
        non-finite value is no position to step from or hold: the last target given stands (the
        servos are already going there), or None when there was none.
        """
        cur = np.asarray(current, dtype=float).reshape(-1)
        if cur.shape != self._lower.shape or not np.all(np.isfinite(cur)):
            self.non_finite_states += 1
            return None if self._last_out is None else self._last_out.copy()
        if self._target is None or self.stale(now):
            if self._hold is None:
                self._hold = np.clip(cur, self._lower, self._upper)
            goal = self._hold.copy()
        else:
            goal = self._target
            if self.config.max_step is not None:
                goal = cur + np.clip(goal - cur, -self.config.max_step, self.config.max_step)
        self._last_out = goal.copy()
        return goal

    def reset(self) -> None:
        """Forget the last command (e.g. after torque off or an episode reset)."""
        self._target = None
        self._last_command = None
        self._hold = None
        self._last_out = None


class BurstLog:
    """Log the first event of a burst, then stay quiet until ``quiet`` s without events.

    The next burst's first line reports how many events the previous one suppressed.
    """

    def __init__(self, logger: logging.Logger, quiet: float = 2.0, clock: object = time.monotonic) -> None:
        self.logger = logger
        self.quiet = quiet
        self._clock = clock
        self._last = -float("inf")
        self._suppressed = 0

    def __call__(self, level: int, msg: str, *args: object) -> bool:
        now = self._clock()  # type: ignore[operator]
        fresh = now - self._last > self.quiet
        self._last = now
        if not fresh:
            self._suppressed += 1
            return False
        if self._suppressed:
            msg += f" ({self._suppressed} similar before were not logged)"
            self._suppressed = 0
        self.logger.log(level, msg, *args)
        return True
