"""`so100 launch teleop_sim`: an (emulated) leader arm drives the simulated follower."""

import time

import numpy as np

from so100_common import messages, names
from so100_common.node import Node
from so100_common.qos import QoS
from so100_common.testing import BIN
from so100_driver.testing import calibration, start_emulator, write_calibration


def test_leader_arm_drives_the_sim(procs, tmp_path):
    cal_file = write_calibration(tmp_path, "teleoperators/so_leader", "lead", calibration())
    link = tmp_path / "leader_port"
    start_emulator(procs, cal_file, link, "--trajectory", "sine", "--amplitude", "250", "--period", "4")
    launch = procs.start([str(BIN / "so100"), "launch", "teleop_sim", f"leader_port:={link}", "leader_id:=lead",
                          "width:=160", "height:=120"], HF_LEROBOT_CALIBRATION=str(tmp_path))
    node = Node(f"teleop_check_{time.monotonic_ns()}", argv=[])
    try:
        cmds, states = [], []
        node.create_subscription(messages.JointState, names.FOLLOWER_JOINT_COMMANDS, cmds.append, QoS(depth=500))
        node.create_subscription(messages.JointState, names.FOLLOWER_JOINT_STATES, states.append, QoS(depth=500))
        node.spin(until=lambda: len(cmds) > 450 and len(states) > 300, timeout=60)
        assert len(cmds) > 450, launch.output
        leader = np.array([c.position for c in cmds[-300:]])  # 3 s of a 4 s sine period
        follower = np.array([s.position for s in states[-150:]])
        assert np.ptp(leader[:, 0]) > 0.2, "the emulated leader is not moving"
        assert np.ptp(follower[:, 0]) > 0.2, "the simulated follower does not move"
        # the follower tracks the leader: its latest state is near one of the last second's commands (a
        # loaded machine may delay the chain by a few hundred ms; a follower that does not track is far off)
        gap = np.abs(follower[-1, :5] - leader[-100:, :5]).max(axis=1).min()
        assert gap < 0.1, gap
        assert "rejected a joint command" not in launch.output
    finally:
        node.destroy()
    assert launch.stop() == 0, launch.output  # Ctrl-C stops every node of the graph cleanly
