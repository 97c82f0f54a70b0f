"""Recorded episodes (rosbag2 MCAP folders) to a LeRobot v3.0 dataset, through lerobot's own API.

Dependency rule: no node runtime. Reads bags with ``rosbags`` and our one typestore
(``so100_common.messages``), resamples with :mod:`act_policy.resample`, writes with
``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` / ``finalize``.

One bag (a recorder episode folder) becomes one dataset episode:

==================================  ==============================  ==========================
dataset key                         topic                           value
==================================  ==============================  ==========================
``observation.state``               ``/follower/joint_states``      6 x float32, radians
``action``                          ``/follower/joint_commands``    6 x float32, radians
``observation.images.overhead_cam`` ``/cameras/overhead/image_raw`` video, H x W x 3 (rgb8)
``observation.images.wrist_cam``    ``/cameras/wrist/image_raw``    video, H x W x 3 (rgb8)
==================================  ==============================  ==========================

With ``depth=True`` also ``observation.images.overhead_depth`` from
``/cameras/overhead/depth/image_raw`` (16UC1 mm), a depth video of H x W x 1.

Message times: a message's ``header.stamp`` (capture time) when every message of its
stream has a non-zero stamp, else the bag timestamp (when the recorder received it).
Each frame takes every stream's latest message at or before its time (see
:mod:`act_policy.resample`); the action is never from the frame's future.

Speed (a 10 s episode of two 640x480 cameras converts in under 2 s on 2 cores with H.264): images
are never deserialized (:mod:`so100_common.image_cdr` parses their header and views their pixels),
the raw images kept from the first read serve the frames (up to ``buffer_mb``; longer episodes are
read twice), and lerobot's streaming encoder runs with :mod:`act_policy.video_encoding`'s cheaper
per-camera thread (plugged in through ``LeRobotDataset._build_streaming_encoder``).

Per-episode metadata (the bag's ``episode.json`` and the sync report) goes to
``<out>/meta/so100_episodes.jsonl``, one line per dataset episode; lerobot's own files
are left as lerobot writes them.
"""

from __future__ import annotations

import json
import logging
import shutil
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import Reader
from rosbags.rosbag2.errors import ReaderError
from tqdm import tqdm

from act_policy import dataset_keys
from act_policy.episode_quality import GAP_THRESHOLD, QualityReport, assess
from act_policy.episode_writer import EPISODE_JSON, PARTIAL_SUFFIX
from act_policy.errors import ActPolicyError
from act_policy.resample import ResampleError, SyncReport, resample
from so100_common import names
from so100_common.errors import MessageError
from so100_common.image_cdr import ImageHeader, image_array, parse_image_header
from so100_common.messages import deserialize, stamp_to_ns

log = logging.getLogger(__name__)

#: Dataset keys (LeRobot's conventions) and the topics they come from.
STATE_KEY = dataset_keys.OBS_STATE
ACTION_KEY = dataset_keys.ACTION
CAMERA_KEYS: dict[str, str] = {cam: dataset_keys.image_key(cam) for cam in names.CAMERA_NAMES}
#: Depth cameras converted with ``depth=True`` (the recorder's default topics hold the overhead one).
DEPTH_CAMERAS: tuple[str, ...] = ("overhead",)
DEPTH_KEYS: dict[str, str] = {cam: dataset_keys.depth_key(cam) for cam in DEPTH_CAMERAS}
STATE_TOPIC = names.FOLLOWER_JOINT_STATES
ACTION_TOPIC = names.FOLLOWER_JOINT_COMMANDS
JOINT_FEATURE_NAMES = [f"{j}.pos" for j in names.JOINT_NAMES]
#: Our per-episode metadata file inside the dataset's ``meta/`` folder.
EPISODES_JSONL = "so100_episodes.jsonl"
ROBOT_TYPE = "so100_follower"
#: Frames buffered per camera for lerobot's streaming encoder. Its ``feed_frame`` drops a frame
#: (with a warning) when the queue stays full for 0.1 s, which is right for live recording but
#: would silently shorten a video here; we wait for room before each frame and check for drops.
ENCODER_QUEUE = 60
#: Raw images held in memory per episode so that its bag is read once (a 10 s episode of two 640x480 rgb8
#: cameras at 30 Hz holds about 550 MB); a longer episode is read twice, costing about 0.5 s per 10 s here.
DEFAULT_BUFFER_MB = 1024.0
ENCODER_STALL_S = 60.0

