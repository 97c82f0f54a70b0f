"""Gymnasium ids of the SO-100 envs: ``import gym_so100`` registers ``gym_so100/PickPlace-v0``.

The package name is the id's namespace because that is how LeRobot finds an env that is
not registered yet: it imports the module named by its config's ``package_name``.
Importing this is cheap (no MuJoCo): ``gym.make`` imports the env module itself.

Dependency rule: gymnasium and so100_sim.task only.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from so100_sim.task import TaskConfig

NAMESPACE = "gym_so100"
PICK_PLACE = "PickPlace-v0"
PICK_PLACE_ID = f"{NAMESPACE}/{PICK_PLACE}"

if PICK_PLACE_ID not in registry:  # importing twice (or from a worker process) must not re-register
    register(
        id=PICK_PLACE_ID,
        entry_point="so100_sim.gym_env:So100PickPlaceEnv",
        max_episode_steps=TaskConfig().episode_steps,
    )

__all__ = ["NAMESPACE", "PICK_PLACE", "PICK_PLACE_ID"]
