"""`so100 train` / `so100 eval`: a tiny ACT on a tiny expert dataset; checkpoints, evaluation, best/, resume, cache."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from act_policy.eval_report import EvalReport
from act_policy.frame_cache import CachedChunkDataset, CacheTooLargeError
from act_policy.policy_io import CheckpointError, load_policy
from act_policy.sim_demos import record_expert_dataset
from act_policy.train import TrainError, TrainOptions, train

BIN = Path(sys.executable).parent
TINY = dict(chunk_size=10, n_action_steps=10, dim_model=32, n_heads=2, dim_feedforward=64, n_encoder_layers=1,
            n_vae_encoder_layers=1, latent_dim=8, batch_size=4, num_workers=0, lr=1e-3, lr_min=1e-4,
            eval_envs=2, eval_episode_steps=12, progress=False)
TINY_FLAGS = ["--chunk-size", "10", "--n-action-steps", "10", "--dim-model", "32", "--n-heads", "2",
              "--dim-feedforward", "64", "--n-encoder-layers", "1", "--n-vae-encoder-layers", "1", "--latent-dim", "8",
              "--batch-size", "4", "--num-workers", "0", "--lr", "1e-3", "--eval-envs", "2",
              "--eval-episode-steps", "12", "--no-progress"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos") / "ds"
    summary = record_expert_dataset(root, 2, height=48, width=64, progress=False)
    assert summary["episodes"] == 2 and summary["frames"] > 200
    return root


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory):
    """12 steps at 32x48 from a 48x64 dataset, a checkpoint every 6 steps, each evaluated on 2 episodes."""
    out = tmp_path_factory.mktemp("train") / "run"
    summary = train(TrainOptions(dataset=dataset, out=out, steps=12, save_every=6, eval_episodes=2,
                                 image_size=(32, 48), cache=True, backbone_norm="batch", **TINY))
    return out, summary


def test_loss_falls_and_every_checkpoint_is_evaluated_on_the_same_seeds(run):
    out, summary = run
    history = summary["history"]
    assert [r["step"] for r in history] == [6, 12]
    assert history[1]["loss"] < history[0]["loss"]  # mean loss of steps 7-12 below that of steps 1-6
    for row in history:
        rep = EvalReport.from_dict(row["eval"])
        assert [e.seed for e in rep.episodes] == [100_000, 100_001]
        assert all(e.steps == 12 and not e.success for e in rep.episodes)  # untrained: runs to the time limit
        lo, hi = rep.wilson95
        assert lo == 0.0 and hi == pytest.approx(0.658, abs=1e-3)
        assert (Path(row["checkpoint"]) / "eval.json").is_file()
    saved = json.loads((out / "eval_history.json").read_text())
    assert [r["step"] for r in saved] == [6, 12]


def test_best_checkpoint_is_kept_by_success_then_fewer_steps(run):
    out, summary = run
    # both checkpoints score 0/2 with 12 steps each: the tie keeps the first one
    assert summary["best"]["step"] == 6
    best_eval = json.loads((out / "best" / "eval.json").read_text())
    assert best_eval["step"] == 6
    assert (out / "best" / "pretrained_model" / "model.safetensors").is_file()
    assert not (out / "best" / "training_state").exists()  # the model only


def test_checkpoints_reload_offline_at_the_training_size(run, monkeypatch):
    out, _ = run
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load_policy(out / "checkpoints" / "last", "cpu")
    assert (loaded.inputs.height, loaded.inputs.width) == (32, 48)  # the policy's size
    # evaluation renders at the recorded size and resizes as training did, as act_inference resizes camera frames
    assert loaded.inputs.render_size == (48, 64)
    assert loaded.inputs.cameras == ("overhead", "wrist") and loaded.inputs.fps == 30
    obs = {"observation.state": torch.zeros(1, 6)}
    obs.update({k: torch.rand(1, 3, 32, 48) for k in loaded.inputs.image_keys})
    with torch.inference_mode():
        chunk = loaded.postprocessor(loaded.policy.predict_action_chunk(loaded.preprocessor(obs)))
    assert chunk.shape == (1, 10, 6) and torch.isfinite(chunk).all()
    # a recorded-size frame gives the chunk its cache-resized frame gives: one resize for training and inference
    from act_policy.frame_cache import resize_images
    from act_policy.policy_io import predict_chunk

    big = torch.randint(0, 256, (48, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    small = resize_images(big.permute(2, 0, 1), (32, 48)).permute(1, 2, 0)
    assert small.shape == (32, 48, 3)
    torch.manual_seed(0)
    a = predict_chunk(loaded, [0.0] * 6, {c: big.numpy() for c in loaded.inputs.cameras})
    torch.manual_seed(0)
    b = predict_chunk(loaded, [0.0] * 6, {c: small.numpy() for c in loaded.inputs.cameras})
    assert a.shape == (10, 6) and abs(a - b).max() < 1e-5, abs(a - b).max()
    # lerobot's own loader reads the same folder
    from lerobot.policies.act.modeling_act import ACTPolicy

    theirs = ACTPolicy.from_pretrained(out / "checkpoints" / "last" / "pretrained_model")
    ours = loaded.policy.state_dict()
    assert all(torch.equal(v, ours[k]) for k, v in theirs.state_dict().items())
    # trained with --backbone-norm batch: the statistics were learned, not left at 0/1, and load back
    assert not torch.allclose(ours["model.backbone.bn1.running_var"], torch.ones(1))


def test_resume_continues_from_the_last_checkpoint(run, dataset, tmp_path):
    out, _ = run
    with pytest.raises(TrainError, match="already exists"):
        train(TrainOptions(dataset=dataset, out=out, steps=18, save_every=6, eval_episodes=0, **TINY))
    copy = tmp_path / "run"
    subprocess.run(["cp", "-a", str(out), str(copy)], check=True)
    summary = train(TrainOptions(dataset=dataset, out=copy, steps=18, save_every=6, eval_episodes=0, resume=True,
                                 image_size=(32, 48), backbone_norm="batch", **TINY))
    assert [r["step"] for r in summary["history"]] == [6, 12, 18]
    assert (copy / "checkpoints" / "000018" / "pretrained_model" / "model.safetensors").is_file()
    assert (copy / "checkpoints" / "last").resolve().name == "000018"
    assert summary["best"]["step"] == 6  # kept from before the resume


def test_cached_samples_equal_lerobots_own(dataset):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    fps = 30
    theirs = LeRobotDataset("local/so100_sim", root=dataset, delta_timestamps={"action": [i / fps for i in range(10)]})
    cache = CachedChunkDataset(LeRobotDataset("local/so100_sim", root=dataset), chunk_size=10, progress=False)
    assert len(cache) == len(theirs)
    last_of_episode0 = int(theirs.meta.episodes[0]["dataset_to_index"]) - 1
    for idx in (0, 57, last_of_episode0 - 3, last_of_episode0 + 1, len(theirs) - 1):
        a, b = cache[idx], theirs[idx]
        assert torch.equal(a["observation.state"], b["observation.state"])
        assert torch.equal(a["action"], b["action"]) and torch.equal(a["action_is_pad"], b["action_is_pad"])
        for key in theirs.meta.camera_keys:
            diff = (a[key].float() / 255 - b[key]).abs().max()
            assert a[key].dtype == torch.uint8 and diff <= 1 / 255 + 1e-6
    assert cache[last_of_episode0 - 3]["action_is_pad"].sum() == 6  # the chunk runs past the episode's end


def test_cache_refuses_what_does_not_fit(dataset):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    with pytest.raises(CacheTooLargeError, match="GiB"):
        CachedChunkDataset(LeRobotDataset("local/so100_sim", root=dataset), chunk_size=10, max_fraction=1e-9,
                           progress=False)


def test_eval_cli_table_and_json(run, tmp_path):
    out, _ = run
    result = subprocess.run([str(BIN / "so100"), "eval", str(out), "--episodes", "3", "--envs", "2",
                             "--episode-steps", "8", "--seed", "7", "--json", str(tmp_path / "e.json")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((tmp_path / "e.json").read_text())
    assert [e["seed"] for e in data["per_episode"]] == [7, 8, 9]
    assert data["episodes"] == 3 and data["wilson95"][1] == pytest.approx(0.5615, abs=1e-3)
    assert "Wilson 95%" in result.stdout and "episode  seed" in result.stdout
    assert str(out / "best") in data["checkpoint"]  # a run folder means its best/


def test_eval_cli_overrides_how_chunks_are_executed(run, tmp_path):
    """--temporal-ensemble / --n-action-steps / --inference-latency reach the policy (the report says what ran);
    clashing flags are refused."""
    out, _ = run
    common = [str(BIN / "so100"), "eval", str(out), "--episodes", "2", "--envs", "2", "--episode-steps", "6", "--quiet"]
    for flags, expected in ((["--temporal-ensemble", "0.01"], "temporal ensembling 0.01 (a chunk every step)"),
                            (["--n-action-steps", "3"], "3 actions per chunk"), ([], "10 actions per chunk"),
                            (["--inference-latency", "40"],
                             "10 actions per chunk, act_inference's schedule with 40 ms inference"),
                            (["--inference-latency", "40", "--refill-steps", "2"],
                             "10 actions per chunk, act_inference's schedule with 40 ms inference, "
                             "next chunk at 2 left")):
        result = subprocess.run(common + flags + ["--json", str(tmp_path / "e.json")], capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        assert json.loads((tmp_path / "e.json").read_text())["execution"] == expected
        assert f"sim ({expected})" in result.stdout
    both = subprocess.run(common + ["--temporal-ensemble", "0.01", "--n-action-steps", "3"], capture_output=True,
                          text=True, timeout=120)
    assert both.returncode == 2 and "drop --n-action-steps" in both.stderr
    zero = subprocess.run(common + ["--temporal-ensemble", "0"], capture_output=True, text=True, timeout=120)
    assert zero.returncode == 2 and "must be > 0" in zero.stderr
    latency_graph = subprocess.run(common + ["--inference-latency", "40", "--graph"], capture_output=True,
                                   text=True, timeout=120)
    assert latency_graph.returncode == 2 and "for in-process evaluation" in latency_graph.stderr
    refill_alone = subprocess.run(common + ["--refill-steps", "2"], capture_output=True, text=True, timeout=120)
    assert refill_alone.returncode == 2 and "for act_inference's schedule" in refill_alone.stderr
    too_many = subprocess.run(common + ["--n-action-steps", "11"], capture_output=True, text=True, timeout=300)
    assert too_many.returncode == 1 and "n_action_steps must be in 1..chunk_size (10)" in too_many.stderr


def test_eval_and_train_cli_errors_are_clear(tmp_path):
    bad = subprocess.run([str(BIN / "so100"), "eval", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "is not a checkpoint" in bad.stderr
    with pytest.raises(CheckpointError):
        load_policy(tmp_path / "missing")
    nodata = subprocess.run([str(BIN / "so100"), "train", "--dataset", str(tmp_path / "nope"), "--out",
                             str(tmp_path / "r")] + TINY_FLAGS, capture_output=True, text=True, timeout=120)
    assert nodata.returncode == 1 and "does not exist" in nodata.stderr
    size = subprocess.run([str(BIN / "so100"), "train", "--dataset", ".", "--out", "x", "--image-size", "big"],
                          capture_output=True, text=True, timeout=120)
    assert size.returncode == 2 and "HEIGHTxWIDTH" in size.stderr


def test_expert_dataset_refuses_an_existing_folder(tmp_path):
    from act_policy.errors import ActPolicyError

    (tmp_path / "ds").mkdir()
    with pytest.raises(ActPolicyError, match="already exists"):
        record_expert_dataset(tmp_path / "ds", 1, progress=False)
    assert not any((tmp_path / "ds").iterdir())
