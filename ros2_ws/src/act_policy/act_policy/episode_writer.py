"""One rosbag2 (MCAP storage) per episode, written with ``rosbags``, crash-safe by renaming.

Dependency rule: this core never imports the node runtime (``so100_common.node``,
the transports); it takes CDR bytes and timestamps and writes files. The recorder
node feeds it.

Layout of an output folder::

    recordings/
      episode_000000/            a finished episode: a rosbag2 folder
        metadata.yaml            written by rosbags (``ros2 bag info`` reads it)
        episode_000000.mcap
        episode.json             task, scene, calibration, software, fps, source, times, success, counts
      episode_000001.partial/    an episode still being written, or one a crash interrupted

An episode is written into ``<name>.partial/`` and renamed to ``<name>/`` only after
rosbags has closed the bag and ``episode.json`` is complete, so a ``kill -9`` at any
moment leaves every finished episode intact and the unfinished one marked by its
suffix. rosbags' MCAP reader cannot open a file without its footer (it checks the
closing magic), and a ``.partial`` folder has no ``metadata.yaml``; :func:`recover_partial`
turns the readable part of one into a new ``<name>.recovered/`` bag.

A write error (disk full, quota, file-size limit) ends the episode at once: the writer drops
rosbags' writer with its pending chunk, cuts the file back to the last chunk it wrote whole and
raises :class:`RecorderError`; the ``.partial`` folder then holds exactly :attr:`EpisodeWriter.written`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.errors import ReaderError, WriterError
from ruamel.yaml import YAML

from act_policy.errors import RecorderError
from so100_common.messages import TYPESTORE
from so100_common.qos import QoS

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
RECOVERED_SUFFIX = ".recovered"
EPISODE_JSON = "episode.json"
#: rosbag2 metadata version rosbags writes; 9 is what Jazzy's ``ros2 bag`` writes and reads.
BAG_VERSION = 9
_EPISODE_RE = re.compile(r"^episode_(\d+)(\.partial|\.recovered)?$")
_MCAP_MAGIC = b"\x89MCAP0\r\n"
_OP_DATA_END = 0x0F
_OP_FOOTER = 0x02


@dataclass(frozen=True)
class TopicSpec:
    """A topic to record: its name, ROS type and the QoS it is offered with."""

    topic: str
    msgtype: str
    qos: QoS

    def __post_init__(self) -> None:
        if self.msgtype not in TYPESTORE.types:
            raise RecorderError(
                f"topic {self.topic}: unknown message type {self.msgtype!r}; give a ROS 2 Jazzy type "
                "such as sensor_msgs/msg/JointState"
            )


def rosbags_qos(qos: QoS) -> Qos:
    """The rosbags QoS record of one of our profiles (latched topics stay transient_local)."""
    never = QosTime(sec=9223372036, nsec=854775807)  # RMW_DURATION_INFINITE, as Jazzy's ros2 bag writes it
    return Qos(
        history=QosHistory(int(qos.history)),
        depth=qos.depth,
        reliability=QosReliability(int(qos.reliability)),
        durability=QosDurability(int(qos.durability)),
        deadline=never,
        lifespan=never,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=never,
        avoid_ros_namespace_conventions=False,
    )


def software_version() -> dict[str, str | None]:
    """Versions of the packages that wrote an episode, and the git commit when the source is a checkout."""
    out: dict[str, str | None] = {}
    for dist in ("act_policy", "so100_common", "rosbags"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    out["git_commit"] = None
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        if res.returncode == 0:
            out["git_commit"] = res.stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(__file__).parent,
                                   capture_output=True, text=True, timeout=5)
            out["git_dirty"] = "true" if dirty.stdout.strip() else "false"
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def free_space_gb(path: Path) -> float:
    """Free space (GB) for unprivileged writers on the file system of ``path``."""
    return shutil.disk_usage(path).free / 1e9


def check_free_space(out_dir: Path, min_free_gb: float) -> float:
    """Free space (GB) in ``out_dir``; raises RecorderError when below ``min_free_gb``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    free_gb = free_space_gb(out_dir)
    if free_gb < min_free_gb:
        raise RecorderError(
            f"only {free_gb:.2f} GB free in {out_dir}, below min_free_gb={min_free_gb:g}; "
            "free some space, record elsewhere (out_dir:=...) or lower min_free_gb"
        )
    return free_gb


