"""ros2 launch launch/ros2_control.launch.py — ros2_control on the contract topics (ROS mode).

controller_manager runs the URDF's <ros2_control> block (topic_based_ros2_control's
TopicBasedSystem: commands on /follower/joint_commands, states from /follower/joint_states), then
spawns joint_state_broadcaster and joint_trajectory_controller (forward_position_controller is
loaded inactive; switch with `ros2 control switch_controllers`). Run it beside any follower graph
(expert-free: `so100 launch teleop_sim` without the leader, or sim_bridge alone) so MoveIt and
ros2_control users drive the sim or the real arm unchanged.
"""

from pathlib import Path

from launch import LaunchDescription
from launch_ros.actions import Node

from so100_sim.ros2_control import to_urdf_with_ros2_control

CONTROLLERS = Path(__file__).resolve().parents[1] / "ros2_ws" / "src" / "so100_sim" / "config" / "controllers.yaml"


def generate_launch_description():
    urdf = to_urdf_with_ros2_control()
    return LaunchDescription([
        Node(package="controller_manager", executable="ros2_control_node",
             parameters=[{"robot_description": urdf}, str(CONTROLLERS)], output="screen"),
        Node(package="robot_state_publisher", executable="robot_state_publisher",
             parameters=[{"robot_description": urdf}]),
        Node(package="controller_manager", executable="spawner", arguments=["joint_state_broadcaster"]),
        Node(package="controller_manager", executable="spawner", arguments=["joint_trajectory_controller"]),
        Node(package="controller_manager", executable="spawner",
             arguments=["forward_position_controller", "--inactive"]),
    ])
