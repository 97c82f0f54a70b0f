"""Soak benchmark (issue 15): the demonstration graph for ``--minutes``, watched for leaks, drops and deadline misses.

The graph is ``so100 launch record source:=expert follower:=sim``: ``sim_bridge`` (the follower, two
640×480 cameras and depth at 30 Hz), ``scripted_expert`` as the leader (its ``/leader/joint_states``
remapped onto ``/follower/joint_commands``, as ``teleop_sim`` remaps a leader arm's) and the recorder
on (``autostart``: one episode per scene; the expert resets the sim after each). It is what
``teleop_sim record:=true`` runs with the expert in the leader arm's place (``teleop_sim`` has no
expert choice, and its recorder waits for a key or a service call per episode). ``episodes:=`` is
set far beyond what the run can finish, so the expert resets between episodes and nothing exits.
The run has its own router on a free port and a random ``ROS_DOMAIN_ID``.

Measured, from the first recorded episode's start for ``--minutes`` (a float):

- **memory and CPU per process** (``sim_bridge``, ``scripted_expert``, ``recorder``, the ``so100
  launch`` supervisor, the router), sampled with psutil every ``--sample-period`` s, each process
  found by its ``__node:=`` name: RSS, CPU % of one core, threads, open files;
- **drops**: a monitor in this process subscribes (plain zenoh, no executor) to the joint states,
  the joint commands, every camera topic and ``/episode/scene``, and reads rmw_zenoh's attachment
  of each sample: the publisher's sequence number (so published − received = lost, exactly) and
  its publish time. Each saved episode is read back in full (in a worker process) and compared
  with what the monitor saw in the episode's window (header stamps): messages the recorder lost;
  the follower's joint states, one per physics tick, must be contiguous in the bag;
- **deadline misses**: joint-state inter-arrival gaps over 2 periods (20 ms) at the monitor, joint
  states published over 20 ms after their tick's time, camera frames the sim did not publish on
  its 33.3 Hz schedule (physics catch-up after a late tick), gaps over 20 ms in the expert's
  100 Hz command stream outside episode boundaries, and the sim's real-time factor (its log);
- **episodes**: each one's completeness, success, duration, message rates, and whether it reads
  back (every message, counts equal to ``episode.json`` and ``metadata.yaml``, the last message of
  each topic decodes, images of the configured size). Once read back, an episode's bag is deleted
  (640×480 records ~80 MB/s) unless ``--keep-episodes``; its folder and ``episode.json`` stay, so
  the recorder, which names an episode one past the highest index in ``out_dir``, never reuses a name.

Targets: RSS growth < 20 MB per process from the first minute to the last (medians of each
minute's samples; the least-squares slope is printed beside it), 0 messages lost (monitor and
recorder), every episode reads back, the graph stays up. A missed target prints FAIL and exits
0; a run that could not be measured (graph never started) exits 1.

    .venv/bin/python benchmarks/soak.py [--minutes 30] [--sample-period 5] [--json out.json]
        [--out-dir DIR] [--keep-episodes] [--width 640 --height 480] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import struct
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from machine import machine_info, reproduce_command

from so100_common import names
from so100_common.testing import BIN, Graph, Proc

ROOT = Path(__file__).resolve().parents[1]
NODES = ("sim_bridge", "scripted_expert", "recorder")
GRAPH_PROCS = (*NODES, "launch", "router")  # the processes the memory target applies to
RATE_HZ = 100.0  # sim_bridge's physics and joint-state rate (its default; the graph leaves it)
TICK_NS = round(1e9 / RATE_HZ)
CAMERA_EVERY = 3  # sim_bridge renders on ticks divisible by round(100 / 30)
COMMAND_RATE_HZ = 100.0  # scripted_expert's default rate
DEADLINE_PERIODS = 2  # a gap over this many periods is a deadline miss
RSS_GROWTH_LIMIT_MB = 20.0
STARTUP_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
SCAN_PERIOD_S = 2.0
EPISODES = 10**6  # "forever": the expert resets the sim between episodes only when episodes > 0

JS, CMD, SCENE = names.FOLLOWER_JOINT_STATES, names.FOLLOWER_JOINT_COMMANDS, names.EPISODE_SCENE
IMAGES = (names.camera_image_topic("overhead"), names.camera_image_topic("wrist"),
          names.camera_depth_topic("overhead"))
INFOS = (names.camera_info_topic("overhead"), names.camera_info_topic("wrist"))
CAMERA_TOPICS = (*IMAGES, *INFOS)
TOPICS: dict[str, str] = {
    JS: "sensor_msgs/msg/JointState",
    CMD: "sensor_msgs/msg/JointState",
    **dict.fromkeys(IMAGES, "sensor_msgs/msg/Image"),
    **dict.fromkeys(INFOS, "sensor_msgs/msg/CameraInfo"),
    SCENE: "std_msgs/msg/String",
}
HEADER_TOPICS = (JS, CMD, *CAMERA_TOPICS)  # messages whose header stamp identifies them
SHORT = {JS: "joint_states", CMD: "joint_commands", IMAGES[0]: "overhead", IMAGES[1]: "wrist",
         IMAGES[2]: "depth", INFOS[0]: "overhead_info", INFOS[1]: "wrist_info", SCENE: "scene"}
_STAMP = struct.Struct("<iI")  # CDR: 4-byte encapsulation header, then header.stamp (sec, nanosec)
LOG_LINE = re.compile(r"^\[(?P<label>\w+)\] \[(?P<level>[A-Z]+)\] \[(?P<t>[\d.]+)\] \[[^\]]*\]: (?P<text>.*)$")
RECORDER_SAVED = re.compile(r"^saved (?P<path>\S+) \(")
SIM_REPORT = re.compile(r"simulated (?P<sim>[\d.]+) s in (?P<wall>[\d.]+) s")
EXPERT_EPISODE = re.compile(r"episode \d+/\d+ \(seed -?\d+\): (?P<result>success|no success)")


def header_stamp(raw: bytes | memoryview) -> int:
    sec, nsec = _STAMP.unpack_from(raw, 4)
    return sec * 1_000_000_000 + nsec


# ---------------------------------------------------------------- the monitor
class Stream:
    """Every sample the monitor received on one topic: publisher, sequence number, publish/receive times, stamp."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.header = topic in HEADER_TOPICS
        self.lock = threading.Lock()
        self.gids: list[bytes] = []
        self.gid, self.seq = array("q"), array("q")
        self.pub_ns, self.rx_ns, self.stamp_ns = array("q"), array("q"), array("q")
        self.unreadable = 0

    def on_sample(self, sample: Any) -> None:
        """zenoh's callback thread: decode the 33-byte attachment and the header stamp, nothing more."""
        from so100_common.transport.zenoh_wire import decode_attachment

        rx = time.time_ns()
        try:
            seq, pub, gid = decode_attachment(sample.attachment.to_bytes())
            stamp = header_stamp(sample.payload.to_bytes()) if self.header else 0
        except Exception:  # noqa: BLE001 - counted: a sample the monitor cannot identify
            self.unreadable += 1
            return
        with self.lock:
            if gid not in self.gids:
                self.gids.append(gid)
            self.gid.append(self.gids.index(gid))
            self.seq.append(seq)
            self.pub_ns.append(pub)
            self.rx_ns.append(rx)
            self.stamp_ns.append(stamp)

    def snapshot(self) -> dict[str, np.ndarray]:
        with self.lock:
            return {k: np.array(getattr(self, k), dtype=np.int64) for k in ("gid", "seq", "pub_ns", "rx_ns",
                                                                            "stamp_ns")}


