"""ros2 launch launch/rviz.launch.py — RViz2 on any running graph (ROS mode).

robot_state_publisher turns the URDF (from so100_sim.description, the one source) and
/follower/joint_states into TF; RViz shows the robot, TF, sim_bridge's scene markers and the
cameras. Set publish_robot_tf:=false on sim_bridge when this runs beside it, so the arm's TF has
one publisher. In standalone mode (no ROS 2) the desktop view of the VR page is the viewer.
"""

from pathlib import Path

from launch import LaunchDescription
from launch_ros.actions import Node

from so100_sim.description import to_urdf

CONFIG = Path(__file__).resolve().parents[1] / "ros2_ws" / "src" / "so100_sim" / "config" / "so100.rviz"


def generate_launch_description():
    return LaunchDescription([
        Node(package="robot_state_publisher", executable="robot_state_publisher", name="robot_state_publisher",
             parameters=[{"robot_description": to_urdf()}],
             remappings=[("joint_states", "/follower/joint_states")]),
        Node(package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", str(CONFIG)]),
    ])
