"""Load a trained policy checkpoint offline: the policy, its pre/post-processors and what it observes.

A checkpoint can be named as any of the folders users meet:
- a ``pretrained_model`` folder (``config.json`` + ``model.safetensors`` + processor files);
- a checkpoint step folder (``<run>/checkpoints/005000``) or ``best/`` (which hold ``pretrained_model``);
- a training run's folder (``<run>``): its ``best/`` when there is one, else ``checkpoints/last``.

Offline: a checkpoint whose config names a downloadable backbone (ACT's ImageNet ResNet) would
try to fetch it when the model is built, although the checkpoint's own weights replace it a moment
later; the loader clears that field so nothing is downloaded.

Dependency rule: lerobot and torch; no ROS runtime, no simulator.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from act_policy import dataset_keys
from act_policy.errors import ActPolicyError

log = logging.getLogger(__name__)

PRETRAINED_DIR = "pretrained_model"
IMAGE_PREFIX = dataset_keys.IMAGE_PREFIX
STATE_KEY = dataset_keys.OBS_STATE
ACTION_KEY = dataset_keys.ACTION


class CheckpointError(ActPolicyError):
    """A checkpoint cannot be found or loaded."""


@dataclasses.dataclass(frozen=True)
class PolicyInputs:
    """What a checkpoint observes: its cameras (scene names), their image size and the dataset fps."""

    cameras: tuple[str, ...]  # scene camera names, e.g. ("overhead", "wrist")
    image_keys: tuple[str, ...]  # the matching dataset keys, e.g. observation.images.overhead_cam
    height: int
    width: int
    state_dim: int
    action_dim: int
    fps: float
    #: the size the training frames were recorded at (0: the policy's own size). Evaluation renders at it and
    #: resizes to the policy's size with the training's resize (:func:`policy_images`), as act_inference
    #: resizes camera frames: a frame rendered small directly is aliased differently (PSNR ~29 dB)
    source_height: int = 0
    source_width: int = 0

    @property
    def render_size(self) -> tuple[int, int]:
        """(H, W) to render or capture at: the recorded size when known, else the policy's."""
        if self.source_height and self.source_width:
            return self.source_height, self.source_width
        return self.height, self.width


@dataclasses.dataclass
class LoadedPolicy:
    """A policy ready for inference, with the processors that were saved beside it."""

    policy: Any  # lerobot PreTrainedPolicy
    preprocessor: Any
    postprocessor: Any
    inputs: PolicyInputs
    path: Path  # the pretrained_model folder
    device: str

    @property
    def chunk_size(self) -> int:
        return int(getattr(self.policy.config, "chunk_size", 1))

    @property
    def n_action_steps(self) -> int:
        return int(getattr(self.policy.config, "n_action_steps", 1))


camera_of_key = dataset_keys.camera_of_key


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The ``pretrained_model`` folder that ``path`` names (see the module docstring)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist")
    candidates = [p, p / PRETRAINED_DIR, p / "best" / PRETRAINED_DIR, p / "checkpoints" / "last" / PRETRAINED_DIR]
    for c in candidates:
        if (c / "config.json").is_file() and (c / "model.safetensors").is_file():
            return c.resolve()
    raise CheckpointError(
        f"{p} is not a checkpoint: expected config.json and model.safetensors in it, in {PRETRAINED_DIR}/, "
        "in best/pretrained_model/ or in checkpoints/last/pretrained_model/ (a `so100 train` run folder)"
    )