# What a broken bag can raise while rosbags opens or reads it (it does not wrap every
# low-level failure in ReaderError), plus our own deserialization errors.
_BAG_ERRORS = (
    ReaderError,
    MessageError,
    OSError,
    ValueError,
    KeyError,
    IndexError,
    struct.error,
    EOFError,
    AssertionError,
)


class ConversionError(ActPolicyError):
    """A bag cannot be converted, or the output dataset cannot be written."""


#: No joint of the SO-100 turns beyond a full turn: larger values are corruption or the wrong unit.
MAX_JOINT_RAD = 2 * np.pi

@dataclass
class EpisodeResult:
    """What happened to one bag."""

    bag: str
    status: str  # "converted", "rejected" (sync), "error" (unreadable or incomplete)
    episode_index: int | None = None
    frames: int = 0
    sync: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class ConversionSummary:
    """Result of :func:`convert`: one entry per bag, in input order."""

    out: str
    fps: int
    episodes: list[EpisodeResult] = field(default_factory=list)

    @property
    def converted(self) -> list[EpisodeResult]:
        return [e for e in self.episodes if e.status == "converted"]

    @property
    def failed(self) -> list[EpisodeResult]:
        return [e for e in self.episodes if e.status != "converted"]

    @property
    def frames(self) -> int:
        return sum(e.frames for e in self.converted)

    def format(self) -> str:
        """Human-readable summary with each episode's sync report."""
        lines = [
            f"{self.out}: {len(self.converted)} episode(s) converted, {len(self.failed)} rejected or failed, "
            f"{self.frames} frames at {self.fps} fps"
        ]
        for e in self.episodes:
            head = f"episode {e.episode_index}" if e.episode_index is not None else e.status.upper()
            lines.append(f"- {e.bag}: {head}" + (f", {e.frames} frames" if e.frames else ""))
            if e.error:
                lines.append(f"  {e.error}")
            if e.sync:
                for name, s in e.sync["streams"].items():
                    lines.append(
                        f"  {name}: age p50 {s['age_p50_ms']:.1f} ms, p95 {s['age_p95_ms']:.1f} ms, "
                        f"max {s['age_max_ms']:.1f} ms, too old {s['too_old']}, repeated {s['repeated']}"
                    )
            if e.quality:
                q = QualityReport(**e.quality)
                lines.append(f"  {q.summary()}")
                lines += [f"  FLAG {flag}" for flag in q.flags() if not (q.trimmed and "start transient" in flag)]
        return "\n".join(lines)


@dataclass
class _Stream:
    """One topic of one bag: message times, and the joint positions for JointState streams."""

    topic: str
    stamps: list[int] = field(default_factory=list)
    receive: list[int] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    shape: tuple[int, ...] | None = None
    encoding: str | None = None

    def times(self) -> np.ndarray:
        """Header stamps when every message has one, else the bag (receive) times."""
        use_stamps = bool(self.stamps) and all(s > 0 for s in self.stamps)
        return np.asarray(self.stamps if use_stamps else self.receive, dtype=np.int64)


