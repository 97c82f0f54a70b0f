"""Policy benchmark (issue 7): ACT training speed, data-loading share, inference latency, evaluation throughput.

All with lerobot's full-size ACT (ResNet-18, dim 512: the seed's model) unless said otherwise:

1. Training steps/s at ``--train-size`` (batch 8) on an expert dataset recorded at that size,
   through ``so100 train``'s own loop, with and without the frame cache; the data-loading share
   is the time spent getting a batch over the whole step time. Checked: the loss is finite.
2. Inference latency of one chunk (``policy_io.predict_chunk``, act_inference's path from uint8
   images to a numpy chunk; both cameras, batch 1) at 240x320
   and 480x640, median and p95 over ``--chunks`` calls after a warm-up. Checked: chunk shape.
3. Evaluation throughput: ``SimEvaluator`` at 240x320 with 1 and 4 envs per batch; env steps/s
   and episodes/min for the task's 300-step episodes (an untrained policy never succeeds early).

    .venv/bin/python benchmarks/policy.py [--steps 6] [--chunks 10] [--json out.json]

Figures are for the device this runs on (CPU here); run it where a GPU is lent for GPU figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import machine_info, reproduce_command

ROOT = Path(__file__).resolve().parents[1]


def bench_training(tmp: Path, size: tuple[int, int], steps: int, device: str) -> dict[str, Any]:
    from act_policy.sim_demos import record_expert_dataset
    from act_policy.train import TrainOptions, train

    ds = tmp / "demos"
    record_expert_dataset(ds, 2, height=size[0], width=size[1], progress=False)
    out: dict[str, Any] = {}
    for cache in (False, True):
        summary = train(TrainOptions(dataset=ds, out=tmp / f"run_cache_{cache}", steps=steps, save_every=steps,
                                     eval_episodes=0, cache=cache, num_workers=0, device=device, progress=False))
        assert summary["first_loss"] is not None and summary["last_loss"] == summary["last_loss"], "loss is NaN"
        key = "cache" if cache else "no_cache"
        out[f"train_steps_per_s_{key}"] = summary["train_steps_per_s"]
        out[f"data_share_{key}"] = summary["data_share"]
    return out


def bench_inference(tmp: Path, chunks: int, device: str) -> dict[str, Any]:
    import numpy as np

    from act_policy.policy_io import load_policy, predict_chunk
    from act_policy.testing import make_tiny_checkpoint

    out: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    for h, w in ((240, 320), (480, 640)):
        make_tiny_checkpoint(tmp / f"ckpt_{h}", height=h, width=w, chunk_size=100, tiny=False)
        lp = load_policy(tmp / f"ckpt_{h}", device)
        images = {cam: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for cam in lp.inputs.cameras}
        times = []
        for i in range(chunks + 2):
            t0 = time.perf_counter()
            chunk = predict_chunk(lp, np.zeros(6), images)  # act_inference's path; returns on the CPU
            if i >= 2:  # warm-up
                times.append(time.perf_counter() - t0)
        assert chunk.shape == (100, 6), chunk.shape
        times.sort()
        out[f"inference_ms_{h}x{w}_p50"] = 1000 * statistics.median(times)
        out[f"inference_ms_{h}x{w}_p95"] = 1000 * times[min(len(times) - 1, int(0.95 * len(times)))]
        out["parameters_m"] = sum(p.numel() for p in lp.policy.parameters()) / 1e6
    return out


def bench_eval(tmp: Path, device: str, episode_steps: int) -> dict[str, Any]:
    from act_policy.evaluate import SimEvaluator
    from act_policy.policy_io import load_policy

    lp = load_policy(tmp / "ckpt_240", device)
    out: dict[str, Any] = {}
    for n_envs in (1, 4):
        with SimEvaluator(lp.inputs, n_envs=n_envs, episode_steps=episode_steps) as ev:
            rep = ev.run(lp, episodes=4, start_seed=0)
        assert rep.n == 4 and all(e.steps == episode_steps for e in rep.episodes)
        steps_per_s = 4 * episode_steps / rep.wall_s
        out[f"eval_env_steps_per_s_{n_envs}env"] = steps_per_s
        out[f"eval_episodes_per_min_{n_envs}env"] = 60 * steps_per_s / 300  # the task's 300-step episodes
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=6, help="training steps per mode (default 6)")
    ap.add_argument("--train-size", default="240x320", help="training image size HxW (default 240x320)")
    ap.add_argument("--chunks", type=int, default=10, help="inference calls per size (default 10)")
    ap.add_argument("--eval-steps", type=int, default=60, help="steps per evaluation episode (default 60)")
    ap.add_argument("--device", default=None, help="cpu/cuda (default: the GPU when there is one)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    h, w = (int(v) for v in args.train_size.split("x"))
    res: dict[str, Any] = {"machine": machine_info(device=device, torch_threads=torch.get_num_threads()),
                           "command": reproduce_command("benchmarks/policy.py")}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res |= bench_inference(tmp, args.chunks, device)
        res |= bench_eval(tmp, device, args.eval_steps)
        res |= bench_training(tmp, (h, w), args.steps, device)
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
