"""`so100 pipeline` (the main job): record the expert in the sim, convert, load the dataset with lerobot."""

import sys
from pathlib import Path

SO100 = str(Path(sys.executable).parent / "so100")


def test_pipeline_records_converts_and_summarizes(procs, tmp_path):
    proc = procs.start([SO100, "pipeline", "--episodes", "1", "--width", "96", "--height", "72", "--out",
                        str(tmp_path), "--seed", "9"])
    assert proc.popen.wait(300) == 0, proc.output
    runs = list(tmp_path.glob("run_*"))
    assert len(runs) == 1
    assert "1 episode(s) recorded, 1 successful; 1 converted" in proc.output
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset("local/so100", root=runs[0] / "dataset")
    assert ds.num_episodes == 1 and ds.num_frames > 100
    frame = ds[0]
    assert frame["observation.state"].shape == (6,) and frame["observation.images.overhead_cam"].shape == (3, 72, 96)
    assert "lerobot-train" in proc.output  # tells what to run next
