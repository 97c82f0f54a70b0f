"""``so100 train``: ACT from lerobot on a local dataset, with every checkpoint graded in the simulator.

lerobot supplies the pieces (``make_policy``, its processors, optimizer and scheduler factories,
``update_policy``, ``save_checkpoint`` / ``load_training_state`` and the episode-aware sampler), so
a checkpoint is in lerobot's layout and ``lerobot-eval`` or ``lerobot-train --resume`` read it.
This loop adds what the seed run taught (DESIGN.md §4):
- every checkpoint is evaluated in the sim on the same seeded scenes, success with its Wilson
  95% interval; the best one by success (ties: fewer steps) is kept as ``best/``, since the
  lowest loss and the last checkpoint are rarely the best policy;
- decoded frames can be cached in RAM (:mod:`act_policy.frame_cache`) and images resized to a
  training size independent of the recorded one; the checkpoint records that size, so
  evaluation renders at it and ``act_inference`` resizes camera frames to it.

Output: ``<out>/checkpoints/<step>/`` (lerobot), ``checkpoints/last``, ``best/``,
``eval_history.json`` and ``train_summary.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from act_policy import dataset_keys
from act_policy.backbone_norm import NORM_CHOICES, unfreeze_batch_norm
from act_policy.errors import ActPolicyError
from act_policy.eval_report import EvalReport, checkpoint_table

log = logging.getLogger(__name__)

SUMMARY_FILE = "train_summary.json"
HISTORY_FILE = "eval_history.json"
SO100_FILE = "so100_train.json"
IMAGENET_WEIGHTS = "ResNet18_Weights.IMAGENET1K_V1"
IMAGENET_FILE = "resnet18-f37072fd.pth"  # torchvision's file name for those weights in the torch hub cache


class TrainError(ActPolicyError):
    """Training cannot start or continue."""


@dataclasses.dataclass
class TrainOptions:
    """Every knob of ``so100 train`` (the defaults are the seed's best run)."""

    dataset: Path
    out: Path
    repo_id: str = "local/so100"
    steps: int = 50_000
    batch_size: int = 8
    lr: float = 1e-5
    lr_min: float = 1e-7
    warmup_steps: int = 0
    weight_decay: float = 1e-4
    grad_clip: float = 10.0
    chunk_size: int = 100
    n_action_steps: int = 100
    kl_weight: float = 10.0
    dim_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    n_encoder_layers: int = 4
    n_decoder_layers: int = 1
    n_vae_encoder_layers: int = 4
    latent_dim: int = 32
    backbone: str = "resnet18"
    pretrained_backbone: str = "auto"  # auto: ImageNet weights only when already in the local torch cache
    backbone_norm: str = "frozen"  # frozen (lerobot's) or batch (trainable, for a backbone from random weights)
    image_size: tuple[int, int] | None = None  # (H, W); the recorded size if None
    cameras: tuple[str, ...] | None = None  # dataset camera keys to train on; all if None
    cache: bool = False
    cache_max_fraction: float = 0.8
    save_every: int = 5_000
    log_every: int = 100
    eval_episodes: int = 50
    eval_envs: int = 4
    eval_seed: int = 100_000
    eval_episode_steps: int | None = None
    device: str | None = None
    num_workers: int = 2
    seed: int = 1000
    resume: bool = False
    logger: str = "none"  # none | tensorboard | wandb
    progress: bool = True
    recipe: str | None = None  # the act_policy.recipes recipe the values started from (recorded in the summary)


# ---------------------------------------------------------------- set-up helpers
def local_imagenet_weights() -> bool:
    """True when torchvision's ResNet-18 ImageNet weights are already in the local torch cache."""
    import torch

    return (Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILE).is_file()


def resolve_backbone_weights(choice: str, backbone: str) -> str | None:
    """``auto``/``none``/a torchvision weights name -> what ACTConfig gets (never a download)."""
    if choice == "none":
        return None
    if choice == "auto":
        if backbone == "resnet18" and local_imagenet_weights():
            log.info("using the ImageNet ResNet-18 weights found in the local torch cache")
            return IMAGENET_WEIGHTS
        log.info("no local ImageNet backbone weights: the backbone starts from random weights")
        return None
    if backbone == "resnet18" and choice == IMAGENET_WEIGHTS and not local_imagenet_weights():
        raise TrainError(f"{IMAGENET_WEIGHTS} is not in the local torch cache ({IMAGENET_FILE}) and nothing is "
                         "downloaded here; use --pretrained-backbone none or auto")
    return choice


def _act_config(o: TrainOptions, device: str, backbone_weights: str | None) -> Any:
    from lerobot.policies.act.configuration_act import ACTConfig

    if not 1 <= o.n_action_steps <= o.chunk_size:
        raise TrainError(f"--n-action-steps must be in 1..--chunk-size ({o.chunk_size}); got {o.n_action_steps}")
    return ACTConfig(
        chunk_size=o.chunk_size, n_action_steps=o.n_action_steps, kl_weight=o.kl_weight,
        dim_model=o.dim_model, n_heads=o.n_heads, dim_feedforward=o.dim_feedforward,
        n_encoder_layers=o.n_encoder_layers, n_decoder_layers=o.n_decoder_layers,
        n_vae_encoder_layers=o.n_vae_encoder_layers, latent_dim=o.latent_dim,
        vision_backbone=o.backbone, pretrained_backbone_weights=backbone_weights,
        optimizer_lr=o.lr, optimizer_lr_backbone=o.lr, optimizer_weight_decay=o.weight_decay,
        device=device, push_to_hub=False,
    )


def _recorded_size(meta: Any, key: str) -> tuple[int, int]:
    """(H, W) at which the dataset's camera ``key`` was recorded (evaluation renders at it, then resizes)."""
    from lerobot.utils.feature_utils import dataset_to_policy_features

    _, h, w = dataset_to_policy_features(meta.features)[key].shape
    return int(h), int(w)


def _input_features(meta: Any, o: TrainOptions) -> dict[str, Any]:
    """The policy's inputs: the state and the chosen cameras, at the training image size."""
    from lerobot.configs import FeatureType, PolicyFeature
    from lerobot.utils.feature_utils import dataset_to_policy_features

    feats = dataset_to_policy_features(meta.features)
    cams = [k for k, f in feats.items() if f.type is FeatureType.VISUAL]
    if not cams:
        raise TrainError(f"{o.dataset} has no camera images; ACT needs at least one")
    if dataset_keys.OBS_STATE not in feats or dataset_keys.ACTION not in feats:
        raise TrainError(f"{o.dataset} lacks observation.state or action; is it a so100 dataset?")
    if o.cameras:
        unknown = [c for c in o.cameras if c not in cams]
        if unknown:
            raise TrainError(f"--cameras {unknown} are not in the dataset; it has {cams}")
        cams = list(o.cameras)
    out = {dataset_keys.OBS_STATE: feats[dataset_keys.OBS_STATE]}
    for key in cams:
        c, h, w = feats[key].shape
        if c != 3:
            raise TrainError(f"{key} has {c} channels; ACT trains on RGB cameras (leave depth out with --cameras)")
        size = o.image_size or (h, w)
        out[key] = PolicyFeature(type=FeatureType.VISUAL, shape=(3, *size))
    return out


def _pipeline_config(o: TrainOptions, policy_cfg: Any) -> Any:
    from lerobot.configs.default import DatasetConfig, WandBConfig
    from lerobot.configs.train import TrainPipelineConfig
    from lerobot.optim.optimizers import AdamWConfig
    from lerobot.optim.schedulers import CosineDecayWithWarmupSchedulerConfig

    return TrainPipelineConfig(
        dataset=DatasetConfig(repo_id=o.repo_id, root=str(o.dataset), use_imagenet_stats=False),
        policy=policy_cfg, output_dir=o.out, job_name="so100_act", resume=o.resume, seed=o.seed,
        num_workers=o.num_workers, batch_size=o.batch_size, steps=o.steps, save_freq=o.save_every,
        log_freq=o.log_every, env_eval_freq=0, use_policy_training_preset=False,
        optimizer=AdamWConfig(lr=o.lr, weight_decay=o.weight_decay, grad_clip_norm=o.grad_clip),
        scheduler=CosineDecayWithWarmupSchedulerConfig(num_warmup_steps=o.warmup_steps, num_decay_steps=o.steps,
                                                       peak_lr=o.lr, decay_lr=o.lr_min),
        wandb=WandBConfig(enable=False),
    )


def _stats(meta: Any, cams: list[str], imagenet: bool) -> dict:
    stats = {k: dict(v) for k, v in meta.stats.items()}
    if imagenet:  # a pretrained backbone expects ImageNet's normalization
        from lerobot.utils.constants import IMAGENET_STATS

        for key in cams:
            stats[key] = {k: v for k, v in IMAGENET_STATS.items()}
    return stats


class _Logger:
    """Optional TensorBoard or W&B (offline unless WANDB_MODE says otherwise) scalar logging."""

    def __init__(self, kind: str, out: Path, config: dict) -> None:
        self.kind, self.tb, self.wandb = kind, None, None
        if kind == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"))
        elif kind == "wandb":
            import wandb

            os.environ.setdefault("WANDB_MODE", "offline")
            self.wandb = wandb.init(project="so100_act", dir=str(out), config=config)
        elif kind != "none":
            raise TrainError(f"--logger {kind!r}: use none, tensorboard or wandb")

    def log(self, values: dict[str, float], step: int) -> None:
        if self.tb:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)
        if self.wandb:
            self.wandb.log(values, step=step)

    def close(self) -> None:
        if self.tb:
            self.tb.close()
        if self.wandb:
            self.wandb.finish()


