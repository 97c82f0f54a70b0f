"""Reliability benchmark (issue 15): a repeatable corpus of bad inputs and faults against the real nodes.

Every case runs against real node processes over the real transport, on loopback only: a zenoh
router on a free port and a random ``ROS_DOMAIN_ID`` (:class:`so100_common.testing.Graph`), the
simulated follower ``sim_bridge`` (100 Hz, ``max_step:=0.02``, two 64x48 cameras), ``webxr_server``,
``follower_arm`` on an emulated servo bus (in this process, so faults can change mid-run),
``act_inference`` with an untrained tiny checkpoint, the ``recorder``, and the bag converter and
checkpoint loader as child processes. Every case is bounded in count and time (a whole run takes
about 10 minutes on 2 cores). For each case it records:

- crashed: the target process died, or stopped answering (no joint state in the last 0.5 s, a
  service call or a WebSocket handshake unanswered) — a designed safe stop is not a crash;
- max step: the largest per-control-tick joint motion of ``/follower/joint_states`` (rad; a gap of
  several ticks is divided by them), or for ``follower_arm`` the largest ``|Goal_Position -
  Present_Position|`` the emulated servos saw, against the follower guard's ``max_step``;
- non-finite: values that were not finite in the follower's joint states or in the commands a
  product node (webxr_server, act_inference) sent to the follower;
- gap p99: the 99th percentile of ``/follower/joint_states`` inter-arrival times during the case,
  seen by a separate observer process (target under floods: < 2 control periods);
- RSS growth of the target node (psutil, before the case and after it settled);
- WARN/ERROR lines the target nodes logged during the case (and tracebacks);
- expected: the case's own check (e.g. 403 for a WebSocket without the token) with a note.

Run it (it starts everything it needs; nothing else may use the router it starts):

    nice -n 10 .venv/bin/python benchmarks/reliability.py [--cases 'cmd/*,vr/nan'] [--json out.json]
    .venv/bin/python benchmarks/reliability.py --list

``--cases`` takes comma-separated shell patterns (or substrings) of case names; ``--kills`` sets how
many times the recorder is killed. A missed target prints FAIL and still exits 0; a harness error
exits 1. The fast cases are asserted in ``ros2_ws/src/so100_common/test/test_reliability.py``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info, reproduce_command  # noqa: E402

from so100_common import messages, names  # noqa: E402
from so100_common.node import Node  # noqa: E402
from so100_common.qos import QoS  # noqa: E402
from so100_common.testing import BIN, Graph, Proc, free_port, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIM_RATE = 100.0
SIM_MAX_STEP = 0.02  # rad per tick: an unguarded 1.5 rad step moves the sim's joints ~0.055 rad per tick
ARM_RATE = 50.0
ARM_MAX_STEP = 0.1  # follower_arm's default
STALE_TIMEOUT = 0.5
TICK_RAD = 2 * math.pi / 4095  # one encoder tick
RSS_LIMIT_MB = 20.0
GAP_LIMIT_PERIODS = 2.0
WARN_RE = re.compile(r"^\[(WARNING|ERROR|CRITICAL)\]")
JOINTS = list(names.JOINT_NAMES)


# ---------------------------------------------------------------- observer (a child process)
def observe(topics: list[str]) -> int:
    """Print every JointState on ``topics`` as ``J <index> <monotonic s> <stamp ns> <positions...>``."""
    node = Node(f"reliability_observer_{os.getpid()}", argv=[])

    def make(i: int) -> Callable[[Any], None]:
        def on_msg(msg: Any) -> None:
            pos = " ".join(repr(float(x)) for x in np.asarray(msg.position, dtype=float)[:16])
            print(f"J {i} {time.monotonic():.6f} {messages.stamp_to_ns(msg.header.stamp)} {pos}", flush=True)
        return on_msg

    for i, topic in enumerate(topics):
        node.create_subscription(messages.JointState, topic, make(i), QoS(depth=200))
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: node.shutdown())
    print("@observing", flush=True)
    node.spin()
    node.destroy()
    return 0


@dataclass
class Sample:
    t: float  # monotonic arrival time in the observer
    stamp_ns: int
    position: np.ndarray


class Observer:
    """Reads the observer process's lines into samples per topic."""

    def __init__(self, graph: Graph, topics: list[str]) -> None:
        self.topics = topics
        self.graph = graph
        self.proc = graph.start([sys.executable, str(Path(__file__).resolve()), "--observe", ",".join(topics)])
        self.proc.wait_output("@observing", 30)
        self.samples: list[list[Sample]] = [[] for _ in topics]
        self._parsed = 0

    def _parse(self) -> None:
        lines = self.proc.lines
        n = len(lines)
        for line in lines[self._parsed:n]:
            if not line.startswith("J "):
                continue
            parts = line.split()
            self.samples[int(parts[1])].append(
                Sample(float(parts[2]), int(parts[3]), np.array([float(x) for x in parts[4:]])))
        self._parsed = n

    def window(self, index: int, t0: float, t1: float) -> list[Sample]:
        self._parse()
        return [s for s in self.samples[index] if t0 <= s.t <= t1]

    def last(self, index: int = 0) -> Sample | None:
        self._parse()
        return self.samples[index][-1] if self.samples[index] else None

    def stop(self) -> None:
        self.proc.stop(5)
        with suppress(ValueError):
            self.graph.procs.remove(self.proc)


# ---------------------------------------------------------------- results
@dataclass
class CaseResult:
    name: str
    target: str
    what: str
    crashed: bool = False
    max_step: float | None = None  # rad per control tick (None: no follower observed)
    max_step_limit: float | None = None
    non_finite: int = 0
    gap_p99_ms: float | None = None
    gap_limit_ms: float | None = None  # set for flood cases
    rss_growth_mb: float | None = None
    warn_error_lines: int = 0
    tracebacks: int = 0
    expected: bool = True
    episodes_finished: int | None = None
    episodes_readable: int | None = None
    skipped: str = ""
    seconds: float = 0.0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def violations(self) -> list[str]:
        v = []
        if self.skipped:
            return v
        if self.crashed:
            v.append("crashed")
        if self.max_step is not None and self.max_step_limit is not None and self.max_step > self.max_step_limit + 1e-9:
            v.append("step above max_step")
        if self.non_finite:
            v.append("non-finite goal")
        if self.gap_limit_ms is not None and (self.gap_p99_ms is None or self.gap_p99_ms >= self.gap_limit_ms):
            v.append("control gap")
        if self.rss_growth_mb is not None and self.rss_growth_mb >= RSS_LIMIT_MB:
            v.append("RSS growth")
        if self.episodes_finished is not None and self.episodes_readable != self.episodes_finished:
            v.append("unreadable episode")
        if not self.expected:
            v.append("unexpected behaviour")
        return v


@dataclass
class Outcome:
    """What a case function reports besides the harness's measurements."""

    expected: bool = True
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    designed_stop: bool = False  # the target exits by design (a safe stop): not a crash
    goal_step: float | None = None  # follower_arm: largest |goal - present| (rad) seen on the bus
    episodes: tuple[int, int] | None = None  # (finished, readable)
    skipped: str = ""
    no_follower: bool = False  # offline case: no follower metrics


@dataclass
class Case:
    name: str
    target: str  # the node whose crash, RSS and log lines count: sim, vr, arm, act, recorder, converter, loader
    what: str
    fn: Callable[[Ctx], Outcome]
    needs: tuple[str, ...] = ()
    flood: bool = False
    fast: bool = False


CASES: list[Case] = []


def case(name: str, target: str, what: str, *, needs: tuple[str, ...] = (), flood: bool = False,
         fast: bool = False) -> Callable[[Callable[[Ctx], Outcome]], Callable[[Ctx], Outcome]]:
    def register(fn: Callable[[Ctx], Outcome]) -> Callable[[Ctx], Outcome]:
        CASES.append(Case(name, target, what, fn, needs or (target,), flood, fast))
        return fn
    return register


