"""ros2_control for the SO-100 on the contract topics (topic_based_ros2_control).

The URDF gets a ``<ros2_control>`` block whose hardware is
``topic_based_ros2_control/TopicBasedSystem``: commands go out on ``/follower/joint_commands``
and states come in from ``/follower/joint_states``, so controllers (and MoveIt) drive
``sim_bridge`` or ``follower_arm`` unchanged. ``config/controllers.yaml`` has the controllers.

Dependency rule: no ROS runtime; text only.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from so100_common import names
from so100_sim.description import SO100, Robot, to_urdf

HARDWARE_PLUGIN = "topic_based_ros2_control/TopicBasedSystem"


def ros2_control_block(robot: Robot = SO100) -> ET.Element:
    """The ``<ros2_control>`` element: position commands, position + velocity states per joint."""
    block = ET.Element("ros2_control", name=f"{robot.name}_topic_based", type="system")
    hw = ET.SubElement(block, "hardware")
    ET.SubElement(hw, "plugin").text = HARDWARE_PLUGIN
    ET.SubElement(hw, "param", name="joint_commands_topic").text = names.FOLLOWER_JOINT_COMMANDS
    ET.SubElement(hw, "param", name="joint_states_topic").text = names.FOLLOWER_JOINT_STATES
    ET.SubElement(hw, "param", name="sum_wrapped_joint_states").text = "false"
    for joint in robot.actuated_joints:
        el = ET.SubElement(block, "joint", name=joint.name)
        cmd = ET.SubElement(el, "command_interface", name="position")
        ET.SubElement(cmd, "param", name="min").text = repr(joint.lower)
        ET.SubElement(cmd, "param", name="max").text = repr(joint.upper)
        ET.SubElement(el, "state_interface", name="position")
        ET.SubElement(el, "state_interface", name="velocity")
    return block


def to_urdf_with_ros2_control(robot: Robot = SO100) -> str:
    """The robot's URDF plus its ``<ros2_control>`` block (for controller_manager)."""
    root = ET.fromstring(to_urdf(robot).split("\n", 1)[1])
    root.append(ros2_control_block(robot))
    ET.indent(root)
    return '<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode")