class Monitor:
    """A zenoh session of this process subscribed to the watched topics (keys as rmw_zenoh names them)."""

    def __init__(self) -> None:
        import zenoh

        from so100_common.transport import zenoh_config
        from so100_common.transport.zenoh_wire import topic_key

        self.session = zenoh.open(zenoh_config.build_config())
        domain = zenoh_config.domain_id()
        self.streams = {t: Stream(t) for t in TOPICS}
        self.subs = [self.session.declare_subscriber(topic_key(domain, t, typ), self.streams[t].on_sample)
                     for t, typ in TOPICS.items()]

    def close(self) -> None:
        for sub in self.subs:
            sub.undeclare()
        self.session.close()


# ---------------------------------------------------------------- processes
@dataclass
class ProcSeries:
    """psutil samples of one process: seconds since the start of the measurement, RSS, CPU seconds, threads, fds."""

    pid: int
    t: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    exited_at: float | None = None


class ProcWatch:
    def __init__(self, procs: dict[str, psutil.Process]) -> None:
        self.procs = procs
        self.series = {name: ProcSeries(p.pid) for name, p in procs.items()}

    def sample(self, t: float) -> None:
        for name, p in self.procs.items():
            s = self.series[name]
            if s.exited_at is not None:
                continue
            try:
                with p.oneshot():
                    cpu = p.cpu_times()
                    rss = p.memory_info().rss / 2**20
                    threads = p.num_threads()
                    fds = p.num_fds()
            except psutil.Error:
                s.exited_at = t
                continue
            s.t.append(t)
            s.rss_mb.append(rss)
            s.cpu_s.append(cpu.user + cpu.system)
            s.threads.append(threads)
            s.fds.append(fds)


def find_graph_procs(launch: Proc, router: Proc, timeout: float = 60.0) -> dict[str, psutil.Process]:
    """The graph's processes by name: each node by ``__node:=<name>`` in its command line."""
    root = psutil.Process(launch.popen.pid)
    deadline = time.monotonic() + timeout
    found: dict[str, psutil.Process] = {}
    while len(found) < len(NODES):
        for child in root.children(recursive=True):
            try:
                cmd = child.cmdline()
            except psutil.Error:
                continue
            for node in NODES:
                if f"__node:={node}" in cmd:
                    found[node] = child
        if time.monotonic() > deadline:
            raise RuntimeError(f"graph processes not found after {timeout:g} s: have {sorted(found)}\n"
                               + launch.output[-3000:])
        time.sleep(0.2)
    return {**found, "launch": root, "router": psutil.Process(router.popen.pid)}