# ---------------------------------------------------------------- the harness
class Ctx:
    """The graph, the running targets and the driver node the cases act through."""

    def __init__(self, args: argparse.Namespace, tmp: Path, graph: Graph | None = None) -> None:
        """``graph``: run on a graph whose environment this process already uses (the tests' shared one)."""
        self.args = args
        self.tmp = tmp
        self.rng = random.Random(args.seed)
        self._own_graph = graph is None
        self.graph = Graph() if graph is None else graph
        self._saved_env = {k: os.environ.get(k) for k in ("ROS_DOMAIN_ID", "ZENOH_CONFIG_OVERRIDE", "SO100_TRANSPORT")}
        os.environ.update({k: self.graph.env[k] for k in self._saved_env})
        self.driver = Node(f"reliability_driver_{os.getpid()}", argv=[])
        self.cmd_pub = self.driver.create_publisher(messages.JointState, names.FOLLOWER_JOINT_COMMANDS, QoS(depth=10))
        self.torque = self.driver.create_client("std_srvs/srv/SetBool", names.FOLLOWER_ENABLE_TORQUE)
        self.procs: dict[str, Proc] = {}
        self.observer = Observer(self.graph, [names.FOLLOWER_JOINT_STATES])
        #: the commands product nodes send (webxr_server, act_inference); not up under command floods
        self.cmd_observer: Observer | None = None
        self.home: np.ndarray | None = None
        self.vr_port = 0
        self.vr_token = ""
        self.emu: Any = None
        self.cal_root = tmp / "calibration"
        self._checkpoint: Path | None = None

    # ------------------------------------------------------------ targets
    def ensure(self, needs: tuple[str, ...]) -> None:
        """Start the targets a case needs; stop those it must not have beside it (one follower at a time)."""
        want = set(needs)
        if "vr" in want or "act" in want:
            want.add("sim")
        conflicts = {"sim": {"arm"}, "arm": {"sim", "vr", "act"}}
        for name in list(self.procs):
            if name not in want and (name in ("vr", "act") or any(name in conflicts.get(w, ()) for w in want)):
                self.stop_target(name)
        for name in ("sim", "arm", "vr", "act"):
            if name in want and (name not in self.procs or not self.procs[name].alive()):
                self.stop_target(name)
                getattr(self, f"_start_{name}")()
        commanders = bool(want & {"vr", "act"})
        if commanders and self.cmd_observer is None:
            self.cmd_observer = Observer(self.graph, [names.FOLLOWER_JOINT_COMMANDS])
        elif not commanders and self.cmd_observer is not None:
            self.cmd_observer.stop()
            self.cmd_observer = None

    def commands(self, t0: float, t1: float) -> list[Sample]:
        """The commands product nodes sent to the follower between ``t0`` and ``t1``."""
        return [] if self.cmd_observer is None else self.cmd_observer.window(0, t0, t1)

    def stop_target(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            proc.stop(10)
            with suppress(ValueError):
                self.graph.procs.remove(proc)
        if name == "arm" and self.emu is not None:
            self.emu.close()
            self.emu = None

    def _start_sim(self) -> None:
        proc = self.graph.node("sim_bridge", "-p", "width:=64", "-p", "height:=48", "-p", "camera_rate:=30.0",
                               "-p", "depth_cameras:=[]", "-p", f"rate:={SIM_RATE}", "-p", f"max_step:={SIM_MAX_STEP}",
                               "-p", f"stale_timeout:={STALE_TIMEOUT}", "-p", "seed:=5")
        proc.wait_output("sim_bridge up", 90)
        self.procs["sim"] = proc
        wait_for(lambda: self._fresh(0.5), 20, "joint states from sim_bridge")
        if self.home is None:
            self.home = self.observer.last().position.copy()  # type: ignore[union-attr]

    def _start_vr(self) -> None:
        self.vr_port = free_port()
        proc = self.graph.node("webxr_server", "-p", f"port:={self.vr_port}", "-p", "camera_rate:=5.0",
                               "-r", f"{names.LEADER_JOINT_STATES}:={names.FOLLOWER_JOINT_COMMANDS}")
        proc.wait_output("webxr_server up", 60)
        self.vr_token = proc.wait_output("pairing token:", 30).split("pairing token: ")[1].split()[0]
        proc.wait_output("starting from the follower's joints", 30)
        self.procs["vr"] = proc

    def _start_arm(self) -> None:
        from so100_driver.emulator import EmulatedBus
        from so100_driver.emulator.cli import apply_calibration
        from so100_driver.testing import calibration, write_calibration

        cal = calibration()
        cal_file = write_calibration(self.cal_root, "robots/so_follower", "reliability", cal)
        self.emu = EmulatedBus(range(1, 7), seed=self.args.seed)
        self.emu.__enter__()
        with self.emu.lock:
            apply_calibration(self.emu.servos, cal_file)
            for i, servo in self.emu.servos.items():
                c = cal[JOINTS[i - 1]]
                servo.set_position((c["range_min"] + c["range_max"]) / 2)
        proc = self.graph.start([str(BIN / "follower_arm"), "--ros-args", "-p", f"port:={self.emu.port}",
                                 "-p", "id:=reliability", "-p", f"rate:={ARM_RATE}", "-p", f"max_step:={ARM_MAX_STEP}",
                                 "-p", f"stale_timeout:={STALE_TIMEOUT}"], HF_LEROBOT_CALIBRATION=str(self.cal_root))
        proc.wait_output("follower_arm up", 60)
        self.procs["arm"] = proc
        wait_for(lambda: self._fresh(0.5), 20, f"joint states from follower_arm:\n{proc.output[-3000:]}")

    def checkpoint(self) -> Path:
        """An untrained tiny ACT (two 64x48 cameras, 30 fps), made in a child process (torch stays out of this one)."""
        if self._checkpoint is None:
            out = self.tmp / "ckpt"
            code = ("import sys; from act_policy.testing import make_tiny_checkpoint; "
                    "make_tiny_checkpoint(sys.argv[1], ('overhead', 'wrist'), 48, 64, fps=30.0, chunk_size=30)")
            subprocess.run([sys.executable, "-c", code, str(out)], check=True, capture_output=True, timeout=300)
            self._checkpoint = out / "pretrained_model"
        return self._checkpoint

    def _start_act(self) -> None:
        ckpt = self.checkpoint()
        proc = self.graph.node("act_inference", "-p", f"checkpoint:={ckpt}", "-p", "device:=cpu",
                               "-p", "start_ramp_s:=0.5", "-p", "torch_threads:=1")
        proc.wait_output("act_inference up", 120)
        self.procs["act"] = proc

    # ------------------------------------------------------------ helpers for cases
    def _fresh(self, age: float) -> bool:
        last = self.observer.last(0)
        return last is not None and time.monotonic() - last.t < age

    def position(self) -> np.ndarray:
        wait_for(lambda: self._fresh(0.3), 5, "a fresh follower joint state")
        return self.observer.last(0).position.copy()  # type: ignore[union-attr]

    def command_bytes(self, positions: Any, joint_names: list[str] | None = None) -> bytes:
        names_ = JOINTS if joint_names is None else joint_names
        msg = messages.JointState(header=messages.header(), name=list(names_),
                                  position=np.asarray(positions, dtype=float), velocity=np.zeros(0), effort=np.zeros(0))
        return messages.serialize(msg, "sensor_msgs/msg/JointState")

    def stream(self, payload: bytes | Callable[[int], bytes], seconds: float, rate: float = 50.0,
               pub: Any = None) -> int:
        """Publish ``payload`` (or ``payload(i)``) at ``rate`` for ``seconds``; returns how many were sent."""
        pub = pub or self.cmd_pub
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < seconds:
            pub.publish(payload(i) if callable(payload) else payload)
            i += 1
            time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        return i

    def go_home(self, tolerance: float = 0.03, timeout: float = 8.0) -> None:
        """Stream the start pose until the follower is there, then let commands go stale (the arm holds)."""
        if self.home is None:
            return
        msg = self.command_bytes(self.home)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.stream(msg, 0.2)
            if np.max(np.abs(self.position() - self.home)) < tolerance:
                break
        time.sleep(STALE_TIMEOUT + 0.1)

    def set_torque(self, on: bool, timeout: float = 5.0) -> Any:
        if not self.torque.wait_for_service(timeout):
            return None
        req = messages.new_message("std_srvs/srv/SetBool_Request", {"data": on})
        return self.torque.call(req, timeout=timeout)

    def responsive(self, target: str) -> tuple[bool, str]:
        proc = self.procs.get(target)
        if proc is None or not proc.alive():
            return False, f"{target} is not running"
        if target in ("sim", "arm"):
            if not self._fresh(0.5):
                return False, "no joint state in the last 0.5 s"
            try:
                resp = self.set_torque(True)
            except Exception as e:  # noqa: BLE001 - a timeout is the answer
                return False, f"enable_torque: {type(e).__name__}: {e}"
            return (resp is not None and bool(resp.success)), "enable_torque answered"
        if target == "vr":
            try:
                c = self.vr_client()
                c.close()
            except Exception as e:  # noqa: BLE001
                return False, f"no WebSocket welcome: {type(e).__name__}: {e}"
            return self._fresh(0.5), "WebSocket welcome"
        return True, "alive"

    def vr_url(self, token: str | None = "") -> str:
        tok = self.vr_token if token == "" else token
        return f"ws://127.0.0.1:{self.vr_port}/ws" + ("" if tok is None else f"?token={tok}")

    def vr_client(self) -> Any:
        sys.path.insert(0, str(ROOT / "ros2_ws/src/teleop_vr/test"))
        from wsclient import PageClient

        return PageClient(self.vr_url())

    def close(self) -> None:
        for name in list(self.procs):
            self.stop_target(name)
        self.observer.stop()
        if self.cmd_observer is not None:
            self.cmd_observer.stop()
        self.driver.destroy()
        if not self._own_graph:
            return
        from so100_common.transport import shutdown_backend

        shutdown_backend()
        self.graph.close()
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def rss_mb(proc: Proc | None) -> float | None:
    if proc is None or not proc.alive():
        return None
    try:
        return psutil.Process(proc.popen.pid).memory_info().rss / 2**20
    except psutil.Error:
        return None


def follower_metrics(samples: list[Sample], rate: float) -> tuple[float | None, int, float | None]:
    """(largest per-tick motion, non-finite samples, inter-arrival p99 in ms)."""
    if len(samples) < 2:
        return None, sum(not np.all(np.isfinite(s.position)) for s in samples), None
    bad = sum(not np.all(np.isfinite(s.position)) for s in samples)
    steps = []
    for a, b in zip(samples, samples[1:], strict=False):
        if a.position.shape != b.position.shape or not (np.all(np.isfinite(a.position)) and
                                                          np.all(np.isfinite(b.position))):
            continue
        ticks = max(1, round((b.stamp_ns - a.stamp_ns) * 1e-9 * rate))
        steps.append(float(np.max(np.abs(b.position - a.position))) / ticks)
    gaps = np.diff([s.t for s in samples])
    return (max(steps) if steps else None), bad, float(np.percentile(gaps, 99) * 1000)


def run_case(ctx: Ctx, c: Case) -> CaseResult:
    res = CaseResult(c.name, c.target, c.what)
    t_start = time.monotonic()
    ctx.ensure(c.needs)
    if ctx.home is not None and "sim" in ctx.procs and c.target == "sim":
        ctx.go_home()
    watched = {k: p for k, p in ctx.procs.items() if k in (*c.needs, c.target)}
    marks = {k: len(p.lines) for k, p in watched.items()}
    rss0 = rss_mb(ctx.procs.get(c.target))
    t0 = time.monotonic()
    try:
        out = c.fn(ctx)
    except Exception as e:  # noqa: BLE001 - a harness failure is reported on the case
        out = Outcome(False, f"case raised {type(e).__name__}: {e}")
    t1 = time.monotonic()
    time.sleep(0.5)  # let queues drain before RSS and liveness
    res.skipped = out.skipped
    res.expected, res.note, res.extra = out.expected, out.note, out.extra
    proc = ctx.procs.get(c.target)
    if c.target in ("sim", "vr", "arm", "act") and not out.skipped:
        if out.designed_stop:
            res.crashed = False
        else:
            ok, why = ctx.responsive(c.target)
            res.crashed = not ok
            if not ok:
                res.note = (res.note + "; " if res.note else "") + f"not responsive: {why}"
        rss1 = rss_mb(proc)
        if rss0 is not None and rss1 is not None:
            res.rss_growth_mb = rss1 - rss0
        for k, p in watched.items():
            new = p.lines[marks[k]:]
            res.warn_error_lines += sum(bool(WARN_RE.match(ln)) for ln in new)
            res.tracebacks += sum(ln.startswith("Traceback") for ln in new)
    if not out.no_follower and not out.skipped and ("sim" in ctx.procs or "arm" in ctx.procs):
        rate = ARM_RATE if "arm" in ctx.procs else SIM_RATE
        step, bad, p99 = follower_metrics(ctx.observer.window(0, t0, t1 + 0.5), rate)  # the case and its settling
        res.max_step, res.non_finite, res.gap_p99_ms = step, bad, p99
        res.max_step_limit = ARM_MAX_STEP if "arm" in ctx.procs else SIM_MAX_STEP
        if c.target in ("vr", "act"):  # commands a product node sent to the follower
            res.non_finite += sum(not np.all(np.isfinite(s.position)) for s in ctx.commands(t0, t1))
        if out.goal_step is not None:
            res.max_step = max(res.max_step or 0.0, out.goal_step)
        if c.flood:
            res.gap_limit_ms = GAP_LIMIT_PERIODS * 1000 / rate
    for k in ("converter", "loader", "recorder"):
        if c.target == k:
            res.warn_error_lines = int(out.extra.pop("warn_error_lines", 0))
            res.tracebacks = int(out.extra.pop("tracebacks", 0))
            res.crashed = bool(out.extra.pop("crashed", False))
            if "rss_growth_mb" in out.extra:
                res.rss_growth_mb = out.extra.pop("rss_growth_mb")
    if out.episodes is not None:
        res.episodes_finished, res.episodes_readable = out.episodes
    res.seconds = time.monotonic() - t_start
    return res


# ---------------------------------------------------------------- zenoh graph: /follower/joint_commands, services
def _still(ctx: Ctx, start: np.ndarray, tol: float = 0.02) -> tuple[bool, float]:
    moved = float(np.max(np.abs(ctx.position() - start)))
    return moved < tol, moved


def _log_has(ctx: Ctx, target: str, text: str, since: int = 0) -> bool:
    return any(text in ln for ln in ctx.procs[target].lines[since:])


def _bad_command_case(payloads: list[bytes], must_log: str | None = None) -> Callable[[Ctx], Outcome]:
    def fn(ctx: Ctx) -> Outcome:
        start = ctx.position()
        n = 0
        for _ in range(3):
            for p in payloads:
                ctx.cmd_pub.publish(p)
                n += 1
                time.sleep(0.002)
        time.sleep(0.3)
        ok, moved = _still(ctx, start)
        # the follower logs the first rejection of a burst of one kind (BurstLog): the whole log counts
        logged = must_log is None or _log_has(ctx, "sim", must_log)
        return Outcome(ok and logged, f"{n} sent; arm moved {moved:.4f} rad" + ("" if logged else
                                                                                 f"; no '{must_log}' log line"))
    return fn


def _joint_cdr() -> bytes:
    """A JointState with an empty frame id: its name sequence length sits at byte 20."""
    msg = messages.joint_state(JOINTS, np.zeros(6), stamp_ns=0)
    msg.header.frame_id = ""
    raw = messages.serialize(msg, "sensor_msgs/msg/JointState")
    assert struct.unpack_from("<I", raw, 20)[0] == 6, "unexpected CDR layout"
    return raw


case("cmd/random-bytes", "sim", "1000 random payloads (0-2000 bytes) on /follower/joint_commands", fast=True)(
    lambda ctx: _bad_command_case([random.Random(7 + i).randbytes(random.Random(i).randint(0, 2000))
                                   for i in range(334)])(ctx))
case("cmd/wrong-type", "sim", "std_msgs/String and Bool CDR on the JointState topic", fast=True)(
    lambda ctx: _bad_command_case([messages.serialize(messages.string_msg("x" * n)) for n in (0, 5, 300)] +
                                  [messages.serialize(messages.bool_msg(True))])(ctx))


@case("cmd/truncated", "sim", "a valid command cut at every length from 0 to its size - 1", fast=True)
def _truncated(ctx: Ctx) -> Outcome:
    whole = ctx.command_bytes(ctx.home + 0.3)
    return _bad_command_case([whole[:k] for k in range(len(whole))])(ctx)



@case("cmd/seq-len-1e8", "sim", "a JointState whose name sequence declares 1e8 elements", fast=True)
def _seq_len(ctx: Ctx) -> Outcome:
    raw = bytearray(_joint_cdr())
    struct.pack_into("<I", raw, 20, 100_000_000)
    also = bytearray(raw)
    struct.pack_into("<I", also, 20, 0xFFFFFFFF)
    return _bad_command_case([bytes(raw), bytes(also)])(ctx)


@case("cmd/million-names", "sim", "a JointState with 1M names (16 MB, over the 1 MiB limit), 3 times")
def _million(ctx: Ctx) -> Outcome:
    n = 1_000_000
    head = bytearray(_joint_cdr()[:20])
    body = struct.pack("<I", n) + (struct.pack("<I", 2) + b"j\x00\x00\x00") * n
    tail = struct.pack("<I", n) + b"\x00" * 4 + struct.pack("<d", 0.0) * n + struct.pack("<II", 0, 0)
    payload = bytes(head) + body + tail
    mark = len(ctx.procs["sim"].lines)
    out = _bad_command_case([payload])(ctx)
    dropped = _log_has(ctx, "sim", "over its", mark)
    out.expected = out.expected and dropped
    out.note += f"; {len(payload) / 2**20:.1f} MiB each" + ("" if dropped else "; no 'dropped ... over its limit' line")
    return out


def _named(ctx: Ctx, joint_names: list[str], values: list[float]) -> bytes:
    return ctx.command_bytes(values, joint_names)


case("cmd/nan", "sim", "commands with a NaN joint target", fast=True)(
    lambda ctx: _bad_command_case([ctx.command_bytes([0.3, math.nan, 0.3, 0.3, 0.3, 0.3])], "non-finite")(ctx))
case("cmd/inf", "sim", "commands with +inf and -inf targets")(
    lambda ctx: _bad_command_case([ctx.command_bytes([math.inf, 0, 0, 0, 0, 0]),
                                   ctx.command_bytes([0, 0, -math.inf, 0, 0, 0])], "non-finite")(ctx))
case("cmd/wrong-names", "sim", "six unknown joint names", fast=True)(
    lambda ctx: _bad_command_case([_named(ctx, [f"j{i}" for i in range(6)], [0.5] * 6)], "rejected")(ctx))
case("cmd/duplicate-names", "sim", "a joint named twice (shoulder_pan x2, no gripper)")(
    lambda ctx: _bad_command_case([_named(ctx, [*JOINTS[:5], JOINTS[0]], [0.5] * 6)], "rejected")(ctx))
case("cmd/missing-names", "sim", "five joints; names and positions of different lengths")(
    lambda ctx: _bad_command_case([_named(ctx, JOINTS[:5], [0.5] * 5), _named(ctx, JOINTS, [0.5] * 5)],
                                  "rejected")(ctx))


@case("cmd/1e300", "sim", "a finite but absurd target (1e300 rad): clamped to the limit, reached at max_step")
def _huge(ctx: Ctx) -> Outcome:
    assert ctx.home is not None
    target = ctx.home.copy()
    target[0] = 1e300
    mark = len(ctx.procs["sim"].lines)
    ctx.stream(ctx.command_bytes(target), 1.5)
    pos = ctx.position()
    clamped = _log_has(ctx, "sim", "clamped", mark)
    ok = clamped and bool(np.all(np.isfinite(pos)))
    return Outcome(ok, f"shoulder_pan went to {pos[0]:.3f} rad" + ("" if clamped else "; no 'clamped' line"))


@case("cmd/step-1.5rad", "sim", "a 1.5 rad jump of shoulder_pan", fast=True)
def _jump(ctx: Ctx) -> Outcome:
    assert ctx.home is not None
    target = ctx.home + np.array([1.5, 0.0, 0.0, 0.0, 0.0, 0.0])
    ctx.stream(ctx.command_bytes(target), 3.5)
    err = float(np.max(np.abs(ctx.position() - target)))
    return Outcome(err < 0.05, f"{err:.3f} rad from the target after 3.5 s (reached at the guard's speed)")


@case("cmd/stream-stops", "sim", "a command stream that stops: after stale_timeout the arm holds where it is")
def _stops(ctx: Ctx) -> Outcome:
    assert ctx.home is not None
    ctx.stream(ctx.command_bytes(ctx.home + np.array([0.3, 0, 0, 0, 0, 0])), 1.0)
    time.sleep(STALE_TIMEOUT + 0.2)
    a = ctx.position()
    time.sleep(1.0)
    ok, moved = _still(ctx, a, 0.01)
    return Outcome(ok, f"drifted {moved:.4f} rad in the 1 s after the stale timeout")


@case("cmd/two-publishers", "sim", "two publishers alternate poses 0.6 rad apart at 100 Hz each for 3 s", flood=True)
def _fight(ctx: Ctx) -> Outcome:
    assert ctx.home is not None
    other = Node(f"reliability_rival_{os.getpid()}", argv=[])
    try:
        pub2 = other.create_publisher(messages.JointState, names.FOLLOWER_JOINT_COMMANDS, QoS(depth=10))
        a = ctx.command_bytes(ctx.home + np.array([0.3, 0, 0, 0, 0, 0]))
        b = ctx.command_bytes(ctx.home - np.array([0.3, 0, 0, 0, 0, 0]))
        stop = threading.Event()
        th = threading.Thread(target=lambda: ctx.stream(b, 3.0, 100.0, pub2), daemon=True)
        th.start()
        ctx.stream(a, 3.0, 100.0)
        stop.set()
        th.join(5)
    finally:
        other.destroy()
    return Outcome(True, "last writer wins each tick; the guard bounds every tick's move")


@case("cmd/flood-50k", "sim", "50k valid commands/s for 5 s (the current pose)", flood=True)
def _flood(ctx: Ctx) -> Outcome:
    payload = ctx.command_bytes(ctx.position())
    t0 = time.monotonic()
    sent = 0
    while (now := time.monotonic()) - t0 < 5.0:
        due = int((now - t0) * 50_000)
        while sent < due and sent < 250_000:
            ctx.cmd_pub.publish(payload)
            sent += 1
        time.sleep(0.0005)
    rate = sent / (time.monotonic() - t0)
    return Outcome(True, f"sent {sent} ({rate / 1000:.1f}k/s)", {"sent": sent, "rate": rate})


def _big_requests(ctx: Ctx, service: str, srv: str, count: int) -> Outcome:
    client = ctx.driver.create_client(srv, service)
    if not client.wait_for_service(10):
        return Outcome(False, f"{service} not available")
    payload = b"\x00\x01\x00\x00" + bytes(ctx.rng.getrandbits(8) for _ in range(1024)) * 1024
    refused = answered = 0
    t0 = time.monotonic()
    for _ in range(count):
        if time.monotonic() - t0 > 30:
            break
        try:
            resp = messages.deserialize(client._impl.call(payload, 5.0), f"{srv}_Response")
        except Exception:  # noqa: BLE001 - counted: not answered
            continue
        answered += 1
        refused += (not resp.success and "refused" in resp.message)
    client.destroy()
    ok = refused == answered == count
    return Outcome(ok, f"{answered}/{count} answered, {refused} refused as over the limit in "
                       f"{time.monotonic() - t0:.1f} s", {"answered": answered, "refused": refused})


case("srv/reset-1MiB-x1000", "sim", "1000 requests of 1 MiB to /sim/reset (refused over 64 KiB)", flood=True)(
    lambda ctx: _big_requests(ctx, names.SIM_RESET, "std_srvs/srv/Trigger", 1000))
case("srv/torque-1MiB-x1000", "sim", "1000 requests of 1 MiB to /follower/enable_torque", flood=True)(
    lambda ctx: _big_requests(ctx, names.FOLLOWER_ENABLE_TORQUE, "std_srvs/srv/SetBool", 1000))


# ---------------------------------------------------------------- webxr_server
def _ws_refused(ctx: Ctx, url: str, origin: str | None = None) -> Outcome:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    try:
        kw: dict[str, Any] = {"origin": origin} if origin else {}
        with connect(url, open_timeout=5, **kw):
            return Outcome(False, "the WebSocket was accepted")
    except InvalidStatus as e:
        code = e.response.status_code
        return Outcome(code == 403, f"refused with HTTP {code}")


case("vr/no-token", "vr", "WebSocket without the pairing token", needs=("vr",), fast=True)(
    lambda ctx: _ws_refused(ctx, ctx.vr_url(None)))
case("vr/wrong-token", "vr", "WebSocket with a wrong pairing token", needs=("vr",))(
    lambda ctx: _ws_refused(ctx, ctx.vr_url("0" * 32)))
case("vr/foreign-origin", "vr", "WebSocket with the token but Origin: http://evil.example", needs=("vr",))(
    lambda ctx: _ws_refused(ctx, ctx.vr_url(), "http://evil.example"))


@case("vr/nine-clients", "vr", "9 clients at once (max_clients 8): the 9th is closed with 1013", needs=("vr",))
def _nine(ctx: Ctx) -> Outcome:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    clients = []
    time.sleep(0.3)  # earlier cases' clients are gone
    try:
        for _ in range(8):
            clients.append(ctx.vr_client())
        with connect(ctx.vr_url(), open_timeout=5) as ninth:
            try:
                while True:
                    ninth.recv(timeout=5)
            except ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
            except TimeoutError:
                code = None
    finally:
        for c in clients:
            c.close()
    return Outcome(code == 1013, f"8 welcomed, the 9th closed with {code}")


def _bad_frame(frame: str | bytes, expect: str) -> Callable[[Ctx], Outcome]:
    """One bad frame from a client while another watches: an error reply (or ``close:<code>``), nobody else hurt."""
    def fn(ctx: Ctx) -> Outcome:
        watcher = ctx.vr_client()
        bad = ctx.vr_client()
        try:
            mark = len(ctx.procs["vr"].lines)
            bad.send(frame)
            got = ""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if bad.count("error"):
                    got = "error: " + bad.latest("error")["error"][:60]  # type: ignore[index]
                    break
                if bad.closed is not None:
                    got = f"close:{bad.closed.rcvd.code if bad.closed.rcvd else None}"
                    break
                time.sleep(0.02)
            before = watcher.count("poses")
            time.sleep(0.5)
            flowing = watcher.count("poses") > before
            ctl = watcher.latest("status")
            took = bool(ctl and ctl.get("controller") == bad.id)
            handler_failed = any("connection handler failed" in ln or "Traceback" in ln
                                 for ln in ctx.procs["vr"].lines[mark:])
        finally:
            bad.close()
            watcher.close()
        ok = got.startswith(expect) and flowing and not took and not handler_failed
        note = f"{got or 'no reply'}; poses to the watcher {'flow' if flowing else 'STOPPED'}"
        if handler_failed:
            note += "; the server's connection handler raised (Traceback in its log)"
        return Outcome(ok, note)
    return fn


def _input_frame(value: str) -> str:
    return ('{"type": "input", "seq": 1, "t": 0, "controller": {"pose": [' + value +
            ', 0, 1, 0, 0, 0, 1], "grip": 1, "trigger": 0}}')


case("vr/nan", "vr", "an input whose pose holds NaN", needs=("vr",), fast=True)(_bad_frame(_input_frame("NaN"), "error"))
case("vr/infinity", "vr", "an input whose pose holds Infinity", needs=("vr",))(
    _bad_frame(_input_frame("-Infinity"), "error"))
case("vr/1e400", "vr", "an input whose pose holds 1e400 (overflows to inf)", needs=("vr",))(
    _bad_frame(_input_frame("1e400"), "error"))
case("vr/5000-digits", "vr", "an input whose seq is a 5000-digit integer", needs=("vr",), fast=True)(
    _bad_frame('{"type": "input", "seq": ' + "9" * 5000 + ', "controller": null}', "error"))
case("vr/2MB-frame", "vr", "a 2 MB text frame (over the 1 MiB frame limit)", needs=("vr",))(
    _bad_frame("x" * (2 << 20), "close:1009"))
case("vr/deep-nesting", "vr", "JSON nested 5000 deep", needs=("vr",))(_bad_frame("[" * 5000 + "]" * 5000, "error"))
case("vr/binary", "vr", "a binary frame", needs=("vr",))(_bad_frame(b"\x00\xff\x01binary" * 10, "error"))


@case("vr/ansi-name", "vr", "hello with ANSI escapes in the client name (terminal/log injection)", needs=("vr",))
def _ansi(ctx: Ctx) -> Outcome:
    c = ctx.vr_client()
    mark = len(ctx.procs["vr"].lines)
    try:
        c.send({"type": "hello", "client": "\x1b[2J\x1b[31mowned\x1b]0;x\x07"})
        c.send({"type": "ping", "t": 1})
        c.wait("pong", 5)
        time.sleep(0.3)
    finally:
        c.close()
    raw = [ln for ln in ctx.procs["vr"].lines[mark:] if "\x1b" in ln or "\x07" in ln]
    return Outcome(not raw, f"{len(raw)} log line(s) carry raw control characters" if raw
                   else "no raw control character reached the log")


def _drive(c: Any, start: np.ndarray, end: np.ndarray, seconds: float, rate: float, grip: float = 1.0) -> int:
    n = max(1, int(seconds * rate))
    t0 = time.monotonic()
    for i in range(n):
        c.send_input(start + (end - start) * (i / n), grip=grip)
        time.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))
    return n


