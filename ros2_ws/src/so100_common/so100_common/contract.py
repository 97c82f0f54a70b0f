"""The topic contract of DESIGN.md §3 as data: each topic's name, message type and the QoS its publishers offer.

Nodes create their contract publishers from these rows (``contract.FOLLOWER_JOINT_STATES.publisher(node)``) and
the recorder builds its topic table from :func:`topics`, so a type or QoS is written once. A subscriber may ask for
its own queue depth (``row.subscription(node, callback, depth=5)``); reliability and durability follow the row.

Dependency rule: ``names`` and ``qos`` only (the node is passed in).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from so100_common import names
from so100_common.qos import LATCHED, SENSOR_DATA, QoS

JOINT_STATE = "sensor_msgs/msg/JointState"
IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
BOOL = "std_msgs/msg/Bool"
STRING = "std_msgs/msg/String"

#: joint streams are reliable and keep 50 samples (half a second at 100 Hz)
JOINTS_QOS = QoS(depth=50)


@dataclass(frozen=True)
class Topic:
    """One row of the contract."""

    name: str
    type: str
    qos: QoS
    description: str = ""

    def publisher(self, node: Any) -> Any:
        """The contract publisher of this topic on ``node``."""
        return node.create_publisher(self.type, self.name, self.qos)

    def subscription(self, node: Any, callback: Callable[[Any], None], *, depth: int | None = None,
                     raw: bool = False) -> Any:
        """A subscription matching the publishers' QoS, keeping ``depth`` samples (default: the row's)."""
        qos = self.qos if depth is None else dataclasses.replace(self.qos, depth=depth)
        return node.create_subscription(self.type, self.name, callback, qos, raw=raw)


LEADER_JOINT_STATES = Topic(names.LEADER_JOINT_STATES, JOINT_STATE, JOINTS_QOS,
                            "the demonstrator's arm (leader arm, scripted expert, VR page), radians")
FOLLOWER_JOINT_COMMANDS = Topic(names.FOLLOWER_JOINT_COMMANDS, JOINT_STATE, JOINTS_QOS,
                                "position targets for the follower (teleop remap, act_inference)")
FOLLOWER_JOINT_STATES = Topic(names.FOLLOWER_JOINT_STATES, JOINT_STATE, JOINTS_QOS,
                              "the follower's measured joints (sim_bridge or follower_arm)")
TASK_SUCCESS = Topic(names.TASK_SUCCESS, BOOL, LATCHED, "the sim's success detector, on change")
EPISODE_SCENE = Topic(names.EPISODE_SCENE, STRING, LATCHED, "JSON of the episode's scene (seed, object poses)")
ROBOT_DESCRIPTION = Topic(names.ROBOT_DESCRIPTION, STRING, LATCHED, "the URDF")


def camera_image(camera: str) -> Topic:
    return Topic(names.camera_image_topic(camera), IMAGE, SENSOR_DATA, f"{camera} camera, rgb8")


def camera_info(camera: str) -> Topic:
    return Topic(names.camera_info_topic(camera), CAMERA_INFO, SENSOR_DATA, f"{camera} camera's intrinsics")


def camera_depth(camera: str) -> Topic:
    return Topic(names.camera_depth_topic(camera), IMAGE, SENSOR_DATA, f"{camera} camera's depth, 16UC1 mm")


def topics() -> dict[str, Topic]:
    """Every contract topic by name (the cameras of ``names.CAMERA_NAMES``)."""
    rows = [LEADER_JOINT_STATES, FOLLOWER_JOINT_COMMANDS, FOLLOWER_JOINT_STATES, TASK_SUCCESS, EPISODE_SCENE,
            ROBOT_DESCRIPTION]
    for cam in names.CAMERA_NAMES:
        rows += [camera_image(cam), camera_info(cam), camera_depth(cam)]
    return {row.name: row for row in rows}
