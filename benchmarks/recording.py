"""Recording benchmark (issue 6): recorder overhead with both cameras at 30 Hz, and conversion speed.

1. sim_bridge (real time, two 640×480 rgb8 cameras + overhead depth at 30 Hz) and the recorder run
   for one episode of ``--seconds``; a subscriber in this process counts what was published on each
   topic during the episode; the bag's counts are compared with it (dropped = published − recorded),
   and the recorder's CPU is sampled over the episode.
2. The episode is converted into a LeRobot dataset (two 480×640 videos at 30 fps) with each codec
   (AV1, LeRobot's default, and H.264); conversion speed in frames/s and as a multiple of real time.

    .venv/bin/python benchmarks/recording.py [--seconds 10] [--runs 3] [--keep-bag DIR] [--json out.json]
    .venv/bin/python benchmarks/recording.py --bag DIR [--runs 3]   # conversion only, of a kept bag
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from machine import machine_info, reproduce_command

ROOT = Path(__file__).resolve().parents[1]
TOPICS = [
    "/follower/joint_states",
    "/cameras/overhead/image_raw",
    "/cameras/wrist/image_raw",
    "/cameras/overhead/depth/image_raw",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="episode length (default 10)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--runs", type=int, default=1, help="conversions per codec; the median is reported")
    ap.add_argument("--keep-bag", type=Path, help="copy the recorded episode here (for --bag)")
    ap.add_argument("--bag", type=Path, help="skip recording: convert this episode folder")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="so100_rec_bench_"))
    res: dict[str, Any] = {}
    try:
        if args.bag:
            episode = args.bag
        else:
            episode, res["recorder"] = record(args.seconds, tmp)
            if args.keep_bag:
                shutil.copytree(episode, args.keep_bag)
        res["conversion"] = conversion(episode, tmp, args.runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["machine"] = machine_info()
    print(json.dumps(res, indent=2))
    print("command: " + reproduce_command("benchmarks/recording.py"))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


def record(seconds: float, tmp: Path) -> tuple[Path, dict[str, Any]]:
    """Record one episode of ``seconds`` with sim_bridge and the recorder; the bag and its figures."""
    from rosbags.rosbag2 import Reader

    from so100_common import messages, names
    from so100_common.node import Node
    from so100_common.qos import SENSOR_DATA, QoS
    from so100_common.testing import BIN, Graph

    graph = Graph()
    os.environ.update({k: graph.env[k] for k in ("ROS_DOMAIN_ID", "ZENOH_CONFIG_OVERRIDE", "SO100_TRANSPORT")})
    try:
        bridge = graph.node("sim_bridge")
        bridge.wait_output("sim_bridge up", 60)
        node = Node("rec_bench_counter", argv=[])
        arrivals: dict[str, list[int]] = {t: [] for t in TOPICS}

        def counter(topic: str) -> Any:
            def cb(_: Any) -> None:
                arrivals[topic].append(time.time_ns())

            return cb

        for topic in TOPICS:
            typ = messages.JointState if topic == names.FOLLOWER_JOINT_STATES else messages.Image
            qos = QoS(depth=100) if topic == names.FOLLOWER_JOINT_STATES else SENSOR_DATA
            node.create_subscription(typ, topic, counter(topic), qos, raw=True)
        cmd_pub = node.create_publisher(messages.JointState, names.FOLLOWER_JOINT_COMMANDS, QoS(depth=10))
        t_start = time.monotonic()

        def command() -> None:
            # the arm sweeps (pan, lift, wrist, gripper) so that both videos hold motion, as a demonstration does
            w = 2 * math.pi * 0.2 * (time.monotonic() - t_start)
            pose = [
                0.6 * math.sin(w),
                0.3 * math.sin(0.7 * w),
                0.3 * math.sin(0.5 * w),
                0.4 * math.sin(w),
                0.0,
                0.3 + 0.2 * math.sin(1.3 * w),
            ]
            cmd_pub.publish(messages.joint_state(names.JOINT_NAMES, pose))

        node.create_timer(1 / 50, command)
        node.spin(timeout=2.0)
        rec = graph.start(
            [
                str(BIN / "recorder"),
                "--ros-args",
                "-p",
                f"out_dir:={tmp / 'rec'}",
                "-p",
                "episodes:=1",
                "-p",
                f"max_duration:={seconds}",
                "-p",
                "source:=expert",
                "-p",
                "task:=hold the arm still",
            ]
        )
        node.spin(timeout=2.0)
        start_client = node.create_client("std_srvs/srv/Trigger", names.RECORDER_START)
        assert start_client.wait_for_service(20), rec.output
        proc = psutil.Process(rec.popen.pid)
        cpu0 = proc.cpu_times()
        samples: list[tuple[float, float]] = []  # (monotonic, recorder cpu seconds) while it records

        def sample() -> None:
            try:
                t = proc.cpu_times()
                samples.append((time.monotonic(), t.user + t.system - cpu0.user - cpu0.system))
            except psutil.Error:
                pass

        node.create_timer(0.2, sample)
        t0 = time.monotonic()
        reply = start_client.call(timeout=10)
        assert reply.success, reply.message
        node.spin(until=lambda: rec.popen.poll() is not None, timeout=seconds + 30)
        code = rec.popen.wait(30)
        assert code == 0, rec.output
        episode = next((tmp / "rec").glob("episode_*"))
        with Reader(episode) as reader:
            recorded = {c.topic: c.msgcount for c in reader.connections}
            first, last = {}, {}
            for conn, stamp, _ in reader.messages():
                first.setdefault(conn.topic, stamp)
                last[conn.topic] = stamp
        # what the subscriber saw while the bag's connection was open, per topic (same wall clock)
        seen = {t: sum(first.get(t, 0) <= a <= last.get(t, 0) for a in arrivals[t]) for t in TOPICS}
        busy = [c for m, c in samples if m - t0 <= seconds]
        figures = {
            "seconds": seconds,
            "published_seen_by_subscriber_in_bag_window": seen,
            "recorded": {t: recorded.get(t, 0) for t in TOPICS},
            "dropped": {t: max(0, seen[t] - recorded.get(t, 0)) for t in TOPICS},
            "bag_mb": sum(f.stat().st_size for f in episode.iterdir()) / 1e6,
            "cpu_percent": 100 * busy[-1] / (samples[len(busy) - 1][0] - t0) if busy else None,
        }
        node.destroy()

    finally:
        graph.close()
    return episode, figures


def conversion(episode: Path, tmp: Path, runs: int) -> dict[str, Any]:
    """Convert ``episode`` ``runs`` times per codec; median wall and CPU seconds.

    Each dataset is first checked: it loads with stock ``LeRobotDataset``, holds every frame, and its
    decoded images match the bag's resampled images (PSNR over every 10th frame of each camera).
    """
    import resource

    import numpy as np
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from act_policy.bag_to_dataset import CAMERA_KEYS, _BagEpisode, convert
    from act_policy.resample import resample

    ep = _BagEpisode(episode, buffer_bytes=2**40)
    ep.scan()
    res = resample({t: ep.streams[t].times() for t in ep.topics}, 30)
    step = 10
    want = {k: np.stack([np.array(f[k]) for f in list(ep.frames(res.indices))[::step]]) for k in CAMERA_KEYS.values()}
    del ep

    def cpu_s() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    out: dict[str, Any] = {}
    for vcodec in ("h264", "libsvtav1"):
        times: list[float] = []
        cpus: list[float] = []
        for run in range(runs):
            root = tmp / f"dataset_{vcodec}_{run}"
            t1, c1 = time.monotonic(), cpu_s()
            summary = convert([episode], root, fps=30, progress=False, vcodec=vcodec)
            times.append(time.monotonic() - t1)
            cpus.append(cpu_s() - c1)
            assert summary.converted, summary.format()
            ds = LeRobotDataset("local/so100", root=root)
            assert ds.num_frames == summary.frames == len(next(iter(res.indices.values()))), summary.format()
            psnr = {}
            for key, ref in want.items():
                got = np.stack(
                    [(ds[k][key].numpy().transpose(1, 2, 0) * 255).round() for k in range(0, ds.num_frames, step)]
                )
                psnr[key.rsplit(".", 1)[1]] = float(10 * np.log10(255**2 / np.mean((got - ref) ** 2)))
            assert min(psnr.values()) > 30, psnr
            videos_mb = sum(f.stat().st_size for f in (root / "videos").rglob("*.mp4")) / 1e6
            shutil.rmtree(root)
        conv = statistics.median(times)
        out[vcodec] = {
            "frames": summary.frames,
            "seconds": conv,
            "seconds_each": times,
            "cpu_seconds": statistics.median(cpus),
            "frames_per_s": summary.frames / conv,
            "x_real_time": summary.frames / 30 / conv,
            "videos_mb": videos_mb,
            "psnr_db": psnr,
        }
    return out


if __name__ == "__main__":
    raise SystemExit(main())