@case("vr/inputs-10k-per-s", "vr", "a controller sending 10k inputs/s for 3 s while moving", needs=("vr",), flood=True)
def _vr_flood(ctx: Ctx) -> Outcome:
    """The server drops what is over the rate unparsed and disconnects a client that keeps flooding (1008)."""
    from websockets.exceptions import ConnectionClosed

    c = ctx.vr_client()
    hand = np.array([0.3, 0.2, 1.1])
    t0 = time.monotonic()
    try:
        try:
            _drive(c, hand, hand + np.array([0.05, 0.0, -0.05]), 3.0, 10_000.0)
            c.send({"type": "release"})
        except ConnectionClosed:
            pass
        wait_for(lambda: c.closed is not None, 5, "the server to close the flooding client")
    finally:
        c.close()
    code = c.closed.rcvd.code if c.closed is not None and c.closed.rcvd is not None else None
    return Outcome(code == 1008, f"closed with {code} after {time.monotonic() - t0:.2f} s")


@case("vr/controller-silent-300ms", "vr", "the controller goes silent 300 ms mid-motion: released, the arm holds",
      needs=("vr",))
def _silent(ctx: Ctx) -> Outcome:
    """After the release the commands stay at the targets of that moment (plus the follower trim, bounded by its
    0.08 rad limit) and the arm settles there: no motion 2.5-3 s after the release."""
    c = ctx.vr_client()
    hand = np.array([0.3, 0.2, 1.1])
    mark = len(ctx.procs["vr"].lines)
    try:
        _drive(c, hand, hand, 0.2, 72.0)
        _drive(c, hand, hand + np.array([0.06, 0.0, 0.05]), 0.5, 72.0)  # mid-motion: then nothing
        t_silent = time.monotonic()
        time.sleep(0.3)
        released = _log_has(ctx, "vr", "stopped sending", mark)
        time.sleep(2.7)
        t_end = time.monotonic()
        at_release = ctx.commands(t_silent - 0.05, t_silent + 0.05)
        after = ctx.commands(t_silent, t_end)
        late = np.array([s.position for s in ctx.commands(t_end - 0.5, t_end)])
        states = np.array([s.position for s in ctx.observer.window(0, t_end - 0.5, t_end)])
        _drive(c, hand + np.array([0.06, 0.0, 0.05]), hand + np.array([0.06, 0.0, 0.05]), 0.3, 72.0)  # comes back
        c.send({"type": "release"})
    finally:
        c.close()
    if not at_release or len(late) < 2 or len(states) < 2:
        return Outcome(False, "too few commands or states observed")
    run_away = max(float(np.max(np.abs(s.position - at_release[-1].position))) for s in after)
    spread = float(np.ptp(late, axis=0).max())
    drift = float(np.ptp(states, axis=0).max())
    ok = released and run_away < 0.09 and spread < 2e-3 and drift < 5e-3
    return Outcome(ok, f"released={released}; commands moved {run_away:.3f} rad after the release (trim <= 0.08), "
                       f"{spread:.4f} rad 2.5-3 s after it; arm moved {drift:.4f} rad then")


