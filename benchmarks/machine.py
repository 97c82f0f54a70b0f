"""What every benchmark result records: the machine and the commit (STYLE.md rule 9)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git(*cmd: str) -> str:
    try:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def commit() -> str:
    """Short commit of the working tree, marked when tracked files differ from it."""
    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine_info(**extra: Any) -> dict[str, Any]:
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu_model(), "platform": platform.platform(),
            "python": platform.python_version(), **extra, "commit": commit()}


def reproduce_command(script: str) -> str:
    """The command line that reruns this benchmark with the same arguments."""
    import shlex
    import sys

    python = Path(sys.executable)
    try:
        py = str(python.relative_to(ROOT))
    except ValueError:
        py = str(python)
    return f"cd {shlex.quote(str(ROOT))} && {shlex.join([py, script, *sys.argv[1:]])}"
