"""The workspace builds with colcon the way a ROS 2 Jazzy user builds it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
COLCON = Path(sys.executable).parent / "colcon"


@pytest.mark.skipif(not COLCON.exists() and not shutil.which("colcon"), reason="colcon is not installed")
def test_colcon_build_installs_every_package(tmp_path):
    colcon = str(COLCON) if COLCON.exists() else shutil.which("colcon")
    result = subprocess.run(
        [colcon, "--log-base", str(tmp_path / "log"), "build", "--base-paths", str(ROOT / "ros2_ws" / "src"),
         "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 packages finished" in result.stdout
    install = tmp_path / "install"
    for pkg in ("so100_common", "so100_driver", "so100_sim", "teleop_vr", "act_policy"):
        assert (install / pkg / "share" / "ament_index" / "resource_index" / "packages" / pkg).exists()
        assert (install / pkg / "share" / pkg / "package.xml").exists()
    # console scripts land where `ros2 run so100_common <exe>` looks for them
    for exe in ("so100", "demo_talker", "demo_listener"):
        assert (install / "so100_common" / "lib" / "so100_common" / exe).exists(), exe