def expand_bags(paths: Sequence[Path]) -> list[Path]:
    """Bags to convert: each path is an episode folder, or a folder of ``episode_*`` folders (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        is_bag = (p / "metadata.yaml").exists() or any(p.glob("*.mcap")) or p.name.endswith(PARTIAL_SUFFIX)
        if p.is_dir() and not is_bag:
            children = sorted(c for c in p.iterdir() if c.is_dir() and c.name.startswith("episode_"))
            out.extend(children if children else [p])
        else:
            out.append(p)
    return out


def features_for(image_shapes: dict[str, tuple[int, int, int]]) -> dict[str, dict[str, Any]]:
    """LeRobot feature specs: state and action (6, ``<joint>.pos``) and one video per image key.

    ``image_shapes`` maps dataset image keys to (H, W, C); C = 1 marks a depth map.
    """
    feats: dict[str, dict[str, Any]] = {
        STATE_KEY: {"dtype": "float32", "shape": (len(JOINT_FEATURE_NAMES),), "names": list(JOINT_FEATURE_NAMES)},
        ACTION_KEY: {"dtype": "float32", "shape": (len(JOINT_FEATURE_NAMES),), "names": list(JOINT_FEATURE_NAMES)},
    }
    for key, shape in image_shapes.items():
        feats[key] = {"dtype": "video", "shape": tuple(shape), "names": ["height", "width", "channels"]}
        if shape[2] == 1:
            feats[key]["info"] = {"is_depth_map": True}
    return feats


def _joint_positions(msg: Any, topic: str) -> np.ndarray:
    """Positions in JOINT_NAMES order (radians), whatever order the message lists them in."""
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [j for j in names.JOINT_NAMES if j not in index]
    if missing or len(msg.position) < len(msg.name):
        raise ConversionError(f"{topic}: joint state lacks {missing or 'positions'} (names {list(msg.name)})")
    return np.array([msg.position[index[j]] for j in names.JOINT_NAMES], dtype=np.float64)


def _rgb(raw: bytes, header: ImageHeader, topic: str) -> np.ndarray:
    """An rgb8 (or bgr8, flipped) image as an H x W x 3 view of ``raw``."""
    if header.encoding not in ("rgb8", "bgr8"):
        raise ConversionError(f"{topic}: image encoding {header.encoding!r}; the dataset takes rgb8 (or bgr8) images")
    arr = image_array(raw, header)
    return arr if header.encoding == "rgb8" else arr[..., ::-1]


def _depth_mm(raw: bytes, header: ImageHeader, topic: str) -> np.ndarray:
    """A 16UC1 (mm) depth image as H x W x 1 uint16 (native byte order)."""
    if header.encoding not in ("16UC1", "mono16"):
        raise ConversionError(f"{topic}: depth encoding {header.encoding!r}; expected 16UC1 (millimetres)")
    return image_array(raw, header).astype(np.uint16)[..., None]


class _BagEpisode:
    """One recorder episode: its metadata, streams and its frames.

    The first read (:meth:`scan`) keeps the raw image messages in memory while they fit in
    ``buffer_bytes``, so that :meth:`frames` need not read the bag again; a longer episode is
    read twice instead (the second time keeping only the images a frame still needs).
    """

    def __init__(self, bag: Path, *, depth: bool = False, buffer_bytes: int = 0) -> None:
        self.bag = bag
        self.buffer_bytes = buffer_bytes
        #: raw image messages by topic, from the first read; None when they did not fit in buffer_bytes
        self.kept: dict[str, list[bytes | None]] | None = None
        if bag.name.endswith(PARTIAL_SUFFIX):
            raise ConversionError(
                f"{bag} is an unfinished episode (recording interrupted); recover what it holds with "
                f"`python -c 'from act_policy.episode_writer import recover_partial; recover_partial(\"{bag}\")'` "
                "and convert the .recovered folder"
            )
        if not bag.is_dir():
            raise ConversionError(f"{bag} is not an episode folder (expected a rosbag2 folder with metadata.yaml)")
        if not (bag / "metadata.yaml").exists():
            raise ConversionError(f"{bag} has no metadata.yaml: not a finished rosbag2 episode (truncated copy?)")
        try:
            self.meta: dict[str, Any] = json.loads((bag / EPISODE_JSON).read_text(encoding="utf8"))
        except FileNotFoundError:
            self.meta = {}
        except ValueError as e:
            raise ConversionError(f"{bag / EPISODE_JSON} is not valid JSON: {e}") from e
        # image topic -> (dataset key, decoder)
        self.images = {names.camera_image_topic(c): (k, _rgb) for c, k in CAMERA_KEYS.items()}
        if depth:
            self.images.update({names.camera_depth_topic(c): (k, _depth_mm) for c, k in DEPTH_KEYS.items()})
        self.topics = [STATE_TOPIC, ACTION_TOPIC, *self.images]
        self.streams = {t: _Stream(t) for t in self.topics}

    def _messages(self, reader: Reader) -> Iterator[tuple[str, int, bytes]]:
        by_topic = {c.topic: c for c in reader.connections if c.topic in self.streams}
        missing = [t for t in self.topics if t not in by_topic]
        if missing:
            raise ConversionError(
                f"{self.bag} does not record {', '.join(missing)}; every episode needs {', '.join(self.topics)}"
            )
        for t, c in by_topic.items():
            want = "sensor_msgs/msg/JointState" if t in (STATE_TOPIC, ACTION_TOPIC) else "sensor_msgs/msg/Image"
            if c.msgtype != want:
                raise ConversionError(f"{self.bag}: {t} holds {c.msgtype} messages; the converter expects {want}")
        self.declared = {t: c.msgcount for t, c in by_topic.items()}
        for conn, ts, raw in reader.messages(connections=list(by_topic.values())):
            yield conn.topic, ts, raw

    def scan(self) -> None:
        """First pass: every message time, joint positions, image sizes (and the images, while they fit)."""
        kept: dict[str, list[bytes | None]] | None = {t: [] for t in self.images}
        kept_bytes = 0
        with Reader(self.bag) as reader:
            for topic, ts, raw in self._messages(reader):
                s = self.streams[topic]
                s.receive.append(ts)
                if topic in (STATE_TOPIC, ACTION_TOPIC):
                    msg = deserialize(raw, "sensor_msgs/msg/JointState")
                    s.stamps.append(stamp_to_ns(msg.header.stamp))
                    s.positions.append(_joint_positions(msg, topic))
                    continue
                # images: the header fields (no copy of the pixels); the raw message is kept while it fits
                header = parse_image_header(raw)
                s.stamps.append(header.stamp_ns)
                decode = self.images[topic][1]
                shape = (header.height, header.width, 1 if decode is _depth_mm else 3)
                if s.shape is None:
                    decode(raw, header, topic)  # check the encoding once
                    s.shape = shape
                elif shape != s.shape:
                    raise ConversionError(f"{self.bag}: {topic} changes image size from {s.shape} to {shape}")
                elif header.encoding != s.encoding:
                    raise ConversionError(
                        f"{self.bag}: {topic} changes image encoding from {s.encoding!r} to {header.encoding!r}"
                    )
                image_array(raw, header)  # the data holds the rows it declares (a view; no copy)
                s.encoding = header.encoding
                if kept is not None:
                    kept_bytes += len(raw)
                    if kept_bytes <= self.buffer_bytes:
                        kept[topic].append(raw)
                    else:
                        kept = None  # too long to hold: frames() reads the bag again
        for topic in (STATE_TOPIC, ACTION_TOPIC):
            bad = [i for i, p in enumerate(self.streams[topic].positions) if not np.isfinite(p).all()]
            if bad:
                raise ConversionError(
                    f"{self.bag}: {topic} has non-finite positions in {len(bad)} message(s) "
                    f"(first: message {bad[0]}); the dataset would train on them"
                )
            wild = [i for i, p in enumerate(self.streams[topic].positions) if (np.abs(p) > MAX_JOINT_RAD).any()]
            if wild:
                first = self.streams[topic].positions[wild[0]]
                raise ConversionError(
                    f"{self.bag}: {topic} has positions beyond ±{MAX_JOINT_RAD:.2f} rad in {len(wild)} message(s) "
                    f"(first: message {wild[0]}, {np.abs(first).max():.6g}); no joint of the arm turns that far: "
                    "a corrupt bag, or positions recorded in degrees instead of radians"
                )
        # rosbags skips what it cannot read in a damaged file; compare with what the bag declares
        for topic, s in self.streams.items():
            if len(s.receive) != self.declared[topic]:
                raise ConversionError(
                    f"{self.bag}: {topic} holds {self.declared[topic]} messages by its metadata "
                    f"but only {len(s.receive)} can be read; the bag is corrupt or truncated"
                )
        self.kept = kept

    def frames(self, indices: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        """The frames in order; images are views of the raw messages (lerobot copies them when a frame is added).

        From the images :meth:`scan` kept, each released after its last use; else from a second
        read of the bag, each image decoded once and kept only while a frame needs it.
        """
        n = len(next(iter(indices.values())))
        cams = self.images
        last_use = {t: {int(i): k for k, i in enumerate(indices[t])} for t in cams}  # message -> last frame using it
        state = np.asarray(self.streams[STATE_TOPIC].positions, dtype=np.float32)
        action = np.asarray(self.streams[ACTION_TOPIC].positions, dtype=np.float32)
        if self.kept is not None:
            kept, self.kept = self.kept, None
            for t, msgs in kept.items():  # release the images no frame takes
                for j in range(len(msgs)):
                    if j not in last_use[t]:
                        msgs[j] = None
            for k in range(n):
                frame = {STATE_KEY: state[indices[STATE_TOPIC][k]], ACTION_KEY: action[indices[ACTION_TOPIC][k]]}
                for t, (key, decode) in cams.items():
                    j = int(indices[t][k])
                    raw = kept[t][j]
                    assert raw is not None
                    frame[key] = decode(raw, parse_image_header(raw), t)
                    if last_use[t][j] == k:
                        kept[t][j] = None
                yield frame
            return
        cache: dict[str, dict[int, np.ndarray]] = {t: {} for t in cams}
        ordinal = dict.fromkeys(self.topics, 0)
        k = 0
        with Reader(self.bag) as reader:
            for topic, _, raw in self._messages(reader):
                j = ordinal[topic]
                ordinal[topic] += 1
                if topic not in cams or j not in last_use[topic]:
                    continue
                cache[topic][j] = cams[topic][1](raw, parse_image_header(raw), topic)
                while k < n and all(int(indices[t][k]) in cache[t] for t in cams):
                    frame = {STATE_KEY: state[indices[STATE_TOPIC][k]], ACTION_KEY: action[indices[ACTION_TOPIC][k]]}
                    for t, (key, _) in cams.items():
                        j_img = int(indices[t][k])
                        frame[key] = cache[t][j_img]
                        if last_use[t][j_img] == k:
                            del cache[t][j_img]
                    yield frame
                    k += 1
        if k != n:
            raise ConversionError(f"{self.bag}: the second read gave {k} of {n} frames (bag changed while reading?)")


def _assess(ep: _BagEpisode, indices: dict[str, np.ndarray], threshold: float,
            trim: bool) -> tuple[dict[str, np.ndarray], QualityReport]:
    """The episode's quality report and the frame indices to convert (without the start transient if ``trim``)."""
    state = np.asarray(ep.streams[STATE_TOPIC].positions, dtype=float)[indices[STATE_TOPIC]]
    action = np.asarray(ep.streams[ACTION_TOPIC].positions, dtype=float)[indices[ACTION_TOPIC]]
    quality = assess(state, action, threshold=threshold)
    if not trim or not quality.start_transient:
        return indices, quality
    k = quality.start_transient
    return {t: i[k:] for t, i in indices.items()}, assess(state[k:], action[k:], threshold=threshold, trimmed=k)


