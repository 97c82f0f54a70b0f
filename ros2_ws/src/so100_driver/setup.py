"""so100_driver: Feetech STS3215 leader and follower arm drivers with LeRobot calibration, a servo-bus emulator, the RealSense camera node and a USB (UVC) camera node."""

from setuptools import find_packages, setup

package_name = "so100_driver"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    # versions are pinned once, in the repository's constraints.txt
    install_requires=['setuptools', 'so100_common', 'lerobot[feetech,intelrealsense]', 'pyserial',
                      'opencv-python-headless'],
    python_requires=">=3.12",
    zip_safe=True,
    maintainer="SO-100 ROS 2 maintainers",
    maintainer_email="maintainers@so100-ros.org",
    description="Feetech STS3215 leader and follower arm drivers with LeRobot calibration, a servo-bus emulator, the RealSense camera node and a USB (UVC) camera node",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "so100_bus_emulator = so100_driver.emulator.cli:main",
            "leader_arm = so100_driver.leader_arm_node:main",
            "follower_arm = so100_driver.follower_arm_node:main",
            "realsense_camera = so100_driver.realsense_camera_node:main",
            "usb_camera = so100_driver.usb_camera_node:main",
        ],
        # verbs of the so100 command (so100_common.cli.main looks them up here)
        "so100.verbs": [
            "calibrate = so100_driver.calibrate_cli:main",
        ],
    },
)
