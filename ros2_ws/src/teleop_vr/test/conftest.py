"""Fixtures of the teleop_vr tests: a small sim_bridge and a webxr_server on free loopback ports."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # wsclient.py

from wsclient import pairing_token  # noqa: E402

from so100_common.testing import Graph, Proc, free_port  # noqa: E402


@pytest.fixture(scope="module")
def sim(graph: Graph) -> Iterator[Proc]:
    """sim_bridge with one tiny camera: /tf comes with the camera ticks (30 Hz)."""
    proc = graph.node(
        "sim_bridge",
        "-p",
        "width:=64",
        "-p",
        "height:=48",
        "-p",
        "camera_rate:=30.0",
        "-p",
        "cameras:=[overhead]",
        "-p",
        "depth_cameras:=[]",
        "-p",
        "seed:=3",
        "-r",
        "/follower/joint_commands:=/leader/joint_states",
    )
    proc.wait_output("sim_bridge up", 60)
    yield proc
    proc.stop()
    graph.procs.remove(proc)


@pytest.fixture(scope="module")
def server(graph: Graph, sim: Proc) -> Iterator[tuple[Proc, int, str]]:
    """webxr_server on a free port: (process, port, the pairing token it printed)."""
    port = free_port()
    proc = graph.node("webxr_server", "-p", f"port:={port}", "-p", "camera_rate:=5.0")
    proc.wait_output("webxr_server up", 30)
    token = pairing_token(proc)
    proc.wait_output("starting from the follower's joints", 30)
    yield proc, port, token
    proc.stop()
    graph.procs.remove(proc)
