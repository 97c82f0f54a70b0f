"""LeRobot's own FeetechMotorsBus (and SO100Follower) against the emulator, real bytes over a pty."""

import json

import pytest
from lerobot.motors import MotorCalibration

from so100_common.names import JOINT_NAMES
from so100_driver.emulator import EmulatedBus, ErrorBit
from so100_driver.emulator.cli import apply_calibration

PING_1 = bytes.fromhex("ff ff 01 02 01 fb")
READ_MODEL_1 = bytes.fromhex("ff ff 01 04 02 03 02 f3")  # READ id 1, address 3, 2 bytes: 1+4+2+3+2 = 12 -> F3


def test_handshake_sends_the_reference_bytes(emu, lerobot_bus):
    """LeRobot's connect() pings id 1 with FF FF 01 02 01 FB, then reads its model number, and gets 777."""
    host = [data for who, data in emu.transcript if who == "host"]
    assert host[:2] == [PING_1, READ_MODEL_1]
    assert lerobot_bus.ping("gripper") == 777


def test_sync_read_and_read_return_raw_ticks(emu, lerobot_bus):
    """sync_read / read with normalize=False return each servo's Present_Position in ticks."""
    with emu.lock:
        for i, servo in emu.servos.items():
            servo.position = 1000 + 100 * i
    assert lerobot_bus.sync_read("Present_Position", normalize=False) == {
        name: 1100 + 100 * k for k, name in enumerate(JOINT_NAMES)
    }
    assert lerobot_bus.read("Present_Position", "wrist_flex", normalize=False) == 1400


def test_sync_write_goal_moves_the_servos_over_time(emu, lerobot_bus, wait_for):
    """With torque on, a Goal_Position sync_write starts a motion that takes time and ends at the goal."""
    with emu.lock:
        for servo in emu.servos.values():
            servo.max_speed = 400.0  # 1000 ticks take ~2.5 s: still moving when read, even on a busy machine
    lerobot_bus.enable_torque()
    lerobot_bus.sync_write("Goal_Position", dict.fromkeys(JOINT_NAMES, 3048), normalize=False)
    first = lerobot_bus.sync_read("Present_Position", normalize=False, num_retry=3)
    assert all(v < 3048 for v in first.values()), first
    assert lerobot_bus.read("Moving", "shoulder_pan", num_retry=3) == 1
    # Present_Position rounds to the goal one physics step before the servo settles (its speed is
    # still non-zero then), so "arrived" is the position and the Moving flag together.
    wait_for(
        lambda: set(lerobot_bus.sync_read("Present_Position", normalize=False, num_retry=3).values()) == {3048}
        and lerobot_bus.read("Moving", "shoulder_pan", num_retry=3) == 0,
        what="every servo at its goal and shoulder_pan no longer moving",
    )
    assert set(lerobot_bus.sync_read("Present_Position", normalize=False, num_retry=3).values()) == {3048}
    assert lerobot_bus.read("Moving", "shoulder_pan", num_retry=3) == 0


def test_eeprom_writes_follow_the_lock(emu, lerobot_bus):
    """Written under enable_torque (Lock=1) a Homing_Offset is lost at power-off; under disable_torque it stays."""
    lerobot_bus.enable_torque()
    lerobot_bus.write("Homing_Offset", "elbow_flex", -500, normalize=False)
    assert lerobot_bus.read("Homing_Offset", "elbow_flex", normalize=False) == -500
    emu.power_cycle()
    assert lerobot_bus.read("Homing_Offset", "elbow_flex", normalize=False) == 0
    lerobot_bus.disable_torque()  # writes Torque_Enable=0 and Lock=0
    lerobot_bus.write("Homing_Offset", "elbow_flex", -500, normalize=False)
    lerobot_bus.write("Min_Position_Limit", "elbow_flex", 500, normalize=False)
    lerobot_bus.write("Max_Position_Limit", "elbow_flex", 3500, normalize=False)
    emu.power_cycle()
    cal = lerobot_bus.read_calibration()["elbow_flex"]
    assert (cal.homing_offset, cal.range_min, cal.range_max) == (-500, 500, 3500)


