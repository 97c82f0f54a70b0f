"""In-process evaluation of a policy in the simulated task: N seeded episodes, batched across envs.

Episode ``i`` uses the scene of seed ``start_seed + i`` (the same scene ``sim_bridge`` and the
gym env build for that seed), so every checkpoint of a run is graded on the same scenes.
``n_envs`` environments step in lockstep and the policy sees them as one batch (one forward
pass per step for all of them); an env that has finished keeps its last observation until
the batch ends. The envs render in this process: on software GL the renderer already uses
every core (DESIGN.md §7), so more processes would not render faster.

Dependency rule: lerobot/torch, so100_sim's gym env; no ROS runtime.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from act_policy import dataset_keys
from act_policy.eval_report import EpisodeResult, EvalReport
from act_policy.policy_io import LoadedPolicy, PolicyInputs, policy_images

log = logging.getLogger(__name__)

DEFAULT_EVAL_SEED = 100_000  # far from the seeds demonstrations are recorded with (0, 1, 2, ...)


class SimEvaluator:
    """A pool of simulated envs that grades policies on fixed seeds (reusable across checkpoints)."""

    def __init__(self, inputs: PolicyInputs, n_envs: int = 4, episode_steps: int | None = None) -> None:
        from so100_sim.gym_env import So100PickPlaceEnv

        if n_envs < 1:
            raise ValueError(f"n_envs must be >= 1; got {n_envs}")
        self.inputs = inputs
        height, width = inputs.render_size
        kwargs: dict[str, Any] = {"cameras": inputs.cameras, "height": height, "width": width,
                                  "fps": inputs.fps}
        if episode_steps is not None:
            kwargs["episode_steps"] = episode_steps
        self.envs = [So100PickPlaceEnv(**kwargs) for _ in range(n_envs)]
        self.episode_steps = self.envs[0].task_config.episode_steps

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []

    def __enter__(self) -> SimEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def compatible(self, inputs: PolicyInputs) -> bool:
        i = self.inputs
        return (i.cameras, i.height, i.width, i.render_size, i.fps) == (
            inputs.cameras, inputs.height, inputs.width, inputs.render_size, inputs.fps)

    def run(self, loaded: LoadedPolicy, episodes: int, start_seed: int = DEFAULT_EVAL_SEED,
            progress: Callable[[EpisodeResult], None] | None = None, *,
            inference_latency: float | None = None, refill_steps: int = 0) -> EvalReport:
        """Roll ``loaded`` out for ``episodes`` episodes; ``progress`` is called as each one ends.

        ``inference_latency`` (seconds): drive each env with act_inference's own control core
        (:class:`act_policy.inference_core.InferenceCore`) in simulated time, each chunk arriving
        that long after its observation, as in the deployed graph; None = lerobot's
        ``select_action`` with no latency. ``refill_steps``: the core asks for the next chunk when
        this many actions are left (act_inference's parameter; 0 = from the latency).
        """
        if not self.compatible(loaded.inputs):
            raise ValueError(f"this evaluator renders {self.inputs}, the policy expects {loaded.inputs}")
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1; got {episodes}")
        start = time.monotonic()
        results: list[EpisodeResult] = []
        if inference_latency is not None:
            for i in range(episodes):
                results.append(self._run_scheduled(loaded, i, start_seed, inference_latency, refill_steps))
                if progress:
                    progress(results[-1])
        else:
            for first in range(0, episodes, len(self.envs)):
                batch = list(range(first, min(first + len(self.envs), episodes)))
                results += self._run_batch(loaded, batch, start_seed, progress)
        execution = execution_of(loaded.policy.config)
        if inference_latency is not None:
            execution += f", act_inference's schedule with {1000 * inference_latency:g} ms inference"
            if refill_steps:
                execution += f", next chunk at {refill_steps} left"
        return EvalReport(results, wall_s=time.monotonic() - start, checkpoint=str(loaded.path), mode="sim",
                          execution=execution)

    # ------------------------------------------------------------ internals
    def _run_batch(self, loaded: LoadedPolicy, indices: list[int], start_seed: int,
                   progress: Callable[[EpisodeResult], None] | None) -> list[EpisodeResult]:
        import torch

        envs = self.envs[: len(indices)]
        observations = [env.reset(seed=start_seed + i)[0] for env, i in zip(envs, indices, strict=True)]
        done = [False] * len(envs)
        success = [False] * len(envs)
        steps = [0] * len(envs)
        ended = [0.0] * len(envs)
        loaded.policy.reset()
        t0 = time.monotonic()
        with torch.inference_mode():
            while not all(done):
                actions = self.act(loaded, observations)
                for k, env in enumerate(envs):
                    if done[k]:
                        continue
                    observations[k], _, terminated, truncated, info = env.step(actions[k])
                    steps[k] += 1
                    if terminated or truncated:
                        done[k], success[k], ended[k] = True, bool(info["is_success"]), time.monotonic() - t0
                        result = EpisodeResult(indices[k], start_seed + indices[k], success[k], steps[k], ended[k])
                        if progress:
                            progress(result)
        return [EpisodeResult(i, start_seed + i, success[k], steps[k], ended[k]) for k, i in enumerate(indices)]

    def _run_scheduled(self, loaded: LoadedPolicy, index: int, start_seed: int, latency: float,
                       refill_steps: int = 0) -> EpisodeResult:
        """One episode driven by act_inference's control core in simulated time (see :meth:`run`)."""
        from act_policy.inference_core import InferenceConfig, InferenceCore, SteppedPredictor
        from act_policy.policy_io import predict_chunk

        env, inputs, config = self.envs[0], loaded.inputs, loaded.policy.config
        coeff = getattr(config, "temporal_ensemble_coeff", None) or 0.0
        cfg = InferenceConfig(rate=inputs.fps, cameras=inputs.cameras, chunk_size=loaded.chunk_size,
                              n_action_steps=loaded.n_action_steps, temporal_ensemble_coeff=coeff,
                              refill_steps=refill_steps)
        predictor = SteppedPredictor(lambda o: predict_chunk(loaded, o.state, o.images), latency, cfg.rate)
        core = InferenceCore(cfg, predictor)
        core.set_latency_estimate(latency)
        obs, _ = env.reset(seed=start_seed + index)
        t0 = time.monotonic()
        for step in range(1, self.episode_steps + 1):
            now = (step - 1) / cfg.rate
            core.observe_state(obs["agent_pos"], now)
            for cam in inputs.cameras:
                core.observe_image(cam, obs["pixels"][cam], now)
            command = core.tick(now)
            action = obs["agent_pos"] if command.position is None else command.position
            obs, _, terminated, truncated, info = env.step(np.asarray(action, dtype=np.float32))
            if terminated or truncated:
                break
        return EpisodeResult(index, start_seed + index, bool(info["is_success"]), step, time.monotonic() - t0)

    def act(self, loaded: LoadedPolicy, observations: list[dict]) -> np.ndarray:
        """One batched policy step: env observations -> (B, 6) joint targets (rad)."""
        import torch

        batch: dict[str, Any] = {
            dataset_keys.OBS_STATE: torch.from_numpy(np.stack([o["agent_pos"] for o in observations])).float(),
        }
        size = (loaded.inputs.height, loaded.inputs.width)
        for cam, key in zip(loaded.inputs.cameras, loaded.inputs.image_keys, strict=True):
            batch[key] = policy_images(np.stack([o["pixels"][cam] for o in observations]), size)  # B,H,W,3 uint8
        batch["task"] = [envs_task() for _ in observations]
        action = loaded.policy.select_action(loaded.preprocessor(batch))
        return loaded.postprocessor(action).detach().cpu().numpy().astype(np.float32)


def describe_execution(n_action_steps: int | None, temporal_ensemble_coeff: float | None) -> str:
    """How chunks are executed, in words (ensembling wins, as in lerobot's ACT)."""
    if temporal_ensemble_coeff is not None:
        return f"temporal ensembling {temporal_ensemble_coeff:g} (a chunk every step)"
    return f"{n_action_steps} actions per chunk"


def execution_of(config: Any) -> str:
    """How a policy config executes its chunks, in words."""
    return describe_execution(getattr(config, "n_action_steps", 1), getattr(config, "temporal_ensemble_coeff", None))


def envs_task() -> str:
    from so100_sim.task import TASK_DESCRIPTION

    return TASK_DESCRIPTION


def evaluate_checkpoint(checkpoint: str, episodes: int = 50, n_envs: int = 4, start_seed: int = DEFAULT_EVAL_SEED,
                        device: str | None = None, episode_steps: int | None = None,
                        progress: Callable[[EpisodeResult], None] | None = None, *,
                        n_action_steps: int | None = None,
                        temporal_ensemble_coeff: float | None = None,
                        inference_latency: float | None = None, refill_steps: int = 0) -> EvalReport:
    """Load ``checkpoint`` and evaluate it in-process (see :class:`SimEvaluator`).

    ``n_action_steps`` and ``temporal_ensemble_coeff`` override how the policy executes its
    chunks (see :func:`act_policy.policy_io.load_policy`); the checkpoint's own way if None.
    ``inference_latency``, ``refill_steps``: see :meth:`SimEvaluator.run`.
    """
    from act_policy.policy_io import load_policy

    loaded = load_policy(checkpoint, device, n_action_steps=n_action_steps,
                         temporal_ensemble_coeff=temporal_ensemble_coeff)
    n_envs = 1 if inference_latency is not None else min(n_envs, episodes)  # the core drives one env at a time
    with SimEvaluator(loaded.inputs, n_envs=n_envs, episode_steps=episode_steps) as ev:
        return ev.run(loaded, episodes, start_seed, progress, inference_latency=inference_latency,
                      refill_steps=refill_steps)
