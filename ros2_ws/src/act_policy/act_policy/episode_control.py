"""When the recorder starts and stops an episode: a pure core with no transport and no files.

The recorder node feeds it what it receives (joint commands, follower joint states, task
success, new scenes) and the operator's requests (services, keys), calls :meth:`EpisodeControl.tick`
on a timer, and acts on what it returns. The rules:

- **Clean starts.** A requested episode starts only once the follower agrees with its command:
  a command and a joint state received after the request, every joint within ``start_tolerance``.
  Otherwise the first frames would pair the reset pose with a command for somewhere else (the
  follower swinging toward the previous episode's pose). When the follower has not converged
  after ``start_timeout`` the episode starts anyway with a warning naming the largest gap, and the
  gap is kept in the episode's metadata; so does one that never sees a command (a passive
  recording: the arm moved by hand). ``start_tolerance`` 0 starts at once.
- **Stops.** ``stop_after_success`` seconds after ``/task/success`` turns true, and at
  ``max_duration`` seconds.
- **Autostart.** With ``autostart``, an episode is requested at start-up and whenever a new scene
  arrives after the previous episode ended (the scripted expert resets the sim after each one).

Dependency rule: numpy only.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from act_policy.errors import RecorderError


@dataclass(frozen=True)
class EpisodeRules:
    """The recorder's episode parameters (seconds, radians)."""

    stop_after_success: float = 1.0
    max_duration: float = 30.0
    autostart: bool = False
    #: largest |command - state| on any joint at an episode's first frame; 0 = do not wait
    start_tolerance: float = 0.1
    #: how long a requested episode waits for that agreement before starting anyway
    start_timeout: float = 3.0

    def __post_init__(self) -> None:
        if not self.max_duration > 0 or not self.stop_after_success >= 0:
            raise RecorderError("max_duration must be > 0 s and stop_after_success >= 0 s")
        if not (self.start_tolerance >= 0 and np.isfinite(self.start_tolerance)):
            raise RecorderError(f"start_tolerance must be a finite angle >= 0 rad, got {self.start_tolerance}")
        if not (self.start_timeout >= 0 and np.isfinite(self.start_timeout)):
            raise RecorderError(f"start_timeout must be finite and >= 0 s, got {self.start_timeout}")


class Phase(enum.Enum):
    IDLE = "idle"
    WAITING = "waiting"  # requested; waiting for the follower to agree with its command
    RECORDING = "recording"


@dataclass(frozen=True)
class Start:
    """Start the episode now. ``gap``: the largest |command - state| (rad) and its joint, if known."""

    converged: bool
    gap: float | None = None
    joint: int | None = None
    waited: float = 0.0


@dataclass(frozen=True)
class Stop:
    reason: str  # "success" | "max_duration"


class EpisodeControl:
    """The episode state machine; every method takes ``now`` in seconds on one monotonic clock."""

    def __init__(self, rules: EpisodeRules) -> None:
        self.rules = rules
        self.phase = Phase.IDLE
        self.wants_scene = False
        self.requested_at = 0.0
        self.started_at = 0.0
        self.success_at: float | None = None
        self.success_seen = False
        self.success_value = False
        self._command: tuple[float, np.ndarray] | None = None
        self._state: tuple[float, np.ndarray] | None = None

    # ------------------------------------------------------------ inputs
    def on_command(self, positions: Sequence[float], now: float) -> None:
        q = np.asarray(positions, dtype=float)
        if q.ndim == 1 and np.isfinite(q).all():
            self._command = (now, q)

    def on_state(self, positions: Sequence[float], now: float) -> None:
        q = np.asarray(positions, dtype=float)
        if q.ndim == 1 and np.isfinite(q).all():
            self._state = (now, q)

    def on_success(self, value: bool, now: float) -> bool:
        """Record ``/task/success``; True when it just turned true during an episode."""
        rose = value and not self.success_value and self.phase is Phase.RECORDING and self.success_at is None
        if rose:
            self.success_at, self.success_seen = now, True
        self.success_value = value
        return rose

    def on_scene(self, now: float) -> bool:
        """A new scene; True when it requests the next episode (autostart, idle, waiting for one)."""
        if self.phase is Phase.IDLE and self.wants_scene:
            self.wants_scene = False
            self.request(now)
            return True
        return False

    # ------------------------------------------------------------ operator
    def request(self, now: float) -> tuple[bool, str]:
        """Ask for an episode: it starts at the next :meth:`tick` that finds the follower ready."""
        if self.phase is not Phase.IDLE:
            return False, f"already {self.phase.value}"
        self.phase, self.requested_at, self.wants_scene = Phase.WAITING, now, False
        return True, "waiting for the follower to agree with its command"

    def cancel(self) -> None:
        """Drop a request that has not started (stop or discard while waiting)."""
        if self.phase is Phase.WAITING:
            self.phase = Phase.IDLE

    def started(self, now: float) -> None:
        self.phase, self.started_at = Phase.RECORDING, now
        self.success_at, self.success_seen = None, False

    def start_failed(self) -> None:
        self.phase = Phase.IDLE

    def stopped(self) -> None:
        """The episode ended (saved or discarded); with autostart the next scene requests the next one."""
        self.phase = Phase.IDLE
        self.wants_scene = self.rules.autostart

    # ------------------------------------------------------------ time
    def gap(self) -> tuple[float, int] | None:
        """Largest |command - state| and its joint index, from the latest of each; None without both."""
        if self._command is None or self._state is None or self._command[1].shape != self._state[1].shape:
            return None
        diff = np.abs(self._command[1] - self._state[1])
        j = int(np.argmax(diff))
        return float(diff[j]), j

    def tick(self, now: float) -> Start | Stop | None:
        if self.phase is Phase.WAITING:
            return self._start_decision(now)
        if self.phase is Phase.RECORDING:
            if self.success_at is not None and now - self.success_at >= self.rules.stop_after_success:
                return Stop("success")
            if now - self.started_at >= self.rules.max_duration:
                return Stop("max_duration")
        return None

    def _start_decision(self, now: float) -> Start | None:
        waited = now - self.requested_at
        if self.rules.start_tolerance <= 0:
            return Start(converged=True, waited=waited)
        fresh = (self._command is not None and self._state is not None
                 and self._command[0] >= self.requested_at and self._state[0] >= self.requested_at)
        gap = self.gap()
        if fresh and gap is not None and gap[0] <= self.rules.start_tolerance:
            return Start(converged=True, gap=gap[0], joint=gap[1], waited=waited)
        if waited >= self.rules.start_timeout:
            return Start(converged=False, gap=None if gap is None else gap[0],
                         joint=None if gap is None else gap[1], waited=waited)
        return None
