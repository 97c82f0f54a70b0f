"""lerobot_env_so100: LeRobot env plugin (``--env.type=so100_pick_place``) for the SO-100 sim.

A plain pip package, not a ROS package (COLCON_IGNORE keeps colcon away). The
distribution name must start with ``lerobot_env_`` and equal the module name: LeRobot
imports each installed ``lerobot_env_*`` distribution by its name at start-up.
"""

from setuptools import setup

setup(
    name="lerobot_env_so100",
    version="0.1.0",
    packages=["lerobot_env_so100"],
    # versions are pinned once, in the repository's constraints.txt
    install_requires=["so100_sim", "so100_common", "lerobot", "gymnasium"],
    python_requires=">=3.12",
    zip_safe=True,
    maintainer="SO-100 ROS 2 maintainers",
    maintainer_email="maintainers@so100-ros.org",
    description="LeRobot env plugin: evaluate and train policies in the SO-100 pick-and-place sim",
    license="Apache-2.0",
)
