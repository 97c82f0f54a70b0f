"""so100_common is the bottom layer: it imports, names or loads nothing of the packages above it (DESIGN's rule).

The `so100` command's verbs of other packages (dataset, train, calibrate, ...) come from the `so100.verbs`
entry-point group those packages register, so the core holds no table of them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "so100_common"
ABOVE = ("act_policy", "so100_driver", "so100_sim", "teleop_vr", "lerobot_env_so100")
BIN = Path(sys.executable).parent


def test_the_core_imports_and_names_no_package_above_it():
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [w for w in node.value.replace(":", " ").split() if "." in w]  # "pkg.module" strings
            offenders += [f"{path.relative_to(CORE)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in ABOVE]
    assert not offenders, "so100_common reaches up:\n" + "\n".join(offenders)


def test_the_packages_above_register_their_verbs():
    verbs = {ep.name: ep.value for ep in entry_points(group="so100.verbs")}
    assert verbs == {"dataset": "act_policy.dataset_cli:main", "pipeline": "act_policy.pipeline:main",
                     "train": "act_policy.policy_cli:train_main", "eval": "act_policy.policy_cli:eval_main",
                     "calibrate": "so100_driver.calibrate_cli:main"}
    out = subprocess.run([str(BIN / "so100"), "--help"], capture_output=True, text=True, timeout=60)
    assert "calibrate, dataset, eval, pipeline, train" in out.stdout
    out = subprocess.run([str(BIN / "so100"), "calibrate", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--port PORT" in out.stdout
    out = subprocess.run([str(BIN / "so100"), "no-such-verb"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "invalid choice: 'no-such-verb'" in out.stderr
