"""leader_arm and follower_arm as processes over emulated servo buses and a real router."""

import time

import numpy as np
import pytest

from so100_common import messages
from so100_common.follower_contract import FollowerContract, FollowerHandle
from so100_common.names import JOINT_NAMES
from so100_common.node import Node
from so100_common.qos import QoS
from so100_common.testing import BIN, wait_for
from so100_driver.calibration import ArmCalibration, load_calibration
from so100_driver.emulator import EmulatedBus
from so100_driver.emulator.cli import apply_calibration
from so100_driver.testing import calibration, start_emulator, write_calibration

TICK = 2 * np.pi / 4095  # one encoder tick in our radians (LeRobot's degrees scale)


@pytest.fixture(scope="module")
def cal_root(tmp_path_factory):
    return tmp_path_factory.mktemp("lerobot_calibration")


@pytest.fixture(scope="module")
def follower_proc(graph, cal_root):
    cal_file = write_calibration(cal_root, "robots/so_follower", "contract", calibration())
    emu = start_emulator(graph, cal_file, cal_root / "follower_port")
    proc = graph.start([str(BIN / "follower_arm"), "--ros-args", "-p", f"port:={cal_root / 'follower_port'}",
                        "-p", "id:=contract", "-p", "stale_timeout:=0.5", "-p", "rate:=50.0"],
                       HF_LEROBOT_CALIBRATION=str(cal_root))
    proc.wait_output("follower_arm up", 60)
    yield proc
    for p in (proc, emu):
        p.stop()
        graph.procs.remove(p)


@pytest.fixture(scope="module")
def follower(follower_proc, cal_root):
    cal = ArmCalibration(load_calibration(cal_root / "robots/so_follower/contract.json"))
    lower, upper = cal.limits()
    node = Node(f"contract_{time.monotonic_ns()}", argv=[])
    yield FollowerHandle(follower_proc, node, lower, upper, tolerance=0.03, stale_timeout=0.5)
    node.destroy()


class TestFollowerArmContract(FollowerContract):
    """The shared follower contract, run against follower_arm driving emulated servos."""


def test_follower_publishes_velocity_and_effort(follower):
    """Joint states carry six velocities (rad/s) and efforts (N·m) besides positions."""
    follower.position()
    msg = follower.states[-1]
    assert len(msg.velocity) == 6 and len(msg.effort) == 6 and msg.header.frame_id == "base_link"