# ---------------------------------------------------------------- follower_arm on the emulated bus
class GoalWatch:
    """Polls the emulated servos' Goal_Position against Present_Position (the commanded step, in radians)."""

    def __init__(self, emu: Any, period: float = 0.002) -> None:
        self.emu, self.period = emu, period
        self.max_step = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            with self.emu.lock:
                if not all(s.torque_enabled for s in self.emu.servos.values()):
                    continue
                gap = max(abs(s.goal_position - s.position) for s in self.emu.servos.values())
            self.max_step = max(self.max_step, gap * TICK_RAD)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(2)
        return self.max_step


@contextmanager
def goal_watch(ctx: Ctx) -> Iterator[GoalWatch]:
    w = GoalWatch(ctx.emu)
    try:
        yield w
    finally:
        w.stop()


@case("arm/step-1.5rad", "arm", "follower_arm: a 1.5 rad jump; goal registers stay within max_step of the arm",
      needs=("arm",))
def _arm_jump(ctx: Ctx) -> Outcome:
    start = ctx.position()
    target = start + np.array([1.0, -0.8, 0.8, 0.0, 0.0, 0.0])
    with goal_watch(ctx) as w:
        ctx.stream(ctx.command_bytes(target), 2.0)
        ctx.stream(ctx.command_bytes(start), 2.0)
    err = float(np.max(np.abs(ctx.position() - start)))
    return Outcome(err < 0.05, f"back within {err:.3f} rad; largest |goal - present| {w.max_step:.3f} rad",
                   goal_step=w.max_step)


