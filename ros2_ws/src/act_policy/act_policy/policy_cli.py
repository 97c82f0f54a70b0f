"""``so100 train`` and ``so100 eval``: ACT training with sim evaluation of every checkpoint, and evaluation alone.

Exit status: 0 done; 1 the run failed (an error message says why); 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from act_policy.backbone_norm import NORM_CHOICES
from act_policy.errors import ActPolicyError
from act_policy.evaluate import DEFAULT_EVAL_SEED
from act_policy.recipes import RECIPES

TRAIN_HELP_TEMPLATE = """\
Train ACT (lerobot) on a local LeRobot dataset; evaluate every checkpoint in the simulator on
the same seeded scenes (success with its Wilson 95% interval) and keep the best one as best/.

The defaults are the seed's best run (chunk 100, batch 8, lr 1e-5 cosine to 1e-7, 50k steps):
meant for a GPU. On a CPU train small (DESIGN.md §7: a step at 240x320 takes ~3 s with the
full model): --recipe cpu sets the learning benchmark's recipe ({cpu_summary}):
  {cpu_flags}
Flags given beside --recipe override its values.

examples:
  so100 train --dataset output/run_x/dataset --out runs/act1 --recipe cpu     # CPU, about 15 min
  so100 train --dataset output/run_x/dataset --out runs/act1                  # GPU, seed defaults
  so100 train --dataset data/so100 --out runs/act1 --resume --steps 80000     # continue a run
  so100 train --dataset data/so100 --out runs/act2 --logger tensorboard       # tensorboard --logdir runs/act2
"""


def train_help() -> str:
    import textwrap

    cpu = RECIPES["cpu"]
    flags = textwrap.fill(" ".join(cpu.flags()), width=96, subsequent_indent="    ", break_on_hyphens=False)
    return TRAIN_HELP_TEMPLATE.format(cpu_summary=cpu.summary, cpu_flags=flags)


EVAL_HELP = """\
Evaluate a checkpoint in the simulator: N randomized episodes with fixed seeds (episode i uses
seed --seed + i, the same scenes for every checkpoint), a per-episode table, and the success
rate with its Wilson 95% interval. --graph runs the same episodes through the ROS graph
(act_inference <-> sim_bridge, real time) to show the deployed path behaves like the in-process one.

CHECKPOINT is a pretrained_model folder, a checkpoint step folder, best/, or a `so100 train` run
folder (its best/, else checkpoints/last).

examples:
  so100 eval runs/act1                         # 50 episodes of runs/act1/best
  so100 eval runs/act1/checkpoints/020000 --episodes 100 --json eval.json
  so100 eval runs/act1 --graph --episodes 10
"""


def _size(text: str) -> tuple[int, int]:
    """``HxW`` (e.g. 240x320) -> (240, 320)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 240x320; got {text!r}") from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"image size {text} is too small (>= 16 px each side)")
    return h, w


