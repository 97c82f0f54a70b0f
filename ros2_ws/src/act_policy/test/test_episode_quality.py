"""Start transients and uneven state sampling (act_policy.episode_quality), reported and trimmed by the converter."""

from __future__ import annotations

import numpy as np
import pytest
from test_bag_to_dataset import FPS, load, state_value, write_bag

from act_policy.bag_to_dataset import convert
from act_policy.dataset_tools import check
from act_policy.episode_quality import QualityReport, assess

DIRTY_FRAMES = 9


def dirty_start(frames: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """The graph's dirty start: the follower at home while the command is the previous episode's pose."""
    state = np.zeros((frames, 6))
    state[DIRTY_FRAMES:] = np.linspace(0.0, 0.5, frames - DIRTY_FRAMES)[:, None]
    action = state + 0.02
    action[:DIRTY_FRAMES, 3] = 1.5  # wrist_flex commanded 1.5 rad away
    return state, action


def test_a_clean_episode_has_no_flags():
    state = np.linspace(0, 1, 50)[:, None] * np.ones(6)
    q = assess(state, state + 0.05)
    assert (q.start_transient, q.large_gap_frames, q.repeated_states) == (0, 0, 0)
    assert q.converges and q.flags() == []
    assert q.state_step_p99 == pytest.approx(1 / 49)


def test_the_start_transient_is_the_leading_frames_above_the_threshold():
    state, action = dirty_start()
    action[30, 0] += 1.0  # a later spike is a large gap, not part of the start
    q = assess(state, action)
    assert q.start_transient == DIRTY_FRAMES and q.large_gap_frames == DIRTY_FRAMES + 1
    assert q.largest_gap_joint == "wrist_flex" and q.largest_gap == pytest.approx(1.5)
    assert any(f.startswith("start transient: the first 9 frame(s)") and "--trim-start" in f for f in q.flags())
    assert assess(state, action, threshold=2.0).start_transient == 0


def test_repeated_states_are_flagged_as_uneven_sampling_and_a_constant_offset_as_never_converging():
    state = np.repeat(np.linspace(0, 1, 25), 2)[:, None] * np.ones(6)  # every other frame repeats
    q = assess(state, state)
    assert q.repeated_states == 25 and any("uneven state sampling" in f for f in q.flags())
    far = assess(state, state + 1.0)
    assert not far.converges and far.start_transient == 0
    assert any("never within" in f for f in far.flags())
    with pytest.raises(ValueError, match="must both be"):
        assess(state, state[:, :5])


def test_round_trips_through_a_dict():
    state, action = dirty_start()
    q = assess(state, action, trimmed=3)
    assert QualityReport(**q.to_dict()) == q


def test_the_converter_reports_and_trims_a_dirty_start_and_check_flags_it(tmp_path):
    """A bag whose first commands are far from the state: reported; --trim-start drops exactly those frames."""

    def command(i: int) -> np.ndarray:  # commands at 40 Hz; the first 0.2 s point 1.2 rad away
        return state_value(round(i * 50 / 40)) + (1.2 if i < 8 else 0.01)

    bags = tmp_path / "bags"
    write_bag(bags, "episode_000000", command=command)
    kept = convert([bags], tmp_path / "kept", fps=FPS, progress=False)
    trimmed = convert([bags], tmp_path / "trimmed", fps=FPS, trim_start_frames=True, progress=False)
    q_kept = QualityReport(**kept.episodes[0].quality)
    q_trim = QualityReport(**trimmed.episodes[0].quality)
    assert q_kept.start_transient >= 4 and q_kept.trimmed == 0
    assert q_trim.trimmed == q_kept.start_transient and q_trim.start_transient == 0
    assert trimmed.episodes[0].frames == kept.episodes[0].frames - q_kept.start_transient
    assert "start transient" in kept.format() and f"trimmed {q_trim.trimmed}" in trimmed.format()
    a, b = load(tmp_path / "kept"), load(tmp_path / "trimmed")
    k = q_kept.start_transient
    assert np.allclose(np.asarray(a.hf_dataset["observation.state"])[k:], np.asarray(b.hf_dataset["observation.state"]))
    assert np.asarray(b.hf_dataset["timestamp"])[0] == 0.0
    report = check(tmp_path / "kept")
    assert any("start transient" in p for p in report.problems)
    assert check(tmp_path / "trimmed").ok
