"""What a demonstration's frames teach beyond their sync: start transients and uneven state sampling.

Two defects a resampled episode can have that its sync report does not show:

- a **start transient**: the first frames pair the follower's pose with a command for somewhere
  else (the follower still swinging toward its source after a reset), so the policy learns to
  command poses far from where the arm is. Counted as the leading frames whose largest
  ``|action - state|`` exceeds ``threshold`` (the converter's ``--trim-start`` drops them).
- **uneven state sampling**: frames that reuse the previous frame's joint state (no new state
  message within a frame period), so the state advances in uneven steps.

The converter (:mod:`act_policy.bag_to_dataset`) reports both per episode and can trim; ``so100
dataset check`` (:mod:`act_policy.dataset_tools`) computes the same report from a dataset.

Dependency rule: numpy only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from so100_common import names

#: |action - state| (rad) above which a frame counts as the follower far from its command.
GAP_THRESHOLD = 0.3
#: A share of repeated states above this is flagged as uneven sampling.
MAX_REPEATED_FRACTION = 0.05


@dataclass(frozen=True)
class QualityReport:
    """Per episode: start transient, command-state gaps and state sampling (angles in rad)."""

    frames: int
    threshold: float
    #: leading frames whose largest |action - state| is above ``threshold``, when a later frame is within it
    start_transient: int
    #: all frames above ``threshold``
    large_gap_frames: int
    largest_gap: float
    largest_gap_joint: str
    #: frames whose state repeats the previous frame's exactly
    repeated_states: int
    #: 99th percentile over frames of the largest frame-to-frame state change
    state_step_p99: float
    #: leading frames dropped by trimming
    trimmed: int = 0
    #: False when no frame has the follower within ``threshold`` of its command
    converges: bool = True

    def flags(self) -> list[str]:
        """The defects worth a user's attention, as sentences; empty when there are none."""
        out = []
        if self.start_transient:
            out.append(f"start transient: the first {self.start_transient} frame(s) command a pose more than "
                       f"{self.threshold:g} rad from the follower's (largest gap {self.largest_gap:.2f} rad on "
                       f"{self.largest_gap_joint}); convert with --trim-start to drop them")
        if not self.converges:
            out.append(f"the follower is never within {self.threshold:g} rad of its command (largest gap "
                       f"{self.largest_gap:.2f} rad on {self.largest_gap_joint}): a calibration offset, or a "
                       "follower that does not move?")
        if self.frames and self.repeated_states / self.frames > MAX_REPEATED_FRACTION:
            out.append(f"uneven state sampling: {self.repeated_states} of {self.frames} frames "
                       f"({self.repeated_states / self.frames:.0%}) repeat the previous joint state")
        return out

    def summary(self) -> str:
        text = (f"quality: start transient {self.start_transient} frame(s), {self.large_gap_frames} frame(s) with "
                f"|action - state| > {self.threshold:g} rad (largest {self.largest_gap:.2f} on "
                f"{self.largest_gap_joint}), repeated states {self.repeated_states}, state step p99 "
                f"{self.state_step_p99:.3f} rad")
        return text + (f"; trimmed {self.trimmed} leading frame(s)" if self.trimmed else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def assess(state: np.ndarray, action: np.ndarray, *, threshold: float = GAP_THRESHOLD,
           trimmed: int = 0) -> QualityReport:
    """The report for one episode's frames: ``state`` and ``action`` are (frames, 6) joint positions."""
    state = np.asarray(state, dtype=float)
    action = np.asarray(action, dtype=float)
    if state.shape != action.shape or state.ndim != 2 or state.shape[1] != len(names.JOINT_NAMES):
        raise ValueError(f"state {state.shape} and action {action.shape} must both be (frames, 6)")
    n = len(state)
    if n == 0:
        return QualityReport(0, threshold, 0, 0, 0.0, names.JOINT_NAMES[0], 0, 0.0, trimmed)
    gap = np.abs(action - state)
    per_frame = gap.max(axis=1)
    large = per_frame > threshold
    converges = not large.all()
    start = int(np.argmin(large)) if converges else 0
    worst = np.unravel_index(int(np.argmax(gap)), gap.shape)
    steps = np.abs(np.diff(state, axis=0)).max(axis=1) if n > 1 else np.zeros(1)
    repeated = int((steps == 0).sum()) if n > 1 else 0
    return QualityReport(
        frames=n, threshold=threshold, start_transient=start, large_gap_frames=int(large.sum()),
        largest_gap=float(gap[worst]), largest_gap_joint=names.JOINT_NAMES[int(worst[1])],
        repeated_states=repeated, state_step_p99=float(np.percentile(steps, 99)), trimmed=trimmed,
        converges=converges,
    )

