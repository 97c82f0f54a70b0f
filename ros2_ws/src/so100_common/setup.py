"""so100_common: Node runtime over rclpy or rmw_zenoh-compatible Zenoh, messages, names, launch graphs and the so100 CLI."""

from setuptools import find_packages, setup

package_name = "so100_common"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    # versions are pinned once, in the repository's constraints.txt
    install_requires=['setuptools', 'numpy', 'pyyaml', 'rosbags', 'eclipse-zenoh', 'xxhash'],
    python_requires=">=3.12",
    zip_safe=True,
    maintainer="SO-100 ROS 2 maintainers",
    maintainer_email="maintainers@so100-ros.org",
    description="Node runtime over rclpy or rmw_zenoh-compatible Zenoh, messages, names, launch graphs and the so100 CLI",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            'so100 = so100_common.cli.main:main',
            'demo_talker = so100_common.demo.talker:main',
            'demo_listener = so100_common.demo.listener:main',
        ],
    },
)
