"""Driver benchmark (issue 5): leader read rate, follower command-to-goal latency, RealSense throughput.

Correctness first, then time. Every figure is printed next to the check that guards it:

1. Leader read rate over an emulated bus. (a) ``ArmBus.read_positions()`` back to back in this
   process against ``so100_bus_emulator`` running as its own process (calibrated, sine
   trajectory); every read must return six finite radians. (b) ``leader_arm`` at ``rate:=100``
   and ``rate:=500`` (its ceiling): ``/leader/joint_states`` as received by a subscriber here;
   every message must carry the six joint names and finite positions.
2. Follower command-to-goal-write latency. ``follower_arm`` (``rate:=50`` and ``rate:=100``)
   drives an ``EmulatedBus`` that lives in this process, so a ~2 kHz polling thread sees the
   Goal_Position registers change. Commands alternate between two poses 30 ticks apart (inside
   ``max_step``) at 20 Hz plus a random 0-20 ms offset (so they meet the node's ticks at uniform
   phases), stamped with their send time; every command must show up, before the next one is sent
   plus one control period, as a goal write equal to its radians converted to ticks (+-1 tick).
   Latency = goal change - stamp: bounded by the control period plus one tick's bus time.
3. ``realsense_camera`` with ``source:=synthetic`` at 640x480x30 and ``align_depth.enable:=true``:
   received Hz of ``color/image_raw`` and ``aligned_depth_to_color/image_raw`` and the node's CPU;
   encodings must be rgb8 / 16UC1 at 640x480.

A router on a free port and a random ROS_DOMAIN_ID isolate the run (``so100_common.testing.Graph``).
A failed correctness check (or a process that does not come up) exits 1.

    .venv/bin/python benchmarks/driver.py [--read-seconds 5] [--leader-seconds 5] [--commands 100]
                                          [--camera-seconds 8] [--json results.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from machine import machine_info, reproduce_command

from so100_common import messages, names
from so100_common.node import Node
from so100_common.qos import SENSOR_DATA, QoS
from so100_common.testing import BIN, Graph, Proc
from so100_common.transport import shutdown_backend
from so100_driver.arm_bus import ArmBus, ArmBusConfig
from so100_driver.calibration import ArmCalibration, load_calibration
from so100_driver.emulator import EmulatedBus
from so100_driver.emulator.cli import apply_calibration
from so100_driver.testing import calibration, start_emulator, write_calibration

ROOT = Path(__file__).resolve().parent.parent
LEADER_RATES = (100.0, 500.0)
FOLLOWER_RATES = (50.0, 100.0)
COMMAND_HZ = 20.0
STEP_TICKS = 15  # the two poses are mid + 15 and mid - 15 ticks: 30 ticks (< 0.05 rad) apart, inside max_step 0.1
POLL_S = 0.0005  # goal-register polling period (2 kHz)
PHASE_JITTER_S = 0.02  # each command is sent up to this late (>= the longest control period, 1/50 s)
CAMERA_NS = "/bench_camera"
CAMERA_PROFILE = (640, 480, 30)
WARMUP_S = 1.0  # seconds of traffic dropped before a measured window
START_TIMEOUT_S = 60.0


class BenchError(Exception):
    """The benchmark could not run (a process did not come up or died)."""


class Checks:
    """Correctness failures, counted per benchmark, with the first few as examples."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.examples: list[str] = []

    def fail(self, where: str, text: str) -> None:
        self.count[where] = self.count.get(where, 0) + 1
        if len(self.examples) < 12:
            self.examples.append(f"{where}: {text}")

    def errors(self, where: str) -> int:
        return self.count.get(where, 0)

    @property
    def total(self) -> int:
        return sum(self.count.values())


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"min": None, "p50": None, "p95": None, "max": None}
    a = np.asarray(values)
    return {
        "min": float(a.min()),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
    }


def cpu_seconds(ps: psutil.Process) -> float:
    t = ps.cpu_times()
    return t.user + t.system


def log_problems(proc: Proc, label: str) -> list[str]:
    return [f"{label}: {ln}" for ln in proc.lines if "WARN" in ln or "ERROR" in ln]


