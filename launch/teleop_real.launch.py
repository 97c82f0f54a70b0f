"""ros2 launch launch/teleop_real.launch.py — the graph of teleop_real.graph.yaml, as launch_ros actions."""

from pathlib import Path

from so100_common.launch_ros_bridge import launch_description


def generate_launch_description():
    return launch_description(Path(__file__).with_name("teleop_real.graph.yaml"))