def read_inputs(config: Any, fps: float | None = None, source_size: tuple[int, int] | None = None) -> PolicyInputs:
    """The cameras, image size and dimensions a policy config declares (``source_size``: see PolicyInputs)."""
    feats = config.input_features
    image_keys = tuple(k for k in feats if k.startswith(IMAGE_PREFIX))
    if not image_keys:
        raise CheckpointError("the checkpoint observes no camera (no observation.images.* input feature)")
    shapes = {tuple(feats[k].shape) for k in image_keys}
    if len(shapes) != 1:
        raise CheckpointError(f"cameras of different sizes are not supported: {shapes}")
    c, h, w = shapes.pop()
    if STATE_KEY not in feats:
        raise CheckpointError("the checkpoint has no observation.state input")
    return PolicyInputs(
        cameras=tuple(camera_of_key(k) for k in image_keys),
        image_keys=image_keys,
        height=int(h),
        width=int(w),
        state_dim=int(feats[STATE_KEY].shape[0]),
        action_dim=int(config.output_features[ACTION_KEY].shape[0]),
        fps=float(fps if fps is not None else 30.0),
        source_height=int(source_size[0]) if source_size else 0,
        source_width=int(source_size[1]) if source_size else 0,
    )


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def train_meta(pretrained: Path) -> dict[str, Any]:
    """What ``so100 train`` wrote beside a checkpoint (``so100_train.json``); empty when absent."""
    import json

    for f in (pretrained / "so100_train.json", pretrained.parent / "so100_train.json"):
        if f.is_file():
            return json.loads(f.read_text())
    return {}


def checkpoint_fps(pretrained: Path) -> float | None:
    """The dataset fps recorded beside a checkpoint by ``so100 train`` (None when absent)."""
    import json

    meta = train_meta(pretrained)
    if meta:
        return float(meta.get("fps", 30.0))
    train_cfg = pretrained / "train_config.json"
    if train_cfg.is_file():
        env = json.loads(train_cfg.read_text()).get("env") or {}
        if env.get("fps"):
            return float(env["fps"])
    return None


def checkpoint_source_size(pretrained: Path) -> tuple[int, int] | None:
    """The size the checkpoint's training frames were recorded at (None when not recorded)."""
    meta = train_meta(pretrained)
    if meta.get("source_height") and meta.get("source_width"):
        return int(meta["source_height"]), int(meta["source_width"])
    return None


def read_config(pretrained: Path) -> Any:
    """The policy config of a ``pretrained_model`` folder (no weights loaded)."""
    import lerobot.policies  # noqa: F401 - registers the policy config classes (act, ...)
    from lerobot.configs.policies import PreTrainedConfig

    try:
        return PreTrainedConfig.from_pretrained(pretrained)
    except Exception as e:  # noqa: BLE001 - draccus/json errors: say which file
        raise CheckpointError(f"cannot read {pretrained / 'config.json'}: {e}") from e


def checkpoint_inputs(path: str | os.PathLike) -> PolicyInputs:
    """What the checkpoint at ``path`` observes, without loading its weights."""
    pretrained = resolve_checkpoint(path)
    return read_inputs(read_config(pretrained), checkpoint_fps(pretrained), checkpoint_source_size(pretrained))


#: Processor steps a checkpoint may name by class path: lerobot imports the module of such a path (running its
#: code) to build the step, so only lerobot's own modules are allowed; steps named by ``registry_name`` are looked
#: up among the registered ones and import nothing.
PROCESSOR_CLASS_PREFIX = "lerobot."


def check_processor_classes(pretrained: Path) -> None:
    """Refuse a checkpoint whose processor files name a step class outside lerobot (before anything imports it).

    Every ``*.json`` of the folder with a ``steps`` list is a processor pipeline (``policy_preprocessor.json``,
    ``policy_postprocessor.json``). Raises :class:`CheckpointError` naming the file, the step and the class.
    """
    import json

    for f in sorted(Path(pretrained).glob("*.json")):
        try:
            data = json.loads(f.read_text(encoding="utf8"))
        except (OSError, ValueError):
            continue  # not a processor file we can read; lerobot's own loader reports a broken one
        steps = data.get("steps") if isinstance(data, dict) else None
        if not isinstance(steps, list):
            continue
        for i, step in enumerate(steps):
            if isinstance(step, dict) and "registry_name" in step:
                continue  # lerobot takes the registered class (the registry wins over "class")
            cls = step.get("class") if isinstance(step, dict) else None
            if not isinstance(cls, str) or not cls.startswith(PROCESSOR_CLASS_PREFIX):
                raise CheckpointError(
                    f"{f}: processor step {i} names the class {cls!r}, which is not under "
                    f"{PROCESSOR_CLASS_PREFIX!r}; refusing to load the checkpoint (importing it would run code from "
                    "outside lerobot). Use a checkpoint written by `so100 train` or lerobot."
                )


