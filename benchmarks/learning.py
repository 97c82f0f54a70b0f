"""Learning-outcome benchmark (issues 7, 19): does ACT trained on this CPU learn the task from demonstrations?

1. ``--episodes`` scripted-expert demonstrations, recorded **through the graph** by ``so100 pipeline``
   (sim_bridge, scripted_expert and the recorder as processes, rosbag2, conversion: the path a user's
   demonstrations take; the default) at ``--record-size``, or straight from the gym env in-process
   (``--demos inprocess``, ``act_policy.sim_demos``). Kept in ``--work`` and reused when they exist.
2. For each of ``--train-seeds``: ``so100 train --recipe cpu`` (the recipe the pipeline prints, one
   definition in ``act_policy.recipes``), every checkpoint graded on ``--ckpt-episodes`` sim episodes.
3. ``so100 eval`` of each ``best/`` over ``--eval-episodes`` episodes on seeds never used in training or
   checkpoint selection (200000+), and through the graph over ``--graph-episodes`` of them.

Targets (issue 19): in-process >= 95 %, --graph >= 90 %, <= 30 min of CPU training, for every training seed.
Printed: per seed the success with its Wilson interval, the training time and the checkpoint curve.

    .venv/bin/python benchmarks/learning.py [--demos graph|inprocess] [--train-seeds 1000 1001 1002] [--json out.json]

GPU recipe (seed defaults at full resolution; run where a GPU is lent):
    so100 train --dataset <demos> --out runs/gpu --image-size 480x640 --cache \\
        --steps 50000 --save-every 5000 --eval-episodes 50
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from machine import machine_info, reproduce_command

from act_policy.backbone_norm import NORM_CHOICES
from act_policy.recipes import CPU

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EVAL_SEED = 200000


def size(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def scene_id() -> str:
    """The scene's fingerprint: a changed scene (camera, objects) never reuses old demonstrations."""
    from so100_sim.scene import scene_xml

    return hashlib.sha256(scene_xml().encode()).hexdigest()[:8]


def graph_demos(work: Path, episodes: int, h: int, w: int) -> tuple[Path, dict]:
    """Demonstrations recorded through the graph by ``so100 pipeline`` (reused when already there)."""
    parent = work / f"graph_demos_{episodes}_{h}x{w}_{scene_id()}"
    done = sorted(parent.glob("run_*/dataset/meta/info.json"))
    if done:
        print(f"[1/3] reusing {done[-1].parents[1]}", flush=True)
        return done[-1].parents[1], {"reused": str(done[-1].parents[1])}
    cmd = [str(BIN / "so100"), "pipeline", "--episodes", str(episodes), "--width", str(w), "--height", str(h),
           "--seed", "0", "--out", str(parent)]
    print(f"[1/3] {' '.join(cmd)}", flush=True)
    code = subprocess.call(cmd)
    found = sorted(parent.glob("run_*/dataset/meta/info.json"))
    if not found:
        raise SystemExit(f"so100 pipeline wrote no dataset (exit code {code})")
    dataset = found[-1].parents[1]
    from act_policy.dataset_tools import recording_metadata

    lines = recording_metadata(dataset)
    quality = [ln.get("quality") or {} for ln in lines]
    return dataset, {
        "pipeline_exit": code, "episodes": len(lines),
        "expert_successes": sum(bool(ln["episode"].get("success")) for ln in lines),
        "start_transient_episodes": sum(bool(q.get("start_transient")) for q in quality),
        "large_gap_frames": sum(q.get("large_gap_frames", 0) for q in quality),
        "repeated_states": sum(q.get("repeated_states", 0) for q in quality),
        "frames": sum(q.get("frames", 0) for q in quality),
    }


def inprocess_demos(work: Path, episodes: int, h: int, w: int) -> tuple[Path, dict]:
    demos = work / f"demos_{episodes}_{h}x{w}_{scene_id()}"
    if demos.exists():
        print(f"[1/3] reusing {demos}", flush=True)
        return demos, {"reused": str(demos)}
    from act_policy.sim_demos import record_expert_dataset

    print(f"[1/3] recording {episodes} expert episodes in-process at {w}x{h} -> {demos}", flush=True)
    return demos, record_expert_dataset(demos, episodes, height=h, width=w, seed=0)


def evaluate(best: Path, episodes: int, out_json: Path, graph: bool = False) -> dict:
    cmd = [str(BIN / "so100"), "eval", str(best), "--episodes", str(episodes), "--seed", str(EVAL_SEED),
           "--json", str(out_json), "--quiet", *(["--graph"] if graph else ["--envs", "5"])]
    print(f"[3/3] {' '.join(cmd)}", flush=True)
    t0 = time.monotonic()
    if subprocess.call(cmd) != 0:
        raise SystemExit("so100 eval failed")
    final = json.loads(out_json.read_text())
    return {"success": final["success_rate"], "wilson95": final["wilson95"], "episodes": final["episodes"],
            "wall_s": time.monotonic() - t0}