@case("arm/nan-inf-commands", "arm", "follower_arm: NaN, +inf and 1e300 commands", needs=("arm",))
def _arm_nan(ctx: Ctx) -> Outcome:
    start = ctx.position()
    with goal_watch(ctx) as w:
        for bad in ([math.nan] + [0.0] * 5, [math.inf] * 6, [1e300] + [0.0] * 5):
            ctx.stream(ctx.command_bytes(np.where(np.isfinite(bad) & (np.abs(bad) < 1e10), start, bad)), 0.5)
    pos = ctx.position()
    return Outcome(bool(np.all(np.isfinite(pos))), f"arm at {np.round(pos - start, 3).tolist()} from the start",
                   goal_step=w.max_step)


def _arm_faults(attr: str, value: float, seconds: float) -> Callable[[Ctx], Outcome]:
    """A lossy bus for ``seconds``: the node rides it out with retries, or makes its designed safe stop (torque off,
    the silent servos named, exit 1) when a read still fails after ``retries`` more tries; anything else fails."""
    def fn(ctx: Ctx) -> Outcome:
        proc = ctx.procs["arm"]
        with goal_watch(ctx) as w:
            with ctx.emu.lock:
                setattr(ctx.emu.faults, attr, value)
            try:
                t0 = time.monotonic()
                hold = ctx.command_bytes(ctx.position())
                while time.monotonic() - t0 < seconds and proc.alive():
                    ctx.stream(hold, 0.5)
            finally:
                with ctx.emu.lock:
                    setattr(ctx.emu.faults, attr, 0.0)
        if proc.alive():
            return Outcome(True, f"{attr}={value} for {seconds:g} s: rode it out", goal_step=w.max_step)
        code = proc.popen.wait(5)
        said = next((ln for ln in proc.lines if "servo bus failure" in ln), "")
        safe = code == 1 and "Torque off was sent" in said
        last = said.split("stopping follower_arm: ")[-1] if said else " | ".join(proc.lines[-3:])
        return Outcome(safe, f"{attr}={value}: {'safe stop' if safe else 'EXIT'} after {time.monotonic() - t0:.1f} s "
                             f"(exit {code}): {last[:160]}", goal_step=w.max_step, designed_stop=safe)
    return fn


