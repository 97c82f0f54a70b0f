"""The CPU yield after large payloads: when it happens, where the runtime calls it, how to turn it off."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from so100_common import messages, names
from so100_common.node import Node
from so100_common.qos import QoS
from so100_common.testing import wait_for
from so100_common.transport import yielding

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_yield"), reason="this platform has no os.sched_yield")


@pytest.fixture
def yields(monkeypatch):
    """Count os.sched_yield calls (from any thread) while yielding is enabled."""
    calls = []
    lock = threading.Lock()

    def counted() -> None:
        with lock:
            calls.append(threading.current_thread().name)

    monkeypatch.setattr(os, "sched_yield", counted)
    monkeypatch.setattr(yielding, "ENABLED", True)
    return calls


def test_only_large_payloads_yield(yields):
    yielding.after_payload(0)
    yielding.after_payload(yielding.LARGE_PAYLOAD - 1)
    assert yields == []
    yielding.after_payload(yielding.LARGE_PAYLOAD)
    yielding.after_payload(640 * 480 * 3)
    assert len(yields) == 2


def test_disabled_never_yields(yields, monkeypatch):
    monkeypatch.setattr(yielding, "ENABLED", False)
    yielding.after_payload(10 * yielding.LARGE_PAYLOAD)
    assert yields == []


@pytest.mark.parametrize(("value", "enabled"), [(None, True), ("1", True), ("0", False), ("off", False), ("False", False)])
def test_the_environment_switch(value, enabled):
    env = {k: v for k, v in os.environ.items() if k != "SO100_YIELD_AFTER_LARGE"}
    if value is not None:
        env["SO100_YIELD_AFTER_LARGE"] = value
    out = subprocess.run(
        [sys.executable, "-c", "from so100_common.transport import yielding; print(yielding.ENABLED)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == str(enabled)


def test_a_node_yields_around_each_frame_it_sends_and_receives_but_not_for_joint_states(graph, yields):
    """A frame: after serializing, after handing it to zenoh, after copying it out, after its callback."""
    node = Node(f"yield_test_{time.monotonic_ns()}", argv=[])
    try:
        got_img, got_js = [], []
        topic = f"/yield_test_{os.getpid()}"
        node.create_subscription(messages.Image, topic + "/image", got_img.append, QoS(depth=5))
        node.create_subscription(messages.JointState, topic + "/joints", got_js.append, QoS(depth=5))
        img_pub = node.create_publisher(messages.Image, topic + "/image", QoS(depth=5))
        js_pub = node.create_publisher(messages.JointState, topic + "/joints", QoS(depth=5))
        time.sleep(0.3)  # let the local subscriptions match

        js_pub.publish(messages.joint_state(names.JOINT_NAMES, np.zeros(6)))
        node.spin(until=lambda: bool(got_js), timeout=10)
        assert got_js and yields == []

        frame = np.zeros((480, 640, 3), np.uint8)
        img_pub.publish(messages.image_from_numpy(frame, "rgb8"))
        node.spin(until=lambda: bool(got_img), timeout=10)
        assert got_img
        # this thread: serialized, handed to the transport, after the callback; a transport
        # thread: copied out of the sample
        me = threading.current_thread().name
        wait_for(lambda: len(yields) >= 4, 5.0, "the transport thread's yield")  # it follows the enqueue
        time.sleep(0.1)
        assert yields.count(me) == 3 and len(yields) == 4, yields
    finally:
        node.destroy()
