"""``so100 dataset merge`` and ``so100 dataset to-ee``: new datasets made from existing ones.

``merge`` joins datasets of the same fps, robot type and features through lerobot's own
``lerobot.datasets.aggregate.aggregate_datasets`` (data and videos copied, not re-encoded),
then writes our ``meta/so100_episodes.jsonl`` for the result: every source line with its
``episode_index`` renumbered to the merged dataset, ``source_dataset`` (the source root) and
``source_episode_index`` added, so per-episode scenes and recording metadata survive.

``to-ee`` re-writes a dataset through ``LeRobotDataset.create`` / ``add_frame`` with the
end-effector action space: ``action`` becomes 8 values ``ee.x, ee.y, ee.z`` (metres, robot
base frame), ``ee.qw, ee.qx, ee.qy, ee.qz`` (unit quaternion, ``w >= 0``) and
``gripper.pos`` (radians, the jaw joint passed through), computed by forward kinematics
(:class:`so100_sim.kinematics.Kinematics`) of the joint action; the joint action is kept as
``action_joints`` (6) and the FK of ``observation.state`` is added as
``observation.ee_state`` (8, same layout). ``observation.state`` is unchanged. Video frames
are decoded and re-encoded (lossy, fine for the small datasets we record; a large dataset
takes a while). Each episode's FK→IK round trip (IK of every EE action started from the
previous frame's joint action) is reported and stored in ``meta/so100_ee_report.json``.

Both write beside ``--out`` and move the result into place at the end, so a failure leaves
nothing half-written. Dependency rule: no node runtime; lerobot, numpy and so100_sim's
kinematics only.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from act_policy.bag_to_dataset import ACTION_KEY, EPISODES_JSONL, STATE_KEY, _check_out
from act_policy.dataset_tools import recording_metadata
from act_policy.errors import ActPolicyError

log = logging.getLogger(__name__)

#: The end-effector action (and ``observation.ee_state``) layout of ``to-ee``.
EE_FEATURE_NAMES = ["ee.x", "ee.y", "ee.z", "ee.qw", "ee.qx", "ee.qy", "ee.qz", "gripper.pos"]
ACTION_JOINTS_KEY = "action_joints"
EE_STATE_KEY = "observation.ee_state"
EE_REPORT_JSON = "so100_ee_report.json"
#: Columns lerobot adds to every dataset; never passed to ``create`` or ``add_frame``.
_DEFAULT_KEYS = ("timestamp", "frame_index", "episode_index", "index", "task_index")


class DatasetEditError(ActPolicyError):
    """Datasets cannot be merged or converted, or the output cannot be written."""


def _meta(root: Path, repo_id: str) -> Any:
    if not (Path(root) / "meta" / "info.json").exists():
        raise DatasetEditError(f"{root} is not a LeRobot dataset (no meta/info.json); "
                               "create one with `so100 dataset from-bags`")
    from lerobot.datasets.dataset_metadata import LeRobotDatasetMetadata

    return LeRobotDatasetMetadata(repo_id, root=root)


def _feature_layout(features: dict[str, Any]) -> dict[str, tuple[str, tuple[int, ...], Any]]:
    """dtype, shape and names of each feature: what must agree for a merge (encoder info may differ)."""
    return {k: (f["dtype"], tuple(f["shape"]), f.get("names")) for k, f in features.items()}


def _staging(out: Path, what: str) -> Path:
    staging = out.parent / f".{out.name}.{what}"
    shutil.rmtree(staging, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    return staging


def _move_into_place(staging: Path, out: Path) -> None:
    if out.exists():  # overwrite was checked by _check_out
        shutil.rmtree(out)
    staging.rename(out)


# ------------------------------------------------------------------ merge


@dataclass
class MergeSummary:
    """Result of :func:`merge`: the output and, per source, its root, episodes and frames."""

    out: str
    fps: int
    sources: list[tuple[str, int, int]] = field(default_factory=list)

    def format(self) -> str:
        episodes = sum(s[1] for s in self.sources)
        frames = sum(s[2] for s in self.sources)
        lines = [f"{self.out}: {episodes} episode(s), {frames} frames at {self.fps} fps from "
                 f"{len(self.sources)} dataset(s)"]
        offset = 0
        for root, n, f in self.sources:
            lines.append(f"- {root}: episodes {offset}..{offset + n - 1} ({f} frames)")
            offset += n
        return "\n".join(lines)


def merge(sources: Sequence[Path], out: Path, *, repo_id: str = "local/so100", overwrite: bool = False) -> MergeSummary:
    """Merge the datasets ``sources`` (in order) into one at ``out``.

    Raises:
        DatasetEditError: fewer than two sources, a source that is not a dataset, fps, robot
            type or features that differ, or ``out`` exists (and not ``overwrite``) or is a source.
    """
    from lerobot.datasets.aggregate import aggregate_datasets

    sources = [Path(s) for s in sources]
    out = Path(out)
    if len(sources) < 2:
        raise DatasetEditError(f"merge needs at least two datasets, got {len(sources)}")
    if out.resolve() in {s.resolve() for s in sources}:
        raise DatasetEditError(f"--out {out} is one of the datasets to merge; choose another folder")
    metas = [_meta(s, repo_id) for s in sources]
    first = metas[0]
    for src, m in zip(sources[1:], metas[1:], strict=True):
        if m.fps != first.fps:
            raise DatasetEditError(f"{src} is at {m.fps} fps but {sources[0]} at {first.fps} fps; datasets of "
                                   "different fps cannot be merged (convert the bags again with the same --fps)")
        if m.robot_type != first.robot_type:
            raise DatasetEditError(f"{src} has robot type {m.robot_type!r} but {sources[0]} {first.robot_type!r}")
        a, b = _feature_layout(first.features), _feature_layout(m.features)
        if a != b:
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise DatasetEditError(f"{src} and {sources[0]} have different features: {diff} "
                                   f"({sources[0]}: {[a.get(k) for k in diff]}, {src}: {[b.get(k) for k in diff]})")
    _check_out(out, overwrite)
    staging = _staging(out, "merging")
    summary = MergeSummary(out=str(out), fps=int(first.fps))
    try:
        try:
            aggregate_datasets([repo_id] * len(sources), repo_id, roots=sources, aggr_root=staging)
        except ValueError as e:  # lerobot's own validation, should ours have missed something
            raise DatasetEditError(f"lerobot refused to merge {[str(s) for s in sources]}: {e}") from e
        lines: list[str] = []
        offset = 0
        for src, m in zip(sources, metas, strict=True):
            n = int(m.total_episodes)
            recorded = {r.get("episode_index"): r for r in recording_metadata(src)}
            if len(recorded) != n:
                log.warning("%s: meta/%s has %d line(s) for %d episode(s); the others get only their source",
                            src, EPISODES_JSONL, len(recorded), n)
            for e in range(n):
                line = dict(recorded.get(e, {}))
                line.update(episode_index=offset + e, source_dataset=str(src.resolve()), source_episode_index=e)
                lines.append(json.dumps(line, sort_keys=True))
            summary.sources.append((str(src), n, int(m.total_frames)))
            offset += n
        (staging / "meta" / EPISODES_JSONL).write_text("".join(x + "\n" for x in lines), encoding="utf8")
        _move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


# ------------------------------------------------------------------ to-ee


@dataclass
class EpisodeRoundTrip:
    """FK→IK round trip of one episode's EE actions.

    Position errors in mm; quaternion distance ``1 - |<q1, q2>|`` (so100_sim.transforms.quat_distance:
    0 for the same rotation, 1e-4 is about 1.6 degrees).
    """

    episode_index: int
    frames: int
    pos_error_max_mm: float
    pos_error_p95_mm: float
    quat_distance_max: float
    converged_fraction: float


@dataclass
class EeSummary:
    """Result of :func:`to_ee`."""

    out: str
    frames: int
    episodes: list[EpisodeRoundTrip] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"action_names": list(EE_FEATURE_NAMES), "frames": self.frames,
                "ik_start": "previous frame's joint action (frame 0: its observation.state)",
                "episodes": [asdict(e) for e in self.episodes]}

    def format(self) -> str:
        lines = [f"{self.out}: {len(self.episodes)} episode(s), {self.frames} frames, action = {EE_FEATURE_NAMES}",
                 "FK->IK round trip (IK of each EE action from the previous frame's joints):"]
        for e in self.episodes:
            lines.append(f"  episode {e.episode_index}: {e.frames} frames, position error max "
                         f"{e.pos_error_max_mm:.3f} mm, p95 {e.pos_error_p95_mm:.3f} mm, quaternion distance max "
                         f"{e.quat_distance_max:.2e}, converged {100 * e.converged_fraction:.1f}%")
        return "\n".join(lines)


def ee_pose(kin: Any, q: np.ndarray) -> np.ndarray:
    """The 8 EE values (xyz, quaternion wxyz, gripper) of joint positions ``q`` (6, radians)."""
    pos, quat = kin.fk(np.asarray(q, dtype=np.float64))
    return np.concatenate([pos, quat, [float(q[5])]])


def _round_trip(kin: Any, ee: np.ndarray, q_prev: np.ndarray) -> tuple[float, float, bool]:
    """IK of one EE action from ``q_prev``: position error (m), quaternion distance, converged."""
    from so100_sim.kinematics import quat_distance

    res = kin.ik(ee[:3], ee[3:7], q_prev)
    pos, quat = kin.fk(res.q)
    return float(np.linalg.norm(pos - ee[:3])), float(quat_distance(quat, ee[3:7])), bool(res.converged)


def _frame_image(value: Any, feature: dict[str, Any]) -> np.ndarray:
    """A decoded video frame (C, H, W float in [0, 1], depth in mm) as add_frame takes it (H, W, C)."""
    arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if (feature.get("info") or {}).get("is_depth_map"):
        return np.clip(np.round(arr), 0, np.iinfo(np.uint16).max).astype(np.uint16)
    return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)


def to_ee(src: Path, out: Path, *, repo_id: str = "local/so100", overwrite: bool = False,
          progress: bool = True) -> EeSummary:
    """Write a copy of the dataset ``src`` at ``out`` with the end-effector action space.

    Raises:
        DatasetEditError: ``src`` is not a joint-space SO-100 dataset, or ``out`` exists (and
            not ``overwrite``).
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from tqdm import tqdm

    from so100_sim.kinematics import Kinematics

    src, out = Path(src), Path(out)
    meta = _meta(src, repo_id)
    feats = meta.features
    for key in (STATE_KEY, ACTION_KEY):
        if key not in feats or tuple(feats[key]["shape"]) != (6,):
            raise DatasetEditError(f"{src}: {key} must be 6 joint positions, got "
                                   f"{feats.get(key, {}).get('shape', 'no such feature')}; is it already EE?")
    if ACTION_JOINTS_KEY in feats:
        raise DatasetEditError(f"{src} already has {ACTION_JOINTS_KEY}: it is an end-effector dataset")
    if out.resolve() == src.resolve():
        raise DatasetEditError(f"--out {out} is the source dataset; choose another folder")
    _check_out(out, overwrite)

    ds = LeRobotDataset(repo_id, root=src)
    video_keys = [k for k, f in feats.items() if f["dtype"] in ("video", "image")]
    new_feats: dict[str, dict[str, Any]] = {}
    for key, f in feats.items():
        if key in _DEFAULT_KEYS:
            continue
        spec = {"dtype": f["dtype"], "shape": tuple(f["shape"]), "names": f.get("names")}
        if (f.get("info") or {}).get("is_depth_map"):
            spec["info"] = {"is_depth_map": True}
        new_feats[key] = spec
    ee_spec = {"dtype": "float32", "shape": (len(EE_FEATURE_NAMES),), "names": list(EE_FEATURE_NAMES)}
    new_feats[ACTION_KEY] = dict(ee_spec)
    new_feats[ACTION_JOINTS_KEY] = {"dtype": "float32", "shape": (6,), "names": feats[ACTION_KEY].get("names")}
    new_feats[EE_STATE_KEY] = dict(ee_spec)

    table = ds.hf_dataset.with_format("numpy")
    episode_index = np.asarray(table["episode_index"])
    numeric = {k: np.asarray(table[k]) for k in new_feats if k in feats and k not in video_keys}
    kin = Kinematics()
    staging = _staging(out, "to-ee")
    summary = EeSummary(out=str(out), frames=0)
    try:
        dst = LeRobotDataset.create(repo_id, int(meta.fps), new_feats, root=staging, robot_type=meta.robot_type,
                                    use_videos=any(f["dtype"] == "video" for f in feats.values()))
        for e in sorted(set(episode_index.tolist())):
            rows = np.flatnonzero(episode_index == e)
            pos_err, quat_dist, converged = [], [], []
            q_prev = numeric[STATE_KEY][rows[0]].astype(np.float64)
            for idx in tqdm(rows, desc=f"episode {e}", unit="frame", disable=not progress, leave=False):
                item = ds[int(idx)] if video_keys else None
                q_action = numeric[ACTION_KEY][idx].astype(np.float64)
                ee = ee_pose(kin, q_action)
                p, d, c = _round_trip(kin, ee, q_prev)
                pos_err.append(p)
                quat_dist.append(d)
                converged.append(c)
                q_prev = q_action
                frame: dict[str, Any] = {k: v[idx] for k, v in numeric.items() if k != ACTION_KEY}
                frame[ACTION_KEY] = ee.astype(np.float32)
                frame[ACTION_JOINTS_KEY] = q_action.astype(np.float32)
                frame[EE_STATE_KEY] = ee_pose(kin, numeric[STATE_KEY][idx].astype(np.float64)).astype(np.float32)
                for key in video_keys:
                    frame[key] = _frame_image(item[key], feats[key])
                frame["task"] = item["task"] if item is not None else ds.meta.tasks.index[
                    int(np.asarray(table["task_index"])[idx])]
                dst.add_frame(frame)
            dst.save_episode(parallel_encoding=False)  # no fork of this threaded process; small datasets
            pe = np.asarray(pos_err) * 1000.0
            summary.episodes.append(EpisodeRoundTrip(
                episode_index=int(e), frames=len(rows), pos_error_max_mm=float(pe.max()),
                pos_error_p95_mm=float(np.percentile(pe, 95)), quat_distance_max=float(max(quat_dist)),
                converged_fraction=float(np.mean(converged))))
            summary.frames += len(rows)
        dst.finalize()
        lines = recording_metadata(src)
        if lines:
            (staging / "meta" / EPISODES_JSONL).write_text("".join(json.dumps(x, sort_keys=True) + "\n" for x in lines),
                                                           encoding="utf8")
        (staging / "meta" / EE_REPORT_JSON).write_text(json.dumps(summary.to_dict(), indent=2) + "\n",
                                                       encoding="utf8")
        _move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary
