"""A cheaper per-camera thread for lerobot's streaming video encoder, for the bag converter.

Dependency rule: numpy, PyAV and lerobot's dataset package; no runtime, no rosbags.

lerobot's ``StreamingVideoEncoder`` runs one ``_CameraEncoderThread`` per camera. Profiling the
converter on 2 cores (two 640x480 cameras, h264 ``ultrafast``) showed that thread spending more
CPU on the image statistics than on encoding: ``RunningQuantileStats.update`` runs a 5000-bin
float ``np.histogram`` per channel of every (4x downsampled) frame, about 5 ms a frame, plus a PIL
round trip (``Image.fromarray`` then ``VideoFrame.from_image``, two copies) before each encode.

:class:`CountingEncoderThread` encodes the same frames with the same codec options (PyAV, the
config's ``get_codec_options``, pix_fmt, time base) from a view of the numpy array, and keeps the
statistics of uint8 RGB frames as exact per-channel value counts (a ``bincount`` of the same
downsampled pixels), from which it computes the very figures lerobot's ``RunningQuantileStats``
returns (min, max, mean, std, count, quantiles from the same 5000-bin histogram) once at the end.
Depth cameras keep lerobot's own thread. :class:`CountingStreamingEncoder` is lerobot's
``StreamingVideoEncoder`` with that thread for RGB cameras; everything else (queues, back-pressure,
finish, cancel, the temporary mp4 files lerobot moves into the dataset) is lerobot's.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import tempfile
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from lerobot.datasets.compute_stats import RunningQuantileStats, auto_downsample_height_width
from lerobot.datasets.video_utils import StreamingVideoEncoder, _CameraEncoderThread

log = logging.getLogger(__name__)

_LEVELS = 256  # uint8 values


def uint8_channel_counts(frame: np.ndarray) -> np.ndarray:
    """Per-channel value counts (C x 256) of an H x W x C uint8 frame, downsampled as lerobot's stats are."""
    chw = frame.transpose(2, 0, 1)
    small = auto_downsample_height_width(chw)
    c = small.shape[0]
    offsets = (np.arange(c, dtype=np.intp) * _LEVELS)[:, None, None]
    return np.bincount((small + offsets).ravel(), minlength=c * _LEVELS).reshape(c, _LEVELS)


