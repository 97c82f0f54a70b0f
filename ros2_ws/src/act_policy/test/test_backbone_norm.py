"""Trainable batch norm for a from-scratch ACT backbone: trains statistics, saves as lerobot's frozen layers."""

import pytest
import torch

from act_policy.backbone_norm import unfreeze_batch_norm
from act_policy.testing import tiny_act_config


def _policy():
    from lerobot.policies.act.modeling_act import ACTPolicy

    torch.manual_seed(0)
    return ACTPolicy(tiny_act_config(("overhead",), 48, 64))


def _features(policy, images):
    with torch.inference_mode():
        return policy.model.backbone(images)["feature_map"]


def test_train_refuses_an_unknown_norm(tmp_path):
    from act_policy.train import TrainError, TrainOptions, train

    tmp_path.joinpath("ds").mkdir()
    with pytest.raises(TrainError, match="--backbone-norm must be one of frozen, batch"):
        train(TrainOptions(dataset=tmp_path / "ds", out=tmp_path / "run", backbone_norm="group"))


def test_batch_norm_learns_statistics_and_loads_back_as_frozen_layers(tmp_path):
    from lerobot.policies.act.modeling_act import ACTPolicy
    from torchvision.ops.misc import FrozenBatchNorm2d

    policy = _policy()
    keys = set(policy.state_dict())
    images = torch.rand(4, 3, 48, 64) * 0.5 + 0.25
    before = _features(policy, images)
    assert unfreeze_batch_norm(policy.model.backbone) == 20  # every norm layer of a ResNet-18
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in policy.modules())
    assert set(policy.state_dict()) == keys  # lerobot's layout: no num_batches_tracked
    policy.eval()
    assert torch.allclose(_features(policy, images), before, atol=1e-6)  # nothing changed yet

    policy.train()
    for _ in range(5):  # training-mode passes update the running statistics
        policy.model.backbone(torch.rand(8, 3, 48, 64) * 0.5 + 0.25)
    policy.eval()
    trained = _features(policy, images)
    assert not torch.allclose(trained, before, atol=1e-3)
    assert not torch.allclose(policy.state_dict()["model.backbone.bn1.running_var"], torch.ones(1))

    policy.save_pretrained(tmp_path)
    loaded = ACTPolicy.from_pretrained(tmp_path)  # stock lerobot: frozen layers again
    loaded.eval()
    assert isinstance(loaded.model.backbone.bn1, FrozenBatchNorm2d)
    assert torch.allclose(_features(loaded, images), trained, atol=1e-5)  # same function as in eval mode