def test_locked_eeprom_writes_can_be_refused(new_lerobot_bus):
    """With locked_eeprom_writes="ignored" a write while locked is acknowledged but changes nothing."""
    with EmulatedBus([1], locked_eeprom_writes="ignored") as emu:
        bus = new_lerobot_bus(emu.port)
        bus.connect(handshake=False)
        bus.write("Max_Position_Limit", "shoulder_pan", 3000, normalize=False)
        assert bus.read("Max_Position_Limit", "shoulder_pan", normalize=False) == 4095
        bus.write("Lock", "shoulder_pan", 0)
        bus.write("Max_Position_Limit", "shoulder_pan", 3000, normalize=False)
        assert bus.read("Max_Position_Limit", "shoulder_pan", normalize=False) == 3000
        bus.port_handler.closePort()


def test_lerobot_calibration_flow_and_degrees(emu, lerobot_bus, wait_for):
    """Half-turn homing centres every joint at 2047; after write_calibration reads are degrees around the range middle."""
    with emu.lock:
        for i, servo in emu.servos.items():
            servo.set_position(700 + 400 * i, frame="raw")
    lerobot_bus.disable_torque()  # as SOFollower.calibrate does, so the EEPROM writes are saved
    homings = lerobot_bus.set_half_turn_homings()
    assert homings == {name: 700 + 400 * (k + 1) - 2047 for k, name in enumerate(JOINT_NAMES)}
    assert set(lerobot_bus.sync_read("Present_Position", normalize=False).values()) == {2047}
    calibration = {
        name: MotorCalibration(id=k + 1, drive_mode=0, homing_offset=homings[name], range_min=1047, range_max=3047)
        for k, name in enumerate(JOINT_NAMES)
    }
    lerobot_bus.write_calibration(calibration)
    emu.power_cycle()
    assert lerobot_bus.is_calibrated
    emu.servos[2].set_position(2047 + 1024)  # a quarter turn past the middle
    emu.servos[6].set_position(3047)  # gripper at the top of its range
    observed = lerobot_bus.sync_read("Present_Position")
    assert observed["shoulder_pan"] == pytest.approx(0.0)
    assert observed["shoulder_lift"] == pytest.approx(1024 * 360 / 4095)
    assert observed["gripper"] == pytest.approx(100.0)
    lerobot_bus.enable_torque("elbow_flex")
    lerobot_bus.sync_write("Goal_Position", {"elbow_flex": 45.0})
    wait_for(lambda: emu.servos[3].goal_position == int(45 * 4095 / 360 + 2047), what="the 45° goal in ticks")


def test_setup_motor_finds_a_servo_at_another_baud_rate_and_renumbers_it(new_lerobot_bus):
    """lerobot's setup_motor finds a lone factory servo at 500 kbit/s, gives it id 4 and 1 Mbit/s, saved in EEPROM."""
    with EmulatedBus([1]) as emu:
        emu.servos[1].set("Baud_Rate", 1)  # 500 kbit/s
        bus = new_lerobot_bus(emu.port)
        bus.connect(handshake=False)
        assert bus.ping(1) is None  # the host talks at 1 Mbit/s: the servo hears nothing
        bus.setup_motor("wrist_flex", initial_baudrate=500_000)
        assert list(emu.servos) == [4] and emu.servos[4].baud_rate == 1_000_000
        emu.power_cycle()
        assert bus.ping("wrist_flex") == 777
        bus.port_handler.closePort()


def test_dropped_replies_fail_a_read_and_retries_recover(emu, lerobot_bus):
    """All replies lost: read raises lerobot's ConnectionError; half lost: num_retry gets through."""
    with emu.inject(drop_rate=1.0):
        with pytest.raises(ConnectionError, match="There is no status packet"):
            lerobot_bus.read("Present_Position", "gripper")
        assert lerobot_bus.ping("gripper") is None
    with emu.inject(drop_rate=0.5):
        assert lerobot_bus.read("Present_Position", "gripper", normalize=False, num_retry=20) == 2048
    with emu.inject(drop_rate=0.1):
        positions = lerobot_bus.sync_read("Present_Position", normalize=False, num_retry=20)
    assert set(positions.values()) == {2048} and emu.stats.dropped > 0


