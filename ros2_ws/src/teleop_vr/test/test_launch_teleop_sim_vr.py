"""``teleop_sim vr:=true``: the VR headset replaces the leader arm as the sim's leader."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader
from wsclient import PageClient, pairing_token

from so100_common.launch_graph import evaluate, find_graph, load_graph, parse_launch_args
from so100_common.testing import BIN, free_port, wait_for

GRAPH = Path(__file__).resolve().parents[4] / "launch" / "teleop_sim.graph.yaml"


def grab(c: PageClient, hand: np.ndarray) -> np.ndarray:
    """Close the grip at ``hand``; the tool target once the clutch is engaged (motion is relative to it)."""
    c.send_input(hand)
    wait_for(lambda: (c.latest("status") or {}).get("engaged"), 10, "the clutch to engage")
    return np.array(c.latest("status")["target"])


def test_vr_argument_swaps_the_leader():
    graph = load_graph(GRAPH)
    default = {n.name: n for n in evaluate(graph, parse_launch_args([], graph))}
    assert "leader_arm" in default and "webxr_server" not in default
    vr = {n.name: n for n in evaluate(graph, parse_launch_args(["vr:=true", "vr_lan:=true"], graph))}
    assert "leader_arm" not in vr and vr["webxr_server"].required
    assert vr["webxr_server"].remappings == {"/leader/joint_states": "/follower/joint_commands"}
    assert vr["webxr_server"].parameters["lan"] is True
    assert find_graph("teleop_sim").name == "teleop_sim.graph.yaml"


def test_so100_launch_teleop_sim_with_vr(procs):
    """The launched graph serves the page, and a controller moves the simulated arm through it."""
    port = free_port()
    launch = procs.start(
        [str(BIN / "so100"), "launch", "teleop_sim", "vr:=true", f"vr_port:={port}", "width:=64", "height:=48"]
    )
    launch.wait_output("webxr_server up", 60)
    launch.wait_output("starting from the follower's joints", 60)
    c = PageClient(f"ws://127.0.0.1:{port}/ws?token={pairing_token(launch)}")
    try:
        c.wait("scene")
        c.wait("status")
        before = c.latest("poses")["frames"]["gripper_link"][:3]
        hand = np.array([0.0, 0.0, 1.0])
        start = grab(c, hand)
        for i in range(1, 100):
            c.send_input(hand + [0.0, 0.0, -0.05 * min(1.0, i / 40)])
            time.sleep(1 / 72)
        # the status frames come on their own clock: wait for one that reflects the last input
        wait_for(
            lambda: np.allclose(c.latest("status")["target"], start + [0, 0, -0.05], atol=1e-3),
            10,
            "the target to follow the controller 5 cm down",
        )
        wait_for(
            lambda: c.latest("poses")["frames"]["gripper_link"][2] < before[2] - 0.03,
            5,
            "the simulated gripper to go down",
        )
    finally:
        c.close()
    assert launch.stop() == 0, launch.output[-3000:]


def test_so100_launch_record_with_vr_source(procs, tmp_path):
    """record source:=vr: the controller drives the sim while the recorder saves a 'vr' episode; Ctrl-C keeps it."""
    port, out = free_port(), tmp_path / "rec"
    launch = procs.start([str(BIN / "so100"), "launch", "record", "source:=vr", f"vr_port:={port}", "episodes:=1",
                          f"out_dir:={out}", "width:=64", "height:=48", "rviz:=true"])
    launch.wait_output("skipping rviz2", 30)  # ROS mode only; the page is the viewer here
    launch.wait_output("webxr_server up", 60)
    launch.wait_output("starting from the follower's joints", 60)
    launch.wait_output("recording ", 60)
    c = PageClient(f"ws://127.0.0.1:{port}/ws?token={pairing_token(launch)}")
    try:
        c.wait("scene")
        c.wait("status")
        start = grab(c, np.array([0.0, 0.0, 1.0]))
        for i in range(1, 60):
            c.send_input(np.array([0.0, 0.0, 1.0]) + [0.0, 0.0, -0.03 * min(1.0, i / 30)])
            time.sleep(1 / 72)
        wait_for(
            lambda: np.allclose(c.latest("status")["target"], start + [0, 0, -0.03], atol=1e-3),
            10,
            "the target to follow the controller 3 cm down",
        )
    finally:
        c.close()
    assert launch.stop() == 0, launch.output[-3000:]
    (episode,) = [p for p in out.iterdir() if p.is_dir()]
    meta = json.loads((episode / "episode.json").read_text())
    assert meta["source"] == "vr" and meta["complete"], meta
    with Reader(episode) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts["/follower/joint_commands"] > 30 and counts["/follower/joint_states"] > 30, counts