# ---------------------------------------------------------------- episodes (read back in a worker process)
def read_episode(path: str, delete: bool, width: int, height: int) -> dict[str, Any]:
    """Read one saved episode back completely; its counts, header stamps per topic and the problems found."""
    from rosbags.rosbag2 import Reader

    from so100_common import messages

    p = Path(path)
    res: dict[str, Any] = {"name": p.name, "problems": [], "counts": {}, "stamps": {}}
    t_start = time.monotonic()
    try:
        meta = json.loads((p / "episode.json").read_text())
        res.update({k: meta.get(k) for k in ("complete", "success", "start_ns", "stop_ns", "stop_reason")})
        res["start"] = meta.get("start")
        if not meta.get("complete"):
            res["problems"].append("episode.json does not say complete")
        counts: Counter[str] = Counter()
        stamps: dict[str, array] = {t: array("q") for t in HEADER_TOPICS}
        last: dict[str, bytes] = {}
        with Reader(p) as reader:
            declared = {c.topic: c.msgcount for c in reader.connections}
            types = {c.topic: c.msgtype for c in reader.connections}
            for conn, _ts, raw in reader.messages():
                counts[conn.topic] += 1
                if conn.topic in stamps:
                    stamps[conn.topic].append(header_stamp(raw))
                last[conn.topic] = bytes(raw)
        res["counts"] = {t: counts.get(t, 0) for t in declared}
        res["stamps"] = stamps
        if res["counts"] != declared:
            res["problems"].append(f"messages read {res['counts']} != metadata.yaml {declared}")
        in_json = meta.get("message_counts", {})
        if res["counts"] != in_json:
            res["problems"].append(f"messages read {res['counts']} != episode.json {in_json}")
        for topic, raw in last.items():
            msg = messages.deserialize(raw, types[topic])
            if types[topic] == "sensor_msgs/msg/Image":
                shape = messages.image_to_numpy(msg).shape
                if shape[:2] != (height, width):
                    res["problems"].append(f"{topic}: last image is {shape}, not {height}x{width}")
    except Exception as e:  # noqa: BLE001 - whatever stops the read is the finding
        res["problems"].append(f"{type(e).__name__}: {e}")
    finally:
        if delete:  # the bag only: the folder keeps its index taken (the recorder names the next one past the highest)
            for bag in p.glob("*.mcap"):
                bag.unlink(missing_ok=True)
    res["read_s"] = time.monotonic() - t_start
    res["reads_back"] = not res["problems"]
    return res


def saved_episodes(out_dir: Path) -> list[Path]:
    """Episodes the recorder has finished (``episode.json`` written; ``.partial`` folders are still open)."""
    if not out_dir.is_dir():
        return []
    return sorted(p for p in out_dir.iterdir() if re.fullmatch(r"episode_\d+", p.name) and (p / "episode.json").exists())


def _noop() -> int:
    return os.getpid()


