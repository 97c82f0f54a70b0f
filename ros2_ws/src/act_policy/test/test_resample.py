"""resample: frame clock, latest-at-or-before picking, ages, too-old frames and rejection."""

import numpy as np
import pytest

from act_policy.resample import ResampleError, frame_clock, latest_at_or_before, resample

MS = 1_000_000
S = 1_000_000_000


def _ticks(start_ns: int, rate_hz: float, duration_s: float) -> np.ndarray:
    n = int(duration_s * rate_hz)
    return start_ns + (np.arange(n) * S / rate_hz).astype(np.int64)


def test_latest_at_or_before_picks_equal_time_and_never_the_future():
    """A message exactly at the frame time is used; one a nanosecond later is not."""
    msgs = np.array([0, 10, 20, 30])
    frames = np.array([0, 9, 10, 19, 20, 29, 30, 1000])
    assert latest_at_or_before(msgs, frames).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert latest_at_or_before(msgs, np.array([-1])).tolist() == [-1]


def test_latest_at_or_before_handles_unsorted_times():
    """Out-of-order stamps: indices refer to the caller's order, ties go to the later message."""
    msgs = np.array([20, 0, 10, 10])
    assert latest_at_or_before(msgs, np.array([5, 10, 15, 25])).tolist() == [1, 3, 3, 0]


def test_frame_clock_spans_common_start_to_last_message_without_drift():
    times = {"a": np.array([100, 5 * S]), "b": np.array([3 * MS, 4 * S])}
    clock = frame_clock(times, 30)
    assert clock[0] == 3 * MS
    assert clock[-1] <= 5 * S < clock[-1] + S // 30 + 1
    assert len(clock) == (5 * S - 3 * MS) * 30 // S + 1
    # frame k is exactly start + k/fps (rounded down), no accumulated rounding error
    assert clock[120] == 3 * MS + 4 * S
    assert np.all(np.diff(clock) >= S // 30)


def test_regular_streams_give_small_ages_and_duration_times_fps_frames():
    state = _ticks(0, 100, 2.0)
    image = _ticks(2 * MS, 30, 2.0)
    action = _ticks(1 * MS, 50, 2.0)
    r = resample({"state": state, "image": image, "action": action}, 30)
    rep = r.report
    assert not rep.rejected and rep.too_old_frames == []
    assert abs(rep.frames - 2.0 * 30) <= 1
    assert rep.streams["state"].age_max_ms < 10.0 + 1e-6
    assert rep.streams["action"].age_max_ms < 20.0 + 1e-6
    for name, t in (("state", state), ("image", image), ("action", action)):
        picked = t[r.indices[name]]
        assert np.all(picked <= r.frame_times), name  # never from the future
        # and it is the latest such message: the next one is after the frame time
        nxt = np.minimum(r.indices[name] + 1, len(t) - 1)
        assert np.all((t[nxt] > r.frame_times) | (nxt == r.indices[name])), name
        assert np.array_equal(r.ages_ns[name], r.frame_times - picked)


def test_jitter_is_tolerated_and_never_picks_a_future_message():
    rng = np.random.default_rng(0)
    base = _ticks(0, 30, 3.0)
    jittered = np.sort(base + rng.integers(-8 * MS, 8 * MS, len(base)))
    state = np.sort(_ticks(0, 100, 3.0) + rng.integers(0, 3 * MS, 300))
    r = resample({"state": state, "image": jittered}, 30)
    assert not r.report.rejected
    for name, t in (("state", state), ("image", jittered)):
        assert np.all(t[r.indices[name]] <= r.frame_times)
        assert np.all(r.ages_ns[name] >= 0)
    assert r.report.streams["image"].age_max_ms <= 1000 / 30 + 16 + 1e-6


def test_commands_leading_states_are_never_taken_from_the_future():
    """An expert's commands lead the state: the frame still gets the command in force at its time."""
    state = _ticks(0, 30, 1.0)
    commands = state + 20 * MS  # each command 20 ms after the state it leads to
    commands = np.concatenate([[0], commands])  # one command in force at the start
    r = resample({"state": state, "action": commands}, 30)
    picked = commands[r.indices["action"]]
    assert np.all(picked <= r.frame_times)
    # frame k (at state k's time) uses command k-1 (sent 13 ms before), not command k (20 ms ahead)
    assert np.array_equal(r.indices["action"][1:], np.arange(1, r.report.frames))


def test_a_gap_is_reported_and_rejects_beyond_the_threshold():
    """A 0.5 s camera gap in 4 s: 14 frames too old (> 2/fps), above 5% -> rejected."""
    image = _ticks(0, 30, 4.0)
    image = image[(image < 1 * S) | (image >= int(1.5 * S))]
    state = _ticks(0, 100, 4.0)
    r = resample({"state": state, "image": image}, 30)
    rep = r.report
    last_before = image[image < S].max()  # 29/30 s
    gap_frames = [k for k, t in enumerate(r.frame_times) if t - last_before > round(2 / 30 * S) and t < int(1.5 * S)]
    assert rep.too_old_frames == gap_frames and len(gap_frames) >= 12
    assert rep.streams["image"].too_old == len(gap_frames) and rep.streams["state"].too_old == 0
    assert rep.streams["image"].age_max_ms > 450
    assert rep.streams["image"].repeated >= len(gap_frames)
    assert rep.rejected and "image" in rep.reason and "older than 66.7 ms" in rep.reason
    # a looser limit accepts the same episode, still reporting the frames
    r2 = resample({"state": state, "image": image}, 30, max_too_old_fraction=0.2)
    assert not r2.report.rejected and r2.report.too_old_frames == gap_frames
    # and a larger max age makes none too old
    r3 = resample({"state": state, "image": image}, 30, max_age_s=0.6)
    assert r3.report.too_old_frames == [] and not r3.report.rejected


def test_a_stream_that_starts_late_starts_the_clock():
    state = _ticks(0, 100, 3.0)
    image = _ticks(S, 30, 2.0)  # the camera comes up after one second
    r = resample({"state": state, "image": image}, 30)
    assert r.frame_times[0] == image[0]
    assert not r.report.rejected and r.report.streams["image"].age_max_ms < 34


def test_a_stream_that_stops_early_makes_the_tail_too_old():
    state = _ticks(0, 100, 3.0)
    action = _ticks(0, 30, 2.0)  # commands stop a second before the end
    r = resample({"state": state, "action": action}, 30)
    assert r.report.rejected and r.report.streams["action"].too_old > 25
    assert r.report.to_dict()["streams"]["action"]["too_old"] == r.report.streams["action"].too_old
    assert "REJECTED" in r.report.summary()


def test_errors_name_the_problem():
    with pytest.raises(ResampleError, match="stream image has no messages"):
        resample({"state": np.array([0, 1]), "image": np.array([], dtype=np.int64)}, 30)
    with pytest.raises(ResampleError, match="fps must be positive"):
        frame_clock({"a": np.array([0])}, 0)
    with pytest.raises(ResampleError, match="max_age must be positive"):
        resample({"a": np.array([0])}, 30, max_age_s=0)
    with pytest.raises(ResampleError, match="max_too_old_fraction"):
        resample({"a": np.array([0])}, 30, max_too_old_fraction=2)


def test_single_instant_gives_one_frame():
    r = resample({"a": np.array([5]), "b": np.array([5])}, 30)
    assert r.report.frames == 1 and r.indices["a"].tolist() == [0]
