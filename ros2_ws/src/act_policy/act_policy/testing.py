"""Test support: tiny ACT checkpoints in lerobot's layout, made in a second with no dataset and no download.

Used by the tests of evaluation and of ``act_inference``, and by benchmarks that time inference
of an untrained model (timing does not depend on the weights).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from act_policy import dataset_keys
from so100_common.names import CAMERA_NAMES, JOINT_NAMES


def tiny_act_config(cameras: Sequence[str] = CAMERA_NAMES, height: int = 48, width: int = 64, *,
                    chunk_size: int = 10, n_action_steps: int | None = None, tiny: bool = True):
    """An ACTConfig observing ``cameras`` at ``height``x``width`` (tiny dimensions unless ``tiny=False``)."""
    from lerobot.configs import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig

    n = len(JOINT_NAMES)
    inputs = {dataset_keys.OBS_STATE: PolicyFeature(type=FeatureType.STATE, shape=(n,))}
    for cam in cameras:
        inputs[dataset_keys.image_key(cam)] = PolicyFeature(type=FeatureType.VISUAL, shape=(3, height, width))
    size = dict(dim_model=32, n_heads=2, dim_feedforward=64, n_encoder_layers=1, n_decoder_layers=1,
                n_vae_encoder_layers=1, latent_dim=8) if tiny else {}
    return ACTConfig(
        input_features=inputs,
        output_features={dataset_keys.ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(n,))},
        chunk_size=chunk_size, n_action_steps=n_action_steps or chunk_size,
        pretrained_backbone_weights=None, device="cpu", push_to_hub=False, **size,
    )


def synthetic_stats(config, state_mean: Sequence[float] | None = None) -> dict:
    """Normalization stats for every feature of ``config`` (state/action mean = ``state_mean`` or 0)."""
    import torch

    n = len(JOINT_NAMES)
    mean = torch.tensor(list(state_mean) if state_mean is not None else [0.0] * n, dtype=torch.float32)
    stats = {k: {"mean": mean.clone(), "std": torch.full((n,), 0.5), "min": mean - 1.5, "max": mean + 1.5}
             for k in (dataset_keys.OBS_STATE, dataset_keys.ACTION)}
    for key in config.input_features:
        if dataset_keys.is_image_key(key):
            stats[key] = {"mean": torch.full((3, 1, 1), 0.5), "std": torch.full((3, 1, 1), 0.25),
                          "min": torch.zeros(3, 1, 1), "max": torch.ones(3, 1, 1)}
    return stats


def make_tiny_checkpoint(out: Path, cameras: Sequence[str] = CAMERA_NAMES, height: int = 48, width: int = 64, *,
                         fps: float = 30.0, chunk_size: int = 10, tiny: bool = True, seed: int = 0) -> Path:
    """Write an untrained ACT checkpoint (``out/pretrained_model``) loadable by :func:`policy_io.load_policy`."""
    import torch
    from lerobot.policies import make_pre_post_processors
    from lerobot.policies.act.modeling_act import ACTPolicy

    torch.manual_seed(seed)
    config = tiny_act_config(cameras, height, width, chunk_size=chunk_size, tiny=tiny)
    policy = ACTPolicy(config)
    pre, post = make_pre_post_processors(config, dataset_stats=synthetic_stats(config))
    target = Path(out) / "pretrained_model"
    target.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(target)
    pre.save_pretrained(target)
    post.save_pretrained(target)
    (target / "so100_train.json").write_text(json.dumps({"fps": fps, "height": height, "width": width}))
    return target
