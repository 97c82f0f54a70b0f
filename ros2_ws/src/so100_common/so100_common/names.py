"""Names shared by every package: joints, topics, services, frames.

Dependency rule: this module imports nothing from the project; every other
module takes its names from here so that no topic string is typed twice.
"""

from __future__ import annotations

#: LeRobot's motor names, in the order used on every topic and in every dataset.
JOINT_NAMES: tuple[str, ...] = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow_flex",
    "wrist_flex",
    "wrist_roll",
    "gripper",
)

# Topics (DESIGN.md §3).
LEADER_JOINT_STATES = "/leader/joint_states"
FOLLOWER_JOINT_COMMANDS = "/follower/joint_commands"
FOLLOWER_JOINT_STATES = "/follower/joint_states"
TASK_SUCCESS = "/task/success"
EPISODE_SCENE = "/episode/scene"
ROBOT_DESCRIPTION = "/robot_description"
CAMERA_NAMES: tuple[str, ...] = ("overhead", "wrist")


def camera_image_topic(camera: str) -> str:
    """RGB image topic of a camera (``rgb8``)."""
    return f"/cameras/{camera}/image_raw"


def camera_info_topic(camera: str) -> str:
    """CameraInfo topic of a camera."""
    return f"/cameras/{camera}/camera_info"


def camera_depth_topic(camera: str) -> str:
    """Depth image topic of a camera (``16UC1``, millimetres)."""
    return f"/cameras/{camera}/depth/image_raw"


# Services (DESIGN.md §3).
SIM_RESET = "/sim/reset"
RECORDER_START = "/recorder/start"
RECORDER_STOP = "/recorder/stop"
RECORDER_DISCARD = "/recorder/discard"
FOLLOWER_ENABLE_TORQUE = "/follower/enable_torque"
ACT_INFERENCE_START = "/act_inference/start"
ACT_INFERENCE_STOP = "/act_inference/stop"
ACT_INFERENCE_RESET = "/act_inference/reset"

# Frames.
BASE_FRAME = "base_link"


def optical_frame(camera: str) -> str:
    """Optical frame id of a camera, as in the URDF."""
    return f"{camera}_optical_frame"

# Scene and bookkeeping topics.
SCENE_MARKERS = "/scene/markers"  # visualization_msgs/MarkerArray, latched
TF = "/tf"
TF_STATIC = "/tf_static"
CLOCK = "/clock"
WORLD_FRAME = "world"