def _streaming_encoder(dataset: Any) -> Any:
    """lerobot's StreamingVideoEncoder of a dataset being written, or None (internals, guarded)."""
    return getattr(getattr(dataset, "writer", None), "_streaming_encoder", None)


def _wait_for_encoder(dataset: Any, bag: Path) -> None:
    """Block until every camera's encoder queue has room, so that lerobot never drops a frame."""
    queues = getattr(_streaming_encoder(dataset), "_frame_queues", None) or {}
    deadline = time.monotonic() + ENCODER_STALL_S
    while any(q.qsize() >= ENCODER_QUEUE - 1 for q in queues.values()):
        if time.monotonic() > deadline:
            raise ConversionError(
                f"{bag}: the video encoder made no progress for {ENCODER_STALL_S:g} s; retry with --no-streaming"
            )
        time.sleep(0.002)


def _check_no_drops(dataset: Any, bag: Path) -> None:
    dropped = {k: n for k, n in (getattr(_streaming_encoder(dataset), "_dropped_frames", None) or {}).items() if n}
    if dropped:
        raise ConversionError(f"{bag}: lerobot's streaming encoder dropped frames {dropped}; retry with --no-streaming")


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse an existing ``out`` unless ``overwrite``, and never delete a folder that is not a dataset."""
    if not out.exists():
        return
    if not overwrite:
        raise ConversionError(
            f"{out} exists already; not overwriting a dataset. Choose another --out, or pass "
            "--overwrite (overwrite=True) to replace it"
        )
    if not out.is_dir() or (any(out.iterdir()) and not (out / "meta" / "info.json").exists()):
        raise ConversionError(
            f"{out} exists and is not a LeRobot dataset (no meta/info.json); not deleting it "
            "even with overwrite. Remove it yourself or choose another --out"
        )


VCODECS = ("h264", "libsvtav1")
#: The default camera codec: libx264 ``ultrafast`` crf 23 (``g=2``, yuv420p, as lerobot sets them).
#: On the benchmark's moving-arm episode (two 640x480 cameras, 2 cores) it encodes with about 1/7 of
#: the CPU of lerobot's default AV1 (libsvtav1 preset 12, crf 30), decodes 0.3 dB below it (PSNR
#: 37.7 / 41.4 dB overhead / wrist, AV1 38.0 / 41.7 dB) and makes files 2.3x larger (about 0.5 MB
#: per second); the episode converts at 5.7x real time, AV1 at 1.5x. ``vcodec="libsvtav1"`` still
#: gives lerobot's smallest files.
DEFAULT_VCODEC = "h264"


def rgb_encoder(vcodec: str) -> Any:
    """lerobot's encoder settings for the camera videos (see :data:`DEFAULT_VCODEC`)."""
    from lerobot.configs.video import RGBEncoderConfig

    if vcodec not in VCODECS:
        raise ConversionError(f"vcodec {vcodec!r} is not one of {', '.join(VCODECS)}")
    if vcodec == "h264":
        return RGBEncoderConfig(vcodec="h264", preset="ultrafast", crf=23)
    return RGBEncoderConfig()


