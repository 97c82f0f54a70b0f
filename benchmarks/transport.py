"""Transport benchmark: JointState at 200 Hz plus two 640x480 rgb8 Image streams at 30 Hz between two processes.

Phase 1 (``--duration`` s): loss, latency p50/p99/max (receive time minus header stamp, both
``time.time_ns()`` on this machine) and CPU per process. Phase 2 (``--flood-duration`` s): the
publisher sends 640x480 rgb8 images back to back; images/s sent and received, and loss.

The same workload runs on each ``--transport``, one after the other, and the results are compared:

- ``zenoh``: our runtime (``so100_common.node.Node``) over zenoh; the script starts its own router
  on a free port;
- ``rclpy``: our runtime over rclpy / Fast DDS (``SO100_TRANSPORT=rclpy``);
- ``bare-rclpy``: plain rclpy / Fast DDS with the typed ``sensor_msgs`` classes, the images filled
  as cv_bridge fills them — what a ROS 2 user has today, none of our code in the loop.

The rclpy rows need rclpy (``./setup.sh --ros``, then ``.venv-ros/bin/python``); by default every
transport that can run here runs. Each run starts two copies of this script (``--role publisher`` /
``--role subscriber``) with a random ROS_DOMAIN_ID. Every message carries ``seq:<n>`` in
``header.frame_id`` and content derived from ``n``; the subscriber checks it. A content mismatch,
a duplicate or a crash exits non-zero; a missed target prints FAIL and still exits 0.

    .venv-ros/bin/python benchmarks/transport.py [--transport zenoh,rclpy,bare-rclpy] [--duration 10] [--json out.json]

``SO100_YIELD_AFTER_LARGE=0`` in the environment measures the runtime without its CPU yield after
large payloads (``so100_common.transport.yielding``), for A/B comparisons.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import IO, Any

import numpy as np
import psutil
from machine import machine_info, reproduce_command

from so100_common import messages, names
from so100_common.node import Node
from so100_common.qos import QoS
from so100_common.supervisor import router_running
from so100_common.transport import shutdown_backend, yielding

ROOT = Path(__file__).resolve().parent.parent
JOINT_RATE, IMAGE_RATE = 200.0, 30.0
WIDTH, HEIGHT = 640, 480
JS_TOPIC = "/bench/joint_states"
CAMERAS = ("cam0", "cam1")
IMAGE_TOPICS = tuple(f"/bench/{c}/image_raw" for c in CAMERAS)
FLOOD_TOPIC = "/bench/flood/image_raw"
STREAMS = (JS_TOPIC, *IMAGE_TOPICS)  # stream index: 0 joint states, 1.. cameras; the flood is len(STREAMS)
FLOOD = len(STREAMS)
QOS = QoS(depth=100)  # reliable, volatile, keep last 100
TARGET_JS_P99_MS, TARGET_IMAGE_P99_MS = 2.0, 10.0
TRANSPORTS = ("zenoh", "rclpy", "bare-rclpy")
RCLPY_SLOWDOWN = 1.2  # goal: our rclpy path within this factor of bare rclpy
MIN_WARMUP_S = 0.5  # the publisher runs at least this long before measuring
WARM_COUNTS = (50, 5, 5)  # messages per stream the subscriber must see before measuring starts
CHECK_ROWS = slice(None, None, 8)  # image rows compared with the expected content


# ---------------------------------------------------------------- content both sides agree on
def base_pattern() -> np.ndarray:
    """A fixed rgb8 frame with no repeating rows; frame ``(stream, seq)`` is this plus an offset."""
    idx = np.arange(HEIGHT * WIDTH * 3, dtype=np.uint32)
    return ((idx * 7) ^ (idx >> 9)).astype(np.uint8).reshape(HEIGHT, WIDTH, 3)


def frame_offset(stream: int, seq: int) -> np.uint8:
    return np.uint8((seq * 3 + stream * 101) & 0xFF)


def joint_positions(seq: int) -> np.ndarray:
    return np.arange(len(names.JOINT_NAMES), dtype=np.float64) + seq * 1e-3


def parse_seq(frame_id: str) -> int:
    if not frame_id.startswith("seq:"):
        raise ValueError(f"frame_id {frame_id!r} has no sequence number")
    return int(frame_id[4:])


# ---------------------------------------------------------------- child side
class Control:
    """Lines from the parent on stdin become events; EOF or SIGINT/SIGTERM aborts."""

    def __init__(self) -> None:
        self.events: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.abort = threading.Event()
        self.node: Node | None = None
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, lambda *_: self.stop())
        threading.Thread(target=self._read, name="control", daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            self.events[line.strip()].set()
        self.stop()

    def stop(self) -> None:
        self.abort.set()
        if self.node is not None:
            self.node.shutdown()

    @staticmethod
    def emit(event: str) -> None:
        print(f"@{event}", flush=True)


class PublisherLogic:
    """Phases, sequence numbers and the report; the parent's ``go`` starts the measured window.

    Subclasses send (``_send_joints``, ``_send_image``) and own ``timers`` (with ``cancel()`` and ``missed``).
    """

    timers: list[Any]

    def _init_logic(self, duration: float, control: Control) -> None:
        self.duration, self.control = duration, control
        self.base = base_pattern()
        self.frame = np.empty_like(self.base)
        self.seq = [0] * (FLOOD + 1)  # last sequence number published, per stream
        self.phase = "warmup"
        self.t_created = time.monotonic()
        self.t_start = 0.0
        self.report: dict[str, Any] = {}

    def _send_joints(self, seq: int, stamp_ns: int) -> None:
        raise NotImplementedError

    def _send_image(self, stream: int, frame: np.ndarray, seq: int, stamp_ns: int) -> None:
        raise NotImplementedError

    def _next(self, stream: int) -> int:
        self.seq[stream] += 1
        return self.seq[stream]

    def publish_image(self, stream: int) -> None:
        seq = self._next(stream)
        np.add(self.base, frame_offset(stream, seq), out=self.frame)
        self._send_image(stream, self.frame, seq, time.time_ns())

    def on_joint_tick(self) -> None:
        now = time.monotonic()
        if self.phase == "warmup" and self.control.events["go"].is_set() and now - self.t_created >= MIN_WARMUP_S:
            self.phase, self.t_start = "measure", now
            self.report["start_seq"] = [s + 1 for s in self.seq[:FLOOD]]
            self.report["missed_ticks_start"] = [t.missed for t in self.timers]
            self.control.emit("measure_start")
        elif self.phase == "measure" and now - self.t_start >= self.duration:
            for t in self.timers:
                t.cancel()
            self.phase = "done"
            self.report["end_seq"] = self.seq[:FLOOD]
            self.report["window_s"] = now - self.t_start
            self.report["missed_ticks"] = [
                t.missed - m for t, m in zip(self.timers, self.report["missed_ticks_start"], strict=True)
            ]
            self.control.emit("measure_end")
            return
        self._send_joints(self._next(0), time.time_ns())

    def flood(self, seconds: float) -> None:
        """Publish images back to back (no timer) for ``seconds``."""
        self.control.emit("flood_start")
        t0, start_ns = time.monotonic(), time.time_ns()
        while time.monotonic() - t0 < seconds and not self.control.abort.is_set():
            self.publish_image(FLOOD)
        self.report["flood"] = {
            "sent": self.seq[FLOOD],
            "seconds": time.monotonic() - t0,
            "start_ns": start_ns,
        }
        self.control.emit("flood_end")


class BenchPublisher(PublisherLogic, Node):
    """Our runtime: timers publish the three streams."""

    def __init__(self, duration: float, control: Control) -> None:
        Node.__init__(self, "bench_publisher", argv=[])
        self._init_logic(duration, control)
        self.js_pub = self.create_publisher(messages.JointState, JS_TOPIC, QOS)
        self.image_pubs = [self.create_publisher(messages.Image, t, QOS) for t in (*IMAGE_TOPICS, FLOOD_TOPIC)]
        self.timers = [self.create_timer(1.0 / JOINT_RATE, self.on_joint_tick)]
        self.timers += [self.create_timer(1.0 / IMAGE_RATE, lambda i=i: self.publish_image(i)) for i in range(1, FLOOD)]

    def _send_joints(self, seq: int, stamp_ns: int) -> None:
        self.js_pub.publish(
            messages.joint_state(names.JOINT_NAMES, joint_positions(seq), stamp_ns=stamp_ns, frame_id=f"seq:{seq}")
        )

    def _send_image(self, stream: int, frame: np.ndarray, seq: int, stamp_ns: int) -> None:
        self.image_pubs[stream - 1].publish(
            messages.image_from_numpy(frame, "rgb8", frame_id=f"seq:{seq}", stamp_ns=stamp_ns))


class SubscriberLogic:
    """Records sequence numbers and latencies per stream and checks every message's content."""

    def _init_logic(self, control: Control) -> None:
        self.control = control
        self.base_rows = base_pattern()[CHECK_ROWS]
        self.seqs: list[list[int]] = [[] for _ in range(FLOOD + 1)]
        self.latency_ms: list[list[float]] = [[] for _ in range(FLOOD + 1)]
        self.rx_ns: list[int] = []  # receive times of the flood
        self.errors: list[str] = []
        self.error_count = 0
        self.warm = False
        self.last_rx = time.monotonic()

    def _error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < 10:
            self.errors.append(text)

    def _record(self, stream: int, msg: Any, rx_ns: int) -> int | None:
        self.last_rx = time.monotonic()
        try:
            seq = parse_seq(msg.header.frame_id)
        except ValueError as e:
            self._error(f"{STREAMS[stream] if stream < FLOOD else FLOOD_TOPIC}: {e}")
            return None
        self.seqs[stream].append(seq)
        self.latency_ms[stream].append((rx_ns - messages.stamp_to_ns(msg.header.stamp)) / 1e6)
        if stream == FLOOD:
            self.rx_ns.append(rx_ns)
        elif not self.warm and all(len(s) >= n for s, n in zip(self.seqs, WARM_COUNTS, strict=False)):
            self.warm = True
            self.control.emit("warm")
        return seq

    def on_joints(self, msg: Any) -> None:
        seq = self._record(0, msg, time.time_ns())
        if seq is None:
            return
        if tuple(msg.name) != names.JOINT_NAMES:
            self._error(f"{JS_TOPIC} seq {seq}: joint names {list(msg.name)}")
        elif not np.array_equal(msg.position, joint_positions(seq)):
            self._error(f"{JS_TOPIC} seq {seq}: positions {list(msg.position)} != {list(joint_positions(seq))}")

    def on_image(self, stream: int, msg: Any) -> None:
        seq = self._record(stream, msg, time.time_ns())
        if seq is None:
            return
        topic = IMAGE_TOPICS[stream - 1] if stream < FLOOD else FLOOD_TOPIC
        layout = (msg.encoding, msg.width, msg.height, msg.step, len(msg.data))
        if layout != ("rgb8", WIDTH, HEIGHT, WIDTH * 3, WIDTH * HEIGHT * 3):
            self._error(f"{topic} seq {seq}: layout (encoding, w, h, step, bytes) = {layout}")
            return
        rows = messages.image_to_numpy(msg)[CHECK_ROWS]
        if not np.array_equal(rows, self.base_rows + frame_offset(stream, seq)):
            self._error(f"{topic} seq {seq}: pixel content differs from what was published")

    def results(self) -> dict[str, Any]:
        return {
            "seqs": self.seqs,
            "latency_ms": self.latency_ms,
            "flood_rx_ns": self.rx_ns,
            "error_count": self.error_count,
            "errors": self.errors,
        }