def test_disappeared_servo_fails_sync_read_and_handshake_until_it_is_back(emu, lerobot_bus, new_lerobot_bus):
    """An offline servo makes sync_read raise ConnectionError and a new connect list it as missing; back online all works."""
    emu.take_offline(3)
    with pytest.raises(ConnectionError, match="Failed to sync read 'Present_Position'"):
        lerobot_bus.sync_read("Present_Position")
    lerobot_bus.port_handler.closePort()
    other = new_lerobot_bus(emu.port)
    with pytest.raises(RuntimeError, match=r"Missing motor IDs:\n  - 3"):
        other.connect()
    emu.bring_online(3)
    assert other.sync_read("Present_Position", normalize=False)["elbow_flex"] == 2048
    other.port_handler.closePort()


def test_servo_that_lost_power_returns_with_torque_off(emu, lerobot_bus):
    """A servo back from a power loss answers again, with its RAM reset: torque off."""
    lerobot_bus.enable_torque()
    emu.take_offline(2)
    emu.bring_online(2, power_cycle=True)
    torque = lerobot_bus.sync_read("Torque_Enable")
    assert torque["shoulder_lift"] == 0 and torque["shoulder_pan"] == 1


def test_unplugged_bus_fails_every_read(emu, lerobot_bus, wait_for):
    """Unplugged: read, sync_read, write and ping all fail; a sync_write 'succeeds' but reaches no servo."""
    with emu.inject(unplugged=True):
        with pytest.raises(ConnectionError):
            lerobot_bus.sync_read("Present_Position")
        with pytest.raises(ConnectionError):
            lerobot_bus.read("Present_Position", "shoulder_pan")
        with pytest.raises(ConnectionError):
            lerobot_bus.write("Acceleration", "shoulder_pan", 10)
        assert lerobot_bus.ping("shoulder_pan") is None
        requests = emu.stats.requests
        lerobot_bus.sync_write("Acceleration", dict.fromkeys(JOINT_NAMES, 10))  # no reply expected: no error
        wait_for(lambda: emu.stats.requests > requests, what="the sync write to reach the (cut) line")
    assert set(lerobot_bus.sync_read("Acceleration").values()) == {0}


def test_corrupt_checksums_are_rejected_by_the_sdk(emu, lerobot_bus):
    """A reply with a bad checksum is 'Incorrect status packet' to lerobot; with some corrupted, retries recover."""
    with emu.inject(corrupt_rate=1.0):
        with pytest.raises(ConnectionError, match="Incorrect status packet"):
            lerobot_bus.read("Present_Position", "shoulder_pan")
    with emu.inject(corrupt_rate=0.1):
        positions = lerobot_bus.sync_read("Present_Position", normalize=False, num_retry=20)
    assert set(positions.values()) == {2048} and emu.stats.corrupted > 0


def test_servo_error_bits_raise_on_read_but_not_on_sync_read(emu, lerobot_bus):
    """An overheated servo's error byte makes read() raise 'Overheat error'; sync_read ignores error bytes."""
    emu.servos[4].temperature = 90.0
    with pytest.raises(RuntimeError, match="Overheat error"):
        lerobot_bus.read("Present_Temperature", "wrist_flex")
    assert lerobot_bus.sync_read("Present_Temperature")["wrist_flex"] == 90
    assert lerobot_bus.sync_read("Status")["wrist_flex"] == ErrorBit.OVERHEAT


def test_servo_in_alarm_is_missing_to_the_handshake(emu, new_lerobot_bus):
    """A servo answering with an error bit makes lerobot's ping() return None, so connect() reports it missing."""
    emu.servos[6].injected_errors = ErrorBit.SENSOR
    bus = new_lerobot_bus(emu.port)
    with pytest.raises(RuntimeError, match=r"Missing motor IDs:\n  - 6"):
        bus.connect()
    bus.port_handler.closePort()