def stats_from_counts(counts: np.ndarray) -> dict[str, np.ndarray]:
    """lerobot's ``RunningQuantileStats`` figures for the pixels whose per-channel value counts are ``counts``.

    The same numbers lerobot computes from the pixels themselves: ``np.histogram`` of integer values
    equals the histogram of the distinct values weighted by their counts; min, max, mean and mean of
    squares follow exactly from the counts.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum(axis=1)
    if not (n == n[0]).all() or n[0] < 2:
        raise ValueError(f"per-channel counts must be equal and at least 2, got {n.tolist()}")
    values = np.arange(counts.shape[1], dtype=np.float64)
    present = counts > 0
    rqs = RunningQuantileStats()
    rqs._count = int(n[0])
    rqs._min = np.array([values[p].min() for p in present], dtype=np.float32)
    rqs._max = np.array([values[p].max() for p in present], dtype=np.float32)
    rqs._mean = (counts @ values / n).astype(np.float32)
    rqs._mean_of_squares = (counts @ values**2 / n).astype(np.float32)
    bins = rqs._num_quantile_bins
    rqs._bin_edges = [np.linspace(lo - 1e-10, hi + 1e-10, bins + 1) for lo, hi in zip(rqs._min, rqs._max, strict=True)]
    rqs._histograms = [
        np.histogram(values, bins=edges, weights=w)[0] for edges, w in zip(rqs._bin_edges, counts, strict=True)
    ]
    return rqs.get_statistics()


class CountingEncoderThread(_CameraEncoderThread):
    """lerobot's per-camera encoder thread (same queue protocol and results), with cheap exact RGB stats."""

    def run(self) -> None:
        container = None
        stream = None
        counts: np.ndarray | None = None
        frames = 0
        try:
            while True:
                try:
                    image = self.frame_queue.get(timeout=1)
                except queue.Empty:
                    if self.stop_event.is_set():
                        break
                    continue
                if image is None:  # sentinel: flush and close
                    break
                image = np.asarray(image)
                if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[2] not in (1, 3):
                    image = image.transpose(1, 2, 0)  # CHW -> HWC, as lerobot accepts
                if image.dtype != np.uint8:
                    image = (image * 255).astype(np.uint8)
                if container is None:
                    height, width = image.shape[:2]
                    Path(self.video_path).parent.mkdir(parents=True, exist_ok=True)
                    container = av.open(str(self.video_path), "w")
                    stream = container.add_stream(
                        self.video_encoder.vcodec,
                        self.fps,
                        options=self.video_encoder.get_codec_options(self.encoder_threads, as_strings=True),
                    )
                    stream.pix_fmt = self.video_encoder.pix_fmt
                    stream.width = width
                    stream.height = height
                    stream.time_base = Fraction(1, self.fps)
                # a view of the (contiguous) array, no copy: lerobot already copied it in feed_frame
                frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(image), format="rgb24")
                frame.pts = frames
                frame.time_base = Fraction(1, self.fps)
                for packet in stream.encode(frame):
                    container.mux(packet)
                c = uint8_channel_counts(image)
                counts = c if counts is None else counts + c
                frames += 1
            if stream is not None:
                for packet in stream.encode():
                    container.mux(packet)
            if container is not None:
                container.close()
            self.result_queue.put(("ok", stats_from_counts(counts) if frames >= 2 else None))
        except Exception as e:  # reported to the caller through lerobot's result queue, as lerobot's thread does
            log.error("encoder thread for %s failed: %s", self.video_path, e)
            if container is not None:
                with contextlib.suppress(Exception):
                    container.close()
            self.result_queue.put(("error", f"{type(e).__name__}: {e}"))


class CountingStreamingEncoder(StreamingVideoEncoder):
    """lerobot's ``StreamingVideoEncoder`` whose RGB cameras use :class:`CountingEncoderThread`."""

    def start_episode(self, video_keys: list[str], temp_dir: Path, depth_video_keys: list[str] | None = None) -> None:
        if self._episode_active:
            self.cancel_episode()
        self._dropped_frames.clear()
        depth = set(depth_video_keys or [])
        for key in video_keys:
            frame_queue: queue.Queue[Any] = queue.Queue(maxsize=self.queue_maxsize)
            result_queue: queue.Queue[Any] = queue.Queue(maxsize=1)
            stop_event = threading.Event()
            video_path = Path(tempfile.mkdtemp(dir=temp_dir)) / f"{key.replace('/', '_')}_streaming.mp4"
            cls = _CameraEncoderThread if key in depth else CountingEncoderThread
            thread = cls(
                video_path=video_path,
                fps=self.fps,
                video_encoder=self._depth_encoder if key in depth else self._rgb_encoder,
                frame_queue=frame_queue,
                result_queue=result_queue,
                stop_event=stop_event,
                encoder_threads=self._encoder_threads,
            )
            thread.start()
            self._frame_queues[key] = frame_queue
            self._result_queues[key] = result_queue
            self._threads[key] = thread
            self._stop_events[key] = stop_event
            self._video_paths[key] = video_path
        self._episode_active = True


@functools.cache
def dataset_class() -> type:
    """lerobot's ``LeRobotDataset`` building :class:`CountingStreamingEncoder` (its ``_build_streaming_encoder`` hook)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    class CountingLeRobotDataset(LeRobotDataset):
        @staticmethod
        def _build_streaming_encoder(
            fps: int, rgb_encoder: Any, depth_encoder: Any, encoder_queue_maxsize: int, encoder_threads: int | None
        ) -> StreamingVideoEncoder:
            return CountingStreamingEncoder(
                fps=fps,
                rgb_encoder=rgb_encoder,
                depth_encoder=depth_encoder,
                queue_maxsize=encoder_queue_maxsize,
                encoder_threads=encoder_threads,
            )

    return CountingLeRobotDataset
