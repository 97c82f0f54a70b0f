"""``so100 dataset ...`` (also installed as ``so100-dataset``): LeRobot dataset tools.

``from-bags``: recorder episodes (rosbag2) to a LeRobot v3.0 dataset. Exit status: 0 every bag
converted, 1 some bags rejected or unreadable (the rest converted), 2 nothing converted or a usage error.
``info``: a summary of a dataset. ``check``: validate a dataset; exit 1 when it finds problems.
``merge``: several datasets into one. ``to-ee``: a copy with the end-effector action space.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from act_policy.episode_quality import GAP_THRESHOLD
from act_policy.errors import ActPolicyError

FROM_BAGS_HELP = """\
Convert recorder episodes (rosbag2 MCAP folders with episode.json) into one LeRobot v3.0
dataset, written through lerobot's LeRobotDataset API.

Each bag becomes one episode, resampled at --fps on a clock taken from the bag (header
stamps, else receive times): every frame takes the latest state, image and command at or
before its time, so no action comes from a frame's future. A frame whose input is older
than --max-age counts as too old; an episode with more than --max-too-old of them is
rejected. Unreadable or unfinished bags are reported by name and skipped.

examples:
  so100 dataset from-bags recordings/ --out data/so100_pick --fps 30
  so100 dataset from-bags recordings/episode_000003 recordings/episode_000007 --out /tmp/ds --task "pick the brick"
"""


def cmd_from_bags(a: argparse.Namespace) -> int:
    from act_policy.bag_to_dataset import convert

    summary = convert(
        a.bags,
        a.out,
        fps=a.fps,
        task=a.task,
        repo_id=a.repo_id,
        overwrite=a.overwrite,
        depth=a.depth,
        max_age=a.max_age,
        max_too_old_fraction=a.max_too_old,
        streaming_encoding=not a.no_streaming,
        vcodec=a.vcodec,
        encoder_threads=a.encoder_threads,
        buffer_mb=a.buffer_mb,
        trim_start_frames=a.trim_start,
        gap_threshold=a.gap_threshold,
        progress=not a.no_progress,
    )
    print(summary.format())
    return 1 if summary.failed else 0


def cmd_info(a: argparse.Namespace) -> int:
    from act_policy.dataset_tools import info

    print(info(a.root, a.repo_id))
    return 0


def cmd_check(a: argparse.Namespace) -> int:
    from act_policy.dataset_tools import check

    report = check(a.root, a.repo_id)
    for item in report.checked:
        print(f"checked: {item}")
    for warning in report.warnings:
        print(f"WARNING: {warning}")
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    print(f"{a.root}: {'OK' if report.ok else f'{len(report.problems)} problem(s)'}")
    return 0 if report.ok else 1


MERGE_HELP = """\
Merge datasets of the same fps, robot type and features into one, through lerobot's own
aggregation (data and videos are copied, not re-encoded). Episodes keep their order;
meta/so100_episodes.jsonl keeps every episode's scene and recording metadata, with
episode_index renumbered and source_dataset / source_episode_index added.

example:
  so100 dataset merge data/pick_mon data/pick_tue --out data/pick_all
"""

TO_EE_HELP = """\
Write a copy of a dataset whose action is the end effector's pose: 8 values
ee.x, ee.y, ee.z (m), ee.qw, ee.qx, ee.qy, ee.qz (w >= 0), gripper.pos (rad), by forward
kinematics of the joint action. The joint action is kept as action_joints (6),
observation.state is unchanged and observation.ee_state (8, FK of the state) is added.
Videos are decoded and re-encoded (fine for small datasets). Prints an FK->IK round-trip
report per episode, also stored in meta/so100_ee_report.json.

example:
  so100 dataset to-ee data/pick_all --out data/pick_all_ee
