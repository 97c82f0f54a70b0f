"""Learning-outcome benchmark (issue 7): does ACT trained on this CPU learn the task?

1. The scripted expert records ``--episodes`` demonstrations straight from the gym env into a
   LeRobot dataset (``act_policy.sim_demos``; kept in ``--work`` and reused when it exists).
2. ``so100 train`` (the CLI, as a user runs it) with the CPU recipe below: small images, a
   small ACT, the frame cache, a checkpoint every ``--save-every`` steps graded on
   ``--ckpt-episodes`` seeded sim episodes, training time capped by ``--steps``.
3. ``so100 eval`` of ``best/`` over ``--eval-episodes`` episodes on seeds never used in training
   or checkpoint selection.

Target: >= 80% success (Wilson 95% interval reported) in <= 60 minutes of CPU training.
Printed: success with its interval, training time, and the success of every checkpoint.

    .venv/bin/python benchmarks/learning.py [--episodes 40] [--steps 6000] [--json out.json]

GPU recipe (seed defaults at full resolution; run where a GPU is lent):
    so100 train --dataset <work>/demos --out runs/gpu --image-size 480x640 --cache \\
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

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

CPU_RECIPE = [
    "--cache", "--batch-size", "8", "--lr", "3e-4", "--lr-min", "3e-6", "--warmup-steps", "100",
    "--chunk-size", "30", "--n-action-steps", "15", "--dim-model", "256", "--n-heads", "4",
    "--dim-feedforward", "1024", "--n-encoder-layers", "2", "--n-vae-encoder-layers", "2", "--kl-weight", "10",
    "--num-workers", "0", "--eval-envs", "5", "--no-progress",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT / "output" / "bench_learning", help="work folder")
    ap.add_argument("--episodes", type=int, default=40, help="expert demonstrations (default 40)")
    ap.add_argument("--image-size", default="96x128", help="recorded and trained image size HxW (default 96x128)")
    ap.add_argument("--steps", type=int, default=6000, help="training steps (default 6000)")
    ap.add_argument("--save-every", type=int, default=500, help="checkpoint period (default 500)")
    ap.add_argument("--ckpt-episodes", type=int, default=10, help="sim episodes per checkpoint (default 10)")
    ap.add_argument("--eval-episodes", type=int, default=100, help="final evaluation episodes (default 100)")
    ap.add_argument("--cameras", nargs="+", default=["overhead_cam"],
                    help="cameras the policy sees (default: overhead_cam; wrist_cam is the other)")
    ap.add_argument("--backbone-norm", choices=NORM_CHOICES, default="frozen",
                    help="so100 train --backbone-norm (default frozen)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    h, w = (int(v) for v in args.image_size.split("x"))
    args.work.mkdir(parents=True, exist_ok=True)
    # the scene's fingerprint in the name: a changed scene (camera, objects) never reuses old demonstrations
    from so100_sim.scene import scene_xml

    scene_id = hashlib.sha256(scene_xml().encode()).hexdigest()[:8]
    demos = args.work / f"demos_{args.episodes}_{h}x{w}_{scene_id}"
    t0 = time.monotonic()
    if not demos.exists():
        from act_policy.sim_demos import record_expert_dataset

        print(f"[1/3] recording {args.episodes} expert episodes at {w}x{h} -> {demos}", flush=True)
        demo_summary = record_expert_dataset(demos, args.episodes, height=h, width=w, seed=0)
    else:
        demo_summary = {"reused": str(demos)}
        print(f"[1/3] reusing {demos}", flush=True)
    demo_s = time.monotonic() - t0

    run = args.work / f"run_{time.strftime('%Y%m%d_%H%M%S')}"
    cmd = [str(BIN / "so100"), "train", "--dataset", str(demos), "--out", str(run), "--steps", str(args.steps),
           "--save-every", str(args.save_every), "--eval-episodes", str(args.ckpt_episodes), *CPU_RECIPE,
           "--cameras", *(f"observation.images.{c}" for c in args.cameras), "--backbone-norm", args.backbone_norm]
    print(f"[2/3] {' '.join(cmd)}", flush=True)
    t1 = time.monotonic()
    code = subprocess.call(cmd)
    train_s = time.monotonic() - t1
    if code != 0:
        print(f"so100 train failed with exit code {code}", file=sys.stderr)
        return 1
    summary = json.loads((run / "train_summary.json").read_text())
    curve = [{"step": r["step"], "loss": r["loss"], "success": r["eval"]["success_rate"],
              "wilson95": r["eval"]["wilson95"]} for r in summary["history"] if r.get("eval")]

    out_json = run / "final_eval.json"
    cmd = [str(BIN / "so100"), "eval", str(run / "best"), "--episodes", str(args.eval_episodes), "--envs", "5",
           "--seed", "200000", "--json", str(out_json), "--quiet"]
    print(f"[3/3] {' '.join(cmd)}", flush=True)
    t2 = time.monotonic()
    if subprocess.call(cmd) != 0:
        print("so100 eval failed", file=sys.stderr)
        return 1
    final = json.loads(out_json.read_text())
    res = {
        "machine": machine_info(),
        "command": reproduce_command("benchmarks/learning.py"),
        "demos": demo_summary, "demo_s": demo_s,
        "train_s": train_s, "train_min": train_s / 60, "steps": summary["steps"],
        "train_steps_per_s": summary["train_steps_per_s"], "data_share": summary["data_share"],
        "best_step": summary["best"]["step"] if summary.get("best") else None,
        "curve": curve,
        "final_success": final["success_rate"], "final_wilson95": final["wilson95"],
        "final_episodes": final["episodes"], "final_eval_s": time.monotonic() - t2,
        "final_episodes_per_min": final["episodes_per_min"],
        "target_met": final["success_rate"] >= 0.8 and train_s <= 3600,
        "run": str(run),
    }
    print(json.dumps(res, indent=2))
    lo, hi = final["wilson95"]
    print(f"\nsuccess {100 * final['success_rate']:.0f}% over {final['episodes']} episodes (Wilson 95% "
          f"[{100 * lo:.0f}, {100 * hi:.0f}]) after {train_s / 60:.1f} min of training "
          f"(target >= 80% in <= 60 min: {'met' if res['target_met'] else 'MISSED'})")
    print("per checkpoint: " + ", ".join(f"{c['step']}: {100 * c['success']:.0f}%" for c in curve))
    print(f"reproduce: {res['command']}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
