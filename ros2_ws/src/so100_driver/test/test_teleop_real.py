"""`so100 launch teleop_real` on emulated buses and the SDK's software camera: the whole real-robot graph."""

import time

import numpy as np

from so100_common import messages, names
from so100_common.node import Node
from so100_common.qos import SENSOR_DATA, QoS
from so100_common.testing import BIN
from so100_driver.testing import calibration, start_emulator, write_calibration


def test_teleop_real_graph_with_emulated_arms(procs, tmp_path):
    write_calibration(tmp_path, "teleoperators/so_leader", "lead", calibration())
    cal = write_calibration(tmp_path, "robots/so_follower", "foll", calibration(shift=20))
    lead_cal = tmp_path / "teleoperators/so_leader/lead.json"
    emulators = [start_emulator(procs, lead_cal, tmp_path / "lead", "--trajectory", "sine", "--amplitude", "250",
                                "--period", "4"), start_emulator(procs, cal, tmp_path / "foll")]
    launch = procs.start([str(BIN / "so100"), "launch", "teleop_real", f"leader_port:={tmp_path / 'lead'}",
                          "leader_id:=lead", f"follower_port:={tmp_path / 'foll'}", "follower_id:=foll",
                          "camera_source:=synthetic"], HF_LEROBOT_CALIBRATION=str(tmp_path))
    node = Node(f"teleop_real_check_{time.monotonic_ns()}", argv=[])
    try:
        cmds, states, images, depth = [], [], [], []
        node.create_subscription(messages.JointState, names.FOLLOWER_JOINT_COMMANDS, cmds.append, QoS(depth=500))
        node.create_subscription(messages.JointState, names.FOLLOWER_JOINT_STATES, states.append, QoS(depth=500))
        node.create_subscription(messages.Image, names.camera_image_topic("overhead"), images.append, SENSOR_DATA)
        node.create_subscription(messages.Image, names.camera_depth_topic("overhead"), depth.append, SENSOR_DATA)
        node.spin(until=lambda: len(cmds) > 300 and len(states) > 150 and images and depth, timeout=60)
        assert len(cmds) > 300 and len(states) > 150, launch.output + "".join(
            f"\nemulator: {e.output}" for e in emulators)
        leader = np.array([c.position for c in cmds[-300:]])
        follower = np.array([s.position for s in states[-100:]])
        assert np.ptp(leader[:, 0]) > 0.2 and np.ptp(follower[:, 0]) > 0.2
        # the latest follower state is near one of the last second's leader commands (tracking, with a lag)
        assert np.abs(follower[-1, :5] - leader[-100:, :5]).max(axis=1).min() < 0.1
        assert images[-1].encoding == "rgb8" and depth[-1].encoding == "16UC1"
        assert images[-1].width == depth[-1].width  # depth aligned to colour
    finally:
        node.destroy()
    assert launch.stop() == 0, launch.output  # Ctrl-C stops every node of the graph cleanly