# ---------------------------------------------------------------- the run
def train(o: TrainOptions) -> dict[str, Any]:
    """Train, evaluate each checkpoint, keep the best; returns the run summary (also written to disk)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from accelerate import Accelerator
    from lerobot.common.train_utils import (
        get_step_checkpoint_dir,
        load_training_state,
        save_checkpoint,
        update_last_checkpoint,
    )
    from lerobot.datasets import EpisodeAwareSampler, compute_sampler_state
    from lerobot.datasets.factory import resolve_delta_timestamps
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
    from lerobot.optim.factory import make_optimizer_and_scheduler
    from lerobot.policies import make_policy, make_pre_post_processors
    from lerobot.scripts.lerobot_train import update_policy
    from lerobot.utils.logging_utils import AverageMeter, MetricsTracker
    from lerobot.utils.random_utils import set_seed
    from tqdm import tqdm

    from act_policy.frame_cache import CachedChunkDataset, resize_images

    _validate(o)
    out = o.out.resolve()
    last = out / "checkpoints" / "last"
    if o.resume:
        if not (last / "training_state").is_dir():
            raise TrainError(f"--resume: {last} holds no training state; start a new run in a new folder")
    elif out.exists() and any(out.iterdir()):
        raise TrainError(f"{out} already exists and is not empty; choose a new --out or pass --resume")
    out.mkdir(parents=True, exist_ok=True)
    device = o.device or ("cuda" if torch.cuda.is_available() else "cpu")
    set_seed(o.seed)

    try:
        meta = LeRobotDatasetMetadata(o.repo_id, root=o.dataset)
    except Exception as e:  # noqa: BLE001 - lerobot raises several kinds for a folder that is not a dataset
        raise TrainError(f"cannot open the dataset {o.dataset}: {type(e).__name__}: {e}") from e
    backbone_weights = resolve_backbone_weights(o.pretrained_backbone, o.backbone)
    policy_cfg = _act_config(o, device, backbone_weights)
    policy_cfg.input_features = _input_features(meta, o)
    cams = [k for k in policy_cfg.input_features if dataset_keys.is_image_key(k)]
    train_size = tuple(policy_cfg.input_features[cams[0]].shape[1:])
    source_size = _recorded_size(meta, cams[0])
    if o.resume:
        policy_cfg.pretrained_path = last / "pretrained_model"
    cfg = _pipeline_config(o, policy_cfg)

    delta = resolve_delta_timestamps(policy_cfg, meta)
    if o.cache:
        source = LeRobotDataset(o.repo_id, root=o.dataset)
        dataset = CachedChunkDataset(source, o.chunk_size, size=train_size, camera_keys=cams,
                                     max_fraction=o.cache_max_fraction, progress=o.progress)
        ds_meta = source.meta
    else:
        dataset = LeRobotDataset(o.repo_id, root=o.dataset, delta_timestamps=delta)
        ds_meta = dataset.meta
    policy = make_policy(policy_cfg, ds_meta=ds_meta)
    if o.backbone_norm == "batch":
        n = unfreeze_batch_norm(policy.model.backbone)
        log.info("backbone: %d trainable batch-norm layers (saved as lerobot's frozen ones)", n)
    stats = _stats(ds_meta, cams, backbone_weights is not None)
    preprocessor, postprocessor = make_pre_post_processors(policy_cfg, dataset_stats=stats)
    optimizer, scheduler = make_optimizer_and_scheduler(cfg, policy)
    step = 0
    if o.resume:
        step, optimizer, scheduler = load_training_state(last, optimizer, scheduler)
        log.info("resuming %s at step %d", out, step)
    if step >= o.steps:
        raise TrainError(f"the run in {out} already reached step {step} >= --steps {o.steps}; raise --steps")

    sampler = EpisodeAwareSampler(ds_meta.episodes["dataset_from_index"], ds_meta.episodes["dataset_to_index"],
                                  shuffle=True, seed=o.seed)
    if step:
        sampler.load_state_dict(compute_sampler_state(step, len(sampler), o.batch_size, 1))
    workers = 0 if o.cache else o.num_workers  # the cache is in this process's memory
    loader = torch.utils.data.DataLoader(dataset, batch_size=o.batch_size, sampler=sampler, num_workers=workers,
                                         pin_memory=device == "cuda", drop_last=False,
                                         persistent_workers=workers > 0)
    accelerator = Accelerator(cpu=device == "cpu", step_scheduler_with_optimizer=False)
    policy, optimizer, loader, scheduler = accelerator.prepare(policy, optimizer, loader, scheduler)

    history = _load_history(out) if o.resume else []
    best = _best_of(history)
    logger = _Logger(o.logger, out, dataclasses.asdict(o) | {"dataset": str(o.dataset), "out": str(out)})
    meters = {"loss": AverageMeter("loss", ":.3f"), "grad_norm": AverageMeter("grdn", ":.3f"),
              "lr": AverageMeter("lr", ":0.1e"), "update_s": AverageMeter("updt_s", ":.3f"),
              "dataloading_s": AverageMeter("data_s", ":.3f")}
    tracker = MetricsTracker(o.batch_size, ds_meta.total_frames, ds_meta.total_episodes, meters,
                             initial_step=step, accelerator=accelerator)
    evaluator = None
    start_step = step
    window_loss: list[float] = []
    first_loss: float | None = None
    data_s = update_s = 0.0
    t_start = time.monotonic()
    log.info("training ACT (%.1f M parameters) on %s: %d episodes, %d frames, cameras %s at %dx%d, %s, "
             "batch %d, %d steps", sum(p.numel() for p in policy.parameters()) / 1e6, o.dataset,
             ds_meta.total_episodes, ds_meta.total_frames, cams, train_size[1], train_size[0], device,
             o.batch_size, o.steps)
    bar = tqdm(total=o.steps, initial=step, desc="training", unit="step", disable=not o.progress, dynamic_ncols=True)
    batches = _cycle(loader)
    try:
        while step < o.steps:
            t0 = time.perf_counter()
            batch = next(batches)
            for key in cams:
                images = batch[key]
                if images.dtype == torch.uint8:
                    images = images.to(torch.float32) / 255.0
                batch[key] = resize_images(images, train_size)
            batch = preprocessor(batch)
            load_s = time.perf_counter() - t0
            tracker.dataloading_s = load_s
            data_s += load_s
            tracker, _ = update_policy(tracker, policy, batch, optimizer, o.grad_clip, accelerator=accelerator,
                                       lr_scheduler=scheduler)
            update_s += tracker.update_s.val
            loss = float(tracker.loss.val)
            if not math.isfinite(loss):
                raise TrainError(f"the loss became {loss} at step {step + 1}; lower --lr (now {o.lr})")
            first_loss = loss if first_loss is None else first_loss
            window_loss.append(loss)
            step += 1
            tracker.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            if step % o.log_every == 0:
                logger.log({"train/loss": loss, "train/lr": float(tracker.lr.val)}, step)
                if not o.progress:  # no bar (a log file, a CI job): a line with the rate and the ETA instead
                    rate = (step - start_step) / (time.monotonic() - t_start)
                    log.info("step %d/%d: loss %.3f, lr %.1e, %.2f steps/s, ETA %.0f min", step, o.steps, loss,
                             float(tracker.lr.val), rate, (o.steps - step) / rate / 60 if rate else 0.0)
            if step % o.save_every == 0 or step == o.steps:
                ckpt = get_step_checkpoint_dir(out, o.steps, step)
                save_checkpoint(checkpoint_dir=ckpt, step=step, cfg=cfg, policy=accelerator.unwrap_model(policy),
                                optimizer=optimizer, scheduler=scheduler, preprocessor=preprocessor,
                                postprocessor=postprocessor, num_processes=1, batch_size=o.batch_size)
                (ckpt / "pretrained_model" / SO100_FILE).write_text(json.dumps(
                    {"fps": ds_meta.fps, "height": train_size[0], "width": train_size[1], "step": step,
                     "source_height": source_size[0], "source_width": source_size[1],
                     "dataset": str(o.dataset), "cameras": cams}, indent=2))
                update_last_checkpoint(ckpt)
                mean_loss = sum(window_loss) / len(window_loss)
                window_loss = []
                row: dict[str, Any] = {"step": step, "loss": mean_loss, "checkpoint": str(ckpt), "eval": None}
                if o.eval_episodes > 0:
                    bar.clear()
                    report, evaluator = _evaluate(ckpt, o, device, evaluator, step)
                    report.write_json(ckpt / "eval.json")
                    row["eval"] = report.to_dict()
                    logger.log({"eval/success": report.success_rate, "eval/avg_steps": report.avg_steps}, step)
                    if report.better_than(best):
                        best = report
                        _keep_best(ckpt, out / "best", report)
                    log.info("step %d: loss %.4f, %s", step, mean_loss, report.summary())
                history.append(row)
                _write_json(out / HISTORY_FILE, history)
                policy.train()
    finally:
        bar.close()
        logger.close()
        if evaluator is not None:
            evaluator.close()
    wall = time.monotonic() - t_start
    summary = {
        "out": str(out), "steps": step, "wall_s": wall, "device": device, "train_size": list(train_size),
        "steps_per_s": (step - start_step) / wall if wall else 0.0,
        "train_steps_per_s": (step - start_step) / (data_s + update_s) if data_s + update_s else 0.0,
        "first_loss": first_loss, "last_loss": history[-1]["loss"] if history else None,
        "data_share": data_s / (data_s + update_s) if data_s + update_s else 0.0, "cache": o.cache,
        "recipe": o.recipe, "best": _best_row(history), "history": history,
    }
    _write_json(out / SUMMARY_FILE, summary)
    print(format_summary(summary))
    return summary


def _validate(o: TrainOptions) -> None:
    for name in ("steps", "batch_size", "save_every", "log_every", "chunk_size", "n_action_steps", "eval_envs"):
        if getattr(o, name) < 1:
            raise TrainError(f"--{name.replace('_', '-')} must be >= 1; got {getattr(o, name)}")
    if o.eval_episodes < 0:
        raise TrainError(f"--eval-episodes must be >= 0; got {o.eval_episodes}")
    if o.backbone_norm not in NORM_CHOICES:
        raise TrainError(f"--backbone-norm must be one of {', '.join(NORM_CHOICES)}; got {o.backbone_norm!r}")
    if not (o.lr > 0 and 0 <= o.lr_min <= o.lr):
        raise TrainError(f"need --lr > 0 and 0 <= --lr-min <= --lr; got {o.lr}, {o.lr_min}")
    if not o.dataset.is_dir():
        raise TrainError(f"dataset folder {o.dataset} does not exist")
    if o.image_size is not None and min(o.image_size) < 16:
        raise TrainError(f"--image-size {o.image_size} is too small (>= 16 px each side)")


def _cycle(loader: Any):
    while True:
        yield from loader


def _evaluate(ckpt: Path, o: TrainOptions, device: str, evaluator: Any, step: int) -> tuple[EvalReport, Any]:
    """Grade the checkpoint as saved on disk (so what is kept is what was graded)."""
    from act_policy.evaluate import SimEvaluator
    from act_policy.policy_io import load_policy

    loaded = load_policy(ckpt, device)
    if evaluator is None or not evaluator.compatible(loaded.inputs):
        if evaluator is not None:
            evaluator.close()
        evaluator = SimEvaluator(loaded.inputs, n_envs=min(o.eval_envs, o.eval_episodes),
                                 episode_steps=o.eval_episode_steps)
    report = evaluator.run(loaded, o.eval_episodes, o.eval_seed)
    report.step = step
    return report, evaluator


def _keep_best(ckpt: Path, best: Path, report: EvalReport) -> None:
    """Copy the checkpoint's model (not its optimizer state) to ``best/`` atomically."""
    staging = best.with_name(best.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(ckpt / "pretrained_model", staging / "pretrained_model")
    report.write_json(staging / "eval.json")
    old = best.with_name(best.name + ".old")
    if best.exists():
        best.rename(old)
    staging.rename(best)
    shutil.rmtree(old, ignore_errors=True)


def _load_history(out: Path) -> list[dict]:
    f = out / HISTORY_FILE
    return json.loads(f.read_text()) if f.is_file() else []


def _best_row(history: list[dict]) -> dict | None:
    """The history row of the best evaluated checkpoint (see :meth:`EvalReport.better_than`)."""
    best, best_row = None, None
    for row in history:
        if row.get("eval"):
            rep = EvalReport.from_dict(row["eval"])
            if rep.better_than(best):
                best, best_row = rep, row
    return best_row


def _best_of(history: list[dict]) -> EvalReport | None:
    row = _best_row(history)
    return EvalReport.from_dict(row["eval"]) if row else None


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def format_summary(summary: dict[str, Any]) -> str:
    rows = [(r["step"], r["loss"], EvalReport.from_dict(r["eval"]) if r.get("eval") else None)
            for r in summary["history"]]
    best = summary.get("best")
    lines = [checkpoint_table(rows, best["step"] if best else None), "",
             f"{summary['steps']} steps in {summary['wall_s'] / 60:.1f} min on {summary['device']} "
             f"({summary['train_steps_per_s']:.2f} training steps/s, {summary['steps_per_s']:.2f} with evaluation; "
             f"data loading "
             f"{100 * summary['data_share']:.0f}% of the step time, cache {'on' if summary['cache'] else 'off'})",
             f"run folder: {summary['out']}"]
    if best:
        lines.append(f"best: {Path(summary['out']) / 'best'} (step {best['step']}); "
                     f"evaluate it again with: so100 eval {Path(summary['out']) / 'best'} --episodes 100")
    return "\n".join(lines)
