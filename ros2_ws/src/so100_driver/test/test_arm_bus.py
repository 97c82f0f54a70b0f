"""ArmBus against the emulated servos: configuration as LeRobot writes it, radians, retries, clear errors."""

import json

import numpy as np
import pytest
from lerobot.motors import MotorCalibration

from so100_common.names import JOINT_NAMES
from so100_driver.arm_bus import ArmBus, ArmBusConfig
from so100_driver.calibration import JAW_LOWER, JAW_UPPER, ArmCalibration
from so100_driver.emulator import EmulatedBus
from so100_driver.emulator.cli import apply_calibration
from so100_driver.errors import BusError

CAL = {
    name: MotorCalibration(id=k + 1, drive_mode=0, homing_offset=20 * k - 50, range_min=1000 + 10 * k,
                           range_max=3000 + 10 * k)
    for k, name in enumerate(JOINT_NAMES)
}


@pytest.fixture
def calibration(tmp_path):
    path = tmp_path / "arm.json"
    path.write_text(json.dumps({k: vars(v) for k, v in CAL.items()}))
    return path


@pytest.fixture
def calibrated_emu(emu, calibration):
    with emu.lock:
        apply_calibration(emu.servos, calibration)
        for i, servo in emu.servos.items():
            c = CAL[JOINT_NAMES[i - 1]]
            servo.set_position((c.range_min + c.range_max) / 2)
    return emu


def make_arm(port, role="follower", retries=2):
    return ArmBus(ArmBusConfig(port, ArmCalibration(CAL), role=role, retries=retries))


def test_follower_is_configured_like_lerobot_and_reads_radians(calibrated_emu):
    """connect() leaves torque off, writes SOFollower's registers (gripper protection too); reads are radians."""
    emu = calibrated_emu
    arm = make_arm(emu.port)
    arm.connect()
    try:
        s1, grip = emu.servos[1], emu.servos[6]
        assert s1.get("Return_Delay_Time") == 0 and s1.get("Acceleration") == 254
        assert (s1.get("P_Coefficient"), s1.get("I_Coefficient"), s1.get("D_Coefficient")) == (16, 0, 32)
        assert (grip.get("Max_Torque_Limit"), grip.get("Protection_Current"), grip.get("Overload_Torque")) == (
            500, 250, 25)
        assert not any(s.torque_enabled for s in emu.servos.values())
        assert np.allclose(arm.read_positions(), [0, 0, 0, 0, 0, (JAW_LOWER + JAW_UPPER) / 2], atol=1e-3)
        emu.servos[2].set_position(CAL["shoulder_lift"].range_min + 1000 + 512)
        state = arm.read_state()
        assert state.position[1] == pytest.approx(512 * 2 * np.pi / 4095)
        assert state.velocity.shape == (6,) and state.effort.shape == (6,)
    finally:
        arm.close()


def test_goal_in_radians_moves_the_servos_to_the_tick(calibrated_emu, wait_for):
    """set_torque(True) holds the present pose; write_goal(rad) drives each servo to the converted tick."""
    emu = calibrated_emu
    arm = make_arm(emu.port)
    arm.connect()
    try:
        arm.set_torque(True)
        assert all(s.torque_enabled for s in emu.servos.values())
        target = np.array([0.3, -0.2, 0.25, 0.2, -0.3, 0.4])
        ticks = arm.cal.to_ticks(target)
        arm.write_goal(target)
        wait_for(lambda: [s.position for _, s in sorted(emu.servos.items())] == ticks.tolist(), 3.0,
                 "every servo at its goal tick")
        assert np.max(np.abs(arm.read_positions() - target)) < 2e-3
        goals = [s.get("Goal_Position") for _, s in sorted(emu.servos.items())]
        for bad in (np.nan, np.inf):  # refused before conversion: NaN would become the range's lower end
            with pytest.raises(BusError, match="non-finite"):
                arm.write_goal(np.array([0.3, -0.2, bad, 0.2, -0.3, 0.4]))
        with pytest.raises(BusError, match="mis-sized"):
            arm.write_goal(np.zeros(5))
        assert [s.get("Goal_Position") for _, s in sorted(emu.servos.items())] == goals  # nothing was written
        arm.set_torque(False)
        assert not any(s.torque_enabled for s in emu.servos.values())
    finally:
        arm.close()


def test_leader_keeps_torque_off_and_skips_the_follower_gains(calibrated_emu):
    """The leader is configured as SOLeader: position mode, torque off, factory P coefficient untouched."""
    arm = make_arm(calibrated_emu.port, role="leader")
    arm.connect()
    try:
        assert not any(s.torque_enabled for s in calibrated_emu.servos.values())
        assert calibrated_emu.servos[6].get("Max_Torque_Limit") == 1000
        assert calibrated_emu.servos[1].get("P_Coefficient") == 32
    finally:
        arm.close()


def test_uncalibrated_servos_receive_the_file_calibration(emu):
    """Factory-fresh servos: connect() writes the file's offsets and limits into them (LeRobot's default choice)."""
    arm = make_arm(emu.port)
    arm.connect()
    try:
        assert emu.servos[3].get("Min_Position_Limit") == CAL["elbow_flex"].range_min
        assert arm.bus.is_calibrated
    finally:
        arm.close()
    emu.power_cycle()
    assert emu.servos[3].get("Max_Position_Limit") == CAL["elbow_flex"].range_max  # saved (Lock was 0)


def test_late_replies_are_flushed_after_a_timeout(calibrated_emu, wait_for):
    """A reply later than the SDK's timeout fails the read; the next read returns fresh data, not the late reply."""
    emu = calibrated_emu
    arm = make_arm(emu.port, retries=0)
    arm.connect()
    try:
        with emu.inject(reply_delay_s=0.12):
            with pytest.raises(ConnectionError):  # lerobot's own read times out and leaves the late reply behind
                arm.bus.sync_read("Present_Position", normalize=False)
        wait_for(lambda: arm.bus.port_handler.ser.in_waiting >= 6 * 8, 5.0, "the six late replies to land")
        emu.servos[1].set_position(2500)
        assert arm._sync_read("Present_Position")[0] == 2500
    finally:
        arm.close()


def test_silent_servo_is_named_after_the_retries(calibrated_emu):
    """An offline servo: read_positions raises BusError naming it, after the configured retries."""
    emu = calibrated_emu
    arm = make_arm(emu.port, retries=2)
    arm.connect()
    try:
        emu.take_offline(3)
        with pytest.raises(BusError, match=r"failed 3 times .*elbow_flex \(id 3\)"):
            arm.read_positions()
        assert arm.torque_off_unacknowledged()
    finally:
        arm.close()


def test_missing_port_and_silent_bus_say_what_to_do(tmp_path):
    """A port that does not exist, or one where no servo answers, raises BusError naming it and the fix."""
    with pytest.raises(BusError, match=r"/dev/ttyNOPE0 does not exist.*lerobot-find-port"):
        make_arm("/dev/ttyNOPE0").connect()
    with EmulatedBus(range(1, 7), physics_hz=0) as emu, emu.inject(unplugged=True):
        with pytest.raises(BusError, match=rf"no SO-100 arm answers on {emu.port}.*lerobot-find-port"):
            make_arm(emu.port).connect()
