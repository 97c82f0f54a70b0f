"""Repository rules that keep the two modes interchangeable."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
SRC = ROOT / "ros2_ws" / "src"
PACKAGES = ["so100_common", "so100_driver", "so100_sim", "teleop_vr", "act_policy"]


def test_only_the_transport_imports_rclpy_or_zenoh():
    """Node code goes through so100_common's runtime, never rclpy or zenoh directly."""
    offenders = []
    pattern = re.compile(r"^\s*(import|from)\s+(rclpy|zenoh)\b", re.M)
    for path in SRC.rglob("*.py"):
        if "transport" in path.parts or "test" in path.parts:
            continue
        if pattern.search(path.read_text()):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_every_package_is_an_ament_python_package():
    for pkg in PACKAGES:
        d = SRC / pkg
        assert (d / "resource" / pkg).exists(), pkg
        xml = (d / "package.xml").read_text()
        assert f"<name>{pkg}</name>" in xml and "<build_type>ament_python</build_type>" in xml
        assert f'package_name = "{pkg}"' in (d / "setup.py").read_text()
        assert (d / pkg / "__init__.py").exists()


def test_every_graph_has_a_launch_file():
    """Each graph runs under ros2 launch too (ROS-only launch files such as rviz need no graph)."""
    graphs = {p.name.removesuffix(".graph.yaml") for p in (ROOT / "launch").glob("*.graph.yaml")}
    launch_files = {p.name.removesuffix(".launch.py") for p in (ROOT / "launch").glob("*.launch.py")}
    assert graphs and graphs <= launch_files, graphs - launch_files
    for path in (ROOT / "launch").glob("*.launch.py"):
        compile(path.read_text(), str(path), "exec")


def test_versions_are_pinned_in_one_place():
    """constraints.txt pins every requirement the packages name; setup.py files pin nothing."""
    pinned = {line.split("==")[0].lower() for line in (ROOT / "constraints.txt").read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    for pkg in PACKAGES:
        text = (SRC / pkg / "setup.py").read_text()
        reqs = re.search(r"install_requires=\[(.*?)\]", text, re.S).group(1)
        for req in re.findall(r"\"([^\"]+)\"", reqs):
            name = re.split(r"[\[<>=!~ ]", req)[0].lower()
            assert not re.search(r"[<>=~]", req), f"{pkg} pins {req}: pin in constraints.txt instead"
            assert name in pinned or name in PACKAGES or name == "setuptools", f"{name} is not in constraints.txt"