def stop(graph: Graph, proc: Proc) -> int:
    code = proc.stop()
    if proc in graph.procs:
        graph.procs.remove(proc)
    return code


def wait_up(proc: Proc, text: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not any(text in ln for ln in proc.lines):
        if not proc.alive() or time.monotonic() > deadline:
            tail = "\n".join(f"    {ln}" for ln in proc.lines[-20:])
            raise BenchError(f"{' '.join(proc.cmd[:3])} did not report {text!r}; its output:\n{tail}")
        time.sleep(0.05)


# ---------------------------------------------------------------- 1a: ArmBus read rate, in process
def bench_read_rate(port: Path, cal_file: Path, seconds: float, checks: Checks) -> dict[str, Any]:
    cal = ArmCalibration(load_calibration(cal_file, role="leader"), source=str(cal_file))
    reads, durations = 0, []
    with ArmBus(ArmBusConfig(str(port), cal, role="leader")) as arm:
        for _ in range(20):  # warm-up
            arm.read_positions()
        start = time.perf_counter()
        while (now := time.perf_counter()) - start < seconds:
            pos = arm.read_positions()
            durations.append(time.perf_counter() - now)
            reads += 1
            if pos.shape != (6,) or not np.all(np.isfinite(pos)):
                checks.fail("read_positions", f"read {reads} returned {pos!r}")
        elapsed = time.perf_counter() - start
        retried = arm.failures
    ms = [d * 1e3 for d in durations]
    return {
        "reads": reads,
        "seconds": elapsed,
        "rate_hz": reads / elapsed,
        "retried_tries": retried,
        "read_ms": percentiles(ms),
    }


# ---------------------------------------------------------------- 1b: leader_arm node rate
def bench_leader_node(
    graph: Graph, port: Path, cal_root: Path, rate: float, seconds: float, checks: Checks
) -> dict[str, Any]:
    where = f"leader_arm rate {rate:g}"
    node = Node(f"bench_leader_{int(rate)}_{time.monotonic_ns()}", argv=[])
    rx: list[float] = []

    def on_state(msg: Any) -> None:
        rx.append(time.monotonic())
        if tuple(msg.name) != names.JOINT_NAMES or len(msg.position) != 6 or not np.all(np.isfinite(msg.position)):
            checks.fail(where, f"message {len(rx)}: names {list(msg.name)}, positions {list(msg.position)}")

    node.create_subscription(messages.JointState, names.LEADER_JOINT_STATES, on_state, QoS(depth=1000))
    proc = graph.start(
        [str(BIN / "leader_arm"), "--ros-args", "-p", f"port:={port}", "-p", "id:=bench", "-p", f"rate:={rate}"],
        HF_LEROBOT_CALIBRATION=str(cal_root),
    )
    try:
        wait_up(proc, "leader_arm up")
        node.spin(until=lambda: bool(rx) or not proc.alive(), timeout=20)
        if not rx:
            raise BenchError(f"{where}: nothing received on {names.LEADER_JOINT_STATES}\n{proc.output[-2000:]}")
        node.spin(timeout=WARMUP_S)
        ps = psutil.Process(proc.popen.pid)
        n0, c0, t0 = len(rx), cpu_seconds(ps), time.monotonic()
        node.spin(timeout=seconds)
        n1, c1, t1 = len(rx), cpu_seconds(ps), time.monotonic()
        gaps = np.diff(rx[n0:n1]) * 1e3 if n1 - n0 > 1 else np.array([])
    finally:
        node.destroy()
        code = stop(graph, proc)
    if code != 0:
        checks.fail(where, f"exit code {code} on SIGINT")
    return {
        "rate_param_hz": rate,
        "received": n1 - n0,
        "seconds": t1 - t0,
        "rate_hz": (n1 - n0) / (t1 - t0),
        "cpu_percent": 100.0 * (c1 - c0) / (t1 - t0),
        "gap_ms": percentiles(gaps.tolist()),
        "log_problems": log_problems(proc, where),
    }


# ---------------------------------------------------------------- 2: follower command -> goal write
class GoalWatcher:
    """Polls the emulated servos' Goal_Position at ~2 kHz and records every change with its time."""

    def __init__(self, emu: EmulatedBus, ids: list[int]) -> None:
        self.emu, self.ids = emu, ids
        self.changes: list[tuple[int, tuple[int, ...]]] = []  # (time.time_ns(), goals in contract order)
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="goal-watcher", daemon=True)

    def _read(self) -> tuple[int, ...]:
        with self.emu.lock:  # one sync write is applied under this lock: all six goals change together
            return tuple(self.emu.servos[i].goal_position for i in self.ids)

    def _run(self) -> None:
        last = self._read()
        while not self._stop.wait(POLL_S):
            goals = self._read()
            self.polls += 1
            if goals != last:
                self.changes.append((time.time_ns(), goals))
                last = goals

    def __enter__(self) -> GoalWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2.0)