def train_one(args: argparse.Namespace, demos: Path, seed: int) -> dict:
    run = args.work / f"run_{time.strftime('%Y%m%d_%H%M%S')}_seed{seed}"
    cmd = [str(BIN / "so100"), "train", "--dataset", str(demos), "--out", str(run), "--recipe", CPU.name,
           "--seed", str(seed), "--no-progress", "--cameras", *(f"observation.images.{c}" for c in args.cameras),
           "--backbone-norm", args.backbone_norm]
    for flag, value in (("--steps", args.steps), ("--eval-episodes", args.ckpt_episodes),
                        ("--save-every", args.save_every)):
        if value is not None:
            cmd += [flag, str(value)]
    print(f"[2/3] {' '.join(cmd)}", flush=True)
    t1 = time.monotonic()
    if subprocess.call(cmd) != 0:
        raise SystemExit(f"so100 train failed (seed {seed})")
    train_s = time.monotonic() - t1
    summary = json.loads((run / "train_summary.json").read_text())
    curve = [{"step": r["step"], "loss": r["loss"], "success": r["eval"]["success_rate"],
              "wilson95": r["eval"]["wilson95"]} for r in summary["history"] if r.get("eval")]
    row = {"train_seed": seed, "run": str(run), "train_s": train_s, "train_min": train_s / 60,
           "steps": summary["steps"], "train_steps_per_s": summary["train_steps_per_s"],
           "best_step": summary["best"]["step"] if summary.get("best") else None, "curve": curve,
           "final": evaluate(run / "best", args.eval_episodes, run / "final_eval.json")}
    if args.graph_episodes:
        row["graph"] = evaluate(run / "best", args.graph_episodes, run / "graph_eval.json", graph=True)
    row["target_met"] = (row["final"]["success"] >= 0.95 and train_s <= 1800
                         and (not args.graph_episodes or row["graph"]["success"] >= 0.90))
    return row


def pct(e: dict) -> str:
    lo, hi = e["wilson95"]
    return f"{100 * e['success']:.0f}% of {e['episodes']} [{100 * lo:.0f}, {100 * hi:.0f}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT / "output" / "bench_learning", help="work folder")
    ap.add_argument("--demos", choices=["graph", "inprocess"], default="graph",
                    help="record the demonstrations through the graph (so100 pipeline; default) or in-process")
    ap.add_argument("--episodes", type=int, default=40, help="expert demonstrations (default 40)")
    ap.add_argument("--record-size", type=size, default=None, metavar="HxW",
                    help="recorded image size (default: 240x320 through the graph, 96x128 in-process)")
    ap.add_argument("--train-seeds", type=int, nargs="+", default=[1000, 1001, 1002],
                    help="so100 train --seed of each training run (default 1000 1001 1002)")
    ap.add_argument("--steps", type=int, default=None, help=f"training steps (default: the recipe's, "
                                                            f"{CPU.options['steps']})")
    ap.add_argument("--save-every", type=int, default=None, help="checkpoint period (default: the recipe's)")
    ap.add_argument("--ckpt-episodes", type=int, default=None,
                    help=f"sim episodes per checkpoint (default: the recipe's, {CPU.options['eval_episodes']})")
    ap.add_argument("--eval-episodes", type=int, default=100, help="final in-process evaluation episodes (default 100)")
    ap.add_argument("--graph-episodes", type=int, default=0,
                    help="final evaluation episodes through the graph (real time, ~8 s each; default 0 = none)")
    ap.add_argument("--cameras", nargs="+", default=["overhead_cam"],
                    help="cameras the policy sees (default: overhead_cam; wrist_cam is the other)")
    ap.add_argument("--backbone-norm", choices=NORM_CHOICES, default="frozen",
                    help="so100 train --backbone-norm (default frozen)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    h, w = args.record_size or ((240, 320) if args.demos == "graph" else (96, 128))
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    demos, demo_summary = (graph_demos if args.demos == "graph" else inprocess_demos)(args.work, args.episodes, h, w)
    demo_s = time.monotonic() - t0
    rows = [train_one(args, demos, seed) for seed in args.train_seeds]
    res = {"machine": machine_info(), "command": reproduce_command("benchmarks/learning.py"),
           "demos": {"how": args.demos, "path": str(demos), "size": [h, w], **demo_summary, "wall_s": demo_s},
           "recipe": CPU.name, "runs": rows, "target_met": all(r["target_met"] for r in rows)}
    print(json.dumps(res, indent=2))
    for r in rows:
        graph = f", graph {pct(r['graph'])}" if "graph" in r else ""
        print(f"seed {r['train_seed']}: in-process {pct(r['final'])}{graph} after {r['train_min']:.1f} min of "
              f"training (best step {r['best_step']}); per checkpoint: "
              + ", ".join(f"{c['step']}: {100 * c['success']:.0f}%" for c in r["curve"]))
    print(f"targets (>= 95% in-process, >= 90% graph, <= 30 min, every seed): "
          f"{'met' if res['target_met'] else 'MISSED'}")
    print(f"reproduce: {res['command']}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