# ---------------------------------------------------------------- analysis
def minute_index(ns: np.ndarray, t0_ns: int, n_min: int) -> np.ndarray:
    return np.clip((ns - t0_ns) // 60_000_000_000, 0, n_min - 1).astype(np.int64)


def per_minute(idx: np.ndarray, n_min: int, weights: np.ndarray | None = None) -> list[int]:
    return [int(v) for v in np.bincount(idx, weights=weights, minlength=n_min)[:n_min]]


def in_window(s: dict[str, np.ndarray], t0_ns: int, t1_ns: int) -> dict[str, np.ndarray]:
    keep = (s["rx_ns"] >= t0_ns) & (s["rx_ns"] <= t1_ns)
    return {k: v[keep] for k, v in s.items()}


def loss_stats(s: dict[str, np.ndarray], t0_ns: int, n_min: int, period_s: float | None) -> dict[str, Any]:
    """Published (sequence span per publisher), received, lost, duplicates; per minute; inter-arrival gaps."""
    out: dict[str, Any] = {"received": len(s["seq"]), "published": 0, "lost": 0, "duplicates": 0,
                           "publishers": len(set(s["gid"].tolist()))}
    lost_min = np.zeros(n_min, dtype=np.int64)
    for g in set(s["gid"].tolist()):
        sel = np.flatnonzero(s["gid"] == g)
        seq = s["seq"][sel]
        out["published"] += int(seq.max() - seq.min() + 1)
        d = np.diff(seq)
        out["duplicates"] += int((d <= 0).sum())
        lost = np.clip(d - 1, 0, None)
        out["lost"] += int(lost.sum())
        if len(lost):
            lost_min += np.bincount(minute_index(s["rx_ns"][sel[1:]], t0_ns, n_min), weights=lost,
                                    minlength=n_min)[:n_min].astype(np.int64)
    out["received_per_minute"] = per_minute(minute_index(s["rx_ns"], t0_ns, n_min), n_min)
    out["lost_per_minute"] = [int(v) for v in lost_min]
    if period_s is not None and len(s["rx_ns"]) > 1:
        gaps = np.diff(np.sort(s["rx_ns"])) / 1e6
        late = gaps > DEADLINE_PERIODS * period_s * 1e3
        out["rx_gap_max_ms"] = float(gaps.max())
        out["rx_gaps_over_2_periods"] = int(late.sum())
        out["rx_gaps_over_2_periods_per_minute"] = per_minute(
            minute_index(np.sort(s["rx_ns"])[1:][late], t0_ns, n_min), n_min)
    return out


def sim_epoch(js: dict[str, np.ndarray]) -> tuple[int, int]:
    """sim_bridge's tick-0 time: joint state ``seq`` (one per tick) is stamped epoch + seq·10 ms.

    Returns the epoch and how many states do not fit it (stamps clamped to the present, or a second publisher).
    """
    if not len(js["seq"]):
        return 0, 0
    offsets = js["stamp_ns"] - js["seq"] * TICK_NS
    values, counts = np.unique(offsets, return_counts=True)
    epoch = int(values[np.argmax(counts)])
    return epoch, int((offsets != epoch).sum())


def ticks(stamps: np.ndarray, epoch: int) -> np.ndarray:
    """The physics tick of each stamp. Rounded up: sim_bridge stamps a tick that ran ahead of the wall clock with
    the present instead (never later than now), which lies within the tick before it."""
    return -((epoch - stamps) // TICK_NS)


def camera_schedule(s: dict[str, np.ndarray], epoch: int, t0_ns: int, n_min: int) -> dict[str, Any]:
    """Frames the sim skipped: camera ticks due (divisible by 3) between two received frames minus frames published
    between them (their sequence numbers); frames published off the schedule (a catch-up step's last tick)."""
    if len(s["seq"]) < 2:
        return {"skipped_by_sim": 0, "skipped_per_minute": [0] * n_min, "off_schedule": 0}
    order = np.argsort(s["seq"], kind="stable")
    k, seq, rx = ticks(s["stamp_ns"][order], epoch), s["seq"][order], s["rx_ns"][order]
    due = np.diff(k // CAMERA_EVERY)
    skipped = np.clip(due - np.diff(seq), 0, None)
    return {"skipped_by_sim": int(skipped.sum()),
            "skipped_per_minute": per_minute(minute_index(rx[1:], t0_ns, n_min), n_min, skipped),
            "off_schedule": int((k % CAMERA_EVERY != 0).sum())}


def pct(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def joint_state_lateness(js: dict[str, np.ndarray], epoch: int, t0_ns: int, n_min: int) -> dict[str, Any]:
    """Publish time − the tick's own time (ms): how far behind the wall clock the sim published each state."""
    late = (js["pub_ns"] - (epoch + js["seq"] * TICK_NS)) / 1e6
    idx = minute_index(js["rx_ns"], t0_ns, n_min)
    over = late > DEADLINE_PERIODS * 1e3 / RATE_HZ
    return {"p50_ms": pct(late, 50), "p99_ms": pct(late, 99), "max_ms": float(late.max()) if len(late) else None,
            "over_2_periods": int(over.sum()), "over_2_periods_per_minute": per_minute(idx[over], n_min),
            "p99_ms_per_minute": [pct(late[idx == m], 99) for m in range(n_min)]}


def command_gaps(cmd: dict[str, np.ndarray], scene: dict[str, np.ndarray], t0_ns: int, n_min: int) -> dict[str, Any]:
    """Gaps over 2 periods between the expert's commands (publish times), apart from those spanning a new scene
    (the expert pauses to reset the sim and plan at every episode boundary)."""
    pub = np.sort(cmd["pub_ns"])
    if len(pub) < 2:
        return {"missed": 0, "missed_per_minute": [0] * n_min, "boundary_pauses": 0}
    gaps = np.diff(pub)
    scenes = np.sort(scene["pub_ns"])
    spans_scene = np.searchsorted(scenes, pub[1:], side="right") > np.searchsorted(scenes, pub[:-1], side="right")
    late = gaps > DEADLINE_PERIODS * 1e9 / COMMAND_RATE_HZ
    missed = late & ~spans_scene
    return {"missed": int(missed.sum()), "max_gap_ms": float(gaps[missed].max() / 1e6) if missed.any() else 0.0,
            "missed_per_minute": per_minute(minute_index(pub[1:][missed], t0_ns, n_min), n_min),
            "boundary_pauses": int((late & spans_scene).sum()),
            "boundary_pause_max_ms": float(gaps[late & spans_scene].max() / 1e6) if (late & spans_scene).any()
            else 0.0}


def recorder_losses(ep: dict[str, Any], full: dict[str, dict[str, np.ndarray]], epoch: int) -> dict[str, Any]:
    """What the recorder lost in one episode, per topic, between the bag's first and last stamp of that topic.

    Joint states exactly: the sim publishes one per tick (its sequence number), so every tick missing from the
    bag is lost; those the monitor lacks too were dropped on the way out of sim_bridge or on both links. Other
    topics: stamps the monitor received in that window and the bag lacks (exact where the monitor lost none).
    """
    lost: dict[str, int] = {}
    monitor_missed: dict[str, int] = {}
    lost_by_both = 0
    for topic in HEADER_TOPICS:
        bag = np.asarray(ep["stamps"].get(topic, array("q")), dtype=np.int64)
        if not len(bag):
            continue
        seen = full[topic]["stamp_ns"]
        window = np.unique(seen[(seen >= bag.min()) & (seen <= bag.max())])
        lost[topic] = int(len(np.setdiff1d(window, bag)))
        monitor_missed[topic] = int(len(np.setdiff1d(bag, window)))
        if topic == JS:
            in_bag = np.unique(ticks(bag, epoch))
            missing = np.setdiff1d(np.arange(in_bag.min(), in_bag.max() + 1), in_bag)
            lost[topic] = int(len(missing))
            lost_by_both = int(len(np.setdiff1d(missing, full[JS]["seq"])))
    return {"lost": lost, "lost_total": sum(lost.values()), "joint_states_lost_by_monitor_too": lost_by_both,
            "seen_only_by_recorder": monitor_missed}


def memory_figures(s: ProcSeries, duration_s: float) -> dict[str, Any]:
    """RSS at the start (median over the first minute) and end (median over the last minute), growth, slope."""
    w = min(60.0, duration_s / 2)
    t, rss = np.asarray(s.t), np.asarray(s.rss_mb)
    first, last = rss[t < w], rss[t >= duration_s - w]
    out: dict[str, Any] = {"window_s": w, "peak_mb": float(rss.max()) if len(rss) else None}
    if len(first) and len(last):
        out.update(first_mb=float(np.median(first)), last_mb=float(np.median(last)))
        out["growth_mb"] = out["last_mb"] - out["first_mb"]
    after = t >= w
    if after.sum() >= 3 and np.ptp(t[after]) > 0:
        out["slope_mb_per_min"] = float(np.polyfit(t[after] / 60, rss[after], 1)[0])
    out["threads"] = [s.threads[0], s.threads[-1]] if s.threads else None
    out["fds"] = [s.fds[0], s.fds[-1]] if s.fds else None
    if len(s.t) > 1:
        out["cpu_percent"] = 100 * (s.cpu_s[-1] - s.cpu_s[0]) / (s.t[-1] - s.t[0])
    return out


def minute_rows(s: ProcSeries, n_min: int) -> list[dict[str, float | None]]:
    """Per minute: RSS at its last sample, CPU % of one core over it."""
    rows: list[dict[str, float | None]] = []
    t = np.asarray(s.t)
    for m in range(n_min):
        inside = np.flatnonzero((t >= 60 * m) & (t <= 60 * (m + 1) + 1e-6))
        if not len(inside):
            rows.append({"rss_mb": None, "cpu_percent": None})
            continue
        a = max(int(inside[0]) - 1, 0)  # the sample before the minute, so its first interval counts
        b = int(inside[-1])
        cpu = 100 * (s.cpu_s[b] - s.cpu_s[a]) / (s.t[b] - s.t[a]) if b > a else None
        rows.append({"rss_mb": s.rss_mb[b], "cpu_percent": cpu})
    return rows


def log_figures(lines: list[str], t0: float, t1: float, n_min: int) -> dict[str, Any]:
    """From the graph's output: sim real-time factor per 5-s report, expert episodes, warnings and errors."""
    rtf_min: list[float | None] = [None] * n_min
    prev: tuple[float, float] | None = None
    expert: Counter[str] = Counter()
    saved: list[str] = []
    warnings: Counter[str] = Counter()
    examples: list[str] = []
    for line in lines:
        m = LOG_LINE.match(line)
        if not m:
            continue
        t = float(m["t"])
        label, text = m["label"], m["text"]
        if label == "sim_bridge" and (r := SIM_REPORT.search(text)):
            sim, wall = float(r["sim"]), float(r["wall"])
            if prev is not None and wall > prev[1] and t0 <= t <= t1 + 5:
                rtf = (sim - prev[0]) / (wall - prev[1])
                i = min(max(int((t - t0) // 60), 0), n_min - 1)
                rtf_min[i] = rtf if rtf_min[i] is None else min(rtf_min[i], rtf)  # type: ignore[type-var]
            prev = (sim, wall)
        if label == "scripted_expert" and t0 <= t <= t1 and (e := EXPERT_EPISODE.search(text)):
            expert[e["result"]] += 1
        if label == "recorder" and (saved_line := RECORDER_SAVED.match(text)):
            saved.append(Path(saved_line["path"]).name)
        if m["level"] in ("WARNING", "ERROR", "CRITICAL") and t0 <= t <= t1:
            warnings[f"{label} {m['level']}"] += 1
            if len(examples) < 10:
                examples.append(line[:300])
    rtfs = [r for r in rtf_min if r is not None]
    return {"rtf_min_per_minute": rtf_min, "rtf_min": min(rtfs) if rtfs else None,
            "expert_episodes": dict(expert), "recorder_saved": saved, "warnings": dict(warnings),
            "warning_examples": examples}


# ---------------------------------------------------------------- the run
def run(args: argparse.Namespace) -> dict[str, Any]:
    out_dir: Path = args.out_dir or Path(tempfile.mkdtemp(prefix="so100_soak_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    graph = Graph()
    os.environ.update({k: graph.env[k] for k in ("ROS_DOMAIN_ID", "ZENOH_CONFIG_OVERRIDE", "SO100_TRANSPORT")})
    # the read-back worker yields to the monitor (same session, so the same scheduler group)
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=os.nice,
                               initargs=(10,))
    checker_pid = pool.submit(_noop).result(timeout=60)  # started (and its imports paid) before measuring
    monitor = Monitor()
    launch_cmd = [str(BIN / "so100"), "launch", "record", "source:=expert", "follower:=sim",
                  f"episodes:={EPISODES}", f"out_dir:={out_dir}", f"width:={args.width}", f"height:={args.height}",
                  f"seed:={args.seed}"]
    launch = graph.start(launch_cmd)
    futures: dict[str, Future] = {}
    res: dict[str, Any] = {"graph": " ".join(["so100", *launch_cmd[1:]]), "minutes": args.minutes,
                           "sample_period_s": args.sample_period, "loadavg_start": os.getloadavg()}
    try:
        procs = find_graph_procs(launch, graph.router)
        procs["monitor"] = psutil.Process()
        procs["checker"] = psutil.Process(checker_pid)
        watch = ProcWatch(procs)
        try:
            first = launch.wait_output("recording ", STARTUP_TIMEOUT_S)
        except AssertionError as e:
            raise RuntimeError(f"the graph did not start recording: {e}") from None
        t0, t0_ns = time.monotonic(), time.time_ns()
        t0_wall = time.time()
        res["startup"] = first
        duration = args.minutes * 60
        n_min = max(1, math.ceil(duration / 60 - 1e-9))
        print(f"measuring for {args.minutes:g} min from the first episode; out_dir {out_dir}", flush=True)
        next_sample, next_scan, next_minute = t0, t0, t0 + 60
        stopped_early = None
        while True:
            now = time.monotonic()
            if now >= next_sample:
                watch.sample(now - t0)
                next_sample += args.sample_period
            if now >= next_scan:
                for ep in saved_episodes(out_dir):
                    if ep.name not in futures:
                        futures[ep.name] = pool.submit(read_episode, str(ep), not args.keep_episodes, args.width,
                                                       args.height)
                next_scan = now + SCAN_PERIOD_S
            if now >= next_minute:
                progress(watch, monitor, futures, int(round((now - t0) / 60)))
                next_minute += 60
            if now - t0 >= duration:
                break
            if not launch.alive() or any(watch.series[n].exited_at is not None for n in GRAPH_PROCS):
                stopped_early = round(now - t0, 1)
                break
            time.sleep(max(0.0, min(next_sample, next_scan, t0 + duration) - time.monotonic()))
        t1, t1_ns, t1_wall = time.monotonic(), time.time_ns(), time.time()
        watch.sample(t1 - t0)
        res["measured_s"] = t1 - t0
        res["stopped_early_at_s"] = stopped_early
        res["graph_up"] = stopped_early is None
        code = launch.stop(timeout=STOP_TIMEOUT_S)
        res["launch_exit_code"] = code
        for ep in saved_episodes(out_dir):  # the episode the shutdown saved
            if ep.name not in futures:
                futures[ep.name] = pool.submit(read_episode, str(ep), not args.keep_episodes, args.width, args.height)
        res["partial_left"] = sorted(p.name for p in out_dir.glob("episode_*.partial"))
        episodes = [futures[k].result(timeout=300) for k in sorted(futures)]
        time.sleep(0.5)  # the last samples in flight
        res.update(analyse(monitor, watch, episodes, t0_ns, t1_ns, n_min, t1 - t0))
        res["logs"] = log_figures(launch.lines, t0_wall, t1_wall, n_min)
        res["loadavg_end"] = os.getloadavg()
        res["launch_tail"] = launch.lines[-15:]
    finally:
        monitor.close()
        pool.shutdown(cancel_futures=True)
        graph.close()
        if not args.keep_episodes and args.out_dir is None:
            shutil.rmtree(out_dir, ignore_errors=True)
    res["out_dir"] = str(out_dir)
    res["targets"] = targets(res)
    return res


def progress(watch: ProcWatch, monitor: Monitor, futures: dict[str, Future], minute: int) -> None:
    """One line a minute while the soak runs."""
    rss = ", ".join(f"{n} {s.rss_mb[-1]:.0f}" for n, s in watch.series.items() if s.rss_mb and n in GRAPH_PROCS)
    rx = monitor.streams[JS].snapshot()
    lost = loss_stats(rx, 0, 1, None)["lost"] if len(rx["seq"]) else 0
    done = [f.result() for f in futures.values() if f.done()]
    bad = sum(not e["reads_back"] for e in done)
    print(f"  minute {minute}: RSS MB {rss}; joint states received {len(rx['seq'])}, lost {lost}; "
          f"episodes {len(futures)} ({len(done)} read back, {bad} failed)", flush=True)


def analyse(monitor: Monitor, watch: ProcWatch, episodes: list[dict[str, Any]], t0_ns: int, t1_ns: int,
            n_min: int, duration_s: float) -> dict[str, Any]:
    full = {t: s.snapshot() for t, s in monitor.streams.items()}
    win = {t: in_window(s, t0_ns, t1_ns) for t, s in full.items()}
    epoch, off_epoch = sim_epoch(full[JS])
    periods = {JS: 1 / RATE_HZ, CMD: 1 / COMMAND_RATE_HZ, **dict.fromkeys(CAMERA_TOPICS, CAMERA_EVERY / RATE_HZ),
               SCENE: None}
    streams = {t: loss_stats(win[t], t0_ns, n_min, periods[t]) for t in TOPICS}
    for t in TOPICS:
        streams[t]["unreadable"] = monitor.streams[t].unreadable
    for t in CAMERA_TOPICS:
        streams[t].update(camera_schedule(win[t], epoch, t0_ns, n_min))
    deadlines = {
        "joint_state_rx_gaps_over_20ms": streams[JS].get("rx_gaps_over_2_periods", 0),
        "joint_state_rx_gap_max_ms": streams[JS].get("rx_gap_max_ms"),
        "joint_state_publish_lateness": joint_state_lateness(win[JS], epoch, t0_ns, n_min),
        "camera_frames_skipped_by_sim": {SHORT[t]: streams[t]["skipped_by_sim"] for t in IMAGES},
        "expert_command_gaps": command_gaps(win[CMD], full[SCENE], t0_ns, n_min),
        "joint_states_off_tick": off_epoch,
    }
    for ep in episodes:
        ep["recorder"] = recorder_losses(ep, full, epoch) if ep.get("stamps") else None
        dur = ((ep.get("stop_ns") or 0) - (ep.get("start_ns") or 0)) / 1e9
        ep["duration_s"] = dur
        ep["rate_hz"] = {SHORT[t]: n / dur for t, n in ep["counts"].items() if t in HEADER_TOPICS and dur > 0}
        ep["minute"] = int(minute_index(np.array([ep.get("stop_ns") or t1_ns]), t0_ns, n_min)[0])
        ep["after_end"] = (ep.get("stop_ns") or 0) > t1_ns
        del ep["stamps"]
    nodes = {}
    for name, s in watch.series.items():
        nodes[name] = memory_figures(s, duration_s)
        nodes[name]["per_minute"] = minute_rows(s, n_min)
        nodes[name]["samples"] = {"t": s.t, "rss_mb": s.rss_mb}
        nodes[name]["exited_at_s"] = s.exited_at
    return {"nodes": nodes, "streams": streams, "deadlines": deadlines, "episodes": episode_summary(episodes, n_min),
            "n_minutes": n_min}


def episode_summary(episodes: list[dict[str, Any]], n_min: int) -> dict[str, Any]:
    ok = [e for e in episodes if e["reads_back"]]
    rates: dict[str, list[float]] = {}
    for e in episodes:
        if e["duration_s"] >= 2.0:  # a stub saved at shutdown says little about rates
            for k, v in e["rate_hz"].items():
                rates.setdefault(k, []).append(v)
    lost: Counter[str] = Counter()
    only_recorder: Counter[str] = Counter()
    for e in episodes:
        lost.update((e["recorder"] or {}).get("lost") or {})
        only_recorder.update((e["recorder"] or {}).get("seen_only_by_recorder") or {})
    return {
        "recorded": len(episodes), "read_back": len(ok), "complete": sum(bool(e.get("complete")) for e in episodes),
        "success": sum(bool(e.get("success")) for e in episodes),
        "stop_reasons": dict(Counter(str(e.get("stop_reason")) for e in episodes)),
        "duration_s": [min((e["duration_s"] for e in episodes), default=None),
                       statistics.median([e["duration_s"] for e in episodes]) if episodes else None,
                       max((e["duration_s"] for e in episodes), default=None)],
        "rate_hz_min_median": {k: [min(v), statistics.median(v)] for k, v in rates.items()},
        "recorder_lost": {SHORT[t]: lost[t] for t in HEADER_TOPICS},
        "recorder_lost_total": sum(lost.values()),
        "recorded_but_monitor_lost": {SHORT[t]: only_recorder[t] for t in HEADER_TOPICS},
        "joint_states_lost_by_monitor_too": sum((e["recorder"] or {}).get("joint_states_lost_by_monitor_too", 0)
                                                for e in episodes),
        "read_s_median": statistics.median([e["read_s"] for e in episodes]) if episodes else None,
        "saved_per_minute": per_minute(np.array([e["minute"] for e in episodes if not e["after_end"]], dtype=np.int64),
                                       n_min),
        "failed_per_minute": per_minute(np.array([e["minute"] for e in episodes if not e["reads_back"]],
                                                 dtype=np.int64), n_min),
        "failures": [failure(e) for e in episodes if not e["reads_back"] or (e["recorder"] or {}).get("lost_total")],
        "each": episodes,
    }


def failure(e: dict[str, Any]) -> dict[str, Any]:
    """An episode that failed a check, with only what went wrong."""
    rec = e["recorder"] or {}
    return {"name": e["name"], "problems": e["problems"],
            "recorder_lost": {SHORT[t]: n for t, n in (rec.get("lost") or {}).items() if n},
            "joint_states_lost_by_monitor_too": rec.get("joint_states_lost_by_monitor_too")}


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name in GRAPH_PROCS:
        g = res.get("nodes", {}).get(name, {}).get("growth_mb")
        out.append({"target": f"RSS growth < {RSS_GROWTH_LIMIT_MB:g} MB: {name}", "value": g,
                    "pass": g is not None and g < RSS_GROWTH_LIMIT_MB})
    streams = res.get("streams", {})
    lost = {SHORT[t]: s["lost"] + s["duplicates"] + s["unreadable"] for t, s in streams.items()}
    out.append({"target": "0 messages lost between the nodes and the monitor", "value": lost,
                "pass": bool(streams) and not any(lost.values())})
    ep = res.get("episodes", {})
    rec = ep.get("recorder_lost_total", 0)
    out.append({"target": "0 messages lost by the recorder", "value": rec, "pass": bool(ep) and rec == 0})
    logged = res.get("logs", {}).get("recorder_saved", [])
    out.append({"target": "every episode reads back", "value": f"{ep.get('read_back')}/{ep.get('recorded')} "
                f"(the recorder logged {len(logged)} saved)",
                "pass": bool(ep.get("recorded")) and ep.get("read_back") == ep.get("recorded") == len(logged)
                and not res.get("partial_left")})
    out.append({"target": "graph up throughout", "value": res.get("stopped_early_at_s"),
                "pass": bool(res.get("graph_up"))})
    return out


# ---------------------------------------------------------------- report
def fmt(v: float | None, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


def report(res: dict[str, Any]) -> None:
    n_min = res["n_minutes"]
    print(f"\n# soak: {res['graph']}")
    print(f"measured {res['measured_s'] / 60:.2f} min (from the first episode's start), psutil every "
          f"{res['sample_period_s']:g} s; load average {res['loadavg_start'][0]:.2f} at start, "
          f"{res['loadavg_end'][0]:.2f} at end")
    print("\n## per minute: RSS MB (CPU % of one core)\n")
    shown = [n for n in (*GRAPH_PROCS, "monitor", "checker") if n in res["nodes"]]
    print("| min | " + " | ".join(shown) + " |")
    print("|---" * (len(shown) + 1) + "|")
    for m in range(n_min):
        cells = []
        for n in shown:
            row = res["nodes"][n]["per_minute"][m]
            cells.append(f"{fmt(row['rss_mb'])} ({fmt(row['cpu_percent'], '.1f')})")
        print(f"| {m + 1} | " + " | ".join(cells) + " |")
    s, d, ep = res["streams"], res["deadlines"], res["episodes"]
    print("\n## per minute: messages and deadlines\n")
    cols = ["min", "js rx", "js lost", "js gaps>20ms", "js late>20ms", "js late p99 ms", "frames rx", "frames lost",
            "frames skipped by sim", "cmd lost", "cmd gaps>20ms", "sim RTF min", "episodes saved", "read-back failed"]
    print("| " + " | ".join(cols) + " |")
    print("|---" * len(cols) + "|")
    lat = d["joint_state_publish_lateness"]
    for m in range(n_min):
        row = [m + 1, s[JS]["received_per_minute"][m], s[JS]["lost_per_minute"][m],
               s[JS].get("rx_gaps_over_2_periods_per_minute", [0] * n_min)[m], lat["over_2_periods_per_minute"][m],
               fmt(lat["p99_ms_per_minute"][m], ".1f"), sum(s[t]["received_per_minute"][m] for t in IMAGES),
               sum(s[t]["lost_per_minute"][m] for t in IMAGES), sum(s[t]["skipped_per_minute"][m] for t in IMAGES),
               s[CMD]["lost_per_minute"][m], d["expert_command_gaps"]["missed_per_minute"][m],
               fmt(res["logs"]["rtf_min_per_minute"][m], ".2f"), ep["saved_per_minute"][m], ep["failed_per_minute"][m]]
        print("| " + " | ".join(str(c) for c in row) + " |")
    print("\n## memory per process (first minute → last minute, medians)\n")
    print("| process | first MB | last MB | growth MB | slope MB/min | peak MB | CPU % | threads | open fds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in shown:
        f = res["nodes"][n]
        print(f"| {n} | {fmt(f.get('first_mb'), '.1f')} | {fmt(f.get('last_mb'), '.1f')} | "
              f"{fmt(f.get('growth_mb'), '+.1f')} | {fmt(f.get('slope_mb_per_min'), '+.2f')} | "
              f"{fmt(f.get('peak_mb'), '.1f')} | {fmt(f.get('cpu_percent'), '.1f')} | "
              f"{'→'.join(map(str, f['threads'] or []))} | {'→'.join(map(str, f['fds'] or []))} |")
    print("\n## messages (published = the publisher's sequence span seen by the monitor)\n")
    print("| topic | published | monitor received | monitor lost | dup | recorder lost | in a bag, lost by the monitor "
          "| rx gaps > 2 periods | max rx gap ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t, v in s.items():
        print(f"| {t} | {v['published']} | {v['received']} | {v['lost']} | {v['duplicates']} | "
              f"{ep['recorder_lost'].get(SHORT[t], '-')} | {ep['recorded_but_monitor_lost'].get(SHORT[t], '-')} | "
              f"{v.get('rx_gaps_over_2_periods', '-')} | {fmt(v.get('rx_gap_max_ms'), '.1f')} |")
    cg = d["expert_command_gaps"]
    print(f"\ndeadlines: joint-state rx gaps > 20 ms: {d['joint_state_rx_gaps_over_20ms']} (max "
          f"{fmt(d['joint_state_rx_gap_max_ms'], '.1f')} ms); published > 20 ms after their tick: "
          f"{lat['over_2_periods']} (lateness p50 {fmt(lat['p50_ms'], '.2f')} / p99 {fmt(lat['p99_ms'], '.2f')} / max "
          f"{fmt(lat['max_ms'], '.1f')} ms); camera frames skipped by the sim: {d['camera_frames_skipped_by_sim']}; "
          f"expert command gaps > 20 ms: {cg['missed']} (max {cg.get('max_gap_ms', 0):.1f} ms; plus "
          f"{cg['boundary_pauses']} episode-boundary pauses up to {cg['boundary_pause_max_ms']:.0f} ms); "
          f"sim real-time factor min {fmt(res['logs']['rtf_min'], '.2f')} (5-s reports)")
    print(f"\nepisodes: {ep['recorded']} saved, {ep['complete']} complete, {ep['read_back']} read back, "
          f"{ep['success']} successful; stop reasons {ep['stop_reasons']}; duration min/median/max "
          f"{'/'.join(fmt(x, '.1f') for x in ep['duration_s'])} s; rates min/median Hz "
          + ", ".join(f"{k} {v[0]:.1f}/{v[1]:.1f}" for k, v in ep["rate_hz_min_median"].items())
          + f"; read-back {fmt(ep['read_s_median'], '.2f')} s each (median)")
    print(f"recorder: lost {ep['recorder_lost_total']} (joint states lost by the monitor too: "
          f"{ep['joint_states_lost_by_monitor_too']}); expert episodes {res['logs']['expert_episodes']}; launch exit code "
          f"{res['launch_exit_code']}; partial episodes left {res['partial_left'] or 'none'}")
    if res["logs"]["warnings"]:
        print(f"warnings/errors in the graph's output: {res['logs']['warnings']}")
        for line in res["logs"]["warning_examples"]:
            print("  " + line)
    for f in ep["failures"][:10]:
        print(f"  episode problem: {f}")
    print("\n## targets\n")
    for t in res["targets"]:
        print(f"{'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {t['value']}")


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0, help="measured duration (default 30)")
    ap.add_argument("--sample-period", type=float, default=5.0, help="seconds between psutil samples (default 5)")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    ap.add_argument("--out-dir", type=Path, help="the recorder's out_dir (default: a temporary folder, removed)")
    ap.add_argument("--keep-episodes", action="store_true",
                    help="keep episodes after reading them back (640x480: ~80 MB per second recorded)")
    ap.add_argument("--width", type=int, default=640, help="camera width (default 640)")
    ap.add_argument("--height", type=int, default=480, help="camera height (default 480)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    args = ap.parse_args()
    if not args.minutes > 0 or not args.sample_period > 0:
        ap.error("--minutes and --sample-period must be > 0")
    command = reproduce_command("benchmarks/soak.py")
    info = machine_info()
    print(f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['platform']}, Python {info['python']}; "
          f"commit {info['commit']}")
    print(f"command: {command}", flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM stops the graph as Ctrl-C does
    try:
        res = run(args)
    except RuntimeError as e:
        print(f"soak not measured: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("soak interrupted; the graph was stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    res["machine"], res["command"] = info, command
    report(res)
    if args.keep_episodes:
        print(f"\nepisodes kept in {res['out_dir']}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