def test_teleop_leader_to_follower_within_one_tick(graph, cal_root, tmp_path, follower_proc):
    """leader_arm -> follower_arm over two emulated arms: the follower ends within one tick of a held leader pose."""
    lead_cal = calibration(shift=60)  # a different arm: its ranges sit elsewhere on the encoder
    lead_file = write_calibration(cal_root, "teleoperators/so100_leader", "lead", lead_cal)
    fol_file = write_calibration(cal_root, "robots/so100_follower", "teleop", calibration(shift=-40))
    # The "hand": from the middle of every range to a pose, then held (CSV of Present_Position ticks).
    mid = np.array([(c["range_min"] + c["range_max"]) // 2 for c in lead_cal.values()])
    pose = mid + np.array([400, -300, 350, 250, -500, 600])
    csv = tmp_path / "hand.csv"
    csv.write_text("t," + ",".join(JOINT_NAMES) + "\n" + "\n".join(
        f"{t}," + ",".join(str(int(v)) for v in row) for t, row in ((0.0, mid), (0.5, mid), (1.5, pose))))
    topics = ["-r", "/follower/joint_commands:=/teleop/commands", "-r", "/follower/joint_states:=/teleop/states",
              "-r", "/follower/enable_torque:=/teleop/enable_torque"]
    procs = [start_emulator(graph, lead_file, tmp_path / "leader_port", "--trajectory", str(csv)),
             start_emulator(graph, fol_file, tmp_path / "follower_port")]
    env = {"HF_LEROBOT_CALIBRATION": str(cal_root)}
    procs.append(graph.start([str(BIN / "follower_arm"), "--ros-args", "-p", f"port:={tmp_path / 'follower_port'}",
                              "-p", "id:=teleop", "-r", "__node:=teleop_follower", *topics], **env))
    procs.append(graph.start([str(BIN / "leader_arm"), "--ros-args", "-p", f"port:={tmp_path / 'leader_port'}",
                              "-p", "id:=lead", "-r", "/leader/joint_states:=/teleop/commands"], **env))
    node = Node(f"teleop_test_{time.monotonic_ns()}", argv=[])
    leader, follower = [], []
    node.create_subscription(messages.JointState, "/teleop/commands", leader.append, QoS(depth=200))
    node.create_subscription(messages.JointState, "/teleop/states", follower.append, QoS(depth=200))
    try:
        procs[2].wait_output("follower_arm up", 60)
        procs[3].wait_output("leader_arm up", 60)
        held = ArmCalibration(load_calibration(lead_file)).to_radians(pose)

        def settled() -> bool:
            return bool(leader and follower) and np.max(np.abs(leader[-1].position - held)) < 1e-9 and \
                np.max(np.abs(follower[-1].position - leader[-1].position)) <= TICK * 1.01

        node.spin(until=settled, timeout=15)
        assert leader, "leader_arm published nothing"
        assert follower, "follower_arm published nothing"
        gap = np.abs(follower[-1].position - leader[-1].position)
        assert np.max(np.abs(leader[-1].position - held)) < 1e-9, "the leader did not reach the played pose"
        assert np.max(gap) <= TICK * 1.01, f"follower off the leader by {gap / TICK} ticks"
    finally:
        node.destroy()
        for p in reversed(procs):
            p.stop()
            graph.procs.remove(p)


def test_silent_servo_stops_follower_with_torque_off_and_exit_1(graph, tmp_path, follower_proc):
    """A servo that stops answering: retries, then torque off to every servo, a clear error, exit code 1."""
    cal = calibration()
    write_calibration(tmp_path, "robots/so_follower", "dying", cal)
    with EmulatedBus(range(1, 7), seed=3) as emu:
        with emu.lock:
            apply_calibration(emu.servos, tmp_path / "robots/so_follower/dying.json")
            for i, servo in emu.servos.items():
                c = cal[JOINT_NAMES[i - 1]]
                servo.set_position((c["range_min"] + c["range_max"]) / 2)
        proc = graph.start([str(BIN / "follower_arm"), "--ros-args", "-p", f"port:={emu.port}", "-p", "id:=dying",
                            "-r", "__node:=dying_follower", "-r", "/follower/joint_states:=/dying/states",
                            "-r", "/follower/joint_commands:=/dying/commands",
                            "-r", "/follower/enable_torque:=/dying/enable_torque"],
                           HF_LEROBOT_CALIBRATION=str(tmp_path))
        try:
            proc.wait_output("follower_arm up", 60)
            wait_for(lambda: all(s.torque_enabled for s in emu.servos.values()), 5, "torque on")
            emu.take_offline(3)
            code = proc.popen.wait(15)
        finally:
            proc.stop()
            graph.procs.remove(proc)
        assert code == 1, proc.output
        out = proc.output
        assert "servo bus failure" in out and "elbow_flex (id 3)" in out and "Torque off was sent" in out, out
        assert not any(s.torque_enabled for i, s in emu.servos.items() if i != 3)


def test_missing_calibration_stops_at_start_with_the_fix(graph, tmp_path):
    """No calibration file: exit code 1 and a message naming the file and lerobot-calibrate."""
    proc = graph.start([str(BIN / "follower_arm"), "--ros-args", "-p", "port:=/dev/ttyNOPE", "-p", "id:=ghost"],
                       HF_LEROBOT_CALIBRATION=str(tmp_path))
    code = proc.popen.wait(30)
    proc.stop()
    graph.procs.remove(proc)
    assert code == 1
    assert str(tmp_path / "robots/so_follower/ghost.json") in proc.output
    assert "lerobot-calibrate --robot.type=so100_follower --robot.port=/dev/ttyNOPE --robot.id=ghost" in proc.output

