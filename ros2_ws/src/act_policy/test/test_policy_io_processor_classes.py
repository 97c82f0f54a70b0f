"""A checkpoint's processor files may name step classes only under ``lerobot.`` (issue 15).

lerobot imports the module of a step named by class path; a checkpoint naming ``evil.Step`` would
run that module's code at load time. ``policy_io`` refuses it before anything is imported.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from act_policy.policy_io import CheckpointError, check_processor_classes, load_policy
from act_policy.testing import make_tiny_checkpoint


def _write(folder: Path, steps: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy_preprocessor.json").write_text(json.dumps({"name": "policy_preprocessor", "steps": steps}))
    (folder / "config.json").write_text(json.dumps({"type": "act"}))  # no steps: not a processor file


def test_registered_and_lerobot_steps_pass(tmp_path):
    _write(tmp_path, [{"registry_name": "normalizer_processor", "config": {}},
                      {"class": "lerobot.processor.normalize_processor.NormalizerProcessorStep"}])
    check_processor_classes(tmp_path)


@pytest.mark.parametrize("cls", ["os.system", "evil_step.Step", "lerobotx.Step", None, 5])
def test_a_step_class_outside_lerobot_is_refused(tmp_path, cls):
    _write(tmp_path, [{"registry_name": "device_processor"}, {"class": cls}])
    with pytest.raises(CheckpointError, match=r"processor step 1 .*not under 'lerobot\.'"):
        check_processor_classes(tmp_path)


def test_load_policy_refuses_before_importing_the_module(tmp_path, monkeypatch):
    """Through load_policy: the foreign module is never imported (its import would create a file)."""
    ckpt = make_tiny_checkpoint(tmp_path / "ok", ("overhead",), 24, 32, chunk_size=5)
    evil = tmp_path / "evil" / "pretrained_model"
    shutil.copytree(ckpt, evil)
    sentinel = tmp_path / "imported"
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "evil_step_mod.py").write_text(f"open({str(sentinel)!r}, 'w').close()\nclass Step: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    pre = evil / "policy_preprocessor.json"
    cfg = json.loads(pre.read_text())
    cfg["steps"][0].pop("registry_name", None)
    cfg["steps"][0]["class"] = "evil_step_mod.Step"
    pre.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="evil_step_mod.Step"):
        load_policy(evil, "cpu")
    assert not sentinel.exists() and "evil_step_mod" not in sys.modules
    assert load_policy(ckpt, "cpu").inputs.cameras == ("overhead",)  # the untouched checkpoint still loads