def load_policy(path: str | os.PathLike, device: str | None = None, *, n_action_steps: int | None = None,
                temporal_ensemble_coeff: float | None = None) -> LoadedPolicy:
    """Load a checkpoint for inference, offline.

    Args:
        path: any of the folders the module docstring lists.
        device: ``cpu``, ``cuda``, ...; the GPU when there is one if None.
        n_action_steps: actions executed per predicted chunk (the checkpoint's value if None).
        temporal_ensemble_coeff: enable ACT's temporal ensembling with this coefficient (then
            a chunk is predicted every step and ``n_action_steps`` is 1).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lerobot.policies import make_pre_post_processors
    from lerobot.policies.factory import get_policy_class

    pretrained = resolve_checkpoint(path)
    check_processor_classes(pretrained)
    device = device or default_device()
    config = read_config(pretrained)
    config.device = device
    if hasattr(config, "pretrained_backbone_weights"):
        config.pretrained_backbone_weights = None  # the checkpoint's weights replace it; never download
    if temporal_ensemble_coeff is not None:
        config.temporal_ensemble_coeff = temporal_ensemble_coeff
        config.n_action_steps = 1
    elif n_action_steps is not None:
        if not 1 <= n_action_steps <= getattr(config, "chunk_size", n_action_steps):
            raise CheckpointError(f"n_action_steps must be in 1..chunk_size ({config.chunk_size}); got {n_action_steps}")
        config.n_action_steps = n_action_steps
    try:
        policy = get_policy_class(config.type).from_pretrained(pretrained, config=config)
        preprocessor, postprocessor = make_pre_post_processors(
            config, pretrained_path=str(pretrained),
            preprocessor_overrides={"device_processor": {"device": device}},
            postprocessor_overrides={"device_processor": {"device": "cpu"}},
        )
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - a truncated safetensors, a missing processor file, ...
        raise CheckpointError(f"cannot load the checkpoint {pretrained}: {type(e).__name__}: {e}") from e
    policy.eval()
    inputs = read_inputs(config, checkpoint_fps(pretrained), checkpoint_source_size(pretrained))
    log.info("loaded %s policy from %s (cameras %s at %dx%d, %s)", config.type, pretrained,
             ",".join(inputs.cameras), inputs.width, inputs.height, device)
    return LoadedPolicy(policy, preprocessor, postprocessor, inputs, pretrained, device)


def policy_images(images: Any, size: tuple[int, int]) -> Any:
    """``(B, H, W, 3)`` uint8 frames -> ``(B, 3, h, w)`` float in [0, 1] at the policy's ``size``.

    Frames of another size are resized as training resized them (:func:`act_policy.frame_cache.resize_images`
    on uint8), so evaluation, act_inference and training see the same pixels.
    """
    import numpy as np
    import torch

    from act_policy.frame_cache import resize_images

    batch = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)).permute(0, 3, 1, 2)
    return resize_images(batch, size).float().div_(255.0)


def predict_chunk(loaded: LoadedPolicy, state: Any, images: dict[str, Any]) -> Any:
    """One action chunk ``(chunk_size, action_dim)`` (numpy, radians) from one observation.

    ``state``: joint positions (rad); ``images``: camera name -> RGB uint8 ``(H, W, 3)``, resized to the
    checkpoint's size when they differ (:func:`policy_images`). The path act_inference and the
    emulated-latency evaluation share.
    """
    import numpy as np
    import torch

    size = (loaded.inputs.height, loaded.inputs.width)
    batch = {STATE_KEY: torch.from_numpy(np.asarray(state, dtype=np.float32)).unsqueeze(0)}
    for cam, key in zip(loaded.inputs.cameras, loaded.inputs.image_keys, strict=True):
        batch[key] = policy_images(np.asarray(images[cam], dtype=np.uint8)[None], size)
    with torch.inference_mode():
        chunk = loaded.postprocessor(loaded.policy.predict_action_chunk(loaded.preprocessor(batch)))
    return chunk[0].float().cpu().numpy()
