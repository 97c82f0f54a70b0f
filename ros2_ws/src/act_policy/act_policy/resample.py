"""Resample recorded streams onto a dataset frame clock, never looking into the future.

Dependency rule: pure numpy; no runtime, no rosbags, no lerobot. The bag converter
(:mod:`act_policy.bag_to_dataset`) gives it one array of message times per stream.

Times are integer nanoseconds on one clock. The converter uses each message's
``header.stamp`` (the capture time, DESIGN.md §3) when the stream has one, else the
time the recorder received it (the bag timestamp); see ``message_times`` there.

The frame clock runs at ``fps`` from the first time at which every stream has a
message (the latest of the streams' first messages) to the last message of any stream.
For each frame time ``t`` every stream contributes its latest message at or before
``t``: the state and images a policy would have seen at ``t``, and the command that
was in force at ``t``. No stream, the action included, is ever taken from ``t``'s
future. The age of an input is ``t`` minus its message time; a frame whose input is
older than ``max_age`` is *too old* (a dropped or late message), and an episode with
more than ``max_too_old_fraction`` of its frames too old is rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from act_policy.errors import ActPolicyError

NS_PER_S = 1_000_000_000
#: Default share of frames allowed to have a too-old input before an episode is rejected.
MAX_TOO_OLD_FRACTION = 0.05


class ResampleError(ActPolicyError):
    """Streams cannot be put on a common frame clock (a stream is empty, or they do not overlap)."""


@dataclass(frozen=True)
class StreamReport:
    """Input ages of one stream over an episode's frames, in milliseconds."""

    messages: int
    age_p50_ms: float
    age_p95_ms: float
    age_max_ms: float
    #: frames whose input from this stream is older than ``max_age``
    too_old: int
    #: frames that reuse the previous frame's message (message rate below fps, or a drop)
    repeated: int


@dataclass(frozen=True)
class SyncReport:
    """What resampling one episode did: the clock, per-stream ages, and the verdict."""

    fps: int
    start_ns: int
    end_ns: int
    frames: int
    max_age_ms: float
    max_too_old_fraction: float
    streams: dict[str, StreamReport]
    #: indices of frames with at least one input older than ``max_age``
    too_old_frames: list[int] = field(default_factory=list)
    rejected: bool = False
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for ``so100_episodes.jsonl``)."""
        return asdict(self)

    def summary(self) -> str:
        """One line per stream, e.g. for a CLI."""
        lines = [f"{self.frames} frames at {self.fps} fps, {len(self.too_old_frames)} with an input older than "
                 f"{self.max_age_ms:.1f} ms" + (f"; REJECTED: {self.reason}" if self.rejected else "")]
        for name, s in self.streams.items():
            lines.append(f"  {name}: {s.messages} msgs, age p50 {s.age_p50_ms:.1f} ms, p95 {s.age_p95_ms:.1f} ms, "
                         f"max {s.age_max_ms:.1f} ms, too old {s.too_old}, repeated {s.repeated}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Resampled:
    """Per frame: its time and, for each stream, the index of the message it uses and that input's age."""

    frame_times: np.ndarray  # int64 ns, shape (frames,)
    indices: dict[str, np.ndarray]  # stream -> int64 message index into that stream's times, shape (frames,)
    ages_ns: dict[str, np.ndarray]  # stream -> int64, shape (frames,), always >= 0
    report: SyncReport


def frame_clock(times: Mapping[str, np.ndarray], fps: int) -> np.ndarray:
    """Frame times (int64 ns) at ``fps``, from when every stream has a message to the last message.

    Frame ``k`` is at ``start + k * 1e9 / fps`` rounded down to the nanosecond, so the clock
    does not drift over long episodes.
    """
    if fps <= 0:
        raise ResampleError(f"fps must be positive, got {fps}")
    if not times:
        raise ResampleError("no streams to resample")
    for name, t in times.items():
        if len(t) == 0:
            raise ResampleError(f"stream {name} has no messages; it is required for every frame")
    start = max(int(np.min(t)) for t in times.values())
    end = max(int(np.max(t)) for t in times.values())
    count = (end - start) * fps // NS_PER_S + 1
    return start + (np.arange(count, dtype=np.int64) * NS_PER_S) // fps