def train_parser() -> argparse.ArgumentParser:
    from act_policy.train import TrainOptions

    d = TrainOptions(dataset=Path(), out=Path())
    ap = argparse.ArgumentParser(prog="so100 train", description=train_help(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                    help="start from a named recipe's values (see above); flags given here override them")
    ap.add_argument("--dataset", type=Path, required=True, help="LeRobot dataset folder (e.g. from so100 pipeline)")
    ap.add_argument("--out", type=Path, required=True, help="run folder (new, or an existing one with --resume)")
    ap.add_argument("--repo-id", default=d.repo_id, help=f"dataset repo id (default {d.repo_id})")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last")
    g = ap.add_argument_group("schedule")
    g.add_argument("--steps", type=int, default=d.steps, help=f"training steps (default {d.steps})")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default {d.batch_size})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr})")
    g.add_argument("--lr-min", type=float, default=d.lr_min, help=f"cosine decay floor (default {d.lr_min})")
    g.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help=f"(default {d.warmup_steps})")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"(default {d.weight_decay})")
    g.add_argument("--seed", type=int, default=d.seed, help=f"(default {d.seed})")
    g = ap.add_argument_group("model (ACT)")
    g.add_argument("--chunk-size", type=int, default=d.chunk_size, help=f"(default {d.chunk_size})")
    g.add_argument("--n-action-steps", type=int, default=d.n_action_steps, help=f"(default {d.n_action_steps})")
    g.add_argument("--kl-weight", type=float, default=d.kl_weight, help=f"(default {d.kl_weight})")
    for name in ("dim_model", "n_heads", "dim_feedforward", "n_encoder_layers", "n_decoder_layers",
                 "n_vae_encoder_layers", "latent_dim"):
        g.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name),
                       help=f"(default {getattr(d, name)})")
    g.add_argument("--backbone", default=d.backbone, help=f"torchvision ResNet (default {d.backbone})")
    g.add_argument("--pretrained-backbone", default=d.pretrained_backbone,
                   help="auto (ImageNet weights only if already in the local torch cache), none, or a torchvision "
                        "weights name (default auto; nothing is ever downloaded)")
    g.add_argument("--backbone-norm", choices=NORM_CHOICES, default=d.backbone_norm,
                   help="backbone normalisation: frozen (lerobot's) or batch (trainable, learns its statistics; "
                        "for a backbone from random weights; checkpoints keep lerobot's layout) (default frozen)")
    g = ap.add_argument_group("data")
    g.add_argument("--image-size", type=_size, default=None, metavar="HxW",
                   help="training image size, e.g. 240x320 (default: the recorded size)")
    g.add_argument("--cameras", nargs="+", default=None, metavar="KEY",
                   help="dataset camera keys to train on (default: every RGB camera)")
    g.add_argument("--cache", action="store_true",
                   help="decode every frame once into RAM as uint8 (size estimated first; refused if it won't fit)")
    g.add_argument("--num-workers", type=int, default=d.num_workers, help=f"data loader workers without --cache "
                                                                           f"(default {d.num_workers})")
    g = ap.add_argument_group("checkpoints and evaluation")
    g.add_argument("--save-every", type=int, default=d.save_every, help=f"checkpoint period (default {d.save_every})")
    g.add_argument("--eval-episodes", type=int, default=d.eval_episodes,
                   help=f"sim episodes per checkpoint, 0 = no evaluation (default {d.eval_episodes})")
    g.add_argument("--eval-envs", type=int, default=d.eval_envs, help=f"envs per batch (default {d.eval_envs})")
    g.add_argument("--eval-seed", type=int, default=d.eval_seed, help=f"seed of evaluation episode 0 "
                                                                      f"(default {d.eval_seed})")
    g.add_argument("--eval-episode-steps", type=int, default=None, help="time limit of an evaluation episode in "
                                                                         "steps (default: the task's, 300)")
    g = ap.add_argument_group("run")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: the GPU when there is one)")
    g.add_argument("--logger", choices=["none", "tensorboard", "wandb"], default="none",
                   help="scalar logging (wandb runs offline unless WANDB_MODE says otherwise)")
    g.add_argument("--log-every", type=int, default=d.log_every, help=f"(default {d.log_every})")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def parse_train_args(argv: list[str]) -> argparse.Namespace:
    """``so100 train`` arguments; ``--recipe NAME`` supplies defaults that explicit flags override."""
    ap = train_parser()
    known, _ = ap.parse_known_args(argv)
    if known.recipe:
        ap.set_defaults(**RECIPES[known.recipe].options)
    return ap.parse_args(argv)


def train_main(argv: list[str]) -> int:
    from act_policy.train import TrainOptions, train
    from so100_common.logs import setup_logging

    a = parse_train_args(argv)
    setup_logging()
    fields = {f for f in TrainOptions.__dataclass_fields__}
    values = {k: v for k, v in vars(a).items() if k in fields}
    values["cameras"] = tuple(a.cameras) if a.cameras else None
    try:
        train(TrainOptions(**values, progress=not a.no_progress))
    except ActPolicyError as e:
        print(f"so100 train: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("so100 train: interrupted; continue with --resume (from the last checkpoint)", file=sys.stderr)
        return 130
    return 0


def eval_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="so100 eval", description=EVAL_HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="checkpoint or run folder")
    ap.add_argument("--episodes", type=int, default=50, help="episodes (default 50)")
    ap.add_argument("--envs", type=int, default=4, help="envs per batch, one policy call for all (default 4)")
    ap.add_argument("--seed", type=int, default=DEFAULT_EVAL_SEED, help=f"seed of episode 0 "
                                                                        f"(default {DEFAULT_EVAL_SEED})")
    ap.add_argument("--episode-steps", type=int, default=None, help="time limit in steps (default: the task's, 300)")
    ap.add_argument("--n-action-steps", type=int, default=None, metavar="N",
                    help="actions executed per predicted chunk, 1..chunk size (default: the checkpoint's)")
    ap.add_argument("--temporal-ensemble", type=float, default=None, metavar="COEFF",
                    help="ACT's temporal ensembling with weights exp(-COEFF * i), a chunk every step "
                         "(ACT's paper uses 0.01; default off)")
    ap.add_argument("--inference-latency", type=float, default=None, metavar="MS",
                    help="in-process, but executed as act_inference does: its control core in simulated time, "
                         "each chunk arriving MS milliseconds after its observation (actions for the ticks "
                         "that passed are skipped); deterministic, and as fast as in-process. act_inference "
                         "logs its measured latency (default: lerobot's select_action, no latency)")
    ap.add_argument("--refill-steps", type=int, default=None, metavar="N",
                    help="with --inference-latency or --graph: ask for the next chunk when N actions are left "
                         "(act_inference's refill_steps; default: from the measured latency)")
    ap.add_argument("--device", default=None, help="cpu, cuda ... (default: the GPU when there is one)")
    ap.add_argument("--json", type=Path, default=None, help="write the results (per episode too) to this file")
    ap.add_argument("--graph", action="store_true",
                    help="run through the ROS graph (act_inference + sim_bridge processes, real time)")
    ap.add_argument("--quiet", action="store_true", help="no per-episode lines while running")
    return ap


