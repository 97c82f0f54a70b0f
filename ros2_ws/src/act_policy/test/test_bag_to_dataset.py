"""bag_to_dataset: real recorder bags converted through lerobot and read back with stock LeRobotDataset."""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from act_policy.bag_to_dataset import EPISODES_JSONL, ConversionError, _BagEpisode, convert
from act_policy.dataset_cli import main as cli_main
from act_policy.episode_writer import EpisodeWriter, TopicSpec
from act_policy.resample import resample
from so100_common import messages, names
from so100_common.qos import LATCHED, QoS

MS = 1_000_000
S = 1_000_000_000
FPS = 30
H, W = 32, 40
T0 = 1_700_000_000 * S  # wall-clock-like stamps
SPECS = [
    TopicSpec(names.FOLLOWER_JOINT_STATES, "sensor_msgs/msg/JointState", QoS(depth=50)),
    TopicSpec(names.FOLLOWER_JOINT_COMMANDS, "sensor_msgs/msg/JointState", QoS(depth=50)),
    TopicSpec(names.camera_image_topic("overhead"), "sensor_msgs/msg/Image", QoS(depth=5)),
    TopicSpec(names.camera_image_topic("wrist"), "sensor_msgs/msg/Image", QoS(depth=5)),
    TopicSpec(names.EPISODE_SCENE, "std_msgs/msg/String", LATCHED),
]
DEPTH_TOPIC = names.camera_depth_topic("overhead")
STATE_HZ, CMD_HZ, CAM_HZ = 50, 40, 30
CMD_LEAD = 7 * MS  # commands are stamped before the states they cause (an expert leads the follower)


def state_value(i: int) -> np.ndarray:
    return 0.01 * i + 0.1 * np.arange(6)


def command_value(i: int) -> np.ndarray:
    return -1.0 - 0.01 * i + 0.1 * np.arange(6)


def colour(cam: str, i: int) -> np.ndarray:
    """A flat colour per image (video is lossy: compare means); images 1 apart differ by >= 83, 2 apart by >= 14."""
    return np.array([30 + (97 * i) % 180, 200 if cam == "overhead" else 60, 120], dtype=np.uint8)


def depth_mm(i: int) -> int:
    return 400 + 50 * i


def stream_times(duration_s: float) -> dict[str, np.ndarray]:
    def ticks(hz: float, offset: int = 0) -> np.ndarray:
        return T0 + offset + (np.arange(int(duration_s * hz)) * S / hz).astype(np.int64)

    return {
        "state": ticks(STATE_HZ, 2 * MS),
        "command": ticks(CMD_HZ, 2 * MS - CMD_LEAD),
        "overhead": ticks(CAM_HZ, 5 * MS),
        "wrist": ticks(CAM_HZ, 9 * MS),
    }


