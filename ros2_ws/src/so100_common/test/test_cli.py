"""The so100 CLI sees and drives what runs on the router, like ros2's CLI."""

import sys
from pathlib import Path

import pytest

RELAY = str(Path(__file__).parent / "nodes" / "relay_node.py")


@pytest.fixture
def relay(procs):
    proc = procs.start([sys.executable, RELAY, "--ros-args", "-r", "__ns:=/cli"])
    proc.wait_output("relay ready", 20)
    return proc


def test_node_and_topic_lists(procs, relay):
    nodes = procs.cli("node", "list").stdout.split()
    assert "/cli/relay" in nodes
    assert not any(n.rsplit("/", 1)[-1].startswith("_") for n in nodes), "hidden CLI nodes are listed"
    topics = procs.cli("topic", "list", "-t").stdout.splitlines()
    assert "/cli/out/joint_states [sensor_msgs/msg/JointState]" in topics
    assert "/cli/latched [std_msgs/msg/String]" in topics
    services = procs.cli("service", "list", "-t").stdout.splitlines()
    assert "/cli/relay/trigger [std_srvs/srv/Trigger]" in services


def test_echo_latched_and_pub(procs, relay):
    echo = procs.cli("topic", "echo", "/cli/latched", "--once", "--timeout", "15")
    assert echo.returncode == 0 and "data: hello from /cli/relay" in echo.stdout
    # with the type given, the QoS still follows the latched publisher (as `ros2 topic echo` does)
    typed = procs.cli("topic", "echo", "/cli/latched", "std_msgs/msg/String", "--once", "--timeout", "15")
    assert typed.returncode == 0 and "data: hello from /cli/relay" in typed.stdout, typed.stdout + typed.stderr
    listener = procs.start([str(Path(sys.executable).parent / "so100"), "topic", "echo",
                            "/cli/out/joint_states", "sensor_msgs/msg/JointState", "--once", "--timeout", "20"])
    # publish until the listener has its message: its start-up time does not matter
    pub = procs.start([str(Path(sys.executable).parent / "so100"), "topic", "pub", "/cli/in/joint_states",
                       "sensor_msgs/msg/JointState", "{name: [a, b], position: [1.5, -2.0]}", "-r", "5"])
    assert listener.popen.wait(30) == 0, listener.output
    assert pub.alive(), pub.output
    assert pub.stop() == 0, pub.output  # Ctrl-C ends `topic pub` cleanly
    assert "- 1.5" in listener.output and "- -2.0" in listener.output


def test_service_call(procs, relay):
    out = procs.cli("service", "call", "/cli/relay/set_bool", "std_srvs/srv/SetBool", "{data: true}")
    assert out.returncode == 0, out.stderr
    assert "success: true" in out.stdout and "data was True" in out.stdout
    missing = procs.cli("service", "call", "/cli/none", "std_srvs/srv/Trigger", "--timeout", "0.5")
    assert missing.returncode == 2 and "not available" in missing.stderr


def test_hz(procs):
    talker = procs.node("demo_talker", "-p", "rate:=50.0", "-p", "image_rate:=0.0", "-r", "/leader/joint_states:=/hz/js")
    talker.wait_output("publishing", 30)
    out = procs.cli("topic", "hz", "/hz/js", "--duration", "4", "--wait", "20")
    rates = [float(ln.split(":")[1]) for ln in out.stdout.splitlines() if ln.startswith("average rate")]
    assert rates and 30 < rates[-1] < 70, out.stdout  # 50 Hz, give or take a busy machine's skipped ticks


def test_bad_message_values_are_explained(procs):
    out = procs.cli("topic", "pub", "/x", "std_msgs/msg/String", "{dta: 1}", "--once")
    assert out.returncode == 2 and "has no field(s) dta" in out.stderr
