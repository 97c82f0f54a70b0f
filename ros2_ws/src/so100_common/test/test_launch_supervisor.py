"""so100 launch runs a graph as supervised processes and stops it cleanly."""

import signal
import sys
import time
from pathlib import Path

import psutil

from so100_common.testing import wait_for

SO100 = str(Path(sys.executable).parent / "so100")


def _children(proc):
    return psutil.Process(proc.popen.pid).children(recursive=True)


def test_demo_graph_runs_to_completion(procs):
    """The required listener finishes, the graph stops, the exit code is 0."""
    proc = procs.start([SO100, "launch", "demo", "duration:=8", "image_rate:=10"])
    assert proc.popen.wait(60) == 0, proc.output
    assert "[listener]" in proc.output and "joint states:" in proc.output
    assert "[talker]" in proc.output


def test_ctrl_c_stops_every_child(procs):
    proc = procs.start([SO100, "launch", "demo", "duration:=0"])
    proc.wait_output("joint states", 30)
    kids = wait_for(lambda: [k for k in _children(proc) if "demo_" in " ".join(k.cmdline())], 10, "child nodes")
    assert len(kids) == 2
    proc.signal(signal.SIGINT)
    assert proc.popen.wait(30) == 0, proc.output
    for k in kids:
        assert not k.is_running() or k.status() == psutil.STATUS_ZOMBIE


def test_respawn_and_required_failure(procs, tmp_path):
    """A crashing respawn node is restarted with back-off; a failing required node fails the launch."""
    graph = tmp_path / "crash.graph.yaml"
    graph.write_text(
        "arguments: {}\n"
        "nodes:\n"
        "  - {package: so100_common, executable: demo_talker, name: flaky, respawn: true, respawn_delay: 0.2,\n"
        "     parameters: {rate: fast}}\n"
        "  - {package: so100_common, executable: demo_listener, name: judge, required: true,\n"
        "     parameters: {duration: 12.0}, remappings: {/leader/joint_states: /nothing}}\n"
    )
    start = time.monotonic()
    proc = procs.start([SO100, "launch", str(graph)])
    code = proc.popen.wait(90)
    assert code == 1, proc.output  # the listener heard nothing and failed
    out = proc.output
    assert "restarting in 0.2 s" in out and "restarting in 0.4 s" in out, out
    assert "required node exited with code 1" in out
    assert time.monotonic() - start < 60  # the graph stopped once the judge failed (after 12 s)


def test_unknown_argument_lists_valid_ones(procs):
    out = procs.cli("launch", "demo", "duraton:=3")
    assert out.returncode == 2 and "valid arguments: duration, image_rate, rate" in out.stderr
    out = procs.cli("launch", "demo", "--show-args")
    assert "duration:=5.0" in out.stdout
