"""The gymnasium env gym_so100/PickPlace-v0: API conformance, seeding, the expert through step(), vectorization."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import gym_so100
from so100_sim.errors import SimError
from so100_sim.expert import ScriptedExpert
from so100_sim.gym_env import So100PickPlaceEnv
from so100_sim.task import EpisodeScene, sample_scene

SMALL = {"height": 48, "width": 64}  # software GL: keep frames tiny


@pytest.fixture
def env():
    e = So100PickPlaceEnv(render_mode="rgb_array", **SMALL)
    yield e
    e.close()


def test_gymnasium_env_checker_passes():
    """check_env passes; its only remark is the usual one about a non-normalized action Box (radians here)."""
    env = gym.make(gym_so100.PICK_PLACE_ID, render_mode="rgb_array", disable_env_checker=True, **SMALL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)  # unwrapped, but with its spec, so the render modes are checked too
    env.close()
    remarks = [str(w.message) for w in caught if "symmetric and normalized space" not in str(w.message)]
    assert remarks == []


def test_registered_id_makes_the_env():
    """import gym_so100 registers the id with a 300-step TimeLimit; the spaces are the documented ones."""
    assert gym_so100.PICK_PLACE_ID == "gym_so100/PickPlace-v0"
    e = gym.make(gym_so100.PICK_PLACE_ID, **SMALL)
    try:
        assert e.spec.max_episode_steps == 300
        assert e.get_wrapper_attr("_max_episode_steps") == 300
        assert e.get_wrapper_attr("task_description") == e.get_wrapper_attr("task") != ""
        pixels = e.observation_space["pixels"]
        assert list(pixels.keys()) == ["overhead", "wrist"]
        assert pixels["overhead"].shape == (48, 64, 3) and pixels["overhead"].dtype == np.uint8
        assert e.observation_space["agent_pos"].shape == (6,) and e.observation_space["agent_pos"].dtype == np.float32
        assert e.action_space.shape == (6,) and e.action_space.dtype == np.float32
        assert e.metadata["render_fps"] == 30 and isinstance(e.metadata["render_fps"], int)  # video writers need int
    finally:
        e.close()


def test_reset_with_a_seed_is_deterministic():
    """Same seed: same scene (World's episode seed) and same first observation, in two separate envs."""
    a, b = So100PickPlaceEnv(**SMALL), So100PickPlaceEnv(**SMALL)
    try:
        obs_a, info_a = a.reset(seed=7)
        obs_b, info_b = b.reset(seed=7)
        assert info_a["scene"] == info_b["scene"] == sample_scene(7, a.task_config).to_json()
        for cam in ("overhead", "wrist"):
            assert np.array_equal(obs_a["pixels"][cam], obs_b["pixels"][cam])
        assert np.array_equal(obs_a["agent_pos"], obs_b["agent_pos"])
        # unseeded resets continue from the seeded generator: reproducible, and new scenes
        scenes_a = [a.reset()[1]["scene"] for _ in range(2)]
        scenes_b = [b.reset()[1]["scene"] for _ in range(2)]
        assert scenes_a == scenes_b and len({info_a["scene"], *scenes_a}) == 3
        assert a.reset(seed=8)[1]["scene"] != info_a["scene"]
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scripted_expert_succeeds_through_step(seed):
    """The scripted expert's joint targets, fed through step() at the env's fps, end the episode in success."""
    e = gym.make(gym_so100.PICK_PLACE_ID, cameras=("overhead",), height=16, width=16)
    try:
        obs, info = e.reset(seed=seed)
        plan = ScriptedExpert().plan(EpisodeScene.from_json(info["scene"]), obs["agent_pos"].astype(float))
        fps = e.metadata["render_fps"]
        rewards = []
        for k in range(e.spec.max_episode_steps):
            obs, reward, terminated, truncated, info = e.step(plan.at((k + 1) / fps).astype(np.float32))
            rewards.append(reward)
            if terminated or truncated:
                break
        assert terminated and not truncated and info["is_success"], f"seed {seed}: no success in {k + 1} steps"
        assert rewards[-1] == 1.0 and sum(rewards) == 1.0  # sparse
        assert k + 1 < 250
    finally:
        e.close()


def test_episode_truncates_at_episode_steps():
    e = gym.make(gym_so100.PICK_PLACE_ID, episode_steps=3, max_episode_steps=3, **SMALL)
    try:
        obs, _ = e.reset(seed=0)
        hold = obs["agent_pos"]
        ends = [e.step(hold)[2:4] for _ in range(3)]
        assert ends == [(False, False), (False, False), (False, True)]
    finally:
        e.close()


def test_actions_are_clipped_and_non_finite_ones_hold_the_previous_targets(env, caplog):
    env.reset(seed=0)
    world = env.world
    *_, info = env.step(np.full(6, 10.0, dtype=np.float32))
    assert not info["invalid_action"]
    assert np.allclose(world.data.ctrl[world.actuator_ids], world.upper)  # clipped to the limits
    target = np.array([0.1, -0.2, 0.3, 0.0, 0.5, 0.4], dtype=np.float32)
    env.step(target)
    for bad in (np.nan, np.inf):
        action = target.copy()
        action[2] = bad
        *_, info = env.step(action)
        assert info["invalid_action"]
        assert np.allclose(world.data.ctrl[world.actuator_ids], target, atol=1e-6)
    assert sum("non-finite action" in r.getMessage() for r in caplog.records) == 1  # once per burst
    with pytest.raises(SimError, match="6 joint targets"):
        env.step(np.zeros(5, dtype=np.float32))


def test_render_returns_the_overhead_frame(env):
    obs, _ = env.reset(seed=3)
    assert np.array_equal(env.render(), obs["pixels"]["overhead"])
    wrist_only = So100PickPlaceEnv(render_mode="rgb_array", cameras=("wrist",), **SMALL)
    try:
        obs, _ = wrist_only.reset(seed=3)
        assert list(obs["pixels"]) == ["wrist"]
        assert wrist_only.render().shape == (48, 64, 3)
    finally:
        wrist_only.close()


def test_bad_configuration_is_refused_with_the_fix():
    with pytest.raises(SimError, match="no camera named"):
        So100PickPlaceEnv(cameras=("top",))
    with pytest.raises(SimError, match="render_mode"):
        So100PickPlaceEnv(render_mode="human")
    with pytest.raises(SimError, match="episode_steps"):
        So100PickPlaceEnv(episode_steps=0)


def test_sync_vector_env_steps_two_envs():
    vec = gym.vector.SyncVectorEnv([lambda: gym.make(gym_so100.PICK_PLACE_ID, **SMALL) for _ in range(2)])
    try:
        obs, info = vec.reset(seed=[0, 1])
        assert obs["pixels"]["overhead"].shape == (2, 48, 64, 3) and obs["agent_pos"].shape == (2, 6)
        assert info["scene"][0] != info["scene"][1]
        for _ in range(3):
            obs, reward, terminated, truncated, info = vec.step(obs["agent_pos"])
        assert reward.shape == (2,) and not terminated.any() and not truncated.any()
        assert info["is_success"].tolist() == [False, False]
        assert vec.call("_max_episode_steps") == (300, 300)
    finally:
        vec.close()