case("arm/drop-1pct-replies", "arm", "follower_arm: 1 % of the servo replies lost for 5 s", needs=("arm",))(
    _arm_faults("drop_rate", 0.01, 5.0))
case("arm/corrupt-1pct-replies", "arm", "follower_arm: 1 % of the replies with a bad checksum for 5 s",
     needs=("arm",))(_arm_faults("corrupt_rate", 0.01, 5.0))


@case("arm/nan-present-position", "arm", "follower_arm: a servo reporting a NaN present position", needs=("arm",))
def _arm_nan_present(ctx: Ctx) -> Outcome:
    return Outcome(skipped="the emulator cannot produce it: Present_Position is an integer register (ticks) and the "
                           "driver scales it by a finite calibration (CommandGuard's non-finite state handling is "
                           "unit-tested in test_command_guard.py)")


@case("arm/drop-all-replies", "arm", "follower_arm: every servo reply lost: torque off, clear error, exit 1",
      needs=("arm",))
def _arm_dead(ctx: Ctx) -> Outcome:
    proc = ctx.procs["arm"]
    with ctx.emu.lock:
        ctx.emu.faults.drop_rate = 1.0
    try:
        code = proc.popen.wait(15)
    except subprocess.TimeoutExpired:
        code = None
    with ctx.emu.lock:
        ctx.emu.faults.drop_rate = 0.0
        torque_off = not any(s.torque_enabled for s in ctx.emu.servos.values())
    said = "servo bus failure" in proc.output and "Torque off was sent" in proc.output
    ok = code == 1 and said and torque_off
    return Outcome(ok, f"exit code {code}, torque off on every servo: {torque_off}, error logged: {said}",
                   designed_stop=ok)


# ---------------------------------------------------------------- act_inference
@case("act/stop-move-start", "act", "act_inference: stop, the arm is moved 0.3 rad elsewhere, start: ramps from "
      "the measured pose", needs=("act",))
def _act_restart(ctx: Ctx) -> Outcome:
    proc = ctx.procs["act"]
    wait_for(lambda: "policy in control" in proc.output, 60, "the policy in control")
    calls = {k: ctx.driver.create_client("std_srvs/srv/Trigger", s)
             for k, s in (("start", names.ACT_INFERENCE_START), ("stop", names.ACT_INFERENCE_STOP))}
    assert calls["stop"].wait_for_service(10)
    time.sleep(1.0)
    rss_warm = rss_mb(proc)  # after loading torch and the checkpoint and the first chunks: growth from here on
    calls["stop"].call(timeout=10)
    time.sleep(0.3)
    moved_to = ctx.position() + np.array([0.3, -0.2, 0.2, 0.0, 0.0, 0.0])
    ctx.stream(ctx.command_bytes(moved_to), 1.5)
    time.sleep(0.3)
    pose = ctx.position()
    t_start = time.monotonic()
    calls["start"].call(timeout=10)
    time.sleep(1.5)
    cmds = ctx.commands(t_start, time.monotonic())
    for c in calls.values():
        c.destroy()
    if not cmds:
        return Outcome(False, "no command after start")
    first = float(np.max(np.abs(cmds[0].position - pose)))
    steps = [float(np.max(np.abs(b.position - a.position))) for a, b in zip(cmds, cmds[1:], strict=False)]
    rss_end = rss_mb(proc)
    extra = {"rss_growth_mb": rss_end - rss_warm} if rss_warm is not None and rss_end is not None else {}
    return Outcome(first < 0.05, f"first command {first:.3f} rad from the measured pose; largest command step "
                                 f"{max(steps, default=0):.3f} rad over {len(cmds)} commands", extra)


# ---------------------------------------------------------------- recorder: kill -9 at random moments
@case("recorder/kill-9", "recorder", "recorder killed with SIGKILL at random moments (start, mid-episode, "
      "stop, rename); every finished episode must read back", needs=())
