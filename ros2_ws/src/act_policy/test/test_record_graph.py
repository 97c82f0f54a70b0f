"""`so100 launch record`: the scripted expert drives the sim while the recorder saves each episode."""

import json
import sys
from pathlib import Path

from rosbags.rosbag2 import Reader

SO100 = str(Path(sys.executable).parent / "so100")


def test_record_graph_saves_successful_episodes(procs, tmp_path):
    out = tmp_path / "rec"
    proc = procs.start([SO100, "launch", "record", "episodes:=1", f"out_dir:={out}", "width:=160", "height:=120",
                        "seed:=4"])
    assert proc.popen.wait(120) == 0, proc.output
    episodes = sorted(p for p in out.iterdir() if p.is_dir())
    assert [p.name for p in episodes] == ["episode_000000"], proc.output
    meta = json.loads((episodes[0] / "episode.json").read_text())
    assert meta["complete"] and meta["success"] and meta["source"] == "expert" and meta["scene"]["seed"] == 4
    with Reader(episodes[0]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts["/follower/joint_states"] > 100 and counts["/follower/joint_commands"] > 100
    assert counts["/cameras/overhead/image_raw"] > 50 and counts["/task/success"] >= 1


def test_every_record_source_is_a_recorder_source():
    """source:= is passed to the recorder, so each graph choice must be one the recorder accepts."""
    from act_policy.recorder_node import SOURCES
    from so100_common.launch_graph import find_graph, load_graph

    choices = load_graph(find_graph("record")).arguments["source"].choices
    assert choices and set(choices) <= set(SOURCES)
