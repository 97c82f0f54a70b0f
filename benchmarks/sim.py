"""Simulation benchmark: physics, rendering, IK, the scripted expert, and sim_bridge's real-time factor.

Correctness first: each figure is only printed after the thing measured is checked (frames are
non-empty and change, IK solutions reach their targets, the expert's successes are the world's).

    .venv/bin/python benchmarks/sim.py                 # everything (~3 min on 2 cores)
    .venv/bin/python benchmarks/sim.py --seeds 100 --bridge-seconds 20 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import machine_info, reproduce_command

from so100_common.stats import wilson_interval as wilson

ROOT = Path(__file__).resolve().parents[1]


def bench_physics(seconds: float = 3.0) -> dict[str, float]:
    from so100_sim.world import World

    w = World()
    w.reset(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        w.step(w.model.opt.timestep * 100)
        steps += 100
    elapsed = time.perf_counter() - start
    assert np.all(np.isfinite(w.data.qpos)), "physics diverged"
    return {"physics_steps_per_s": steps / elapsed, "timestep_s": w.model.opt.timestep,
            "realtime_factor_physics_only": steps * w.model.opt.timestep / elapsed}


def bench_render(width: int, height: int, frames: int = 60) -> dict[str, float]:
    from so100_sim.render import RenderSettings
    from so100_sim.world import World

    w = World(render=RenderSettings(width, height))
    w.reset(0)
    out = {}
    for camera, depth in (("overhead", False), ("overhead", True), ("wrist", False)):
        first, _ = w.render(camera, depth=depth)
        assert first.std() > 5, f"{camera} frame is blank"
        distinct = set()
        start = time.perf_counter()
        for i in range(frames):
            w.set_targets(np.array([0.3 * math.sin(i / 10), 0, 0, 0, 0, 0.3 + 0.3 * math.sin(i / 7)]))
            w.step(1 / 30)
            rgb, d = w.render(camera, depth=depth)
            distinct.add(hash(rgb[::16, ::16].tobytes()))
        fps = frames / (time.perf_counter() - start)
        assert len(distinct) > frames // 4, f"{camera}: frames do not follow the motion"
        out[f"{camera}{'+depth' if depth else ''}_fps"] = fps
    w.close()
    return out


def bench_ik(n: int = 300) -> dict[str, float]:
    from so100_sim.kinematics import Kinematics

    kin = Kinematics()
    rng = np.random.default_rng(0)
    times, ok = [], 0
    for _ in range(n):
        q = rng.uniform(kin.lower * 0.6, kin.upper * 0.6)
        pos, quat = kin.fk(q)
        start = time.perf_counter()
        res = kin.ik(pos, quat, np.zeros(6))
        times.append(time.perf_counter() - start)
        if res.converged:
            p2, _ = kin.fk(res.q)
            assert np.linalg.norm(p2 - pos) < 1e-3, "IK says converged but misses"
            ok += 1
    t = np.array(times) * 1000
    return {"ik_median_ms": float(np.median(t)), "ik_p99_ms": float(np.percentile(t, 99)),
            "ik_converged": ok / n}


def bench_expert(seeds: int) -> dict[str, Any]:
    from so100_sim.expert import ScriptedExpert
    from so100_sim.world import World

    w = World()
    expert = ScriptedExpert(task=w.task)
    successes, steps, failed = 0, [], []
    start = time.perf_counter()
    for seed in range(seeds):
        scene = w.reset(seed)
        plan = expert.plan(scene, w.joint_positions())
        for k in range(w.task.episode_steps):
            w.set_targets(plan.at(k / w.task.fps))
            if w.control_step().success:
                successes += 1
                steps.append(k + 1)
                break
        else:
            failed.append(seed)
    lo, hi = wilson(successes, seeds)
    return {"expert_success": successes / seeds, "expert_wilson95": [lo, hi], "expert_seeds": seeds,
            "expert_failed_seeds": failed, "expert_mean_steps": float(np.mean(steps)) if steps else None,
            "expert_episodes_per_s": seeds / (time.perf_counter() - start)}


def bench_env(width: int, height: int, steps: int = 300) -> dict[str, float]:
    """The gymnasium env stepping in-process with both cameras (what lerobot-eval drives)."""
    from so100_sim.gym_env import So100PickPlaceEnv

    env = So100PickPlaceEnv(width=width, height=height)
    obs, _ = env.reset(seed=0)
    start = time.perf_counter()
    for i in range(steps):
        action = np.array([0.3 * math.sin(i / 10), 0, 0, 0, 0, 0.3], dtype=np.float32)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset(seed=i)
    rate = steps / (time.perf_counter() - start)
    assert obs["pixels"]["overhead"].shape == (height, width, 3) and obs["pixels"]["wrist"].std() > 1
    env.close()
    return {f"env_steps_per_s_{width}x{height}_2cams": rate}


def bench_bridge(width: int, height: int, seconds: float) -> dict[str, float]:
    """sim_bridge flat out (realtime:=false): 100 Hz physics ticks, both cameras every 1/30 s of sim
    time, everything published; the real-time factor is simulated time over wall time."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", ZENOH_CONFIG_OVERRIDE='connect/endpoints=["tcp/127.0.0.1:1"]',
               SO100_ROUTER_WAIT="0.1", SO100_TRANSPORT="zenoh")
    exe = str(Path(sys.executable).parent / "sim_bridge")
    proc = subprocess.Popen([exe, "--ros-args", "-p", f"width:={width}", "-p", f"height:={height}",
                             "-p", "realtime:=false"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    factors = []
    deadline = time.monotonic() + seconds + 30
    assert proc.stdout is not None
    for line in proc.stdout:
        if "real-time factor" in line:
            factors.append(float(line.split("real-time factor ")[1].split(")")[0]))
            if len(factors) * 5 >= seconds:
                break
        if time.monotonic() > deadline:
            break
    proc.send_signal(2)
    proc.wait(20)
    assert factors, "sim_bridge reported nothing"
    return {f"bridge_rtf_{width}x{height}_2cams_flat_out": factors[-1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=100, help="expert episodes (default 100)")
    ap.add_argument("--bridge-seconds", type=float, default=20.0, help="sim_bridge run per resolution (default 20)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    res: dict[str, Any] = {}
    res.update(bench_physics())
    for w, h in ((640, 480), (320, 240)):
        res[f"render_{w}x{h}"] = bench_render(w, h)
    res.update(bench_ik())
    res.update(bench_env(320, 240))
    res.update(bench_env(640, 480, steps=150))
    res.update(bench_expert(args.seeds))
    for w, h in ((640, 480), (320, 240)):
        res.update(bench_bridge(w, h, args.bridge_seconds))
    res["machine"] = machine_info(gl=os.environ.get("MUJOCO_GL", "?"))
    print(json.dumps(res, indent=2))
    print("command: " + reproduce_command("benchmarks/sim.py"))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