def bench_follower(
    graph: Graph, cal_root: Path, cal_json: dict, rate: float, commands: int, checks: Checks
) -> dict[str, Any]:
    where = f"follower_arm rate {rate:g}"
    cal_file = cal_root / "robots/so_follower/bench.json"
    cal = ArmCalibration(load_calibration(cal_file), source=str(cal_file))
    ids = cal.ids
    mid = np.array([(cal_json[n]["range_min"] + cal_json[n]["range_max"]) // 2 for n in names.JOINT_NAMES])
    poses = [mid + STEP_TICKS, mid - STEP_TICKS]  # ticks, contract order
    pose_rad = [cal.to_radians(p) for p in poses]
    expected_ticks = [cal.to_ticks(r) for r in pose_rad]  # what the node must write (= poses, the round trip)
    sent: list[tuple[int, int]] = []  # (stamp ns, pose index)
    with EmulatedBus(range(1, 7), seed=0) as emu:
        with emu.lock:
            apply_calibration(emu.servos, cal_file)
            for i, servo in emu.servos.items():
                servo.set_position(float(mid[ids.index(i)]))
        node = Node(f"bench_follower_{int(rate)}_{time.monotonic_ns()}", argv=[])
        pub = node.create_publisher(messages.JointState, names.FOLLOWER_JOINT_COMMANDS, QoS(depth=10))
        states: list[Any] = []
        node.create_subscription(messages.JointState, names.FOLLOWER_JOINT_STATES, states.append, QoS(depth=10))
        proc = graph.start(
            [
                str(BIN / "follower_arm"),
                "--ros-args",
                "-p",
                f"port:={emu.port}",
                "-p",
                "id:=bench",
                "-p",
                f"rate:={rate}",
                "-p",
                "stale_timeout:=0.5",
                "-p",
                "max_step:=0.1",
            ],
            HF_LEROBOT_CALIBRATION=str(cal_root),
        )
        try:
            wait_up(proc, "follower_arm up")
            node.spin(until=lambda: bool(states) or not proc.alive(), timeout=20)  # the loop runs, discovery done
            if not states:
                raise BenchError(f"{where}: no {names.FOLLOWER_JOINT_STATES}\n{proc.output[-2000:]}")
            if not all(s.torque_enabled for s in emu.servos.values()):
                raise BenchError(f"{where}: torque is not on after start-up")
            ps = psutil.Process(proc.popen.pid)
            c0, t0 = cpu_seconds(ps), time.monotonic()
            with GoalWatcher(emu, ids) as watcher:
                period = 1.0 / COMMAND_HZ
                # 50 ms is a whole number of control periods: without a random offset every command would
                # meet the node's ticks at the same one or two phases. The offset makes the phase uniform.
                offsets = np.random.default_rng(int(rate)).uniform(0.0, PHASE_JITTER_S, commands)
                start = time.monotonic()
                for k in range(commands):  # paced by sleeping: the node's executor is not needed to publish
                    time.sleep(max(0.0, start + k * period + offsets[k] - time.monotonic()))
                    stamp = time.time_ns()
                    pub.publish(
                        messages.joint_state(
                            names.JOINT_NAMES, pose_rad[k % 2], stamp_ns=stamp, frame_id=names.BASE_FRAME
                        )
                    )
                    sent.append((stamp, k % 2))
                node.spin(timeout=max(0.2, 3.0 / rate))  # the last command's goal write
            c1, t1 = cpu_seconds(ps), time.monotonic()
            polls = watcher.polls
        finally:
            node.destroy()
            code = stop(graph, proc)
    if code != 0:
        checks.fail(where, f"exit code {code} on SIGINT")
    changes = watcher.changes
    poll_hz = polls / max(t1 - t0, 1e-9)
    latencies: list[float] = []
    missed = 0
    # Every goal change must be one of the commanded poses (+-1 tick).
    for t_ns, goals in changes:
        if not any(np.max(np.abs(np.array(goals) - e)) <= 1 for e in expected_ticks):
            checks.fail(
                where,
                f"goal write {list(goals)} at +{(t_ns - sent[0][0]) / 1e6:.1f} ms "
                f"is none of the commanded poses {[e.tolist() for e in expected_ticks]}",
            )
    # Every command must be followed, before the next one is sent + one control period, by its goal write.
    for k, (stamp, pose) in enumerate(sent):
        limit = (sent[k + 1][0] if k + 1 < len(sent) else stamp + int(1e9 / COMMAND_HZ)) + int(1e9 / rate)
        hit = next(
            (t for t, g in changes if stamp <= t <= limit and np.max(np.abs(np.array(g) - expected_ticks[pose])) <= 1),
            None,
        )
        if hit is None:
            missed += 1
            checks.fail(
                where, f"command {k} (pose {pose}) produced no goal write within {(limit - stamp) / 1e6:.0f} ms"
            )
        else:
            latencies.append((hit - stamp) / 1e6)
    return {
        "rate_param_hz": rate,
        "commands": len(sent),
        "goal_changes": len(changes),
        "missed": missed,
        "latency_ms": percentiles(latencies),
        "control_period_ms": 1e3 / rate,
        "poll_hz": poll_hz,
        "cpu_percent": 100.0 * (c1 - c0) / max(t1 - t0, 1e-9),
        "log_problems": log_problems(proc, where),
    }


# ---------------------------------------------------------------- 3: RealSense synthetic throughput
def bench_camera(graph: Graph, seconds: float, checks: Checks) -> dict[str, Any]:
    where = "realsense_camera"
    w, h, fps = CAMERA_PROFILE
    expect = {"color": ("rgb8", w, h, w * 3), "aligned": ("16UC1", w, h, w * 2)}
    topics = {"color": "color/image_raw", "aligned": "aligned_depth_to_color/image_raw"}
    rx: dict[str, list[float]] = {k: [] for k in topics}
    node = Node(f"bench_camera_{time.monotonic_ns()}", argv=[])

    def on_image(key: str, msg: Any) -> None:
        rx[key].append(time.monotonic())
        layout = (msg.encoding, msg.width, msg.height, msg.step)
        if layout != expect[key] or len(msg.data) != msg.step * msg.height:
            checks.fail(
                where,
                f"{topics[key]} #{len(rx[key])}: (encoding, w, h, step) = {layout}, "
                f"{len(msg.data)} bytes; expected {expect[key]}",
            )

    for key, topic in topics.items():
        node.create_subscription(messages.Image, f"{CAMERA_NS}/{topic}", lambda m, k=key: on_image(k, m), SENSOR_DATA)
    profile = "x".join(str(v) for v in CAMERA_PROFILE)
    proc = graph.start(
        [
            str(BIN / "realsense_camera"),
            "--ros-args",
            "-r",
            f"__ns:={CAMERA_NS}",
            "-p",
            "source:=synthetic",
            "-p",
            f"rgb_camera.color_profile:={profile}",
            "-p",
            f"depth_module.depth_profile:={profile}",
            "-p",
            "align_depth.enable:=true",
        ]
    )
    try:
        wait_up(proc, "realsense_camera up")
        node.spin(until=lambda: all(rx.values()) or not proc.alive(), timeout=20)
        if not all(rx.values()):
            counts = {k: len(v) for k, v in rx.items()}
            raise BenchError(f"{where}: received {counts}\n{proc.output[-2000:]}")
        node.spin(timeout=WARMUP_S)
        ps = psutil.Process(proc.popen.pid)
        n0 = {k: len(v) for k, v in rx.items()}
        c0, t0 = cpu_seconds(ps), time.monotonic()
        node.spin(timeout=seconds)
        c1, t1 = cpu_seconds(ps), time.monotonic()
        n1 = {k: len(v) for k, v in rx.items()}
    finally:
        node.destroy()
        code = stop(graph, proc)
    if code != 0:
        checks.fail(where, f"exit code {code} on SIGINT")
    window = t1 - t0
    return {
        "profile": profile,
        "seconds": window,
        "target_hz": fps,
        "rate_hz": {topics[k]: (n1[k] - n0[k]) / window for k in topics},
        "received": {topics[k]: n1[k] - n0[k] for k in topics},
        "cpu_percent": 100.0 * (c1 - c0) / window,
        "log_problems": log_problems(proc, where),
    }


# ---------------------------------------------------------------- report
def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def report(res: dict[str, Any], checks: Checks) -> str:
    m = res["machine"]
    ok = {True: "OK", False: "FAIL"}
    r = res["read_rate"]
    lines = [
        "SO-100 driver benchmark (issue 5): emulated servo buses, synthetic RealSense, zenoh router",
        f"machine: {m['nproc']} CPUs, {m['cpu']}, {m['platform']}, Python {m['python']}",
        f"commit:  {m['commit']}",
        f"command: {res['command']}",
        "",
        "1a. ArmBus.read_positions() back to back (this process; so100_bus_emulator as its own process)",
        f"  {r['reads']} reads in {r['seconds']:.1f} s = {r['rate_hz']:.0f} reads/s; per read p50 "
        f"{fmt(r['read_ms']['p50'], '.2f')} ms, p95 {fmt(r['read_ms']['p95'], '.2f')} ms, max "
        f"{fmt(r['read_ms']['max'], '.2f')} ms; tries retried {r['retried_tries']}; "
        f"6 finite radians every read: {ok[not checks.errors('read_positions')]}",
        "",
        "1b. leader_arm -> /leader/joint_states, received by a subscriber",
        f"  {'rate param':>10} {'recv Hz':>8} {'msgs':>6} {'gap p50':>8} {'gap p95':>8} {'gap max':>8} "
        f"{'node CPU%':>9}  check",
    ]
    for s in res["leader"]:
        g = s["gap_ms"]
        where = f"leader_arm rate {s['rate_param_hz']:g}"
        lines.append(
            f"  {s['rate_param_hz']:>10.0f} {s['rate_hz']:>8.1f} {s['received']:>6} {fmt(g['p50']):>8} "
            f"{fmt(g['p95']):>8} {fmt(g['max']):>8} {s['cpu_percent']:>9.1f}  {ok[not checks.errors(where)]}"
        )
    lines += [
        "",
        f"2. follower_arm: command stamp -> Goal_Position written (servo registers polled at "
        f"{POLL_S * 1e3:g} ms), commands at {COMMAND_HZ:g} Hz",
        f"  {'rate':>5} {'period':>7} {'cmds':>5} {'missed':>6} {'min ms':>7} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} "
        f"{'poll Hz':>8} {'node CPU%':>9}  check",
    ]
    for s in res["follower"]:
        lat = s["latency_ms"]
        where = f"follower_arm rate {s['rate_param_hz']:g}"
        lines.append(
            f"  {s['rate_param_hz']:>5.0f} {s['control_period_ms']:>5.1f}ms {s['commands']:>5} "
            f"{s['missed']:>6} {fmt(lat['min']):>7} {fmt(lat['p50']):>7} {fmt(lat['p95']):>7} {fmt(lat['max']):>7} "
            f"{s['poll_hz']:>8.0f} {s['cpu_percent']:>9.1f}  {ok[not checks.errors(where)]}"
        )
    lines += [
        "  Commands are sent at random phases to the node's ticks. The node applies a command at its next",
        "  control tick, after reading state (3 sync reads) and before one sync write: latency = transport +",
        "  wait for the tick, U(0, period) + that tick's bus time. So p50 ~ period/2 + bus time and max ~",
        "  period + bus time: bounded by the control period; min ~ transport + bus time is the floor.",
        "  (The emulator answers from this process, so its replies share this process's GIL.)",
        "",
    ]
    c = res["camera"]
    rates = " / ".join(f"{v:.1f}" for v in c["rate_hz"].values())
    lines += [
        f"3. realsense_camera source:=synthetic {c['profile']}, align_depth.enable:=true, {c['seconds']:.1f} s",
        f"  received Hz (color/image_raw / aligned_depth_to_color/image_raw): {rates} (target {c['target_hz']}); "
        f"node CPU {c['cpu_percent']:.1f} % of one core; rgb8/16UC1 at 640x480: "
        f"{ok[not checks.errors('realsense_camera')]}",
        "",
    ]
    problems = [p for s in (*res["leader"], *res["follower"], c) for p in s["log_problems"]]
    if problems:
        lines.append(f"Warnings logged by the nodes ({len(problems)}, first 5):")
        lines += [f"  {p}" for p in problems[:5]]
    lines.append(f"Correctness: {'OK' if not checks.total else f'FAILED ({checks.total} errors, exit code 1)'}")
    lines += [f"  {e}" for e in checks.examples]
    return "\n".join(lines)


def run(args: argparse.Namespace, tmp: Path, checks: Checks) -> dict[str, Any]:
    graph = Graph()
    try:
        os.environ.update({k: graph.env[k] for k in ("ROS_DOMAIN_ID", "ZENOH_CONFIG_OVERRIDE", "SO100_TRANSPORT")})
        cal_json = calibration()
        leader_cal = write_calibration(tmp, "teleoperators/so_leader", "bench", cal_json)
        write_calibration(tmp, "robots/so_follower", "bench", cal_json)
        res: dict[str, Any] = {}
        port = tmp / "leader_port"
        emu = start_emulator(graph, leader_cal, port, "--trajectory", "sine")
        try:
            print(f"1a. ArmBus.read_positions() for {args.read_seconds:g} s ...", flush=True)
            res["read_rate"] = bench_read_rate(port, leader_cal, args.read_seconds, checks)
            res["leader"] = []
            for rate in LEADER_RATES:
                print(f"1b. leader_arm rate:={rate:g} for {args.leader_seconds:g} s ...", flush=True)
                res["leader"].append(bench_leader_node(graph, port, tmp, rate, args.leader_seconds, checks))
        finally:
            stop(graph, emu)
        # lerobot came in with 1a's ArmBus: freeze the heap so a full collection cannot stall the emulator
        # that answers the follower from this process for longer than the SDK's ~50 ms reply timeout.
        gc.freeze()
        res["follower"] = []
        for rate in FOLLOWER_RATES:
            print(f"2. follower_arm rate:={rate:g}, {args.commands} commands at {COMMAND_HZ:g} Hz ...", flush=True)
            res["follower"].append(bench_follower(graph, tmp, cal_json, rate, args.commands, checks))
        print(f"3. realsense_camera synthetic for {args.camera_seconds:g} s ...", flush=True)
        res["camera"] = bench_camera(graph, args.camera_seconds, checks)
        return res
    finally:
        shutdown_backend()
        graph.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--read-seconds", type=float, default=5.0, help="1a: seconds of back-to-back reads (5)")
    parser.add_argument("--leader-seconds", type=float, default=5.0, help="1b: seconds measured per rate (5)")
    parser.add_argument("--commands", type=int, default=100, help="2: commands per follower rate (100)")
    parser.add_argument("--camera-seconds", type=float, default=8.0, help="3: seconds measured (8)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results to PATH")
    args = parser.parse_args()
    if min(args.read_seconds, args.leader_seconds, args.camera_seconds) <= 0 or args.commands < 2:
        parser.error("durations must be > 0 and --commands >= 2")
    checks = Checks()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="so100-driver-bench-") as tmp:
        try:
            res = run(args, Path(tmp), checks)
        except BenchError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
    res |= {
        "machine": machine_info(),
        "command": reproduce_command("benchmarks/driver.py"),
        "wall_s": time.monotonic() - started,
        "correctness": {"errors": checks.total, "by_benchmark": checks.count, "examples": checks.examples},
    }
    print(report(res, checks))
    print(f"whole run: {res['wall_s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 1 if checks.total else 0


if __name__ == "__main__":
    raise SystemExit(main())
