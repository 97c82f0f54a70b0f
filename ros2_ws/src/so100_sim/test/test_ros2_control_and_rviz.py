"""ros2_control block, controllers and the RViz view agree with the contract's joints and topics."""

import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from so100_common import names
from so100_sim.kinematics import Kinematics
from so100_sim.ros2_control import HARDWARE_PLUGIN, to_urdf_with_ros2_control

CONFIG = Path(__file__).resolve().parents[1] / "config"


def test_urdf_ros2_control_block_uses_the_contract_topics():
    root = ET.fromstring(to_urdf_with_ros2_control().split("\n", 1)[1])
    block = root.find("ros2_control")
    assert block is not None and block.find("hardware/plugin").text == HARDWARE_PLUGIN
    params = {p.get("name"): p.text for p in block.findall("hardware/param")}
    assert params["joint_commands_topic"] == names.FOLLOWER_JOINT_COMMANDS
    assert params["joint_states_topic"] == names.FOLLOWER_JOINT_STATES
    joints = block.findall("joint")
    assert [j.get("name") for j in joints] == list(names.JOINT_NAMES)
    kin = Kinematics()
    for i, j in enumerate(joints):
        cmd = j.find("command_interface")
        assert cmd.get("name") == "position"
        limits = {p.get("name"): float(p.text) for p in cmd.findall("param")}
        assert abs(limits["min"] - kin.lower[i]) < 1e-6 and abs(limits["max"] - kin.upper[i]) < 1e-6
        assert {s.get("name") for s in j.findall("state_interface")} == {"position", "velocity"}
    assert len(root.findall("joint")) >= 6  # the kinematic joints are still there


def test_controllers_cover_every_joint():
    cfg = yaml.safe_load((CONFIG / "controllers.yaml").read_text())
    declared = cfg["controller_manager"]["ros__parameters"]
    assert {"joint_state_broadcaster", "forward_position_controller", "joint_trajectory_controller"} <= set(declared)
    for name in ("forward_position_controller", "joint_trajectory_controller"):
        assert cfg[name]["ros__parameters"]["joints"] == list(names.JOINT_NAMES)


def test_rviz_view_subscribes_to_the_contract_topics():
    cfg = yaml.safe_load((CONFIG / "so100.rviz").read_text())
    displays = cfg["Visualization Manager"]["Displays"]
    topics = {d["Class"].split("/")[-1]: d.get("Topic", d.get("Description Topic", {})).get("Value")
              for d in displays if "Topic" in d or "Description Topic" in d}
    assert topics["RobotModel"] == names.ROBOT_DESCRIPTION and topics["MarkerArray"] == names.SCENE_MARKERS
    images = [d["Topic"]["Value"] for d in displays if d["Class"].endswith("/Image")]
    assert images == [names.camera_image_topic(c) for c in names.CAMERA_NAMES]
    assert cfg["Visualization Manager"]["Global Options"]["Fixed Frame"] == names.WORLD_FRAME