def write_bag(
    root: Path,
    name: str,
    *,
    duration_s: float = 1.0,
    task: str = "put the brick in the bowl",
    seed: int = 1,
    gap: tuple[float, float] | None = None,
    depth: bool = False,
    command: Callable[[int], np.ndarray] = command_value,
    image_bytes: Callable[[str, int, bytes], bytes] | None = None,
) -> Path:
    """An episode as the recorder writes it; bag time = stamp + 3 ms transport delay.

    The wrist camera publishes zero header stamps, so its receive (bag) time is used.
    ``gap`` drops overhead images within (start, end) seconds. ``depth`` adds the overhead
    depth camera (16UC1 mm, flat ``depth_mm(i)``), stamped like the overhead images.
    ``command`` gives the i-th joint command (default ``command_value``, partly outside the arm's limits).
    ``image_bytes(camera, i, cdr)`` may replace the CDR bytes of a camera's i-th image (to damage it).
    """
    times = stream_times(duration_s)
    scene = {"seed": seed, "objects": {"brick": [0.2, 0.0, 0.02]}}
    specs = SPECS + [TopicSpec(DEPTH_TOPIC, "sensor_msgs/msg/Image", QoS(depth=5))] if depth else SPECS
    w = EpisodeWriter(
        root, name, specs, metadata={"task": task, "source": "expert", "fps": FPS, "scene": scene}, flush_interval=0
    )
    w.write(names.EPISODE_SCENE, T0, messages.serialize(messages.string_msg(json.dumps(scene))))
    events = []
    for i, t in enumerate(times["state"]):
        events.append(
            (t, names.FOLLOWER_JOINT_STATES, messages.joint_state(names.JOINT_NAMES, state_value(i), stamp_ns=int(t)))
        )
    for i, t in enumerate(times["command"]):
        # joint names in another order: the converter must reorder them
        order = list(reversed(range(6)))
        events.append(
            (
                t,
                names.FOLLOWER_JOINT_COMMANDS,
                messages.joint_state([names.JOINT_NAMES[j] for j in order], command(i)[order], stamp_ns=int(t)),
            )
        )
    for cam in names.CAMERA_NAMES:
        for i, t in enumerate(times[cam]):
            if gap and cam == "overhead" and gap[0] * S < t - T0 < gap[1] * S:
                continue
            img = np.broadcast_to(colour(cam, i), (H, W, 3)).copy()
            msg = messages.image_from_numpy(img, "rgb8", stamp_ns=int(t) if cam == "overhead" else 0)
            raw = messages.serialize(msg)
            events.append((t, names.camera_image_topic(cam), image_bytes(cam, i, raw) if image_bytes else raw))
    if depth:
        for i, t in enumerate(times["overhead"]):
            img = np.full((H, W), depth_mm(i), dtype=np.uint16)
            events.append((t, DEPTH_TOPIC, messages.image_from_numpy(img, "16UC1", stamp_ns=int(t))))
    for t, topic, msg in sorted(events, key=lambda e: e[0]):
        w.write(topic, int(t) + 3 * MS, msg if isinstance(msg, bytes) else messages.serialize(msg))
    return w.close(stop_ns=T0 + int(duration_s * S), success=True)


