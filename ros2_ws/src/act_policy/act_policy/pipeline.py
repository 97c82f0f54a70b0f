"""``so100 pipeline``: the simulated demonstration pipeline in one command (the README's main job).

1. ``record`` graph: the scripted expert drives ``sim_bridge`` for N randomized episodes while the
   recorder saves one rosbag2 per episode (real processes over the zenoh router);
2. the bags become a LeRobot v3.0 dataset (:func:`act_policy.bag_to_dataset.convert`);
3. a summary: episodes, success, sync report, paths, how to look at the data, what to run next.

Each run writes a new folder ``<out>/run_<UTC time>/`` so running it again never overwrites.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from act_policy.recipes import CPU
from so100_common.launch_graph import evaluate, find_graph, load_graph, parse_launch_args
from so100_common.logs import setup_logging
from so100_common.supervisor import Supervisor

NEXT_STEPS = """\
look at it:
  videos:  {dataset}/videos/  (H.264 MP4 per camera; --vcodec libsvtav1 in `so100 dataset from-bags` for AV1)
  python:  {bin}python -c "from lerobot.datasets.lerobot_dataset import LeRobotDataset as D; \\
             print(D('local/so100', root='{dataset}'))"
  live:    {bin}so100 launch expert_sim      (then, in another terminal: {bin}so100 topic list)
next:
  more data:  {bin}so100 pipeline --episodes 50 --width 320 --height 240
  your own:   {bin}so100 launch record source:=leader follower:=sim leader_port:=/dev/ttyACM0
  train:      {bin}so100 train --dataset {dataset} --out runs/act_so100 --recipe cpu
                ({recipe}; `so100 train --help` shows its flags; the defaults are for a GPU)
  evaluate:   {bin}so100 eval runs/act_so100 --episodes 50
  deploy:     {bin}so100 launch act_sim checkpoint:=runs/act_so100"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="so100 pipeline",
        description="Record scripted-expert demonstrations in the simulator and convert them into a LeRobot "
                    "dataset, with no hardware. Each run writes <out>/run_<time>/{recordings,dataset}.",
    )
    ap.add_argument("--episodes", type=int, default=3, help="episodes to record (default 3)")
    ap.add_argument("--out", type=Path, default=Path("output"), help="parent folder of the run (default ./output)")
    ap.add_argument("--fps", type=int, default=30, help="dataset frame rate (default 30)")
    ap.add_argument("--width", type=int, default=640, help="camera width (default 640)")
    ap.add_argument("--height", type=int, default=480, help="camera height (default 480)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    ap.add_argument("--max-too-old", type=float, default=0.05, metavar="FRACTION",
                    help="reject an episode with more than this share of frames whose input is older than 2/fps "
                         "(default 0.05; `so100 dataset from-bags --max-too-old`)")
    args = ap.parse_args(argv)
    if args.episodes < 1:
        ap.error("--episodes must be at least 1")
    return args


def run(args: argparse.Namespace) -> int:
    from act_policy.bag_to_dataset import convert

    setup_logging()
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    run_dir = (args.out / f"run_{stamp}").resolve()
    recordings, dataset = run_dir / "recordings", run_dir / "dataset"
    run_dir.mkdir(parents=True, exist_ok=False)
    print(f"[1/3] recording {args.episodes} episode(s) of the scripted expert in the simulator -> {recordings}",
          flush=True)
    graph = load_graph(find_graph("record"))
    nodes = evaluate(graph, parse_launch_args(
        ["source:=expert", "follower:=sim", f"episodes:={args.episodes}", f"out_dir:={recordings}",
         f"seed:={args.seed}", f"width:={args.width}", f"height:={args.height}"], graph))
    start = time.monotonic()
    code = Supervisor(nodes).run()
    if code != 0:
        print(f"so100 pipeline: the recording graph failed (exit code {code}); see the log above", file=sys.stderr)
        return 1
    bags = sorted(p for p in recordings.iterdir() if p.is_dir() and not p.name.endswith(".partial"))
    metas = [json.loads((b / "episode.json").read_text()) for b in bags]
    successes = sum(bool(m.get("success")) for m in metas)
    print(f"recorded {len(bags)} episode(s), {successes} successful, in {time.monotonic() - start:.0f} s", flush=True)

    print(f"[2/3] converting to a LeRobot dataset at {args.fps} fps -> {dataset}", flush=True)
    summary = convert(bags, dataset, fps=args.fps, max_too_old_fraction=args.max_too_old)  # logs each sync report
    print(f"[3/3] summary: {len(bags)} episode(s) recorded, {successes} successful; {len(summary.converted)} "
          f"converted ({summary.frames} frames at {args.fps} fps), {len(summary.failed)} rejected")
    bin_dir = f"{Path(sys.executable).parent}/"
    print(f"\nrun folder: {run_dir}\n  recordings: {recordings} ({len(bags)} rosbag2 MCAP episodes, "
          f"`ros2 bag info` readable)\n  dataset:    {dataset}")
    print(NEXT_STEPS.format(bin=bin_dir, dataset=dataset, recipe=CPU.summary))
    ok = len(summary.converted) == args.episodes and successes == args.episodes
    if not ok:
        print(f"so100 pipeline: {args.episodes - successes} episode(s) failed or "
              f"{len(summary.failed)} could not be converted", file=sys.stderr)
    return 0 if ok else 3


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
