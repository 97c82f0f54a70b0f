"""``so100 dataset info`` and ``so100 dataset check``: read a LeRobot dataset with lerobot and report.

``info`` summarizes (episodes, frames, fps, features, tasks, per-episode length and the recording
metadata of ``meta/so100_episodes.jsonl``). ``check`` validates what training relies on and lists
every problem: the features of the SO-100 layout, contiguous frame indices and timestamps at the
dataset fps, finite states and actions, decodable first and last frames of every camera, and one
recording-metadata line per episode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from act_policy.bag_to_dataset import ACTION_KEY, CAMERA_KEYS, EPISODES_JSONL, JOINT_FEATURE_NAMES, STATE_KEY
from act_policy.episode_quality import GAP_THRESHOLD, assess
from act_policy.errors import ActPolicyError


def _open(root: Path, repo_id: str) -> Any:
    if not (root / "meta" / "info.json").exists():
        raise ActPolicyError(f"{root} is not a LeRobot dataset (no meta/info.json); "
                             "create one with `so100 dataset from-bags`")
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset(repo_id, root=root)


def recording_metadata(root: Path) -> list[dict[str, Any]]:
    path = root / "meta" / EPISODES_JSONL
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _episode_bounds(ds: Any) -> list[tuple[int, int]]:
    index = np.asarray(ds.hf_dataset["episode_index"])
    return [(int(np.flatnonzero(index == e)[0]), int(np.flatnonzero(index == e)[-1]) + 1)
            for e in sorted(set(index.tolist()))]


def info(root: Path, repo_id: str = "local/so100") -> str:
    """A human-readable summary of the dataset at ``root``."""
    ds = _open(root, repo_id)
    lines = [f"{root}: LeRobot {ds.meta.info.get('codebase_version', '?')}, {ds.num_episodes} episode(s), "
             f"{ds.num_frames} frames at {ds.fps} fps ({ds.num_frames / ds.fps:.1f} s)"]
    lines.append("features:")
    for key, feat in ds.features.items():
        lines.append(f"  {key}: {feat['dtype']} {tuple(feat['shape'])}")
    tasks = list(ds.meta.tasks.index) if hasattr(ds.meta.tasks, "index") else list(ds.meta.tasks)
    lines.append(f"tasks: {tasks}")
    meta = {m.get("episode_index"): m for m in recording_metadata(root)}
    for e, (start, stop) in enumerate(_episode_bounds(ds)):
        m = meta.get(e, {})
        rec = m.get("recording") or m.get("episode") or {}
        extra = ""
        if isinstance(rec, dict) and rec:
            seed = (rec.get("scene") or {}).get("seed") if isinstance(rec.get("scene"), dict) else None
            extra = f", source {rec.get('source')}, success {rec.get('success')}" + (f", seed {seed}" if seed is not None
                                                                                    else "")
        lines.append(f"  episode {e}: {stop - start} frames{extra}")
    return "\n".join(lines)


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    #: worth a look but trainable (uneven state sampling)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(root: Path, repo_id: str = "local/so100") -> CheckReport:
    """Validate the dataset at ``root``; every problem found is listed, nothing is changed."""
    rep = CheckReport()
    ds = _open(root, repo_id)
    feats = ds.features
    # a to-ee dataset keeps the joint action as `action_joints` and has 8 end-effector values in `action`
    joint_action_key = "action_joints" if "action_joints" in feats else ACTION_KEY
    if joint_action_key != ACTION_KEY and tuple(feats[ACTION_KEY]["shape"]) != (8,):
        rep.problems.append(f"{ACTION_KEY} of an end-effector dataset should have 8 values, got {feats[ACTION_KEY]['shape']}")
    for key in (STATE_KEY, joint_action_key):
        if key not in feats:
            rep.problems.append(f"feature {key} is missing")
        elif tuple(feats[key]["shape"]) != (len(JOINT_FEATURE_NAMES),) or list(feats[key].get("names") or []) != list(
                JOINT_FEATURE_NAMES):
            rep.problems.append(f"{key} should be 6 values named {list(JOINT_FEATURE_NAMES)}, "
                                f"got shape {feats[key]['shape']} names {feats[key].get('names')}")
    cameras = [k for k in CAMERA_KEYS.values() if k in feats]
    if not cameras:
        rep.problems.append(f"no camera feature among {list(CAMERA_KEYS.values())}")
    rep.checked.append("features")

    table = ds.hf_dataset.with_format("numpy")
    state = np.asarray(table[STATE_KEY]) if STATE_KEY in feats else np.zeros((0, 6))
    action = np.asarray(table[joint_action_key]) if joint_action_key in feats else np.zeros((0, 6))
    for key, arr in ((STATE_KEY, state), (joint_action_key, action)):
        bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=1)) if len(arr) else []
        if len(bad):
            rep.problems.append(f"{key}: {len(bad)} frame(s) with NaN/inf, first at index {int(bad[0])}")
        elif len(arr) and np.abs(arr).max() > 2 * np.pi:
            rep.problems.append(f"{key}: values up to {np.abs(arr).max():.1f}: not radians?")
    rep.checked.append("finite states and actions in radians")

    frame_index = np.asarray(table["frame_index"])
    timestamps = np.asarray(table["timestamp"])
    bounds = _episode_bounds(ds)
    for e, (start, stop) in enumerate(bounds):
        fi = frame_index[start:stop]
        if not np.array_equal(fi, np.arange(stop - start)):
            rep.problems.append(f"episode {e}: frame_index is not 0..{stop - start - 1}")
        ts = timestamps[start:stop]
        if len(ts) > 1 and np.abs(np.diff(ts) - 1.0 / ds.fps).max() > 1e-3:
            rep.problems.append(f"episode {e}: timestamps are not spaced 1/{ds.fps} s")
        for idx in (start, stop - 1):
            try:
                item = ds[idx]
            except Exception as err:  # a broken video raises from the decoder
                rep.problems.append(f"episode {e}: frame {idx - start} does not decode: {err}")
                continue
            for cam in cameras:
                img = item[cam]
                if tuple(img.shape[-2:]) != tuple(feats[cam]["shape"][:2]) or float(img.max()) <= 0:
                    rep.problems.append(f"episode {e}: {cam} frame {idx - start} is empty or mis-sized")
    rep.checked.append(f"{len(bounds)} episode(s): frame indices, timestamps, first/last video frames")

    if len(state) and len(action) and state.shape == action.shape:
        for e, (start, stop) in enumerate(bounds):
            quality = assess(state[start:stop], action[start:stop])
            for flag in quality.flags():
                (rep.problems if flag.startswith("start transient") else rep.warnings).append(f"episode {e}: {flag}")
        rep.checked.append(f"start transients (|action - state| > {GAP_THRESHOLD:g} rad) and state sampling")

    meta = recording_metadata(root)
    if len(meta) != len(bounds):
        rep.problems.append(f"meta/{EPISODES_JSONL} has {len(meta)} line(s) for {len(bounds)} episode(s)")
    rep.checked.append("recording metadata")
    return rep
