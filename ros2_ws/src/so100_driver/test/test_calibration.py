"""Calibration files where LeRobot writes them, and our radians against LeRobot's own normalization."""

import json
import math

import numpy as np
import pytest
from lerobot.motors import MotorCalibration

from so100_common.names import JOINT_NAMES
from so100_driver.calibration import (
    JAW_LOWER,
    JAW_UPPER,
    ArmCalibration,
    find_calibration,
    lerobot_to_radians,
    load_calibration,
    radians_to_lerobot,
    save_calibration,
)
from so100_driver.errors import CalibrationError


def sample_calibration(shift: int = 0, gripper_drive_mode: int = 0) -> dict[str, MotorCalibration]:
    cal = {
        name: MotorCalibration(id=k + 1, drive_mode=0, homing_offset=37 * k - 90, range_min=900 + 50 * k + shift,
                               range_max=3100 - 30 * k + shift)
        for k, name in enumerate(JOINT_NAMES)
    }
    cal["wrist_roll"] = MotorCalibration(5, 0, 12, 0, 4095)
    cal["gripper"] = MotorCalibration(6, gripper_drive_mode, -400, 1980, 3400)
    return cal


def lerobot_robot_writes(calibration_dir, cal_id, calibration):
    """Save with lerobot's own writer (Robot._save_calibration: draccus JSON)."""
    from lerobot.robots.so_follower import SO100Follower, SO100FollowerConfig

    robot = SO100Follower(SO100FollowerConfig(port="/dev/null", id=cal_id, calibration_dir=calibration_dir))
    robot.calibration = calibration
    robot._save_calibration()
    return robot.calibration_fpath


def lerobot_teleop_writes(calibration_dir, cal_id, calibration):
    from lerobot.teleoperators.so_leader import SO100Leader, SO100LeaderConfig

    teleop = SO100Leader(SO100LeaderConfig(port="/dev/null", id=cal_id, calibration_dir=calibration_dir))
    teleop.calibration = calibration
    teleop._save_calibration()
    return teleop.calibration_fpath


@pytest.mark.parametrize("folder", ["so_follower", "so100_follower"])
def test_follower_file_round_trip_in_both_layouts(tmp_path, monkeypatch, folder):
    """A file lerobot wrote under robots/<so_follower|so100_follower>/<id>.json is found and read back exactly."""
    cal = sample_calibration()
    written = lerobot_robot_writes(tmp_path / "robots" / folder, "arm7", cal)
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path))
    assert find_calibration("follower", "arm7") == written
    assert load_calibration(written) == cal
    assert ArmCalibration.load("follower", "arm7").source == str(written)


@pytest.mark.parametrize("folder", ["so_leader", "so100_leader"])
def test_leader_file_round_trip_in_both_layouts(tmp_path, folder):
    """Teleoperator files live under teleoperators/<so_leader|so100_leader>/<id>.json."""
    cal = sample_calibration(shift=40)
    written = lerobot_teleop_writes(tmp_path / "teleoperators" / folder, "lead", cal)
    assert find_calibration("leader", "lead", root=tmp_path) == written
    assert load_calibration(written, role="leader") == cal


def test_newest_layout_wins_and_lerobot_reads_what_we_write(tmp_path):
    """With both folders present so_follower is used; lerobot's loader reads save_calibration's output."""
    from lerobot.robots.so_follower import SO100Follower, SO100FollowerConfig

    old, new = sample_calibration(), sample_calibration(shift=10)
    save_calibration(tmp_path / "robots" / "so100_follower" / "a.json", old)
    save_calibration(tmp_path / "robots" / "so_follower" / "a.json", new)
    path = find_calibration("follower", "a", root=tmp_path)
    assert path.parent.name == "so_follower" and load_calibration(path) == new
    robot = SO100Follower(SO100FollowerConfig(port="/dev/null", id="a", calibration_dir=path.parent))
    assert robot.calibration == new