def _recorder_kills(ctx: Ctx) -> Outcome:
    from rosbags.rosbag2 import Reader

    from act_policy.episode_writer import PARTIAL_SUFFIX, read_episode_json, recover_partial

    out_dir = ctx.tmp / "recordings"
    out_dir.mkdir(exist_ok=True)
    topics = f"[{names.FOLLOWER_JOINT_STATES},{names.FOLLOWER_JOINT_COMMANDS}]"
    pub_node = Node(f"reliability_rec_{os.getpid()}", argv=[])
    pub = pub_node.create_publisher(messages.JointState, names.FOLLOWER_JOINT_STATES, QoS(depth=50))
    stop = threading.Event()

    def publish() -> None:
        i = 0
        while not stop.wait(0.01):
            pub.publish(messages.joint_state(JOINTS, np.full(6, 1e-3 * i)))
            i += 1

    feeder = threading.Thread(target=publish, daemon=True)
    feeder.start()
    start_cli = pub_node.create_client("std_srvs/srv/Trigger", names.RECORDER_START)
    stop_cli = pub_node.create_client("std_srvs/srv/Trigger", names.RECORDER_STOP)
    warn = tracebacks = 0
    refused_starts = 0
    moments: list[str] = []
    rss_growth = 0.0
    try:
        for _ in range(ctx.args.kills):
            proc = ctx.graph.node("recorder", "-p", f"out_dir:={out_dir}", "-p", f"topics:={topics}",
                                  "-p", "min_free_gb:=0.0", "-p", "start_tolerance:=0.0", "-p", "flush_interval:=0.1",
                                  "-p", "max_duration:=30.0")
            try:
                proc.wait_output("recorder up", 60)
                rss0 = rss_mb(proc) or 0.0
                start_cli.wait_for_service(10)
                episodes = ctx.rng.randint(0, 2)  # finished ones before the kill
                for _ in range(episodes):
                    if not start_cli.call(timeout=10).success:
                        refused_starts += 1
                    time.sleep(ctx.rng.uniform(0.1, 0.6))
                    stop_cli.call(timeout=10)
                moment = ctx.rng.choice(["idle", "starting", "recording", "stopping"])
                if moment != "idle":
                    fut = start_cli.call_async(timeout=10)
                    if moment == "starting":
                        time.sleep(ctx.rng.uniform(0.0, 0.05))
                    else:
                        fut.result(10)
                        time.sleep(ctx.rng.uniform(0.05, 0.8))
                        if moment == "stopping":
                            stop_cli.call_async(timeout=10)
                            time.sleep(ctx.rng.uniform(0.0, 0.03))
                moments.append(f"{episodes}+{moment}")
                rss_growth = max(rss_growth, (rss_mb(proc) or rss0) - rss0)
                proc.signal(signal.SIGKILL)
                proc.popen.wait(5)
            finally:
                proc.stop(5)
                ctx.graph.procs.remove(proc)
                warn += sum(bool(WARN_RE.match(ln)) for ln in proc.lines)
                tracebacks += sum(ln.startswith("Traceback") for ln in proc.lines)
    finally:
        stop.set()
        feeder.join(2)
        pub_node.destroy()
    finished = readable = recovered = partial = 0
    problems = []
    for ep in sorted(out_dir.iterdir()):
        if ep.name.endswith(PARTIAL_SUFFIX):
            partial += 1
            try:
                recover_partial(ep)
                recovered += 1
            except Exception as e:  # noqa: BLE001 - a clear refusal is fine, reported
                problems.append(f"{ep.name}: {type(e).__name__}: {str(e)[:80]}")
            continue
        if ep.name.endswith(".recovered") or not ep.is_dir():
            continue
        finished += 1
        try:
            meta = read_episode_json(ep)
            with Reader(ep) as reader:
                counts = {c.topic: c.msgcount for c in reader.connections}
                n = sum(1 for _ in reader.messages())
            if meta.get("complete") is True and n == sum(counts.values()) and n > 0:
                readable += 1
            else:
                problems.append(f"{ep.name}: complete={meta.get('complete')} read {n}/{sum(counts.values())}")
        except Exception as e:  # noqa: BLE001 - an unreadable finished episode is the failure measured
            problems.append(f"{ep.name}: {type(e).__name__}: {str(e)[:80]}")
    note = (f"{ctx.args.kills} kills at {','.join(moments)}; {finished} finished episodes, {readable} readable; "
            f"{partial} cut ones, {recovered} recovered; {refused_starts} starts refused")
    if problems:
        note += "; " + " | ".join(problems[:3])
    return Outcome(True, note, {"warn_error_lines": warn, "tracebacks": tracebacks, "rss_growth_mb": rss_growth},
                   episodes=(finished, readable), no_follower=True)


# ---------------------------------------------------------------- bags -> the converter
def _write_bag(root: Path, name: str) -> Path:
    from act_policy.episode_writer import EpisodeWriter, TopicSpec

    specs = [TopicSpec(names.FOLLOWER_JOINT_STATES, "sensor_msgs/msg/JointState", QoS(depth=50)),
             TopicSpec(names.FOLLOWER_JOINT_COMMANDS, "sensor_msgs/msg/JointState", QoS(depth=50)),
             *(TopicSpec(names.camera_image_topic(c), "sensor_msgs/msg/Image", QoS(depth=5))
               for c in ("overhead", "wrist"))]
    w = EpisodeWriter(root, name, specs, metadata={"task": "reliability", "source": "expert", "fps": 30},
                      flush_interval=0)
    t0 = 1_700_000_000 * 10**9
    events: list[tuple[int, str, bytes]] = []
    for i in range(60):  # 1.2 s at 50 Hz
        t = t0 + i * 20_000_000
        q = np.full(6, 0.01 * i)
        events.append((t, names.FOLLOWER_JOINT_STATES, messages.serialize(messages.joint_state(JOINTS, q, stamp_ns=t))))
        events.append((t + 1, names.FOLLOWER_JOINT_COMMANDS,
                       messages.serialize(messages.joint_state(JOINTS, q + 0.01, stamp_ns=t))))
    for i in range(36):  # 30 Hz
        t = t0 + i * 33_333_333
        for c in ("overhead", "wrist"):
            img = np.full((24, 32, 3), (i * 7) % 255, dtype=np.uint8)
            events.append((t + 2, names.camera_image_topic(c),
                           messages.serialize(messages.image_from_numpy(img, "rgb8", stamp_ns=t))))
    for t, topic, raw in sorted(events):
        w.write(topic, t + 3_000_000, raw)
    return w.close(stop_ns=t0 + 1_200_000_000, success=True)


def _pristine_bag(ctx: Ctx) -> Path:
    src = ctx.tmp / "bags" / "pristine"
    if not src.exists():
        _write_bag(src, "episode_000000")
    return src / "episode_000000"


def _convert(ctx: Ctx, damage: Callable[[Path], None], label: str, sentinel: Path | None = None) -> Outcome:
    """Damage a copy of a good bag, run `so100 dataset from-bags` on it: a clear error, no crash, nothing executed."""
    bag_dir = ctx.tmp / "bags" / label.replace("/", "_")
    shutil.rmtree(bag_dir, ignore_errors=True)
    bag = bag_dir / "episode_000000"
    shutil.copytree(_pristine_bag(ctx), bag)
    damage(bag)
    cmd = [str(BIN / "so100"), "dataset", "from-bags", str(bag_dir), "--out", str(bag_dir / "dataset")]
    t0 = time.monotonic()
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=bag_dir,
                             env=dict(os.environ, HF_HUB_OFFLINE="1"))
        code, text = run.returncode, run.stdout + run.stderr
    except subprocess.TimeoutExpired:
        code, text = None, "timed out"
    lines = text.splitlines()
    tb = sum(ln.startswith("Traceback") for ln in lines)
    crashed = code is None or code < 0 or (code not in (0, 1, 2)) or tb > 0
    error_line = next((ln.split("bag_to_dataset: ")[-1] for ln in lines if str(bag) in ln and "ERROR" in ln), "")
    executed = sentinel is not None and sentinel.exists()
    converted = code == 0
    clear = code == 2 and bool(error_line)
    ok = not crashed and not executed and (clear or converted)
    note = (f"exit {code} in {time.monotonic() - t0:.0f} s; " +
            ("converted" if converted else (error_line.replace(str(bag), "<bag>")[:130] if error_line else "no clear error")))
    if executed:
        note += "; THE YAML TAG EXECUTED"
    return Outcome(ok, note, {"crashed": crashed, "tracebacks": tb, "exit": code,
                              "warn_error_lines": sum(bool(WARN_RE.match(ln)) for ln in lines)}, no_follower=True)


def _mcap(bag: Path) -> Path:
    return next(bag.glob("*.mcap"))


def _truncate(fraction: float) -> Callable[[Path], None]:
    def damage(bag: Path) -> None:
        f = _mcap(bag)
        data = f.read_bytes()
        f.write_bytes(data[: int(len(data) * fraction)])
    return damage


def _flip_float(bag: Path) -> None:
    """Flip the top exponent bit of one joint position (0.3 -> a huge number) inside the MCAP."""
    f = _mcap(bag)
    data = bytearray(f.read_bytes())
    needle = struct.pack("<d", 0.01 * 30)  # state 30's positions (_write_bag)
    i = data.find(needle)
    assert i >= 0, "no such position in the bag"
    data[i + 7] ^= 0x40
    f.write_bytes(bytes(data))


