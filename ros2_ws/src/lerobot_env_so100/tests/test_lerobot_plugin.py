"""The LeRobot plugin: discovered by LeRobot's own CLI, makes vectorized envs, maps keys to the dataset's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lerobot.envs.configs import EnvConfig
from lerobot.envs.factory import make_env, make_env_config, make_env_pre_post_processors
from lerobot.envs.utils import env_to_policy_features, preprocess_observation

import lerobot_env_so100
from so100_sim.expert import ScriptedExpert
from so100_sim.task import EpisodeScene

SMALL = {"observation_height": 48, "observation_width": 64}
DATASET_KEYS = {"observation.state", "observation.images.overhead_cam", "observation.images.wrist_cam"}


def test_the_stock_cli_discovers_the_plugin():
    """`lerobot-eval` itself (register_third_party_plugins at start-up) offers --env.type=so100_pick_place."""
    exe = Path(sys.executable).parent / "lerobot-eval"
    if not exe.exists():
        pytest.skip("lerobot-eval is not installed next to this interpreter")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "so100_pick_place" in out.stdout
    assert "Imported third-party plugin: lerobot_env_so100" in out.stdout + out.stderr


def test_config_resolves_like_env_type_and_names_the_dataset_keys():
    cls = EnvConfig.get_choice_class("so100_pick_place")
    assert cls is lerobot_env_so100.So100PickPlaceEnvConfig
    cfg = cls(**SMALL)
    assert cfg.type == "so100_pick_place" and cfg.gym_id == "gym_so100/PickPlace-v0" and cfg.fps == 30
    policy_features = env_to_policy_features(cfg)
    assert set(policy_features) == DATASET_KEYS | {"action"}
    assert policy_features["observation.images.overhead_cam"].shape == (3, 48, 64)
    assert policy_features["observation.state"].shape == (6,) and policy_features["action"].shape == (6,)
    one_cam = cls(cameras="overhead", **SMALL)
    assert "observation.images.wrist_cam" not in env_to_policy_features(one_cam)
    assert one_cam.gym_kwargs["cameras"] == ("overhead",)
    with pytest.raises(ValueError, match="cameras"):
        cls(cameras="overhead,top")


def _drive(cfg, use_async: bool) -> None:
    envs = make_env(cfg, n_envs=2, use_async_envs=use_async)
    vec = envs[cfg.type][0]
    try:
        obs, _ = vec.reset(seed=[0, 1])
        # what lerobot-eval's rollout does with an observation, up to the policy's own processors
        batch = preprocess_observation(obs)
        batch["task"] = list(vec.call("task_description"))
        env_pre, env_post = make_env_pre_post_processors(cfg, policy_cfg=None)
        batch = env_pre(batch)
        assert DATASET_KEYS <= set(batch)
        assert tuple(batch["observation.images.overhead_cam"].shape) == (2, 3, 48, 64)
        assert tuple(batch["observation.state"].shape) == (2, 6)
        assert batch["task"][0].startswith("Pick up")
        assert vec.call("_max_episode_steps") == (cfg.episode_length,) * 2
        assert vec.unwrapped.metadata["render_fps"] == cfg.fps  # rollout videos are written at it
        hold = obs["agent_pos"]
        for _ in range(cfg.episode_length):
            obs, reward, terminated, truncated, info = vec.step(hold)
        # the rollout reads success from final_info when an episode ends
        assert truncated.all() and not terminated.any()
        assert info["final_info"]["is_success"].tolist() == [False, False]
        assert [f.shape for f in vec.call("render")] == [(48, 64, 3)] * 2
    finally:
        vec.close()


def test_make_env_sync_vector():
    _drive(make_env_config("so100_pick_place", episode_length=3, **SMALL), use_async=False)


def test_make_env_async_vector():
    """lerobot-eval's default (--eval.use_async_envs=true): forkserver workers build the env from the config."""
    _drive(make_env_config("so100_pick_place", episode_length=3, **SMALL), use_async=True)


def test_actions_pass_through_the_env_postprocessor():
    import torch

    _, env_post = make_env_pre_post_processors(make_env_config("so100_pick_place", **SMALL), policy_cfg=None)
    action = torch.zeros(2, 6)
    assert np.array_equal(env_post({"action": action})["action"].numpy(), action.numpy())


def test_success_reaches_lerobot_through_final_info():
    """The scripted expert in both sub-envs: the step that ends each episode reports is_success as the rollout reads it."""
    cfg = make_env_config("so100_pick_place", cameras="overhead", observation_height=16, observation_width=16)
    vec = make_env(cfg, n_envs=2)[cfg.type][0]
    try:
        obs, info = vec.reset(seed=[3, 4])
        expert = ScriptedExpert()
        plans = [
            expert.plan(EpisodeScene.from_json(info["scene"][i]), obs["agent_pos"][i].astype(float)) for i in range(2)
        ]
        success = [None, None]
        for k in range(cfg.episode_length):
            action = np.stack([plan.at((k + 1) / cfg.fps) for plan in plans]).astype(np.float32)
            obs, reward, terminated, truncated, info = vec.step(action)
            for i in np.flatnonzero(terminated | truncated):
                if success[i] is None:
                    success[i] = bool(info["final_info"]["is_success"][i])
            if None not in success:
                break
        assert success == [True, True]
    finally:
        vec.close()