class BenchSubscriber(SubscriberLogic, Node):
    """Our runtime's subscriptions."""

    def __init__(self, control: Control) -> None:
        Node.__init__(self, "bench_subscriber", argv=[])
        self._init_logic(control)
        self.subs = [self.create_subscription(messages.JointState, JS_TOPIC, self.on_joints, QOS)]
        self.subs += [
            self.create_subscription(messages.Image, t, lambda m, i=i: self.on_image(i, m), QOS)
            for i, t in enumerate((*IMAGE_TOPICS, FLOOD_TOPIC), start=1)
        ]

    def results(self) -> dict[str, Any]:
        malformed = sum(s.dropped_malformed for s in self.subs)
        if malformed:
            self._error(f"{malformed} malformed payloads dropped by the node")
        return super().results()


class _BareTimer:
    """An rclpy timer that counts the ticks it missed, like our runtime's ``Timer.missed``."""

    def __init__(self, node: Any, period: float, callback: Any) -> None:
        self.period, self.callback, self.missed, self.last = period, callback, 0, None
        self.timer = node.create_timer(period, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        if self.last is not None:
            self.missed += max(0, round((now - self.last) / self.period) - 1)
        self.last = now
        self.callback()

    def cancel(self) -> None:
        self.timer.cancel()


class _BareNode:
    """A plain rclpy node in its own context, spun by :meth:`spin` (none of our runtime)."""

    def __init__(self, name: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from rclpy.signals import SignalHandlerOptions

        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.qos = QoSProfile(depth=QOS.depth, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
        self._stop = threading.Event()

    def spin(self, until: Any) -> None:
        while not until() and not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def shutdown(self) -> None:
        self._stop.set()

    def destroy(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def _stamp(msg: Any, frame_id: str, stamp_ns: int) -> None:
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)


class BarePublisher(PublisherLogic, _BareNode):
    """Plain rclpy: typed JointState and Image, the image data filled as cv_bridge's cv2_to_imgmsg does."""

    def __init__(self, duration: float, control: Control) -> None:
        from sensor_msgs.msg import Image, JointState

        _BareNode.__init__(self, "bench_publisher")
        self._init_logic(duration, control)
        self.JointState, self.Image = JointState, Image
        self.js_pub = self.node.create_publisher(JointState, JS_TOPIC, self.qos)
        self.image_pubs = [self.node.create_publisher(Image, t, self.qos) for t in (*IMAGE_TOPICS, FLOOD_TOPIC)]
        self.timers = [_BareTimer(self.node, 1.0 / JOINT_RATE, self.on_joint_tick)]
        self.timers += [_BareTimer(self.node, 1.0 / IMAGE_RATE, lambda i=i: self.publish_image(i))
                        for i in range(1, FLOOD)]

    def _send_joints(self, seq: int, stamp_ns: int) -> None:
        msg = self.JointState()
        _stamp(msg, f"seq:{seq}", stamp_ns)
        msg.name = list(names.JOINT_NAMES)
        msg.position = joint_positions(seq).tolist()
        self.js_pub.publish(msg)

    def _send_image(self, stream: int, frame: np.ndarray, seq: int, stamp_ns: int) -> None:
        msg = self.Image()
        _stamp(msg, f"seq:{seq}", stamp_ns)
        msg.height, msg.width, msg.encoding, msg.step = frame.shape[0], frame.shape[1], "rgb8", frame.shape[1] * 3
        msg.data.frombytes(frame.tobytes())
        self.image_pubs[stream - 1].publish(msg)


class BareSubscriber(SubscriberLogic, _BareNode):
    """Plain rclpy subscriptions with the typed classes."""

    def __init__(self, control: Control) -> None:
        from sensor_msgs.msg import Image, JointState

        _BareNode.__init__(self, "bench_subscriber")
        self._init_logic(control)
        self.subs = [self.node.create_subscription(JointState, JS_TOPIC, self.on_joints, self.qos)]
        self.subs += [self.node.create_subscription(Image, t, lambda m, i=i: self.on_image(i, m), self.qos)
                      for i, t in enumerate((*IMAGE_TOPICS, FLOOD_TOPIC), start=1)]


def run_child(role: str, impl: str, duration: float, flood_s: float, out: Path) -> int:
    """Body of a child process: build the node, follow the parent's cues, write results to ``out``."""
    control = Control()
    node: Any
    bare = impl == "bare"
    try:
        if role == "publisher":
            node = control.node = (BarePublisher if bare else BenchPublisher)(duration, control)
            node.spin(until=lambda: node.phase == "done" or control.abort.is_set())
            time.sleep(0.5)  # let the subscriber drain phase 1
            if not control.abort.is_set():
                node.flood(flood_s)
            result: dict[str, Any] = node.report
        else:
            node = control.node = (BareSubscriber if bare else BenchSubscriber)(control)
            control.emit("ready")
            stop = control.events["stop"]
            # after "stop", wait until nothing arrived for 0.5 s (the flood's backlog is drained)
            node.spin(until=lambda: control.abort.is_set() or (stop.is_set() and time.monotonic() - node.last_rx > 0.5))
            result = node.results()
        out.write_text(json.dumps(result))
        node.destroy()
    finally:
        if not bare:
            shutdown_backend()
    return 2 if control.abort.is_set() else 0


# ---------------------------------------------------------------- parent side
class BenchError(Exception):
    """The benchmark could not run to the end (a child failed, discovery timed out)."""


class Child:
    """A child process whose ``@event`` stdout lines go to a shared queue."""

    def __init__(self, role: str, cmd: list[str], env: dict[str, str], tmp: Path, events: queue.Queue) -> None:
        self.role = role
        self.stderr_path = tmp / f"{role}.stderr"
        with self.stderr_path.open("w") as err:
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,  # Ctrl-C reaches only the parent, which stops the children
            )
        self.ps = psutil.Process(self.proc.pid)
        threading.Thread(target=self._read, args=(self.proc.stdout, events), daemon=True).start()

    def _read(self, stream: IO[str] | None, events: queue.Queue) -> None:
        for line in stream or ():
            if line.startswith("@"):
                events.put((self.role, line.strip()[1:]))
        events.put((self.role, "eof"))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except OSError as e:
            raise BenchError(f"cannot reach the {self.role} ({e}); its stderr:\n{self.stderr_tail()}") from e

    def log_problems(self) -> list[str]:
        """WARN/ERROR lines the process logged."""
        text = self.stderr_path.read_text(errors="replace").splitlines()
        return [f"{self.role}: {line}" for line in text if line.startswith(("[WARN", "[ERROR"))]

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def stderr_tail(self, lines: int = 20) -> str:
        text = self.stderr_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in text) or "    (no stderr)"

    def send_signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)


