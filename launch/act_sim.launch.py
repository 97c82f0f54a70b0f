"""ros2 launch launch/act_sim.launch.py — the graph of act_sim.graph.yaml, as launch_ros actions."""

from pathlib import Path

from so100_common.launch_ros_bridge import launch_description


def generate_launch_description():
    return launch_description(Path(__file__).with_name("act_sim.graph.yaml"))