def _empty(bag: Path) -> None:
    _mcap(bag).write_bytes(b"")


def _python_tag(sentinel: Path) -> Callable[[Path], None]:
    def damage(bag: Path) -> None:
        meta = bag / "metadata.yaml"
        text = meta.read_text()
        evil = f"!!python/object/apply:os.system [\"touch {sentinel}\"]"
        meta.write_text(text.replace("rosbag2_bagfile_information:",
                                     f"rosbag2_bagfile_information:\n  custom_data: {evil}", 1))
    return damage


case("bag/pristine", "converter", "control: the undamaged bag converts", needs=())(
    lambda ctx: _convert(ctx, lambda bag: None, "pristine_copy"))
for _pct in (10, 50, 90):
    case(f"bag/truncated-{_pct}pct", "converter", f"a finished bag's MCAP cut at {_pct} % of its size", needs=())(
        lambda ctx, p=_pct: _convert(ctx, _truncate(p / 100), f"truncated_{p}"))
case("bag/flipped-float", "converter", "one joint position's exponent bit flipped in the MCAP", needs=())(
    lambda ctx: _convert(ctx, _flip_float, "flipped"))
case("bag/empty-mcap", "converter", "an empty .mcap file", needs=())(lambda ctx: _convert(ctx, _empty, "empty"))
case("bag/python-yaml-tag", "converter", "a !!python/object/apply tag in metadata.yaml (must not execute)", needs=())(
    lambda ctx: _convert(ctx, _python_tag(ctx.tmp / "PWNED_yaml"), "pytag", ctx.tmp / "PWNED_yaml"))


# ---------------------------------------------------------------- checkpoint loading
@case("policy/foreign-processor-class", "loader", "a processor JSON naming a class outside lerobot (its module "
      "would run code at import): loading must refuse it", needs=())
def _foreign_class(ctx: Ctx) -> Outcome:
    src = ctx.checkpoint()
    ckpt = ctx.tmp / "evil_ckpt" / "pretrained_model"
    shutil.rmtree(ckpt.parent, ignore_errors=True)
    shutil.copytree(src, ckpt)
    evil_dir = ctx.tmp / "evil_module"
    evil_dir.mkdir(exist_ok=True)
    sentinel = ctx.tmp / "PWNED_processor"
    (evil_dir / "evil_step.py").write_text(f"open({str(sentinel)!r}, 'w').close()\nclass Step:\n    pass\n")
    pre = ckpt / "policy_preprocessor.json"
    cfg = json.loads(pre.read_text())
    step = cfg["steps"][0]
    step.pop("registry_name", None)
    step["class"] = "evil_step.Step"
    pre.write_text(json.dumps(cfg))
    code = ("import sys; from act_policy.policy_io import load_policy, CheckpointError\n"
            "try:\n    load_policy(sys.argv[1], 'cpu')\nexcept CheckpointError as e:\n"
            "    print('REFUSED:', e); sys.exit(3)\nprint('LOADED')")
    run = subprocess.run([sys.executable, "-c", code, str(ckpt)], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(evil_dir), HF_HUB_OFFLINE="1"))
    text = run.stdout + run.stderr
    executed = sentinel.exists()
    refused = run.returncode == 3 and "lerobot." in text
    tb = sum(ln.startswith("Traceback") for ln in text.splitlines())
    line = next((ln for ln in text.splitlines() if ln.startswith(("REFUSED", "LOADED"))), text.strip()[-120:])
    return Outcome(refused and not executed, ("THE MODULE WAS IMPORTED; " if executed else "") + line[:150],
                   {"crashed": run.returncode not in (0, 3), "tracebacks": tb}, no_follower=True)


# ---------------------------------------------------------------- report
def select(patterns: str | None) -> list[Case]:
    if not patterns:
        return list(CASES)
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    return [c for c in CASES if any(fnmatch.fnmatch(c.name, p) or p in c.name for p in pats)]


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(results: list[CaseResult]) -> str:
    head = (f"{'case':30} {'crash':>5} {'max step':>14} {'nonfin':>6} {'gap p99 ms':>14} {'RSS MB':>7} "
            f"{'warn':>5} {'tb':>3} {'ok':>3} {'s':>5}  note")
    rows = [head, "-" * len(head)]
    for r in results:
        if r.skipped:
            rows.append(f"{r.name:30} {'SKIP':>5} {'':>14} {'':>6} {'':>14} {'':>7} {'':>5} {'':>3} {'':>3} "
                        f"{r.seconds:5.1f}  {r.skipped}")
            continue
        step = "-" if r.max_step is None else f"{r.max_step:.4f}/{r.max_step_limit:g}"
        gap = _fmt(r.gap_p99_ms, ".1f") + ("" if r.gap_limit_ms is None else f"/<{r.gap_limit_ms:g}")
        mark = "yes" if not r.violations() else "NO"
        rows.append(f"{r.name:30} {('YES' if r.crashed else 'no'):>5} {step:>14} {r.non_finite:>6} {gap:>14} "
                    f"{_fmt(r.rss_growth_mb, '+.1f'):>7} {r.warn_error_lines:>5} {r.tracebacks:>3} {mark:>3} "
                    f"{r.seconds:5.1f}  {r.note}")
    return "\n".join(rows)


def targets(results: list[CaseResult]) -> dict[str, dict[str, Any]]:
    run = [r for r in results if not r.skipped]
    eps = [r for r in run if r.episodes_finished is not None]
    floods = [r for r in run if r.gap_limit_ms is not None]
    checks = {
        "crashes == 0": [r.name for r in run if r.crashed],
        "commanded steps above max_step == 0": [r.name for r in run if "step above max_step" in r.violations()],
        "non-finite goals == 0": [r.name for r in run if r.non_finite],
        f"follower gap p99 < {GAP_LIMIT_PERIODS:g} periods under every flood": [
            r.name for r in floods if "control gap" in r.violations()],
        f"RSS growth < {RSS_LIMIT_MB:g} MB": [r.name for r in run if "RSS growth" in r.violations()],
        "every finished episode readable": [r.name for r in eps if "unreadable episode" in r.violations()],
        "every case behaves as specified": [r.name for r in run if not r.expected],
    }
    return {k: {"pass": not v, "failing": v} for k, v in checks.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    cases = select(args.cases)
    if not cases:
        raise SystemExit(f"no case matches {args.cases!r}; --list shows them")
    order = {"sim": 0, "vr": 1, "act": 2, "arm": 3, "recorder": 4, "converter": 5, "loader": 6}
    cases.sort(key=lambda c: order.get(c.target, 9))
    results: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="so100_reliability_") as tmp:
        ctx = Ctx(args, Path(tmp))
        try:
            for c in cases:
                r = run_case(ctx, c)
                results.append(r)
                if not args.quiet:
                    print(table([r]).splitlines()[-1], flush=True)
        finally:
            ctx.close()
    return {"cases": [asdict(r) for r in results], "targets": targets(results), "results": results}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--cases", help="comma-separated patterns of case names (shell globs or substrings)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--kills", type=int, default=5, help="recorder kill -9 rounds (default 5)")
    ap.add_argument("--seed", type=int, default=15, help="seed of every random choice")
    ap.add_argument("--quiet", action="store_true", help="print only the final table")
    ap.add_argument("--observe", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.observe:
        return observe(args.observe.split(","))
    if args.list:
        for c in CASES:
            print(f"{c.name:32} {c.target:10} {'flood ' if c.flood else ''}{'fast ' if c.fast else ''}{c.what}")
        return 0
    info = machine_info()
    command = reproduce_command("benchmarks/reliability.py")
    print(f"machine: {info}\ncommand: {command}\n", flush=True)
    t0 = time.monotonic()
    out = run(args)
    results: list[CaseResult] = out.pop("results")
    print(f"\n{table(results)}\n")
    for name, t in out["targets"].items():
        print(f"{'PASS' if t['pass'] else 'FAIL'}  {name}" + ("" if t["pass"] else f"  ({', '.join(t['failing'])})"))
    print(f"\n{len(results)} cases ({sum(bool(r.skipped) for r in results)} skipped) in {time.monotonic() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "command": command, **out}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