class Run:
    """The parent: router, children, the event sequence and CPU samples."""

    def __init__(self, args: argparse.Namespace, tmp: Path, transport: str) -> None:
        self.args, self.tmp, self.transport = args, tmp, transport
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.seen: dict[tuple[str, str], float] = {}
        self.children: dict[str, Child] = {}
        self.cpu: dict[str, dict[str, float]] = {}
        self.deadline = time.monotonic() + args.duration + args.flood_duration + 20.0
        port = free_port()
        self.domain = random.randint(1, 200)
        self.endpoint = f"tcp/127.0.0.1:{port}"
        self.env = dict(os.environ, ROS_DOMAIN_ID=str(self.domain),
                        SO100_TRANSPORT="zenoh" if transport == "zenoh" else "rclpy")
        self.env.pop("ZENOH_CONFIG_OVERRIDE", None)
        if transport != "zenoh":
            self.env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
        self.router_port = port
        self.log_problems: list[str] = []

    def spawn(self, role: str, cmd: list[str], env: dict[str, str]) -> Child:
        self.children[role] = Child(role, cmd, env, self.tmp, self.events)
        return self.children[role]

    def expect(self, role: str, event: str, timeout: float) -> None:
        """Wait for ``@event`` from ``role``; a child exiting first or the timeout raises."""
        end = min(time.monotonic() + timeout, self.deadline)
        while (role, event) not in self.seen:
            try:
                who, what = self.events.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise BenchError(f"timed out waiting for the {role} to report '{event}'") from None
            self.seen[(who, what)] = time.monotonic()
            if what == "eof" and event != "eof":  # a child ended before its work was done
                child = self.children[who]
                rc = child.proc.wait(5)
                raise BenchError(f"the {who} exited (code {rc}) before '{event}'; its stderr:\n{child.stderr_tail()}")

    def sample_cpu(self, label: str) -> None:
        self.cpu[label] = {"t": time.monotonic(), **{r: c.cpu_s() for r, c in self.children.items()}}

    def cpu_percent(self, start: str, end: str) -> dict[str, float]:
        a, b = self.cpu[start], self.cpu[end]
        wall = b["t"] - a["t"]
        return {r: 100.0 * (b[r] - a[r]) / wall for r in self.children}

    def execute(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run both phases; return the publisher's and the subscriber's results."""
        env = self.env
        if self.transport == "zenoh":
            so100 = Path(sys.executable).parent / "so100"
            router_cmd = [str(so100) if so100.exists() else shutil.which("so100") or "so100", "router"]
            self.spawn("router", [*router_cmd, "--listen", self.endpoint], self.env)
            t0 = time.monotonic()
            while not router_running("127.0.0.1", self.router_port):
                if self.children["router"].proc.poll() is not None or time.monotonic() - t0 > 10.0:
                    raise BenchError(
                        f"the router did not come up on {self.endpoint}:\n{self.children['router'].stderr_tail()}"
                    )
                time.sleep(0.05)
            env = dict(self.env, ZENOH_CONFIG_OVERRIDE=f'connect/endpoints=["{self.endpoint}"]')
        me = [sys.executable, str(Path(__file__).resolve())]
        common = ["--duration", str(self.args.duration), "--flood-duration", str(self.args.flood_duration),
                  "--impl", "bare" if self.transport == "bare-rclpy" else "ours"]
        sub = self.spawn("subscriber", [*me, *common, "--role", "subscriber", "--out", str(self.tmp / "sub.json")], env)
        self.expect("subscriber", "ready", 20.0)
        pub = self.spawn("publisher", [*me, *common, "--role", "publisher", "--out", str(self.tmp / "pub.json")], env)
        self.expect("subscriber", "warm", 20.0)
        pub.send("go")
        self.expect("publisher", "measure_start", 5.0)
        self.sample_cpu("measure_start")
        self.expect("publisher", "measure_end", self.args.duration + 5.0)
        self.sample_cpu("measure_end")
        self.expect("publisher", "flood_start", 5.0)
        self.sample_cpu("flood_start")
        self.expect("publisher", "flood_end", self.args.flood_duration + 5.0)
        self.sample_cpu("flood_end")
        sub.send("stop")
        for child in (pub, sub):
            self.expect(child.role, "eof", 10.0)
            rc = child.proc.wait(5)
            if rc != 0:
                raise BenchError(f"the {child.role} exited with code {rc}; its stderr:\n{child.stderr_tail()}")
        self.log_problems = [line for c in self.children.values() for line in c.log_problems()]
        return json.loads((self.tmp / "pub.json").read_text()), json.loads((self.tmp / "sub.json").read_text())

    def stop_all(self, grace: float = 3.0) -> None:
        """SIGINT to every process still running, SIGKILL to those left after ``grace`` s."""
        procs = list(self.children.values())
        for child in procs:
            child.send_signal(signal.SIGINT)
        end = time.monotonic() + grace
        while time.monotonic() < end and any(c.proc.poll() is None for c in procs):
            time.sleep(0.05)
        for child in procs:
            child.send_signal(signal.SIGKILL)
            child.proc.wait()
            if child.proc.stdin is not None:
                try:
                    child.proc.stdin.close()
                except OSError:
                    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def latency_stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    arr = np.asarray(values)
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "max_ms": float(arr.max()),
    }


def analyse(pub: dict[str, Any], sub: dict[str, Any], run: Run) -> dict[str, Any]:
    """Loss, latency and rates from both sides' raw results."""
    streams = []
    duplicates, reordered = 0, 0
    for i, topic in enumerate(STREAMS):
        first, last = pub["start_seq"][i], pub["end_seq"][i]
        seqs = np.asarray(sub["seqs"][i], dtype=np.int64)
        lat = np.asarray(sub["latency_ms"][i])
        inside = (seqs >= first) & (seqs <= last)
        unique = np.unique(seqs[inside])
        duplicates += int(inside.sum()) - len(unique)
        reordered += int((np.diff(seqs) < 0).sum())
        sent = max(0, last - first + 1)
        streams.append(
            {
                "topic": topic,
                "sent": sent,
                "rate_hz": sent / pub["window_s"],
                "received": len(unique),
                "lost": sent - len(unique),
                "missed_timer_ticks": pub["missed_ticks"][i],
                **latency_stats(lat[inside].tolist()),
            }
        )
        beyond = int((seqs > pub["end_seq"][i]).sum())
        if beyond:
            sub["errors"].append(f"{topic}: {beyond} messages with a sequence number never published")
            sub["error_count"] += beyond
    flood = pub["flood"]
    fseqs = np.asarray(sub["seqs"][FLOOD], dtype=np.int64)
    funique = np.unique(fseqs)
    duplicates += len(fseqs) - len(funique)
    rx = np.asarray(sub["flood_rx_ns"], dtype=np.int64)
    rx_span = (rx.max() - flood["start_ns"]) / 1e9 if len(rx) else 0.0
    per_second = np.bincount(np.maximum(rx - flood["start_ns"], 0) // 1_000_000_000).tolist() if len(rx) else []
    flood_result = {
        "topic": FLOOD_TOPIC,
        "sent": flood["sent"],
        "seconds": flood["seconds"],
        "sent_per_s": flood["sent"] / flood["seconds"],
        "received": len(funique),
        "received_per_s": len(funique) / rx_span if rx_span > 0 else 0.0,
        "received_each_second": per_second,
        "lost": flood["sent"] - len(funique),
        **latency_stats(sub["latency_ms"][FLOOD]),
    }
    if duplicates:
        sub["errors"].append(f"{duplicates} duplicate deliveries")
        sub["error_count"] += duplicates
    return {
        "window_s": pub["window_s"],
        "streams": streams,
        "cpu_percent": run.cpu_percent("measure_start", "measure_end"),
        "flood": flood_result,
        "flood_cpu_percent": run.cpu_percent("flood_start", "flood_end"),
        "reordered": reordered,
        "log_problems": run.log_problems,
        "correctness": {"errors": sub["error_count"], "examples": sub["errors"]},
    }


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def targets(res: dict[str, Any]) -> list[tuple[str, str, bool]]:
    js, *images = res["streams"]
    lost = sum(s["lost"] for s in res["streams"])
    img_p99 = [s["p99_ms"] for s in images]
    return [
        ("0 loss (phase 1, all streams)", f"{lost} lost", lost == 0),
        (
            f"JointState p99 <= {TARGET_JS_P99_MS:g} ms",
            f"{fmt(js['p99_ms'])} ms",
            js["p99_ms"] is not None and js["p99_ms"] <= TARGET_JS_P99_MS,
        ),
        (
            f"Image p99 <= {TARGET_IMAGE_P99_MS:g} ms",
            " / ".join(fmt(p) for p in img_p99) + " ms",
            all(p is not None and p <= TARGET_IMAGE_P99_MS for p in img_p99),
        ),
    ]


TITLES = {"zenoh": "our runtime over zenoh (publisher and subscriber processes + router)",
          "rclpy": "our runtime over rclpy / Fast DDS (SO100_TRANSPORT=rclpy)",
          "bare-rclpy": "bare rclpy / Fast DDS, typed messages (no code of ours)"}


def cpu_text(cpu: dict[str, float]) -> str:
    return ", ".join(f"{role} {value:.1f}" for role, value in cpu.items())


def report(res: dict[str, Any]) -> str:
    f = res["flood"]
    lines = [
        f"== {res['transport']}: {TITLES[res['transport']]}",
        f"Phase 1: {res['window_s']:.1f} s measured, reliable QoS depth {QOS.depth}, images rgb8 {WIDTH}x{HEIGHT}",
        f"  {'topic':<24} {'rate Hz':>8} {'sent':>6} {'recv':>6} {'lost':>5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}",
    ]
    for st in res["streams"]:
        lines.append(
            f"  {st['topic']:<24} {st['rate_hz']:>8.1f} {st['sent']:>6} {st['received']:>6} {st['lost']:>5} "
            f"{fmt(st['p50_ms']):>7} {fmt(st['p99_ms']):>7} {fmt(st['max_ms']):>7}"
        )
    missed = [st["missed_timer_ticks"] for st in res["streams"]]
    lines += [
        f"  CPU (% of one core): {cpu_text(res['cpu_percent'])}; publisher timer ticks skipped: {missed}",
        "",
        f"Phase 2: max image rate, rgb8 {WIDTH}x{HEIGHT} published back to back for {f['seconds']:.1f} s",
        f"  sent {f['sent']} ({f['sent_per_s']:.1f}/s), received {f['received']} ({f['received_per_s']:.1f}/s), "
        f"lost {f['lost']} ({100.0 * f['lost'] / max(1, f['sent']):.1f} %)",
        f"  received in each second: {f['received_each_second']}; latency p50 {fmt(f['p50_ms'])} ms, "
        f"p99 {fmt(f['p99_ms'])} ms",
        f"  CPU (% of one core): {cpu_text(res['flood_cpu_percent'])}",
        "",
    ]
    c = res["correctness"]
    lines.append(
        f"Correctness: {'OK' if not c['errors'] else 'FAILED (exit code 1)'}, {c['errors']} errors "
        f"(content, names, duplicates); reordered arrivals: {res['reordered']}"
        + ("" if not c["errors"] else "\n" + "\n".join(f"  {e}" for e in c["examples"]))
    )
    if res["log_problems"]:
        lines.append(f"Warnings logged by the processes ({len(res['log_problems'])}, first 5):")
        lines += [f"  {line}" for line in res["log_problems"][:5]]
    lines.append("Targets:")
    for name, value, ok in targets(res):
        lines.append(f"  {name:<32} {value:<22} {'PASS' if ok else 'FAIL'}")
    return "\n".join(lines)


def summary_row(res: dict[str, Any]) -> dict[str, Any]:
    """One line of the side-by-side table."""
    js, *images = res["streams"]
    return {
        "transport": res["transport"],
        "lost": sum(st["lost"] for st in res["streams"]),
        "js_p50_ms": js["p50_ms"], "js_p99_ms": js["p99_ms"],
        "image_p50_ms": max(st["p50_ms"] or 0.0 for st in images),
        "image_p99_ms": max(st["p99_ms"] or 0.0 for st in images),
        "cpu_pub": res["cpu_percent"]["publisher"], "cpu_sub": res["cpu_percent"]["subscriber"],
        "cpu_router": res["cpu_percent"].get("router"),
        "max_image_rate": res["flood"]["received_per_s"],
        "flood_lost_percent": 100.0 * res["flood"]["lost"] / max(1, res["flood"]["sent"]),
    }


def comparison(rows: dict[str, dict[str, Any]]) -> list[tuple[str, str, bool]]:
    """The goals between transports: zenoh at least as fast as bare rclpy for images, ours within 1.2x of bare."""
    bare = rows.get("bare-rclpy")
    if bare is None:
        return []
    goals = []
    if "zenoh" in rows:
        z = rows["zenoh"]
        goals += [
            ("zenoh image p99 <= bare rclpy's", f"{z['image_p99_ms']:.2f} vs {bare['image_p99_ms']:.2f} ms",
             z["image_p99_ms"] <= bare["image_p99_ms"]),
            ("zenoh max image rate >= bare rclpy's", f"{z['max_image_rate']:.0f} vs {bare['max_image_rate']:.0f}/s",
             z["max_image_rate"] >= bare["max_image_rate"]),
        ]
    if "rclpy" in rows:
        r = rows["rclpy"]
        k = RCLPY_SLOWDOWN
        goals += [
            (f"our rclpy image p99 <= {k:g} x bare", f"{r['image_p99_ms']:.2f} vs {bare['image_p99_ms']:.2f} ms",
             r["image_p99_ms"] <= k * bare["image_p99_ms"]),
            (f"our rclpy JointState p99 <= {k:g} x bare", f"{r['js_p99_ms']:.2f} vs {bare['js_p99_ms']:.2f} ms",
             r["js_p99_ms"] <= k * bare["js_p99_ms"]),
            (f"our rclpy max image rate >= bare / {k:g}",
             f"{r['max_image_rate']:.0f} vs {bare['max_image_rate']:.0f}/s",
             r["max_image_rate"] * k >= bare["max_image_rate"]),
            (f"our rclpy CPU (pub+sub) <= {k:g} x bare",
             f"{r['cpu_pub'] + r['cpu_sub']:.0f} vs {bare['cpu_pub'] + bare['cpu_sub']:.0f} %",
             r["cpu_pub"] + r["cpu_sub"] <= k * (bare["cpu_pub"] + bare["cpu_sub"])),
        ]
    return goals


def side_by_side(rows: dict[str, dict[str, Any]]) -> str:
    lines = ["== side by side (phase 1: loss, latency, CPU % of one core; phase 2: images/s received)",
             f"  {'transport':<11} {'lost':>4} {'JS p50':>7} {'JS p99':>7} {'img p50':>8} {'img p99':>8} "
             f"{'CPU pub':>8} {'CPU sub':>8} {'router':>7} {'max img/s':>10} {'flood lost':>10}"]
    for r in rows.values():
        lines.append(
            f"  {r['transport']:<11} {r['lost']:>4} {fmt(r['js_p50_ms']):>7} {fmt(r['js_p99_ms']):>7} "
            f"{fmt(r['image_p50_ms']):>8} {fmt(r['image_p99_ms']):>8} {r['cpu_pub']:>8.1f} {r['cpu_sub']:>8.1f} "
            f"{fmt(r['cpu_router'], '.1f'):>7} {r['max_image_rate']:>10.0f} {r['flood_lost_percent']:>9.1f}%")
    goals = comparison(rows)
    if goals:
        lines.append("Goals:")
        lines += [f"  {name:<42} {value:<26} {'PASS' if ok else 'FAIL'}" for name, value, ok in goals]
    return "\n".join(lines)


def parse_transports(text: str) -> list[str]:
    if text == "all":
        have_rclpy = importlib.util.find_spec("rclpy") is not None
        return [t for t in TRANSPORTS if t == "zenoh" or have_rclpy]
    chosen = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in chosen if t not in TRANSPORTS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown transport {unknown}; choose from {', '.join(TRANSPORTS)} or all")
    if any(t != "zenoh" for t in chosen) and importlib.util.find_spec("rclpy") is None:
        raise argparse.ArgumentTypeError(
            "rclpy is not importable in this Python: ./setup.sh --ros, then run with .venv-ros/bin/python")
    return chosen


def run_one(args: argparse.Namespace, transport: str) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory(prefix="so100-bench-") as tmp:
        run = Run(args, Path(tmp), transport)
        where = f"router at {run.endpoint}, " if transport == "zenoh" else "Fast DDS, "
        print(f"running {transport}: {where}ROS_DOMAIN_ID={run.domain}, {args.duration:g} s of streams then "
              f"{args.flood_duration:g} s of images back to back ...", flush=True)
        try:
            pub, sub = run.execute()
        except BenchError as e:
            print(f"error ({transport}): {e}", file=sys.stderr)
            return None
        finally:
            run.stop_all()
    res = analyse(pub, sub, run)
    res |= {"transport": transport,
            "targets": [{"name": n, "value": v, "pass": bool(ok)} for n, v, ok in targets(res)]}
    print(report(res), flush=True)
    return res


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transport", type=parse_transports, default="all", metavar="LIST",
                        help="comma-separated, from zenoh, rclpy, bare-rclpy; 'all' (default) = every one that "
                             "can run in this Python (the rclpy ones need rclpy: .venv-ros)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the measured phase 1 (default 10)")
    parser.add_argument("--flood-duration", type=float, default=3.0, help="seconds of phase 2 (default 3)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results to PATH")
    parser.add_argument("--role", choices=("publisher", "subscriber"), help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=("ours", "bare"), default="ours", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.duration <= 0 or args.flood_duration <= 0:
        parser.error("durations must be > 0")
    if args.role:
        return run_child(args.role, args.impl, args.duration, args.flood_duration, args.out)

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):  # stop the router and the children on either
        signal.signal(sig, interrupt)
    machine = machine_info(zenoh=importlib.metadata.version("eclipse-zenoh"))
    command = reproduce_command("benchmarks/transport.py").replace(
        " && ", " && " if yielding.ENABLED else " && SO100_YIELD_AFTER_LARGE=0 ", 1)
    print(f"SO-100 transport benchmark: {', '.join(args.transport)}\n"
          f"machine: {machine['nproc']} CPUs, {machine['cpu']}, {machine['platform']}\n"
          f"         Python {machine['python']}, eclipse-zenoh {machine['zenoh']}"
          + _rclpy_version()
          + f"; commit {machine['commit']}\ncommand: {command}\n"
          f"runtime: CPU yield after payloads >= {yielding.LARGE_PAYLOAD // 1024} KiB "
          f"{'on' if yielding.ENABLED else 'off'} (SO100_YIELD_AFTER_LARGE=0 turns it off)\n", flush=True)
    runs: dict[str, dict[str, Any]] = {}
    failed = False
    try:
        for transport in args.transport:
            res = run_one(args, transport)
            if res is None:
                failed = True
                continue
            runs[transport] = res
            print()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    rows = {t: summary_row(r) for t, r in runs.items()}
    if rows:
        print(side_by_side(rows))
    out = {"machine": machine, "command": command, "yield_after_large": yielding.ENABLED,
           "duration_s": args.duration, "runs": runs, "side_by_side": list(rows.values()),
           "goals": [{"name": n, "value": v, "pass": bool(ok)} for n, v, ok in comparison(rows)]}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 1 if failed or any(r["correctness"]["errors"] for r in runs.values()) else 0


def _rclpy_version() -> str:
    try:
        return f", rclpy {importlib.metadata.version('ros-jazzy-rclpy')} (Fast DDS)"
    except importlib.metadata.PackageNotFoundError:
        return ""


if __name__ == "__main__":
    raise SystemExit(main())
