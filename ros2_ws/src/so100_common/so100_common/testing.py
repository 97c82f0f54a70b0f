"""Helpers for tests that run real node processes over a real router on loopback.

Used by the repository's ``conftest.py``; no mocks: a router process on a free
port, an isolated ``ROS_DOMAIN_ID``, and node processes started like ``so100
launch`` starts them.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


class Proc:
    """A child process whose combined output is collected line by line."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.cmd = cmd
        self.popen = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in iter(self.popen.stdout.readline, b""):
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_output(self, text: str, timeout: float = 10.0) -> str:
        return wait_for(lambda: next((ln for ln in self.lines if text in ln), None), timeout,
                        f"{text!r} in the output of {' '.join(self.cmd[:3])}:\n{self.output}")

    def signal(self, sig: int = signal.SIGINT) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT, then SIGKILL after ``timeout``; returns the exit code."""
        self.signal(signal.SIGINT)
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            code = self.popen.wait()
        self._reader.join(timeout=2)
        return code

    def alive(self) -> bool:
        return self.popen.poll() is None


class Graph:
    """A router on a free port plus the processes a test starts against it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.domain = random.randint(1, 200)
        self.env = dict(
            os.environ,
            ROS_DOMAIN_ID=str(self.domain),
            ZENOH_CONFIG_OVERRIDE=f'connect/endpoints=["tcp/127.0.0.1:{self.port}"]',
            SO100_TRANSPORT="zenoh",
            PYTHONUNBUFFERED="1",
        )
        self.procs: list[Proc] = []
        self.router = self.start([str(BIN / "so100"), "router", "--listen", f"tcp/127.0.0.1:{self.port}"])
        wait_for(self._router_up, 15, f"the router on port {self.port}")

    def _router_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def start(self, cmd: list[str], **env: str) -> Proc:
        proc = Proc(cmd, dict(self.env, **env))
        self.procs.append(proc)
        return proc

    def node(self, executable: str, *ros_args: str) -> Proc:
        """Start a console-script node of the venv with ``--ros-args`` (if any)."""
        cmd = [str(BIN / executable)]
        if ros_args:
            cmd += ["--ros-args", *ros_args]
        return self.start(cmd)

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "so100"), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=5)
