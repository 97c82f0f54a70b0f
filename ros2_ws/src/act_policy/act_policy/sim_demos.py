"""Scripted-expert demonstrations straight from the gym env into a LeRobot dataset, without the ROS graph.

The recorded path (``so100 pipeline``: expert -> sim_bridge -> recorder -> bags -> dataset) is the
one that proves the pipeline; this one makes the same kind of dataset in a fraction of the time,
for tests and for the learning benchmark's many episodes. Frame ``k`` pairs the observation
before step ``k`` with the joint targets the expert commands at step ``k`` (the action is never
from the observation's future); each episode ends a few frames after success.

Dependency rule: lerobot, so100_sim (gym env, expert); no ROS runtime.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from act_policy import dataset_keys
from act_policy.bag_to_dataset import ROBOT_TYPE, features_for
from act_policy.errors import ActPolicyError

log = logging.getLogger(__name__)

HOLD_AFTER_SUCCESS = 10  # frames kept after success, so the policy learns to stay put


def record_expert_dataset(out: Path, episodes: int, *, height: int = 240, width: int = 320, seed: int = 0,
                          repo_id: str = "local/so100_sim", progress: bool = True) -> dict:
    """Write ``episodes`` expert episodes (seeds ``seed``, ``seed + 1``, ...) to a new dataset at ``out``.

    Returns a summary: episodes, frames, successes and the failed seeds (failed episodes are kept
    out of the dataset, as a human would discard them).
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from tqdm import tqdm

    from so100_common.names import CAMERA_NAMES
    from so100_sim.expert import ScriptedExpert
    from so100_sim.gym_env import So100PickPlaceEnv
    from so100_sim.task import TASK_DESCRIPTION

    out = Path(out)
    if out.exists():
        raise ActPolicyError(f"{out} already exists; choose a new folder (nothing was written)")
    env = So100PickPlaceEnv(cameras=CAMERA_NAMES, height=height, width=width)
    fps = env.metadata["render_fps"]
    shapes = {dataset_keys.image_key(c): (height, width, 3) for c in CAMERA_NAMES}
    dataset = LeRobotDataset.create(repo_id, fps, features_for(shapes), root=out, robot_type=ROBOT_TYPE,
                                    use_videos=True)
    expert = ScriptedExpert(task=env.task_config)
    frames, failed = 0, []
    try:
        for k in tqdm(range(episodes), desc="expert demonstrations", unit="episode", disable=not progress):
            obs, _ = env.reset(seed=seed + k)
            plan = expert.plan(env.scene, obs["agent_pos"])
            buffer: list[dict] = []
            hold = None
            for step in range(env.task_config.episode_steps):
                action = plan.at(step / fps).astype(np.float32)
                frame = {dataset_keys.OBS_STATE: obs["agent_pos"], dataset_keys.ACTION: action, "task": TASK_DESCRIPTION}
                frame.update({dataset_keys.image_key(c): obs["pixels"][c] for c in CAMERA_NAMES})
                buffer.append(frame)
                obs, _, terminated, truncated, info = env.step(action)
                if info["is_success"] and hold is None:
                    hold = HOLD_AFTER_SUCCESS
                if hold is not None:
                    hold -= 1
                    if hold <= 0:
                        break
                if truncated:
                    break
            if hold is None:
                failed.append(seed + k)
                continue
            for frame in buffer:
                dataset.add_frame(frame)
            dataset.save_episode()
            frames += len(buffer)
    finally:
        env.close()
        dataset.finalize()
    if dataset.num_episodes == 0:
        raise ActPolicyError(f"the expert failed every episode (seeds {failed}); {out} holds no episode")
    return {"episodes": dataset.num_episodes, "frames": frames, "failed_seeds": failed, "fps": fps, "root": str(out)}
