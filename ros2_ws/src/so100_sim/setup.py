"""so100_sim: MuJoCo SO-100 pick-and-place world, sim bridge node, kinematics, scripted expert and gymnasium env."""

from setuptools import find_packages, setup

package_name = "so100_sim"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/config", ["config/controllers.yaml", "config/so100.rviz"]),
    ],
    # versions are pinned once, in the repository's constraints.txt
    install_requires=['setuptools', 'so100_common', 'mujoco', 'gymnasium', 'numpy'],
    python_requires=">=3.12",
    zip_safe=True,
    maintainer="SO-100 ROS 2 maintainers",
    maintainer_email="maintainers@so100-ros.org",
    description="MuJoCo SO-100 pick-and-place world, sim bridge node, kinematics, scripted expert and gymnasium env",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "so100_description = so100_sim.description:main",
            "sim_bridge = so100_sim.sim_bridge_node:main",
            "scripted_expert = so100_sim.scripted_expert_node:main",
        ],
    },
)
