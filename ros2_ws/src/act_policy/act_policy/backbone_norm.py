"""Trainable batch norm for an ACT vision backbone that starts from random weights.

lerobot's ACT builds its ResNet with torchvision's ``FrozenBatchNorm2d``, right for ImageNet
weights (their statistics are kept) but, from random weights, a ResNet with no normalisation at
all: every frozen layer is the identity. Trained from scratch, the backbone gets real
``BatchNorm2d`` layers instead (batch statistics in training, running statistics learned on the
way). A batch-norm layer in eval mode computes exactly what a frozen one does with the same
weight, bias, running mean and running variance, and with ``num_batches_tracked`` dropped it has
the same state-dict keys: checkpoints keep lerobot's layout and load in stock lerobot, which
rebuilds the frozen layers and gets the learned statistics.

Opt-in (``so100 train --backbone-norm batch``): in the CPU learning benchmark it did not beat the
frozen layers (benchmarks/RESULTS.md), so lerobot's choice stays the default.
"""

from __future__ import annotations

from typing import Any

NORM_CHOICES = ("frozen", "batch")


def unfreeze_batch_norm(module: Any) -> int:
    """Replace every ``FrozenBatchNorm2d`` under ``module`` by a trainable ``BatchNorm2d`` holding its values.

    Returns the number of layers replaced.
    """
    import torch
    from torchvision.ops.misc import FrozenBatchNorm2d

    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, FrozenBatchNorm2d):
                continue
            bn = torch.nn.BatchNorm2d(child.weight.numel(), eps=child.eps).to(child.weight.device)
            with torch.no_grad():
                bn.weight.copy_(child.weight)
                bn.bias.copy_(child.bias)
                bn.running_mean.copy_(child.running_mean)
                bn.running_var.copy_(child.running_var)
            bn.num_batches_tracked = None  # the frozen layer's keys exactly (momentum stays 0.1)
            setattr(parent, name, bn)
            replaced += 1
    return replaced
