"""ros2 launch launch/record.launch.py — the graph of record.graph.yaml, as launch_ros actions."""

from pathlib import Path

from so100_common.launch_ros_bridge import launch_description


def generate_launch_description():
    return launch_description(Path(__file__).with_name("record.graph.yaml"))
