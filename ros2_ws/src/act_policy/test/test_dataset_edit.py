"""dataset_edit: merge and to-ee on tiny real datasets converted from recorder bags, read back with lerobot."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_bag_to_dataset import FPS, load, state_value, write_bag

from act_policy.bag_to_dataset import ConversionError, convert
from act_policy.dataset_cli import main as cli_main
from act_policy.dataset_edit import (
    ACTION_JOINTS_KEY,
    EE_FEATURE_NAMES,
    EE_REPORT_JSON,
    EE_STATE_KEY,
    DatasetEditError,
    merge,
)
from act_policy.dataset_tools import check, recording_metadata
from so100_sim.kinematics import Kinematics

PHASE = np.arange(6)


def in_limit_command(i: int) -> np.ndarray:
    """Joint commands that sweep a reachable region well inside every joint's limits."""
    return np.array([0.3, -0.6, 0.8, 0.5, 0.2, 0.6]) + 0.2 * np.sin(0.15 * i + PHASE)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """A (1 episode), B (2 episodes) at FPS and C (1 episode) at 15 fps, all with in-limit joints."""
    bags = tmp_path_factory.mktemp("bags")
    ep = [write_bag(bags, f"episode_00000{i}", seed=10 + i, task="stack" if i == 2 else "put the brick in the bowl",
                    command=in_limit_command) for i in range(3)]
    root = tmp_path_factory.mktemp("ds")
    out = {"A": root / "a", "B": root / "b", "C": root / "c", "root": root}
    convert(ep[:1], out["A"], fps=FPS, progress=False)
    convert(ep[1:], out["B"], fps=FPS, progress=False)
    convert(ep[:1], out["C"], fps=15, progress=False)
    return out


def test_joint_values_of_the_test_bags_are_inside_the_arm_limits():
    """The IK round trip below is only meaningful for reachable, in-limit joint values."""
    kin = Kinematics()
    for i in range(60):
        for q in (in_limit_command(i), state_value(i)):
            assert np.all(q > kin.lower) and np.all(q < kin.upper), (i, q)


def test_merge_keeps_episodes_frames_and_recording_metadata(datasets, capsys):
    """Two datasets merged through lerobot: counts add up, frames are equal, jsonl renumbered with its source."""
    out = datasets["root"] / "merged"
    assert cli_main(["merge", str(datasets["A"]), str(datasets["B"]), "--out", str(out)]) == 0
    assert "3 episode(s)" in capsys.readouterr().out
    a, b, m = load(datasets["A"]), load(datasets["B"]), load(out)
    assert m.meta.total_episodes == a.meta.total_episodes + b.meta.total_episodes == 3
    assert m.num_frames == a.num_frames + b.num_frames and m.fps == FPS
    pairs = [(a, k) for k in range(len(a))] + [(b, k) for k in range(len(b))]
    for i in (0, len(a) - 1, len(a), len(a) + 5, len(m) - 1):
        src, k = pairs[i]
        got, want = m[i], src[k]
        for key in ("observation.state", "action", "frame_index"):
            np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())
        assert got["task"] == want["task"]
        for cam in ("observation.images.overhead_cam", "observation.images.wrist_cam"):
            np.testing.assert_allclose(got[cam].numpy(), want[cam].numpy(), atol=1e-6)  # copied, not re-encoded
    assert m[len(m) - 1]["task"] == "stack" and int(m[len(a)]["episode_index"]) == 1
    lines = recording_metadata(out)
    assert [x["episode_index"] for x in lines] == [0, 1, 2]
    assert [x["source_episode_index"] for x in lines] == [0, 0, 1]
    assert [x["source_dataset"] for x in lines] == [str(datasets["A"].resolve())] + [str(datasets["B"].resolve())] * 2
    assert [x["episode"]["scene"]["seed"] for x in lines] == [10, 11, 12]
    assert check(out).ok, check(out).problems
    # an existing --out is refused unless --overwrite
    with pytest.raises(ConversionError, match="exists already.*--overwrite"):
        merge([datasets["A"], datasets["B"]], out)
    merge([datasets["B"], datasets["A"]], out, overwrite=True)
    assert [x["episode"]["scene"]["seed"] for x in recording_metadata(out)] == [11, 12, 10]


