"""Every node executable answers --help with its parameters and exits 0, touching no hardware or network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from so100_common.launch_graph import evaluate, load_graph, parse_launch_args

ROOT = Path(__file__).resolve().parents[4]
BIN = Path(sys.executable).parent
OURS = {"so100_common", "so100_driver", "so100_sim", "teleop_vr", "act_policy"}


def _node_executables() -> list[str]:
    """Every executable of ours that a launch graph starts (with each graph's default arguments and a few variants)."""
    found = {"demo_talker", "demo_listener"}
    variants = {"record": [["source:=leader"], ["source:=vr"], ["follower:=real"]],
                "teleop_sim": [["vr:=true"]], "teleop_real": [["overhead_camera:=usb"]]}
    for path in (ROOT / "launch").glob("*.graph.yaml"):
        graph = load_graph(path)
        for extra in [[], *variants.get(path.name.removesuffix(".graph.yaml"), [])]:
            args = ["checkpoint:=x"] if "act_" in path.name else []
            for node in evaluate(graph, parse_launch_args([*args, *extra], graph)):
                if node.package in OURS:
                    found.add(node.executable)
    return sorted(found)


@pytest.mark.parametrize("exe", _node_executables())
def test_help_lists_the_parameters_and_exits_0(exe, tmp_path):
    # no router reachable, no serial port, no camera, no checkpoint: --help needs none of them
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ZENOH_CONFIG_OVERRIDE": 'connect/endpoints=["tcp/127.0.0.1:9"]'}
    result = subprocess.run([str(BIN / exe), "--help"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert out.startswith(f"usage: {exe} [--ros-args") and "parameters of " in out
    params = [ln for ln in out.splitlines() if ln.startswith("  ") and ", default " in ln]
    assert len(params) >= 2 and all("): " in ln for ln in params), out
    assert "Traceback" not in result.stderr


def test_leader_arm_help_names_its_port_without_opening_it(tmp_path):
    result = subprocess.run([str(BIN / "leader_arm"), "--help", "--ros-args", "-p", f"port:={tmp_path}/no-such-tty"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "port (string, default '/dev/ttyACM0'): serial port" in result.stdout
    assert "no-such-tty" not in result.stderr  # nothing tried to open it
