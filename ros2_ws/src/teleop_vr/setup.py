"""teleop_vr: WebXR page and server for Meta Quest teleoperation of the SO-100."""

from pathlib import Path

from setuptools import find_packages, setup

package_name = "teleop_vr"
here = Path(__file__).resolve().parent
# the page and the npm files it imports (web/node_modules comes from `npm ci`, run by setup.sh)
web_files = [f"web/{f}" for f in ("index.html", "app.js", "style.css", "package.json", "package-lock.json")]
vendor = [
    "three/build/three.module.js",
    "three/build/three.core.js",
    "three/examples/jsm/controls/OrbitControls.js",
    "iwer/build/iwer.min.js",
]
data_files = [
    ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
    ("share/" + package_name, ["package.xml"]),
    ("share/" + package_name + "/web", [f for f in web_files if (here / f).exists()]),
]
for f in vendor:
    if (here / "web/node_modules" / f).exists():
        data_files.append((f"share/{package_name}/web/node_modules/{Path(f).parent}", [f"web/node_modules/{f}"]))

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=data_files,
    # versions are pinned once, in the repository's constraints.txt
    install_requires=[
        "setuptools",
        "so100_common",
        "so100_sim",
        "websockets",
        "cryptography",
        "segno",
        "numpy",
        "pillow",
    ],
    python_requires=">=3.12",
    zip_safe=True,
    maintainer="SO-100 ROS 2 maintainers",
    maintainer_email="maintainers@so100-ros.org",
    description="WebXR page and server for Meta Quest teleoperation of the SO-100",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "webxr_server = teleop_vr.webxr_server_node:main",
        ],
    },
)