def test_merge_refuses_mismatched_fps(datasets, capsys):
    """Datasets at 30 and 15 fps are not merged; the message names both and the fix, and nothing is written."""
    out = datasets["root"] / "mixed"
    with pytest.raises(DatasetEditError, match="at 15 fps but .* at 30 fps.*same --fps"):
        merge([datasets["A"], datasets["C"]], out)
    assert cli_main(["merge", str(datasets["A"]), str(datasets["C"]), "--out", str(out)]) == 2
    assert "different fps cannot be merged" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(DatasetEditError, match="at least two"):
        merge([datasets["A"]], out)


def test_to_ee_action_is_fk_of_joint_action_with_a_round_trip_report(datasets, capsys):
    """to-ee: action = FK(action_joints) + gripper (8), state unchanged, videos kept, report stored."""
    out = datasets["root"] / "ee"
    # in its own process, as a user runs it: after an in-process to-ee, emulated servo buses started later
    # by this pytest process stopped answering (cause not found; see the session note)
    run = subprocess.run([str(Path(sys.executable).parent / "so100"), "dataset", "to-ee", str(datasets["B"]),
                          "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    printed = run.stdout
    assert "FK->IK round trip" in printed and "converged 100.0%" in printed
    src, ee = load(datasets["B"]), load(out)
    assert ee.num_frames == src.num_frames and ee.meta.total_episodes == 2 and ee.fps == FPS
    assert tuple(ee.features["action"]["shape"]) == (8,) and ee.features["action"]["names"] == EE_FEATURE_NAMES
    assert tuple(ee.features[ACTION_JOINTS_KEY]["shape"]) == (6,)
    assert tuple(ee.features[EE_STATE_KEY]["shape"]) == (8,)
    table = ee.hf_dataset.with_format("numpy")
    action, joints = np.asarray(table["action"]), np.asarray(table[ACTION_JOINTS_KEY])
    src_table = src.hf_dataset.with_format("numpy")
    np.testing.assert_array_equal(joints, np.asarray(src_table["action"]))
    np.testing.assert_array_equal(np.asarray(table["observation.state"]), np.asarray(src_table["observation.state"]))
    kin = Kinematics()
    for k in range(len(action)):
        pos, _ = kin.fk(joints[k].astype(np.float64))
        np.testing.assert_allclose(action[k, :3], pos, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(action[:, 3:7], axis=1), 1.0, atol=1e-5)
    assert np.all(action[:, 3] >= 0)
    np.testing.assert_array_equal(action[:, 7], joints[:, 5])
    for k in (0, len(ee) - 1):  # videos carried over (re-encoded: lossy, compare means)
        for cam in ("observation.images.overhead_cam", "observation.images.wrist_cam"):
            np.testing.assert_allclose(ee[k][cam].numpy().mean(), src[k][cam].numpy().mean(), atol=3 / 255)
    assert ee[len(ee) - 1]["task"] == "stack"
    report = json.loads((out / "meta" / EE_REPORT_JSON).read_text())
    assert report["action_names"] == EE_FEATURE_NAMES and len(report["episodes"]) == 2
    for e in report["episodes"]:
        assert e["converged_fraction"] >= 0.95 and e["pos_error_max_mm"] < 1.0 and e["quat_distance_max"] < 1e-4
    assert [x["episode"]["scene"]["seed"] for x in recording_metadata(out)] == [11, 12]
    from act_policy.dataset_tools import check

    assert check(out).ok, check(out).problems  # the end-effector layout validates too
    with pytest.raises(DatasetEditError, match="already an end-effector dataset|6 joint positions"):
        from act_policy.dataset_edit import to_ee

        to_ee(out, datasets["root"] / "ee2", progress=False)
