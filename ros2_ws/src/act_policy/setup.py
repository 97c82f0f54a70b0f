"""act_policy: rosbag2 episode recorder, bag to LeRobot dataset conversion, ACT training, evaluation and inference."""

from setuptools import find_packages, setup

package_name = "act_policy"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    # versions are pinned once, in the repository's constraints.txt
    install_requires=['setuptools', 'so100_common', 'lerobot[dataset,training]', 'torch', 'rosbags'],
    python_requires=">=3.12",
    zip_safe=True,
    maintainer="SO-100 ROS 2 maintainers",
    maintainer_email="maintainers@so100-ros.org",
    description="rosbag2 episode recorder, bag to LeRobot dataset conversion, ACT training, evaluation and inference",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "recorder = act_policy.recorder_node:main",
            "so100-dataset = act_policy.dataset_cli:main",
            "act_inference = act_policy.act_inference_node:main",
        ],
        # verbs of the so100 command (so100_common.cli.main looks them up here)
        "so100.verbs": [
            "dataset = act_policy.dataset_cli:main",
            "pipeline = act_policy.pipeline:main",
            "train = act_policy.policy_cli:train_main",
            "eval = act_policy.policy_cli:eval_main",
        ],
    },
)
