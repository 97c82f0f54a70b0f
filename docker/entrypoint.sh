#!/bin/bash
# The image's entry point: ROS 2 Jazzy and the colcon workspace sourced, then the command
# (`ros2 launch launch/<graph>.launch.py ...`, `so100 launch <graph> ...`, `ros2 run ...`, bash).
set -e
# shellcheck source=/dev/null
source /opt/ros/jazzy/setup.bash
# shellcheck source=/dev/null
source /ws/install/setup.bash
exec "$@"