def convert(
    bags: Sequence[Path],
    out: Path,
    *,
    fps: int = 30,
    task: str | None = None,
    repo_id: str = "local/so100",
    overwrite: bool = False,
    depth: bool = False,
    max_age: float | None = None,
    max_too_old_fraction: float = 0.05,
    streaming_encoding: bool = True,
    vcodec: str = DEFAULT_VCODEC,
    encoder_threads: int | None = None,
    buffer_mb: float = DEFAULT_BUFFER_MB,
    trim_start_frames: bool = False,
    gap_threshold: float = GAP_THRESHOLD,
    progress: bool = True,
) -> ConversionSummary:
    """Convert recorder episodes into one LeRobot v3.0 dataset at ``out``.

    Args:
        bags: episode folders, or folders holding ``episode_*`` folders.
        out: dataset root; must not exist unless ``overwrite``.
        fps: dataset frame rate; the bags are resampled to it.
        task: task text for every episode; default each episode's ``episode.json`` task.
        repo_id: dataset id stored in its metadata (nothing is pushed anywhere).
        overwrite: replace an existing dataset at ``out``.
        depth: also convert the overhead depth camera (``16UC1`` mm) into
            ``observation.images.overhead_depth``, a depth video (lerobot's depth encoder).
        max_age: seconds after which a frame's input counts as too old; default ``2 / fps``.
        max_too_old_fraction: reject an episode with more than this share of too-old frames.
        vcodec: camera video codec: ``h264`` (the default, libx264 ``ultrafast`` crf 23: about 1/7 of
            AV1's encoding CPU for 0.3 dB less PSNR and 2.3x larger files) or ``libsvtav1`` (LeRobot's
            default codec, smallest files, about 1.5x real time on 2 cores).
        encoder_threads: threads per camera encoder (lerobot's option); default: the codec decides.
        buffer_mb: raw images held in memory so that a bag is read once; longer episodes are read twice.
        streaming_encoding: encode video while frames are added (lerobot's streaming encoder,
            about 2x faster here) instead of writing PNGs and encoding them at ``save_episode``.
        trim_start_frames: drop each episode's start transient (its leading frames whose largest
            ``|action - state|`` exceeds ``gap_threshold``; :mod:`act_policy.episode_quality`).
        gap_threshold: that threshold in radians; the quality report counts against it too.
        progress: show tqdm progress bars (stderr).

    Returns:
        The summary: per bag its status, dataset episode index, frames and sync report.
        Bags that cannot be read, lack a topic or fail the sync check are reported there
        and skipped; the others are converted.

    Raises:
        ConversionError: ``out`` exists (and not ``overwrite``), or no episode could be converted.
    """
    from act_policy.video_encoding import dataset_class  # heavy import (torch, lerobot), only when converting

    LeRobotDataset = dataset_class()

    out = Path(out)
    _check_out(out, overwrite)
    # Written beside ``out`` and moved into place at the end: a failed run (or one that converts
    # nothing) leaves an existing dataset as it was.
    staging = out.parent / f".{out.name}.converting"
    shutil.rmtree(staging, ignore_errors=True)
    summary = ConversionSummary(out=str(out), fps=fps)
    dataset: Any = None
    jsonl_lines: list[str] = []
    try:
        bag_list = expand_bags(bags)
        for bag in tqdm(bag_list, desc="episodes", unit="ep", disable=not progress):
            result = EpisodeResult(bag=str(bag), status="error")
            summary.episodes.append(result)
            try:
                ep = _BagEpisode(bag, depth=depth, buffer_bytes=int(buffer_mb * 1e6))
                ep.scan()
                streams = {t: ep.streams[t].times() for t in ep.topics}
                res = resample(streams, fps, max_age_s=max_age, max_too_old_fraction=max_too_old_fraction)
                report: SyncReport = res.report
                result.sync = report.to_dict()
                if report.rejected:
                    result.status = "rejected"
                    result.error = report.reason
                    log.warning("%s rejected: %s", bag, report.reason)
                    continue
                indices, quality = _assess(ep, res.indices, gap_threshold, trim_start_frames)
                result.quality = quality.to_dict()
                for flag in quality.flags():
                    if not (quality.trimmed and "start transient" in flag):
                        log.warning("%s: %s", bag, flag)
                ep_task = task if task is not None else ep.meta.get("task")
                if not ep_task:
                    raise ConversionError(f"{bag}: no task text in {EPISODE_JSON}; give one with --task")
                shapes = {key: ep.streams[t].shape for t, (key, _) in ep.images.items()}
                if dataset is None:
                    dataset = LeRobotDataset.create(
                        repo_id,
                        fps,
                        features_for(shapes),
                        root=staging,
                        robot_type=ROBOT_TYPE,
                        use_videos=True,
                        streaming_encoding=streaming_encoding,
                        encoder_queue_maxsize=ENCODER_QUEUE,
                        encoder_threads=encoder_threads,
                        rgb_encoder=rgb_encoder(vcodec),
                    )
                else:
                    want = {k: tuple(dataset.features[k]["shape"]) for k in shapes}
                    if want != shapes:
                        raise ConversionError(f"{bag}: image sizes {shapes} differ from the dataset's {want}")
                try:
                    for frame in tqdm(
                        ep.frames(indices),
                        total=quality.frames,
                        desc=bag.name,
                        unit="frame",
                        leave=False,
                        disable=not progress,
                    ):
                        frame["task"] = ep_task
                        _wait_for_encoder(dataset, bag)
                        dataset.add_frame(frame)
                    _check_no_drops(dataset, bag)
                    dataset.save_episode()
                except BaseException:
                    dataset.clear_episode_buffer()
                    raise
                result.status = "converted"
                result.episode_index = dataset.num_episodes - 1
                result.frames = quality.frames
                jsonl_lines.append(
                    json.dumps(
                        {
                            "episode_index": result.episode_index,
                            "bag": str(bag),
                            "task": ep_task,
                            "episode": ep.meta,
                            "sync": result.sync,
                            "quality": result.quality,
                        },
                        sort_keys=True,
                    )
                )
            except ConversionError as e:
                result.error = str(e) if str(bag) in str(e) else f"{bag}: {e}"
                log.error("%s", result.error)
            except ResampleError as e:
                result.error = f"{bag}: {e}"
                log.error("%s", result.error)
            except _BAG_ERRORS as e:
                result.error = (
                    f"{bag}: cannot convert ({type(e).__name__}: {e}); the bag is likely corrupt or truncated"
                )
                log.error("%s", result.error)
        if dataset is None or not jsonl_lines:
            shutil.rmtree(staging, ignore_errors=True)
            raise ConversionError(f"no episode could be converted; nothing written to {out}:\n{summary.format()}")
        dataset.finalize()
        (staging / "meta" / EPISODES_JSONL).write_text("".join(line + "\n" for line in jsonl_lines), encoding="utf8")
        if out.exists():  # overwrite was checked above
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone after the rename; left by a failure
    log.info("%s", summary.format())
    return summary
