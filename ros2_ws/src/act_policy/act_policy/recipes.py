"""Named training recipes: one definition used by ``so100 train --recipe``, its ``--help``, the
pipeline's next-step hint, the README and ``benchmarks/learning.py``.

A recipe is a set of ``so100 train`` option values (the :class:`act_policy.train.TrainOptions`
field names); flags given on the command line override them. Writing a recipe out a second time
(as a list of flags in a hint or a script) is how a missing ``--warmup-steps`` once separated 0 %
from 90 % success: show :func:`recipe_flags` instead.

Dependency rule: standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from act_policy import dataset_keys


@dataclass(frozen=True)
class Recipe:
    """A name, what it is for, and the ``so100 train`` options it sets."""

    name: str
    summary: str
    options: dict[str, Any] = field(default_factory=dict)

    def flags(self) -> list[str]:
        """The options as ``so100 train`` flags (``--image-size 96x128 --cache ...``)."""
        out: list[str] = []
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                out.append(flag)
            elif isinstance(value, tuple) and key == "image_size":
                out += [flag, f"{value[0]}x{value[1]}"]
            elif isinstance(value, tuple):
                out += [flag, *map(str, value)]
            else:
                out += [flag, str(value)]
        return out


#: The CPU learning recipe: a small ACT at 96x128 on the overhead camera, trained in about
#: 15 minutes on 2 cores; checkpoints graded on 30 sim episodes each. ``benchmarks/learning.py``
#: measures it (``benchmarks/RESULTS.md``).
CPU = Recipe(
    name="cpu",
    summary="small ACT at 96x128 on the overhead camera, 3000 steps (about 15 min on 2 CPU cores), "
            "every 500 steps graded on 30 sim episodes",
    options={
        "image_size": (96, 128),
        "cameras": (dataset_keys.image_key("overhead"),),
        "cache": True,
        "steps": 3000,
        "save_every": 500,
        "eval_episodes": 30,
        "eval_envs": 5,
        "batch_size": 8,
        "lr": 3e-4,
        "lr_min": 3e-6,
        "warmup_steps": 100,
        "chunk_size": 30,
        "n_action_steps": 15,
        "dim_model": 256,
        "n_heads": 4,
        "dim_feedforward": 1024,
        "n_encoder_layers": 2,
        "n_vae_encoder_layers": 2,
        "kl_weight": 10.0,
        "num_workers": 0,
    },
)

RECIPES: dict[str, Recipe] = {CPU.name: CPU}


def recipe_flags(name: str) -> str:
    """The recipe's flags as one string, for help texts."""
    return " ".join(RECIPES[name].flags())
