"""Training samples from a LeRobot dataset, with an optional in-RAM cache of decoded frames.

Video decoding starves training (the seed's lesson): an ACT sample needs one decoded frame per
camera, and decoding AV1 at 480x640 costs more than the training step itself on a small GPU.
:class:`CachedChunkDataset` decodes every frame once, resizes it to the training size and keeps
it as uint8 (``frames x cameras x 3 x H x W`` bytes, estimated before anything is decoded and
refused when it would not fit), then serves the same samples ``LeRobotDataset`` serves for ACT:
``observation.state``, the camera images, and the ``action`` chunk of the next ``chunk_size``
steps with ``action_is_pad`` past the episode's end.

Dependency rule: lerobot, torch, psutil; no ROS runtime, no simulator.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from act_policy import dataset_keys
from act_policy.errors import ActPolicyError

log = logging.getLogger(__name__)

STATE_KEY = dataset_keys.OBS_STATE
ACTION_KEY = dataset_keys.ACTION


class CacheTooLargeError(ActPolicyError):
    """The decoded frames would not fit in memory."""


def resize_images(images: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Resize ``(..., 3, H, W)`` images to ``size`` (H, W), antialiased; uint8 stays uint8, floats stay floats."""
    if size is None or tuple(images.shape[-2:]) == tuple(size):
        return images
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:])
    is_uint8 = flat.dtype == torch.uint8
    out = torch.nn.functional.interpolate(flat.float() if is_uint8 else flat, size=tuple(size), mode="bilinear",
                                          antialias=True, align_corners=False)
    if is_uint8:
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    return out.reshape(*lead, *out.shape[-3:])


def cache_bytes(num_frames: int, cameras: int, size: tuple[int, int]) -> int:
    """Bytes the cache needs for ``num_frames`` frames of ``cameras`` cameras at ``size`` (uint8 RGB)."""
    return num_frames * cameras * 3 * size[0] * size[1]


def check_fits(needed: int, max_fraction: float = 0.8) -> None:
    """Refuse a cache larger than ``max_fraction`` of the memory available now."""
    import psutil

    available = psutil.virtual_memory().available
    if needed > max_fraction * available:
        raise CacheTooLargeError(
            f"the frame cache needs {needed / 2**30:.1f} GiB but only {available / 2**30:.1f} GiB are available "
            f"(limit {100 * max_fraction:.0f}%): train without --cache, or at a smaller --image-size")


class CachedChunkDataset(torch.utils.data.Dataset):
    """ACT samples served from decoded frames held in RAM (see the module docstring)."""

    def __init__(self, dataset: Any, chunk_size: int, size: tuple[int, int] | None = None,
                 camera_keys: Sequence[str] | None = None, max_fraction: float = 0.8, progress: bool = True) -> None:
        """Decode ``dataset`` (a ``LeRobotDataset``) into memory.

        Args:
            dataset: the source dataset (its own delta timestamps are ignored).
            chunk_size: length of the action chunk of every sample.
            size: training image size (H, W); the recorded size if None.
            camera_keys: the cameras to cache; every camera of the dataset if None.
            max_fraction: refuse when the cache would exceed this share of available memory.
            progress: show a progress bar while decoding.
        """
        from tqdm import tqdm

        meta = dataset.meta
        self.camera_keys: list[str] = list(camera_keys or meta.camera_keys)
        unknown = [k for k in self.camera_keys if k not in meta.camera_keys]
        if unknown:
            raise ActPolicyError(f"cameras {unknown} are not in the dataset; it has {meta.camera_keys}")
        shape = meta.features[self.camera_keys[0]]["shape"]  # (H, W, C) in lerobot's metadata
        names = meta.features[self.camera_keys[0]].get("names") or []
        recorded = (int(shape[0]), int(shape[1])) if names[:1] != ["channels"] else (int(shape[1]), int(shape[2]))
        self.size = tuple(size) if size else recorded
        n = meta.total_frames
        needed = cache_bytes(n, len(self.camera_keys), self.size)
        check_fits(needed, max_fraction)
        log.info("frame cache: %d frames x %d cameras at %dx%d = %.2f GiB", n, len(self.camera_keys),
                 self.size[1], self.size[0], needed / 2**30)
        cols = dataset.hf_dataset.with_format("numpy")[:]  # dict of column arrays (N,) or (N, 6)

        def column(name: str, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(np.stack(cols[name]) if n else np.zeros((0,)), dtype=dtype)

        self.state = column(STATE_KEY, torch.float32)
        self.action = column(ACTION_KEY, torch.float32)
        self.episode_index = column("episode_index", torch.long)
        self.index = column("index", torch.long)
        self.timestamp = column("timestamp", torch.float32)
        self.frame_index = column("frame_index", torch.long)
        self.task_index = column("task_index", torch.long)
        self.chunk_size = chunk_size
        episodes = meta.episodes
        self.ep_from = torch.empty(n, dtype=torch.long)
        self.ep_to = torch.empty(n, dtype=torch.long)
        self.frames = {k: torch.empty((n, 3, *self.size), dtype=torch.uint8) for k in self.camera_keys}
        bar = tqdm(total=n * len(self.camera_keys), desc="decoding frames into the cache", unit="frame",
                   disable=not progress)
        for ep in range(meta.total_episodes):
            lo, hi = int(episodes[ep]["dataset_from_index"]), int(episodes[ep]["dataset_to_index"])
            self.ep_from[lo:hi], self.ep_to[lo:hi] = lo, hi
            for key in self.camera_keys:
                for start in range(lo, hi, 64):  # bounded batches: a long episode never decodes at once
                    stop = min(hi, start + 64)
                    self.frames[key][start:stop] = resize_images(
                        self._decode(dataset, ep, key, self.timestamp[start:stop].tolist()), self.size)
                    bar.update(stop - start)
        bar.close()

    @staticmethod
    def _decode(dataset: Any, ep: int, key: str, timestamps: Sequence[float]) -> torch.Tensor:
        from lerobot.datasets.video_utils import decode_video_frames

        meta = dataset.meta
        shift = float(meta.episodes[ep][f"videos/{key}/from_timestamp"])
        frames = decode_video_frames(dataset.root / meta.get_video_file_path(ep, key), [shift + t for t in timestamps],
                                     dataset.tolerance_s, getattr(dataset, "_video_backend", None), return_uint8=True)
        return frames

    def __len__(self) -> int:
        return len(self.state)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        idx = int(idx)
        lo, hi = int(self.ep_from[idx]), int(self.ep_to[idx])
        wanted = torch.arange(idx, idx + self.chunk_size)
        item: dict[str, Any] = {
            STATE_KEY: self.state[idx],
            ACTION_KEY: self.action[wanted.clamp(lo, hi - 1)],
            f"{ACTION_KEY}_is_pad": wanted >= hi,
            "episode_index": self.episode_index[idx],
            "index": self.index[idx],
            "frame_index": self.frame_index[idx],
            "timestamp": self.timestamp[idx],
            "task_index": self.task_index[idx],
        }
        for key in self.camera_keys:
            item[key] = self.frames[key][idx]  # uint8; the training loop scales it to [0, 1]
        return item
