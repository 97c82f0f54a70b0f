"""Recording benchmark (issue 6): recorder overhead with both cameras at 30 Hz, and conversion speed.

1. sim_bridge (real time, two 640×480 rgb8 cameras + overhead depth at 30 Hz) and the recorder run
   for one episode of ``--seconds``; a subscriber in this process counts what was published on each
   topic during the episode; the bag's counts are compared with it (dropped = published − recorded),
   and the recorder's CPU is sampled over the episode.
2. The episode is converted into a LeRobot dataset (two 480×640 videos at 30 fps) with each codec
   (AV1, LeRobot's default, and H.264); conversion speed in frames/s and as a multiple of real time.

    .venv/bin/python benchmarks/recording.py [--seconds 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from machine import machine_info, reproduce_command

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ["/follower/joint_states", "/cameras/overhead/image_raw", "/cameras/wrist/image_raw",
          "/cameras/overhead/depth/image_raw"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="episode length (default 10)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    from rosbags.rosbag2 import Reader

    from act_policy.bag_to_dataset import convert
    from so100_common import messages, names
    from so100_common.node import Node
    from so100_common.qos import SENSOR_DATA, QoS
    from so100_common.testing import BIN, Graph

    tmp = Path(tempfile.mkdtemp(prefix="so100_rec_bench_"))
    graph = Graph()
    os.environ.update({k: graph.env[k] for k in ("ROS_DOMAIN_ID", "ZENOH_CONFIG_OVERRIDE", "SO100_TRANSPORT")})
    res: dict[str, Any] = {}
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
        home = [0.0, 0.0, 0.0, 0.0, 0.0, 0.3]
        node.create_timer(1 / 50, lambda: cmd_pub.publish(messages.joint_state(names.JOINT_NAMES, home)))
        node.spin(timeout=2.0)
        rec = graph.start([str(BIN / "recorder"), "--ros-args", "-p", f"out_dir:={tmp / 'rec'}",
                           "-p", "episodes:=1", "-p", f"max_duration:={args.seconds}", "-p", "source:=expert",
                           "-p", "task:=hold the arm still"])
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
        node.spin(until=lambda: rec.popen.poll() is not None, timeout=args.seconds + 30)
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
        busy = [c for m, c in samples if m - t0 <= args.seconds]
        res["recorder"] = {
            "seconds": args.seconds,
            "published_seen_by_subscriber_in_bag_window": seen,
            "recorded": {t: recorded.get(t, 0) for t in TOPICS},
            "dropped": {t: max(0, seen[t] - recorded.get(t, 0)) for t in TOPICS},
            "bag_mb": sum(f.stat().st_size for f in episode.iterdir()) / 1e6,
            "cpu_percent": 100 * busy[-1] / (samples[len(busy) - 1][0] - t0) if busy else None,
        }
        node.destroy()

        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        res["conversion"] = {}
        for vcodec in ("libsvtav1", "h264"):
            t1 = time.monotonic()
            summary = convert([episode], tmp / f"dataset_{vcodec}", fps=30, progress=False, vcodec=vcodec)
            conv = time.monotonic() - t1
            assert summary.converted, summary.format()
            ds = LeRobotDataset("local/so100", root=tmp / f"dataset_{vcodec}")
            assert ds.num_frames == summary.frames and float(ds[0]["observation.images.overhead_cam"].std()) > 0.01
            videos_mb = sum(f.stat().st_size for f in (tmp / f"dataset_{vcodec}" / "videos").rglob("*.mp4")) / 1e6
            res["conversion"][vcodec] = {"frames": summary.frames, "seconds": conv,
                                         "frames_per_s": summary.frames / conv,
                                         "x_real_time": summary.frames / 30 / conv, "videos_mb": videos_mb}
    finally:
        graph.close()
        shutil.rmtree(tmp, ignore_errors=True)
    res["machine"] = machine_info()
    print(json.dumps(res, indent=2))
    print("command: " + reproduce_command("benchmarks/recording.py"))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