def expected_indices(duration_s: float) -> dict[str, np.ndarray]:
    """Brute force: for each frame time, the latest message at or before it (wrist: by bag time)."""
    times = stream_times(duration_s)
    times["wrist"] = times["wrist"] + 3 * MS
    start = max(t[0] for t in times.values())
    end = max(t[-1] for t in times.values())
    frames = [start + k * S // FPS for k in range((end - start) * FPS // S + 1)]
    return {name: np.array([max(i for i, m in enumerate(t) if m <= f) for f in frames]) for name, t in times.items()}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Two good episodes and four broken ones, converted once for the tests below."""
    root = tmp_path_factory.mktemp("bags")
    good = [write_bag(root, "episode_000000", seed=1), write_bag(root, "episode_000001", seed=2, task="stack")]
    broken = root / "episode_000002"
    write_bag(root, "episode_000002")
    mcap = next(broken.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[:200] + b"garbage" * 50)
    partial = root / "episode_000003.partial"
    partial.mkdir()
    (partial / "episode.json").write_text('{"complete": false}')
    no_meta = root / "episode_000004"
    write_bag(root, "episode_000004")
    (no_meta / "metadata.yaml").unlink()
    damaged = write_bag(root, "episode_000005")  # bytes overwritten inside the chunk: rosbags skips it silently
    mcap = next(damaged.glob("*.mcap"))
    data = bytearray(mcap.read_bytes())
    data[3000:3100] = b"x" * 100
    mcap.write_bytes(bytes(data))
    out = tmp_path_factory.mktemp("ds") / "dataset"
    summary = convert([root], out, fps=FPS, progress=False)
    return {"summary": summary, "out": out, "good": good, "root": root}


def load(out: Path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset("local/so100", root=out)


def test_good_episodes_convert_and_broken_ones_fail_alone_naming_the_bag(converted):
    s = converted["summary"]
    assert [e.status for e in s.episodes] == ["converted", "converted", "error", "error", "error", "error"]
    assert [e.episode_index for e in s.converted] == [0, 1]
    for e in s.failed:
        assert e.bag in e.error
    assert "corrupt or truncated" in s.episodes[2].error
    assert "unfinished episode" in s.episodes[3].error and "recover_partial" in s.episodes[3].error
    assert "no metadata.yaml" in s.episodes[4].error
    assert "can be read; the bag is corrupt" in s.episodes[5].error
    text = s.format()
    assert "2 episode(s) converted, 4 rejected or failed" in text and "episode_000002" in text


def test_dataset_loads_with_lerobot_and_frames_are_latest_at_or_before(converted):
    ds = load(converted["out"])
    exp = expected_indices(1.0)
    n = len(exp["state"])
    assert abs(n - 1.0 * FPS) <= 2
    assert ds.meta.total_episodes == 2 and ds.num_frames == 2 * n == converted["summary"].frames
    assert ds.fps == FPS and ds.meta.robot_type == "so100_follower"
    assert ds.features["observation.state"]["names"] == [f"{j}.pos" for j in names.JOINT_NAMES]
    assert tuple(ds.features["observation.images.overhead_cam"]["shape"]) == (H, W, 3)
    for ep in range(2):
        for k in range(n):
            item = ds[ep * n + k]
            assert item["episode_index"].item() == ep and item["frame_index"].item() == k
            np.testing.assert_allclose(item["observation.state"].numpy(), state_value(exp["state"][k]), atol=1e-6)
            np.testing.assert_allclose(item["action"].numpy(), command_value(exp["command"][k]), atol=1e-6)
            for cam in names.CAMERA_NAMES:
                img = item[f"observation.images.{cam}_cam"].numpy()  # C, H, W float in [0, 1]
                mean = img.reshape(3, -1).mean(axis=1) * 255
                np.testing.assert_allclose(mean, colour(cam, exp[cam][k]), atol=6, err_msg=f"{cam} frame {k}")
        assert ds[ep * n]["task"] == ("put the brick in the bowl" if ep == 0 else "stack")


def test_action_is_never_from_the_frame_future(converted):
    """Commands lead states by 7 ms; each frame's command was stamped at or before the frame time."""
    ds = load(converted["out"])
    times = stream_times(1.0)
    exp = expected_indices(1.0)
    report = converted["summary"].episodes[0].sync
    for k in range(report["frames"]):
        frame_t = report["start_ns"] + k * S // FPS
        action = ds[k]["action"].numpy()
        i = round((-1.0 - float(action[0])) / 0.01)  # invert command_value
        assert times["command"][i] <= frame_t
        assert i == exp["command"][k]
        # the next command (the future) is never used, though it is only up to 25 ms away
        assert i + 1 >= len(times["command"]) or times["command"][i + 1] > frame_t


def test_episode_metadata_and_sync_report_are_kept(converted):
    out = converted["out"]
    lines = [json.loads(line) for line in (out / "meta" / EPISODES_JSONL).read_text().splitlines()]
    assert [x["episode_index"] for x in lines] == [0, 1]
    assert lines[0]["episode"]["scene"]["seed"] == 1 and lines[1]["episode"]["scene"]["seed"] == 2
    assert lines[1]["task"] == "stack" and lines[0]["episode"]["source"] == "expert"
    assert lines[0]["bag"].endswith("episode_000000")
    sync = lines[0]["sync"]
    assert not sync["rejected"] and sync["fps"] == FPS
    streams = sync["streams"]
    assert set(streams) == {
        names.FOLLOWER_JOINT_STATES,
        names.FOLLOWER_JOINT_COMMANDS,
        names.camera_image_topic("overhead"),
        names.camera_image_topic("wrist"),
    }
    assert streams[names.FOLLOWER_JOINT_STATES]["age_max_ms"] <= 1000 / STATE_HZ + 1e-6
    assert streams[names.camera_image_topic("overhead")]["age_max_ms"] <= 1000 / CAM_HZ + 1e-6
    # lerobot's own metadata is untouched by ours
    assert (out / "meta" / "info.json").exists() and json.loads((out / "meta" / "info.json").read_text())[
        "codebase_version"
    ] == "v3.0"


def test_refuses_to_overwrite_unless_told(converted, tmp_path):
    out = converted["out"]
    with pytest.raises(ConversionError, match="exists already.*--overwrite"):
        convert(converted["good"][:1], out, progress=False)
    # an overwrite that converts nothing leaves the existing dataset as it was
    with pytest.raises(ConversionError, match="no episode could be converted"):
        convert([converted["root"] / "episode_000002"], out, overwrite=True, progress=False)
    assert load(out).meta.total_episodes == 2
    assert not (out.parent / f".{out.name}.converting").exists()
    notds = tmp_path / "notes"
    notds.mkdir()
    (notds / "keep.txt").write_text("mine")
    with pytest.raises(ConversionError, match="not a LeRobot dataset"):
        convert(converted["good"][:1], notds, overwrite=True, progress=False)
    assert (notds / "keep.txt").exists()


def test_cli_overwrites_with_task_and_rejects_a_gappy_episode(converted, tmp_path, capsys):
    """The CLI with --overwrite, --task and lerobot's PNG path; a 0.4 s camera gap rejects that episode alone."""
    bags = tmp_path / "bags"
    gappy = write_bag(bags, "episode_000000", gap=(0.3, 0.7))
    out = tmp_path / "ds"
    out.mkdir()
    assert cli_main(["from-bags", str(gappy), "--out", str(out), "--fps", "30"]) == 2
    assert "exists already" in capsys.readouterr().err
    code = cli_main(
        [
            "from-bags",
            str(gappy),
            str(converted["good"][0]),
            "--out",
            str(out),
            "--fps",
            "30",
            "--task",
            "override",
            "--overwrite",
            "--no-progress",
            "--no-streaming",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1  # converted, but not every bag
    assert "REJECTED" in captured.out and "older than" in captured.out
    ds = load(out)
    assert ds.meta.total_episodes == 1 and ds[0]["task"] == "override"
    exp = expected_indices(1.0)
    for k in (0, 7, len(ds) - 1):
        mean = ds[k]["observation.images.overhead_cam"].numpy().reshape(3, -1).mean(axis=1) * 255
        np.testing.assert_allclose(mean, colour("overhead", exp["overhead"][k]), atol=6)
    line = json.loads((out / "meta" / EPISODES_JSONL).read_text())
    assert line["bag"] == str(converted["good"][0]) and line["task"] == "override"


def test_depth_is_converted_when_asked(tmp_path):
    """--depth adds a depth video (lerobot's depth encoder) that decodes back to millimetres."""
    bag = write_bag(tmp_path / "bags", "episode_000000", depth=True)
    out = tmp_path / "ds"
    assert cli_main(["from-bags", str(bag), "--out", str(out), "--depth", "--no-progress"]) == 0
    ds = load(out)
    feat = ds.features["observation.images.overhead_depth"]
    assert tuple(feat["shape"]) == (H, W, 1) and feat["info"]["is_depth_map"]
    exp = expected_indices(1.0)
    for k in (0, 11, len(ds) - 1):
        got = ds[k]["observation.images.overhead_depth"].numpy()
        np.testing.assert_allclose(got.mean(), depth_mm(exp["overhead"][k]), rtol=0.01)
    # a bag without the depth topic fails alone, naming what is missing
    with pytest.raises(ConversionError, match="does not record /cameras/overhead/depth/image_raw"):
        convert([write_bag(tmp_path / "bags", "episode_000001")], tmp_path / "ds2", depth=True, progress=False)


def test_bad_joint_states_fail_the_episode_naming_bag_and_problem(tmp_path):
    """Wrong joint names, NaN positions or impossible angles (a flipped float): no episode is written, each error
    names its bag."""
    bags = []
    for name, joint_names, value in (
        ("episode_000000", ["a", "b", "c", "d", "e", "f"], 0.0),
        ("episode_000001", list(names.JOINT_NAMES), float("nan")),
        ("episode_000002", list(names.JOINT_NAMES), 3e307),
    ):
        w = EpisodeWriter(tmp_path, name, SPECS[:4], metadata={"task": "t"}, flush_interval=0)
        w.write(
            names.FOLLOWER_JOINT_STATES,
            T0,
            messages.serialize(messages.joint_state(joint_names, [value] * 6, stamp_ns=T0)),
        )
        for topic in (names.FOLLOWER_JOINT_COMMANDS,):
            w.write(topic, T0, messages.serialize(messages.joint_state(names.JOINT_NAMES, [0.0] * 6, stamp_ns=T0)))
        for cam in names.CAMERA_NAMES:
            w.write(
                names.camera_image_topic(cam),
                T0,
                messages.serialize(messages.image_from_numpy(np.zeros((H, W, 3), np.uint8), "rgb8", stamp_ns=T0)),
            )
        bags.append(w.close(stop_ns=T0, success=False))
    with pytest.raises(ConversionError, match="no episode could be converted") as info:
        convert(bags, tmp_path / "ds", progress=False)
    text = str(info.value)
    assert f"{bags[0]}: /follower/joint_states: joint state lacks ['shoulder_pan'" in text
    assert f"{bags[1]}: /follower/joint_states has non-finite positions in 1 message(s)" in text
    assert f"{bags[2]}: /follower/joint_states has positions beyond ±6.28 rad in 1 message(s)" in text
    assert not (tmp_path / "ds").exists()


def test_dataset_info_and_check(converted, tmp_path):
    """`so100 dataset info/check` read the converted dataset; check finds a damaged copy's problem."""
    import shutil

    from act_policy.dataset_tools import check, info
    from act_policy.errors import ActPolicyError

    text = info(converted["out"])
    assert "2 episode(s)" in text and "observation.state: float32 (6,)" in text and "seed" in text
    report = check(converted["out"])
    assert report.ok, report.problems
    damaged = tmp_path / "damaged"
    shutil.copytree(converted["out"], damaged)
    (damaged / "meta" / "so100_episodes.jsonl").write_text("")
    report = check(damaged)
    assert not report.ok and any("so100_episodes.jsonl has 0 line(s) for 2 episode(s)" in p for p in report.problems)
    with pytest.raises(ActPolicyError, match="not a LeRobot dataset"):
        check(tmp_path)


def _frames(bag: Path, buffer_bytes: int) -> tuple[bool, list[dict[str, np.ndarray]]]:
    """Whether scan kept the images, and the frames (copied) of ``bag``."""
    ep = _BagEpisode(bag, buffer_bytes=buffer_bytes)
    ep.scan()
    kept = ep.kept is not None
    res = resample({t: ep.streams[t].times() for t in ep.topics}, FPS)
    return kept, [{k: np.array(v) for k, v in f.items()} for f in ep.frames(res.indices)]


def test_frames_are_the_same_whether_the_bag_is_read_once_or_twice(tmp_path):
    """Images kept from the first read, a second read (no buffer) and a buffer that overflows mid-read agree."""
    bag = write_bag(tmp_path, "episode_000000")
    image = len(messages.serialize(messages.image_from_numpy(np.zeros((H, W, 3), np.uint8), "rgb8")))
    (kept, once), (kept0, twice), (kept5, overflow) = (_frames(bag, b) for b in (10**9, 0, 5 * image))
    assert kept and not kept0 and not kept5
    assert len(once) == len(twice) == len(overflow) == len(expected_indices(1.0)["state"])
    for a, b, c in zip(once, twice, overflow, strict=True):
        assert a.keys() == b.keys() == c.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
            np.testing.assert_array_equal(a[k], c[k])
    exp = expected_indices(1.0)
    for k in (0, 7, len(once) - 1):
        np.testing.assert_array_equal(once[k]["observation.images.wrist_cam"][0, 0], colour("wrist", exp["wrist"][k]))


def test_damaged_or_foreign_images_fail_the_episode_naming_bag_and_problem(tmp_path):
    """A truncated image, rows its data cannot hold, or a non-RGB encoding: no episode, each error names its bag."""

    def truncate(cam: str, i: int, raw: bytes) -> bytes:
        return raw[:-10] if (cam, i) == ("wrist", 5) else raw

    def short_step(cam: str, i: int, raw: bytes) -> bytes:  # step field (just before the data length) too small
        if (cam, i) != ("overhead", 9):
            return raw
        at = len(raw) - H * W * 3 - 8
        return raw[:at] + (W * 3 - 1).to_bytes(4, "little") + raw[at + 4 :]

    def mono(cam: str, i: int, raw: bytes) -> bytes:
        return (
            messages.serialize(messages.image_from_numpy(np.zeros((H, W), np.uint8), "mono8"))
            if cam == "wrist"
            else raw
        )

    bags = [write_bag(tmp_path, f"episode_00000{n}", image_bytes=f) for n, f in enumerate((truncate, short_step, mono))]
    with pytest.raises(ConversionError, match="no episode could be converted") as info:
        convert(bags, tmp_path / "ds", progress=False)
    text = str(info.value)
    assert f"{bags[0]}: cannot convert (ImageCdrError: Image payload of" in text and "ends inside data" in text
    assert f"{bags[1]}: cannot convert (ImageCdrError: image data of {H * W * 3} bytes" in text
    assert "needs a step of at least 120" in text
    assert f"{bags[2]}: /cameras/wrist/image_raw: image encoding 'mono8'; the dataset takes rgb8" in text
    assert not (tmp_path / "ds").exists()