def latest_at_or_before(msg_times: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """Index of the latest message whose time is <= each frame time; -1 where there is none.

    ``msg_times`` need not be sorted (header stamps may arrive out of order); among equal
    times the message that came last wins. Indices refer to ``msg_times``' own order.
    """
    msg_times = np.asarray(msg_times, dtype=np.int64)
    order = np.argsort(msg_times, kind="stable")
    pos = np.searchsorted(msg_times[order], np.asarray(frame_times, dtype=np.int64), side="right") - 1
    return np.where(pos >= 0, order[np.maximum(pos, 0)], -1)


def _percentile_ms(ages_ns: np.ndarray, q: float) -> float:
    return float(np.percentile(ages_ns, q)) / 1e6 if len(ages_ns) else 0.0


def resample(
    times: Mapping[str, np.ndarray],
    fps: int,
    *,
    max_age_s: float | None = None,
    max_too_old_fraction: float = MAX_TOO_OLD_FRACTION,
) -> Resampled:
    """Pick, for every frame of the clock, each stream's latest message at or before the frame time.

    Args:
        times: stream name -> message times (int ns, any order) of one episode.
        fps: dataset frame rate.
        max_age_s: an input older than this makes its frame *too old*; default ``2 / fps``.
        max_too_old_fraction: reject the episode when more than this share of frames is too old.

    Raises:
        ResampleError: a stream has no message, or the arguments are out of range.
    """
    if max_age_s is None:
        max_age_s = 2.0 / fps if fps > 0 else 0.0
    if max_age_s <= 0:
        raise ResampleError(f"max_age must be positive, got {max_age_s} s")
    if not 0.0 <= max_too_old_fraction <= 1.0:
        raise ResampleError(f"max_too_old_fraction must be within [0, 1], got {max_too_old_fraction}")
    arrays = {name: np.asarray(t, dtype=np.int64).reshape(-1) for name, t in times.items()}
    frame_times = frame_clock(arrays, fps)
    max_age_ns = round(max_age_s * NS_PER_S)
    indices: dict[str, np.ndarray] = {}
    ages: dict[str, np.ndarray] = {}
    streams: dict[str, StreamReport] = {}
    too_old_any = np.zeros(len(frame_times), dtype=bool)
    for name, t in arrays.items():
        idx = latest_at_or_before(t, frame_times)
        # the clock starts when every stream has a message, so every frame has one
        assert (idx >= 0).all(), f"stream {name}: frame before its first message"
        age = frame_times - t[idx]
        old = age > max_age_ns
        too_old_any |= old
        indices[name], ages[name] = idx, age
        streams[name] = StreamReport(
            messages=len(t),
            age_p50_ms=_percentile_ms(age, 50),
            age_p95_ms=_percentile_ms(age, 95),
            age_max_ms=float(age.max()) / 1e6,
            too_old=int(old.sum()),
            repeated=int((np.diff(idx) == 0).sum()),
        )
    too_old_frames = np.flatnonzero(too_old_any)
    fraction = len(too_old_frames) / len(frame_times)
    rejected = fraction > max_too_old_fraction
    reason = None
    if rejected:
        worst = max(streams, key=lambda n: streams[n].too_old)
        reason = (f"{len(too_old_frames)} of {len(frame_times)} frames ({fraction:.1%}) have an input older than "
                  f"{max_age_s * 1e3:.1f} ms (limit {max_too_old_fraction:.1%}); worst stream {worst} "
                  f"({streams[worst].too_old} frames, max age {streams[worst].age_max_ms:.1f} ms)")
    report = SyncReport(
        fps=fps,
        start_ns=int(frame_times[0]),
        end_ns=int(frame_times[-1]),
        frames=len(frame_times),
        max_age_ms=max_age_s * 1e3,
        max_too_old_fraction=max_too_old_fraction,
        streams=streams,
        too_old_frames=too_old_frames.tolist(),
        rejected=rejected,
        reason=reason,
    )
    return Resampled(frame_times=frame_times, indices=indices, ages_ns=ages, report=report)