def probe_write(out_dir: Path, nbytes: int) -> None:
    """Write and remove a file of ``nbytes`` in ``out_dir``; RecorderError naming the error if that fails.

    Free space alone misses quotas and file-size limits: after a write error this tells whether
    the next episode could get as far.
    """
    probe = Path(out_dir) / ".recorder_probe"
    try:
        with probe.open("wb") as fh:
            fh.write(bytes(nbytes))
    except OSError as e:
        raise RecorderError(f"a test write of {nbytes / 1e6:.1f} MB in {out_dir} failed ({e}); free some space "
                            "or record elsewhere (out_dir:=...)") from e
    finally:
        probe.unlink(missing_ok=True)


def next_episode_name(out_dir: Path) -> str:
    """``episode_NNNNNN`` one past the highest index in ``out_dir`` (finished, partial or recovered)."""
    indices = [int(m.group(1)) for p in out_dir.iterdir() if (m := _EPISODE_RE.match(p.name))] if out_dir.is_dir() else []
    return f"episode_{max(indices, default=-1) + 1:06d}"


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf8")
    os.replace(tmp, path)


class EpisodeWriter:
    """Writes one episode: raw CDR bytes as received, one connection per topic.

    Args:
        out_dir: folder that holds the episodes.
        name: episode name (``episode_000003``); written as ``<name>.partial`` until closed.
        topics: topics to record, with their types and offered QoS.
        metadata: episode metadata (task, scene, source, fps, ...) stored in ``episode.json``.
        flush_interval: seconds between forced MCAP chunk flushes. rosbags keeps up to 1 MiB of
            messages in memory before writing a chunk; flushing bounds what a crash can lose.

    Attributes:
        counts: messages handed to :meth:`write`, per topic.
        written: messages in chunks the file holds whole, per topic (what a crash or a write
            error leaves for :func:`recover_partial`).
        error: the write error that ended the episode, if one did.
    """

    def __init__(
        self,
        out_dir: Path,
        name: str,
        topics: Sequence[TopicSpec],
        *,
        metadata: dict[str, Any],
        flush_interval: float = 1.0,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.name = name
        self.partial = self.out_dir / f"{name}{PARTIAL_SUFFIX}"
        self.final = self.out_dir / name
        for p in (self.partial, self.final):
            if p.exists():
                raise RecorderError(f"{p} exists already; not overwriting an episode")
        self.metadata = dict(metadata)
        self.flush_interval = flush_interval
        self._last_flush = time.monotonic()
        self.counts = {spec.topic: 0 for spec in topics}
        self.written = dict(self.counts)
        self.error: str | None = None
        self._synced_bytes = 0  # file offset after the last whole chunk handed to the OS
        writer = Writer(self.partial, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
        self._writer: Writer | None = writer
        try:
            writer.open()
            self._conns = {}
            for spec in topics:
                if spec.topic in self._conns:
                    raise RecorderError(f"topic {spec.topic} is listed twice")
                self._conns[spec.topic] = writer.add_connection(
                    spec.topic, spec.msgtype, typestore=TYPESTORE, serialization_format="cdr",
                    offered_qos_profiles=[rosbags_qos(spec.qos)],
                )
            self._sync()
        except (WriterError, OSError) as e:
            with contextlib.suppress(OSError):
                writer.abort()
            raise RecorderError(f"cannot create episode bag {self.partial}: {e}") from e
        self.metadata.update(name=name, complete=False)
        _write_json_atomic(self.partial / EPISODE_JSON, self.metadata)

    @property
    def topics(self) -> list[str]:
        return list(self._conns)

    def _open_writer(self) -> Writer:
        if self._writer is None:
            raise RecorderError(f"{self.partial} is closed ({self.error or 'finished'}); start a new episode")
        return self._writer

    def write(self, topic: str, timestamp_ns: int, data: bytes | memoryview) -> None:
        """Append one serialized message (CDR as received, never re-serialized)."""
        writer = self._open_writer()
        chunk = getattr(writer.storage, "chunk", None)
        try:
            writer.write(self._conns[topic], timestamp_ns, data)
            self.counts[topic] += 1
            if chunk is not None and getattr(writer.storage, "chunk", None) is not chunk:
                self._sync()  # rosbags wrote out a full (1 MiB) chunk
        except OSError as e:
            raise self._fail(e, "writing") from e
        if self.flush_interval > 0 and time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        """Write the pending MCAP chunk to the file.

        rosbags' public Writer has no flush; this closes its MCAP storage's pending chunk
        (``close_chunk``), which is what it does itself every 1 MiB. Guarded so that a
        rosbags without those internals just flushes less often.
        """
        self._last_flush = time.monotonic()
        storage = self._open_writer().storage
        chunk = getattr(storage, "chunk", None)
        if chunk is None or not hasattr(storage, "close_chunk"):
            return
        try:
            if chunk.msgs:  # never an empty chunk: its time range would be inverted (start 2**63-1, end 0)
                storage.close_chunk()
            self._sync()
        except OSError as e:
            raise self._fail(e, "writing") from e

    def _sync(self) -> None:
        """Hand rosbags' file buffer to the OS: every closed chunk is then whole in the file."""
        bio = getattr(self._open_writer().storage, "bio", None)
        if bio is not None:
            bio.flush()
            self._synced_bytes = bio.tell()
            self.written = dict(self.counts)

    def _fail(self, error: OSError | WriterError, doing: str) -> RecorderError:
        """End the episode on a write error; the ``.partial`` folder keeps :attr:`written`."""
        self.error = str(error)
        writer, self._writer = self._writer, None  # frees the pending chunk, however big it grew
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.abort()  # its last buffer flush may fail again
        with contextlib.suppress(OSError):  # drop a torn last chunk, and give its space back
            if self._synced_bytes:
                os.truncate(self.partial / f"{self.partial.name}.mcap", self._synced_bytes)
        self.metadata.update(complete=False, stop_reason="write_error", error=self.error,
                             message_counts=dict(self.written))
        try:
            _write_json_atomic(self.partial / EPISODE_JSON, self.metadata)
        except OSError:
            (self.partial / EPISODE_JSON).with_suffix(".json.tmp").unlink(missing_ok=True)
        return RecorderError(
            f"{doing} {self.partial} failed ({error}); the {sum(self.written.values())} messages written before "
            "stay in it: recover them with act_policy.episode_writer.recover_partial"
        )

    def close(self, *, stop_ns: int, success: bool | None, extra: dict[str, Any] | None = None) -> Path:
        """Finish the bag, complete ``episode.json`` and rename ``<name>.partial`` to ``<name>``."""
        writer = self._open_writer()
        self.flush()
        try:
            writer.close()
        except (WriterError, OSError) as e:
            raise self._fail(e, "closing") from e
        self._writer = None
        try:
            self._finish(stop_ns=stop_ns, success=success, extra=extra)
        except OSError as e:
            raise RecorderError(f"finishing {self.partial} failed ({e}); its bag is closed but it stays marked "
                                "partial: recover_partial reads it") from e
        return self.final

    def _finish(self, *, stop_ns: int, success: bool | None, extra: dict[str, Any] | None) -> None:
        # rosbags names the storage file after the folder it was opened in; give it the final name.
        old = self.partial / f"{self.partial.name}.mcap"
        new = self.partial / f"{self.name}.mcap"
        os.replace(old, new)
        meta_path = self.partial / "metadata.yaml"
        yaml = YAML(typ="safe")
        yaml.default_flow_style = False
        meta = yaml.load(meta_path.read_text(encoding="utf8"))
        info = meta["rosbag2_bagfile_information"]
        info["relative_file_paths"] = [new.name]
        for f in info["files"]:
            f["path"] = new.name
        tmp = meta_path.with_suffix(".yaml.tmp")
        with tmp.open("w", encoding="utf8") as fh:
            yaml.dump(meta, fh)
        os.replace(tmp, meta_path)
        self.metadata.update(extra or {})
        self.metadata.update(stop_ns=stop_ns, success=success, message_counts=dict(self.counts), complete=True)
        _write_json_atomic(self.partial / EPISODE_JSON, self.metadata)
        os.rename(self.partial, self.final)

    def discard(self) -> None:
        """Drop the episode: close the storage and remove ``<name>.partial``."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(OSError):
                writer.abort()
        shutil.rmtree(self.partial, ignore_errors=True)


def read_episode_json(bag: Path) -> dict[str, Any]:
    """The metadata stored beside an episode's bag."""
    return json.loads((Path(bag) / EPISODE_JSON).read_text(encoding="utf8"))


def _readable_prefix(data: bytes) -> int:
    """Length of the longest prefix of an MCAP file that ends on a whole top-level record."""
    if not data.startswith(_MCAP_MAGIC):
        raise RecorderError("not an MCAP file (bad magic)")
    pos = end = len(_MCAP_MAGIC)
    while pos + 9 <= len(data):
        (size,) = struct.unpack_from("<Q", data, pos + 1)
        nxt = pos + 9 + size
        if nxt > len(data):
            break
        if data[pos] in (_OP_DATA_END, _OP_FOOTER):  # a complete file: stop before its end records
            break
        pos = end = nxt
    return end


def recover_partial(path: Path) -> Path:
    """Rewrite what is readable of an interrupted episode into ``<name>.recovered/``.

    Keeps every MCAP record (chunk) that reached the disk whole, closes the file with the
    records rosbags' reader needs (data end, footer, magic), reads it back with rosbags and
    writes a new rosbag2 bag. ``episode.json`` is copied with ``complete: false`` and
    ``recovered: true``. The ``.partial`` folder is left as it was.
    """
    path = Path(path)
    if not path.name.endswith(PARTIAL_SUFFIX):
        raise RecorderError(f"{path} is not a {PARTIAL_SUFFIX} episode folder")
    name = path.name[: -len(PARTIAL_SUFFIX)]
    files = sorted(path.glob("*.mcap"))
    if not files:
        raise RecorderError(f"{path} holds no .mcap file; nothing to recover")
    out = path.parent / f"{name}{RECOVERED_SUFFIX}"
    if out.exists():
        raise RecorderError(f"{out} exists already; remove it to recover again")
    data = files[0].read_bytes()
    keep = _readable_prefix(data)
    repaired = path.parent / f".{name}.repair.mcap"
    with repaired.open("wb") as fh:
        fh.write(data[:keep])
        fh.write(bytes([_OP_DATA_END]) + struct.pack("<QI", 4, 0))
        fh.write(bytes([_OP_FOOTER]) + struct.pack("<QQQI", 20, 0, 0, 0) + _MCAP_MAGIC)
    counts: dict[str, int] = {}
    try:
        with Reader(repaired) as reader, Writer(out, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP) as writer:
            conns = {}
            for c in reader.connections:
                conns[c.id] = writer.add_connection(
                    c.topic, c.msgtype, typestore=TYPESTORE, serialization_format="cdr",
                    offered_qos_profiles=c.ext.offered_qos_profiles,
                )
                counts[c.topic] = 0
            for c, ts, raw in reader.messages():
                writer.write(conns[c.id], ts, raw)
                counts[c.topic] += 1
    except (ReaderError, WriterError) as e:
        shutil.rmtree(out, ignore_errors=True)
        raise RecorderError(f"{files[0]} cannot be recovered: {e}") from e
    finally:
        repaired.unlink(missing_ok=True)
    try:
        meta = read_episode_json(path)
    except (OSError, ValueError):
        meta = {"name": name}
    meta.update(complete=False, recovered=True, message_counts=counts,
                recovered_bytes=keep, partial_bytes=len(data))
    _write_json_atomic(out / EPISODE_JSON, meta)
    log.info("recovered %d messages (%d of %d bytes) of %s into %s", sum(counts.values()), keep, len(data), path, out)
    return out