def eval_main(argv: list[str]) -> int:
    from so100_common.logs import setup_logging

    a = eval_parser().parse_args(argv)
    if a.episodes < 1 or a.envs < 1:
        print("so100 eval: error: --episodes and --envs must be >= 1", file=sys.stderr)
        return 2
    if a.temporal_ensemble is not None and a.n_action_steps is not None:
        print("so100 eval: error: --temporal-ensemble executes one action per chunk; drop --n-action-steps",
              file=sys.stderr)
        return 2
    if (a.temporal_ensemble is not None and not a.temporal_ensemble > 0) or (
            a.n_action_steps is not None and a.n_action_steps < 1):
        # 0 would mean uniform weights in-process but "off" in act_inference: refused, so both modes agree
        print("so100 eval: error: --temporal-ensemble must be > 0 and --n-action-steps >= 1", file=sys.stderr)
        return 2
    if a.inference_latency is not None and (a.graph or not a.inference_latency >= 0):
        print("so100 eval: error: --inference-latency must be >= 0 ms and is for in-process evaluation "
              "(--graph runs with its real latency)", file=sys.stderr)
        return 2
    if a.refill_steps is not None and (a.refill_steps < 1 or (a.inference_latency is None and not a.graph)):
        print("so100 eval: error: --refill-steps must be >= 1 and is for act_inference's schedule "
              "(--inference-latency or --graph)", file=sys.stderr)
        return 2
    setup_logging()

    def progress(ep) -> None:
        if not a.quiet:
            print(f"episode {ep.index} (seed {ep.seed}): {'success' if ep.success else 'failure'} "
                  f"after {ep.steps} steps, {ep.seconds:.1f} s", flush=True)

    try:
        if a.graph:
            from act_policy.graph_eval import evaluate_through_graph

            kwargs = {"episode_steps": a.episode_steps} if a.episode_steps else {}
            extra = [f"n_action_steps:={a.n_action_steps}"] if a.n_action_steps else []
            if a.temporal_ensemble is not None:
                extra.append(f"temporal_ensemble_coeff:={a.temporal_ensemble}")
            if a.refill_steps:
                extra.append(f"refill_steps:={a.refill_steps}")
            report = evaluate_through_graph(a.checkpoint, a.episodes, a.seed, device=a.device or "auto",
                                            extra_args=extra, **kwargs)
            if a.temporal_ensemble is not None or a.n_action_steps:
                from act_policy.evaluate import describe_execution

                report.execution = describe_execution(a.n_action_steps, a.temporal_ensemble)
            if a.refill_steps:
                report.execution = ", ".join(filter(None, [report.execution, f"next chunk at {a.refill_steps} left"]))
        else:
            from act_policy.evaluate import evaluate_checkpoint

            report = evaluate_checkpoint(str(a.checkpoint), a.episodes, a.envs, a.seed, a.device, a.episode_steps,
                                         progress, n_action_steps=a.n_action_steps,
                                         temporal_ensemble_coeff=a.temporal_ensemble,
                                         inference_latency=None if a.inference_latency is None
                                         else a.inference_latency / 1000, refill_steps=a.refill_steps or 0)
    except ActPolicyError as e:
        print(f"so100 eval: error: {e}", file=sys.stderr)
        return 1
    print(report.episode_table())
    print(f"{report.mode}{f' ({report.execution})' if report.execution else ''}: {report.summary()}")
    if a.json:
        report.write_json(a.json)
        print(f"results: {a.json}")
    else:
        print(json.dumps({k: v for k, v in report.to_dict().items() if k != "per_episode"}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``so100-policy train|eval ...`` (``so100 train`` / ``so100 eval`` call the two mains directly)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        return train_main(argv[1:])
    if argv[:1] == ["eval"]:
        return eval_main(argv[1:])
    print("usage: so100 train ... | so100 eval ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