def test_late_reply_times_out_then_desynchronises_lerobot_reads(emu, lerobot_bus, wait_for):
    """A reply later than the SDK's ~50 ms timeout fails the read, and the next read returns that stale reply."""
    # scservo_sdk never flushes its input between transactions: a driver must reset the port's
    # input buffer after a timeout, once the late bytes have landed (as done at the end here).
    servo = emu.servos[1]
    servo.position = 1000
    with emu.inject(reply_delay_s=0.2):
        with pytest.raises(ConnectionError, match="There is no status packet"):
            lerobot_bus.read("Present_Position", "shoulder_pan", normalize=False)
        wait_for(lambda: lerobot_bus.port_handler.ser.in_waiting >= 8, what="the late reply to arrive")
    servo.position = 3000
    assert lerobot_bus.read("Present_Position", "shoulder_pan", normalize=False) == 1000  # stale
    wait_for(lambda: lerobot_bus.port_handler.ser.in_waiting >= 8, what="the reply to the stale read")
    lerobot_bus.port_handler.ser.reset_input_buffer()
    assert lerobot_bus.read("Present_Position", "shoulder_pan", normalize=False) == 3000


def test_trajectory_moves_torque_off_servos_seen_through_lerobot(emu, lerobot_bus, wait_for):
    """A played table changes Present_Position over time and ends on its last row; a torque-on servo stays put."""
    lerobot_bus.enable_torque("gripper")
    start = [2048] * 6
    playback = emu.play([[0.0, *start], [0.3, *range(1000, 1006)]], ids=range(1, 7))
    wait_for(
        lambda: lerobot_bus.sync_read("Present_Position", normalize=False)["shoulder_pan"] < 2000,
        what="the trajectory to move shoulder_pan",
    )
    assert playback.done.wait(2.0)
    final = lerobot_bus.sync_read("Present_Position", normalize=False)
    assert [final[n] for n in JOINT_NAMES[:5]] == [1000, 1001, 1002, 1003, 1004]
    assert final["gripper"] == 2048


def test_lerobot_so100_follower_runs_unchanged(emu, tmp_path, wait_for, monkeypatch):
    """LeRobot's SO100Follower connects to a calibrated emulated arm without prompting, observes degrees and moves."""
    import scservo_sdk.port_handler
    from lerobot.robots.so_follower import SO100Follower, SO100FollowerConfig

    # SO100Follower.connect() writes every register once, without retries, within the SDK's ~34 ms
    # reply window (sized for a USB adapter's 16 ms latency timer). The emulator here is a thread of
    # this process: on a busy 2-core machine it can miss that window, as an adapter with a longer
    # latency timer would. Give the SDK that adapter's window; lerobot's code runs unchanged.
    monkeypatch.setattr(scservo_sdk.port_handler, "LATENCY_TIMER", 100)

    calibration = {
        name: {"id": k + 1, "drive_mode": 0, "homing_offset": 100 * k - 300, "range_min": 1000, "range_max": 3000}
        for k, name in enumerate(JOINT_NAMES)
    }
    (tmp_path / "emu.json").write_text(json.dumps(calibration))
    with emu.lock:
        apply_calibration(emu.servos, tmp_path / "emu.json")
        for servo in emu.servos.values():
            servo.set_position(2000)
    robot = SO100Follower(SO100FollowerConfig(port=emu.port, id="emu", calibration_dir=tmp_path))
    robot.connect()
    try:
        obs = robot.get_observation()
        assert obs["shoulder_pan.pos"] == pytest.approx(0.0) and obs["gripper.pos"] == pytest.approx(50.0)
        robot.send_action({"shoulder_pan.pos": 30.0})
        target = int(30 * 4095 / 360 + 2000)
        wait_for(lambda: emu.servos[1].position == target, what="shoulder_pan at 30 degrees")
    finally:
        robot.disconnect()
    assert not any(s.torque_enabled for s in emu.servos.values())