"""


def cmd_merge(a: argparse.Namespace) -> int:
    from act_policy.dataset_edit import merge

    print(merge(a.datasets, a.out, repo_id=a.repo_id, overwrite=a.overwrite).format())
    return 0


def cmd_to_ee(a: argparse.Namespace) -> int:
    from act_policy.dataset_edit import to_ee

    print(to_ee(a.src, a.out, repo_id=a.repo_id, overwrite=a.overwrite, progress=not a.no_progress).format())
    return 0


def build_parser(prog: str = "so100 dataset") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="LeRobot dataset tools for SO-100 recordings.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, func, text in (
        ("info", cmd_info, "summarize a LeRobot dataset (episodes, frames, features, tasks)"),
        ("check", cmd_check, "validate a LeRobot dataset for training; exit 1 on problems"),
    ):
        sp = sub.add_parser(name, help=text, description=text)
        sp.add_argument("root", type=Path, help="dataset root folder (the one holding meta/info.json)")
        sp.add_argument("--repo-id", default="local/so100", help="dataset id (default local/so100)")
        sp.set_defaults(func=func)
    fb = sub.add_parser(
        "from-bags",
        help="convert recorded episodes (rosbag2) into a LeRobot v3.0 dataset",
        description=FROM_BAGS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fb.add_argument(
        "bags",
        nargs="+",
        type=Path,
        metavar="BAG",
        help="episode folder (recorder output), or a folder holding episode_* folders",
    )
    fb.add_argument("--out", required=True, type=Path, help="dataset root folder to create")
    fb.add_argument("--fps", type=int, default=30, help="dataset frame rate (default 30)")
    fb.add_argument("--task", help="task text for every episode (default: each episode.json's task)")
    fb.add_argument("--repo-id", default="local/so100", help="dataset id stored in its metadata (default local/so100)")
    fb.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    fb.add_argument(
        "--vcodec",
        choices=["h264", "libsvtav1"],
        default="h264",
        help="camera video codec: h264 (default; libx264 ultrafast crf 23: ~1/7 of AV1's encoding CPU, "
        "0.3 dB less PSNR, ~2.3x larger files) or libsvtav1 (LeRobot's default codec, smallest files, slow)",
    )
    fb.add_argument(
        "--encoder-threads",
        type=int,
        default=None,
        metavar="N",
        help="threads per camera video encoder (default: the codec decides)",
    )
    fb.add_argument(
        "--buffer-mb",
        type=float,
        default=1024.0,
        metavar="MB",
        help="raw images held in memory so that each bag is read once (default 1024: ~18 s of two "
        "640x480 cameras); longer episodes are read twice",
    )
    fb.add_argument(
        "--depth",
        action="store_true",
        help="also convert the overhead depth camera (16UC1 mm) into observation.images.overhead_depth",
    )
    fb.add_argument(
        "--max-age",
        type=float,
        default=None,
        metavar="SECONDS",
        help="an input older than this makes a frame too old (default 2/fps)",
    )
    fb.add_argument(
        "--max-too-old",
        type=float,
        default=0.05,
        metavar="FRACTION",
        help="reject an episode with more than this share of too-old frames (default 0.05)",
    )
    fb.add_argument(
        "--no-streaming",
        action="store_true",
        help="write PNG frames and encode each episode at its end (slower) instead of lerobot's streaming encoder",
    )
    fb.add_argument(
        "--trim-start",
        action="store_true",
        help="drop each episode's start transient: its leading frames whose command is more than --gap-threshold "
        "from the follower's pose (the follower still catching up with its source); reported either way",
    )
    fb.add_argument(
        "--gap-threshold",
        type=float,
        default=GAP_THRESHOLD,
        metavar="RAD",
        help=f"|action - state| above which a frame counts as the follower far from its command "
        f"(default {GAP_THRESHOLD})",
    )
    fb.add_argument("--no-progress", action="store_true", help="no progress bars")
    fb.set_defaults(func=cmd_from_bags)
    mg = sub.add_parser(
        "merge",
        help="merge several datasets into one (same fps and features)",
        description=MERGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mg.add_argument("datasets", nargs="+", type=Path, metavar="DATASET", help="dataset root folders, in order")
    ee = sub.add_parser(
        "to-ee",
        help="copy a dataset with the end-effector action space (FK of the joint action)",
        description=TO_EE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ee.add_argument("src", type=Path, metavar="SRC", help="joint-space dataset root folder")
    ee.add_argument("--no-progress", action="store_true", help="no progress bars")
    ee.set_defaults(func=cmd_to_ee)
    mg.set_defaults(func=cmd_merge)
    for sp in (mg, ee):
        sp.add_argument("--out", required=True, type=Path, help="dataset root folder to create")
        sp.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
        sp.add_argument(
            "--repo-id", default="local/so100", help="dataset id stored in its metadata (default local/so100)"
        )
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``so100-dataset`` and of ``so100 dataset`` (argv without the word ``dataset``)."""
    # run as the so100-dataset script: name it so; through `so100 dataset` argv is passed in
    parser = build_parser() if argv is not None else build_parser(Path(sys.argv[0]).name)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except ActPolicyError as e:
        print(f"so100 dataset: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