def test_missing_file_names_the_paths_and_the_fix(tmp_path):
    """No file: the error lists where it looked and the lerobot-calibrate command for that id and port."""
    with pytest.raises(CalibrationError) as err:
        find_calibration("follower", "nope", root=tmp_path, port="/dev/ttyACM0")
    msg = str(err.value)
    assert str(tmp_path / "robots" / "so_follower" / "nope.json") in msg
    assert str(tmp_path / "robots" / "so100_follower" / "nope.json") in msg
    assert "lerobot-calibrate --robot.type=so100_follower --robot.port=/dev/ttyACM0 --robot.id=nope" in msg
    with pytest.raises(CalibrationError, match=r"--teleop.type=so100_leader .*--teleop.id=x"):
        find_calibration("leader", "x", root=tmp_path)


def test_missing_motor_or_bad_range_is_refused(tmp_path):
    """A file without the gripper, or with min >= max, names the file, the motor and the fix."""
    cal = {k: vars(v) for k, v in sample_calibration().items()}
    path = tmp_path / "f.json"
    path.write_text(json.dumps({k: v for k, v in cal.items() if k != "gripper"}))
    with pytest.raises(CalibrationError, match=r"f\.json has no entry for motor\(s\) \['gripper'\].*lerobot-calibrate"):
        load_calibration(path)
    cal["elbow_flex"]["range_max"] = cal["elbow_flex"]["range_min"]
    path.write_text(json.dumps(cal))
    with pytest.raises(CalibrationError, match="elbow_flex"):
        load_calibration(path)


@pytest.mark.parametrize("drive_mode", [0, 1])
def test_radians_equal_lerobot_normalization_in_radians(drive_mode, new_lerobot_bus):
    """ticks -> our radians == lerobot_to_radians(LeRobot's DEGREES / RANGE_0_100 normalization), over each range."""
    cal = sample_calibration(gripper_drive_mode=drive_mode)
    arm = ArmCalibration(cal)
    bus = new_lerobot_bus("/dev/null", calibration=cal)
    rng = np.random.default_rng(0)
    for _ in range(200):
        ticks = [int(rng.integers(cal[n].range_min, cal[n].range_max + 1)) for n in JOINT_NAMES]
        norm = bus._normalize({k + 1: t for k, t in enumerate(ticks)})
        lerobot = np.array([norm[k + 1] for k in range(6)])
        np.testing.assert_allclose(arm.to_radians(ticks), lerobot_to_radians(lerobot), atol=1e-12)
        np.testing.assert_allclose(radians_to_lerobot(arm.to_radians(ticks)), lerobot, atol=1e-9)
        assert arm.to_ticks(arm.to_radians(ticks)).tolist() == ticks  # exact round trip
        unnorm = bus._unnormalize(dict(norm))  # lerobot truncates to int: at most one tick below ours
        assert all(0 <= t - unnorm[k + 1] <= 1 for k, t in enumerate(ticks))


def test_units_zero_is_mid_range_and_gripper_spans_the_jaw_limits():
    """Mid range is 0 rad, a quarter turn is pi/2 (LeRobot's 360/4095 scale), the gripper's ends are the jaw limits."""
    cal = sample_calibration()
    arm = ArmCalibration(cal)
    mid = [(cal[n].range_min + cal[n].range_max) / 2 for n in JOINT_NAMES]
    assert np.allclose(arm.to_radians(mid)[:5], 0.0)
    assert arm.to_radians(np.add(mid, 1024))[0] == pytest.approx(1024 * 2 * math.pi / 4095)
    lower, upper = arm.limits()
    assert (lower[5], upper[5]) == pytest.approx((JAW_LOWER, JAW_UPPER))
    assert (lower[4], upper[4]) == pytest.approx((-math.pi * 4095 / 4095, math.pi))
    inverted = ArmCalibration(sample_calibration(gripper_drive_mode=1))
    assert inverted.to_radians([0, 0, 0, 0, 0, 1980])[5] == pytest.approx(JAW_UPPER)
    assert lerobot_to_radians([0, 0, 0, 0, 0, 0])[5] == pytest.approx(JAW_LOWER)
    assert lerobot_to_radians([90, 0, 0, 0, 0, 100])[[0, 5]] == pytest.approx([math.pi / 2, JAW_UPPER])
