"""video_encoding: the counting encoder thread writes the video and the statistics lerobot's own thread does."""

import av
import numpy as np
import pytest
from lerobot.configs.video import RGBEncoderConfig
from lerobot.datasets.compute_stats import RunningQuantileStats, auto_downsample_height_width
from lerobot.datasets.video_utils import StreamingVideoEncoder

from act_policy.video_encoding import CountingStreamingEncoder, stats_from_counts, uint8_channel_counts

RNG = np.random.default_rng(3)
KEY = "observation.images.overhead_cam"


def frames(n: int, h: int = 480, w: int = 640) -> list[np.ndarray]:
    """Smooth moving gradients plus noise (compressible, every value range), uint8 H x W x 3."""
    y, x = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        base = np.stack([(x + 7 * i) % 256, (y + 3 * i) % 256, (x + y) // 4 % 256], axis=-1).astype(np.int16)
        out.append(np.clip(base + RNG.integers(-20, 21, size=base.shape), 0, 255).astype(np.uint8))
    return out


def lerobot_stats(images: list[np.ndarray]) -> dict[str, np.ndarray]:
    """lerobot's RunningQuantileStats over the downsampled pixels of all frames, in one update."""
    pixels = [auto_downsample_height_width(f.transpose(2, 0, 1)).transpose(1, 2, 0).reshape(-1, 3) for f in images]
    rqs = RunningQuantileStats()
    rqs.update(np.concatenate(pixels))
    return rqs.get_statistics()


def test_stats_from_counts_equal_lerobots_running_stats():
    """Same keys, shapes and values as RunningQuantileStats of the same pixels; mean and std exact
    (lerobot's float32 sums are off by ~3e-4 relative)."""
    images = frames(6)
    want = lerobot_stats(images)
    got = stats_from_counts(sum(uint8_channel_counts(f) for f in images))
    assert got.keys() == want.keys()
    for k in want:
        assert got[k].shape == want[k].shape, k
        np.testing.assert_allclose(got[k], want[k], rtol=1e-3, atol=1e-6, err_msg=k)
    for k in ("min", "max", "count", "q01", "q10", "q50", "q90", "q99"):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, err_msg=k)
    pixels = np.concatenate([auto_downsample_height_width(f.transpose(2, 0, 1)).reshape(3, -1) for f in images], 1)
    np.testing.assert_allclose(got["mean"], pixels.mean(axis=1, dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(got["std"], pixels.std(axis=1, dtype=np.float64), rtol=1e-5)


def test_stats_of_a_flat_image_and_bad_counts():
    """One value everywhere: min = max = every quantile; counts that disagree per channel are refused."""
    s = stats_from_counts(uint8_channel_counts(np.full((4, 5, 3), 77, np.uint8)))
    for k in ("min", "max", "mean", "q01", "q50", "q99"):
        np.testing.assert_allclose(s[k], 77, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(s["std"], 0, atol=1e-3)
    with pytest.raises(ValueError, match="must be equal"):
        stats_from_counts(np.array([[2, 0], [1, 0]]))


@pytest.mark.parametrize("vcodec", ["h264", "libsvtav1"])
def test_counting_encoder_matches_lerobots_encoder(tmp_path, vcodec):
    """Same frames through lerobot's StreamingVideoEncoder and ours: both videos decode to the same frames
    (same codec options), and the statistics agree."""
    images = frames(12, 96, 128)
    cfg = RGBEncoderConfig(vcodec=vcodec, preset="ultrafast", crf=23) if vcodec == "h264" else RGBEncoderConfig()
    results = {}
    for name, cls in (("lerobot", StreamingVideoEncoder), ("counting", CountingStreamingEncoder)):
        enc = cls(fps=30, rgb_encoder=cfg, queue_maxsize=len(images) + 1)
        (tmp_path / name).mkdir()
        enc.start_episode([KEY], tmp_path / name)
        for f in images:
            enc.feed_frame(KEY, f)
        path, stats = enc.finish_episode()[KEY]
        with av.open(str(path)) as c:
            decoded = [fr.to_ndarray(format="rgb24") for fr in c.decode(video=0)]
        results[name] = (decoded, stats)
        enc.close()
    (ref, ref_stats), (got, got_stats) = results["lerobot"], results["counting"]
    assert len(got) == len(ref) == len(images)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_array_equal(a, b)
    assert got_stats.keys() == ref_stats.keys()
    for k in ref_stats:
        # lerobot's running histogram is re-binned as the range grows; ours is exact: quantiles within a grey level
        np.testing.assert_allclose(got_stats[k], ref_stats[k], rtol=1e-3, atol=1.0, err_msg=k)


def test_encoder_errors_reach_the_caller(tmp_path):
    """A frame the codec cannot take (odd size for yuv420p) fails the episode like lerobot's thread does."""
    enc = CountingStreamingEncoder(fps=30, rgb_encoder=RGBEncoderConfig(vcodec="h264", preset="ultrafast"))
    enc.start_episode([KEY], tmp_path)
    enc.feed_frame(KEY, np.zeros((33, 47, 3), np.uint8))
    with pytest.raises(RuntimeError, match=f"Encoder thread for {KEY} failed"):
        enc.finish_episode()
    enc.close()
