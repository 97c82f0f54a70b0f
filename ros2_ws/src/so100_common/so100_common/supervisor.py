"""``so100 launch``: run an evaluated graph as supervised processes.

Each node runs in its own process group with its output prefixed ``[name]``.
A node that asks for ``respawn`` is restarted with exponential back-off (reset
after it has stayed up for a while); a ``required`` node that exits stops the
whole graph. Ctrl-C / SIGTERM sends SIGINT to every child, then SIGTERM, then
SIGKILL to what is left. The exit code is non-zero when a required node failed
or a node could not start. ``ros_only`` nodes (RViz, robot_state_publisher) are
skipped with a note: they are ROS 2 programs, run by ``ros2 launch``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from so100_common.errors import LaunchError
from so100_common.launch_graph import NodeLaunch, split_ros_only
from so100_common.transport import selected_transport, zenoh_config

log = logging.getLogger("so100.launch")

ROS_ONLY_NOTE = (
    "skipping %s: ROS 2 programs that only `ros2 launch launch/<graph>.launch.py` starts (ROS mode). "
    "In standalone mode the VR page's desktop view is the viewer: run webxr_server (e.g. "
    "`so100 launch teleop_sim vr:=true`) and open http://localhost:8080/"
)
BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0  # a node up this long has its back-off reset
STOP_GRACE = 5.0  # seconds between SIGINT, SIGTERM and SIGKILL


def find_executable(name: str) -> str:
    """A node executable: next to this Python (the venv's bin/) or on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found:
        return found
    raise LaunchError(
        f"executable {name!r} not found in {here.parent} or on PATH; is its package installed (./setup.sh)?"
    )


def router_endpoint() -> tuple[str, int]:
    """Host and port the nodes of this environment connect to (first TCP endpoint)."""
    config = zenoh_config.build_config()
    for ep in zenoh_config.connect_endpoints(config):
        if ep.startswith("tcp/"):
            hostport = ep[4:]
            host, _, port = hostport.rpartition(":")
            return host.strip("[]"), int(port)
    return "127.0.0.1", 7447


def router_running(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Child:
    spec: NodeLaunch
    command: list[str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = 0.0
    next_start: float = 0.0
    exit_code: int | None = None
    done: bool = False
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.spec.name


class Supervisor:
    """Starts, watches and stops the processes of one graph."""

    def __init__(self, nodes: list[NodeLaunch], *, start_router: bool = True, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self._out_lock = threading.Lock()
        nodes, self.skipped = split_ros_only(nodes)
        if self.skipped:
            log.warning(ROS_ONLY_NOTE, ", ".join(n.name for n in self.skipped))
        self.children = [Child(n, n.command(find_executable(n.executable))) for n in nodes]
        self.start_router = start_router
        self.router: Child | None = None
        self._stop = threading.Event()
        self.exit_code = 0

    # -------------------------------------------------------------- output
    def _emit(self, label: str, line: str) -> None:
        with self._out_lock:
            self.out.write(f"[{label}] {line}" if line.endswith("\n") else f"[{label}] {line}\n")
            self.out.flush()

    def _pump(self, label: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self._emit(label, raw.decode(errors="replace"))
        stream.close()

    # -------------------------------------------------------------- processes
    def _spawn(self, child: Child) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **child.spec.env)
        try:
            child.proc = subprocess.Popen(
                child.command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            raise LaunchError(f"cannot start {child.label} ({child.command[0]}): {e}") from e
        child.started = time.monotonic()
        child.exit_code = None
        t = threading.Thread(target=self._pump, args=(child.label, child.proc.stdout), daemon=True)
        t.start()
        child.threads = [t]
        log.info("started %s (pid %d)", child.label, child.proc.pid)

    def _start_router(self) -> None:
        host, port = router_endpoint()
        if router_running(host, port):
            log.info("using the zenoh router at %s:%d", host, port)
            return
        spec = NodeLaunch("so100_common", "so100", "router", arguments=["router", "--listen", f"tcp/{host}:{port}"])
        self.router = Child(spec, [find_executable("so100"), "router", "--listen", f"tcp/{host}:{port}"])
        self._spawn(self.router)
        deadline = time.monotonic() + 10.0
        while not router_running(host, port):
            if self.router.proc.poll() is not None or time.monotonic() > deadline:
                raise LaunchError(f"the zenoh router did not come up on {host}:{port}")
            time.sleep(0.05)

    def _signal(self, child: Child, sig: int) -> None:
        if child.proc is not None and child.proc.poll() is None:
            try:
                os.killpg(child.proc.pid, sig)
            except ProcessLookupError:
                pass

    def _stop_all(self) -> None:
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            for c in running:
                self._signal(c, sig)
            deadline = time.monotonic() + STOP_GRACE
            while time.monotonic() < deadline and any(c.proc.poll() is None for c in running):
                time.sleep(0.05)
            running = [c for c in running if c.proc.poll() is None]
            if not running:
                break
            log.warning("%s did not stop on %s", ", ".join(c.label for c in running), signal.Signals(sig).name)
        for c in self.children:
            for t in c.threads:
                t.join(timeout=1.0)
        if self.router is not None:
            self._signal(self.router, signal.SIGINT)
            try:
                self.router.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                self._signal(self.router, signal.SIGKILL)

    def request_stop(self, *_: Any) -> None:
        self._stop.set()

    # -------------------------------------------------------------- main loop
    def _on_exit(self, child: Child, code: int) -> None:
        child.exit_code = code
        up = time.monotonic() - child.started
        how = "cleanly" if code == 0 else f"with code {code}"
        if child.spec.required:
            self._emit(child.label, f"required node exited {how}: stopping the graph")
            if code != 0:
                self.exit_code = code if code > 0 else 1
            child.done = True
            self._stop.set()
        elif child.spec.respawn and not self._stop.is_set():
            child.backoff = child.spec.respawn_delay if up >= STABLE_AFTER or not child.backoff else min(
                BACKOFF_MAX, child.backoff * 2
            )
            child.restarts += 1
            child.next_start = time.monotonic() + child.backoff
            self._emit(child.label, f"exited {how}; restarting in {child.backoff:.1f} s (restart #{child.restarts})")
        else:
            child.done = True
            if code != 0:
                self.exit_code = 1
            self._emit(child.label, f"exited {how}")

    def run(self) -> int:
        """Run until Ctrl-C, a required node exits, or every node has finished."""
        previous = {s: signal.signal(s, self.request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self.start_router and selected_transport() == "zenoh":  # ROS mode discovers without one
                self._start_router()
            for child in self.children:
                self._spawn(child)
            while not self._stop.is_set():
                now = time.monotonic()
                for child in self.children:
                    if child.done:
                        continue
                    if child.proc is not None and child.exit_code is None:
                        code = child.proc.poll()
                        if code is not None:
                            self._on_exit(child, code)
                    elif child.exit_code is not None and now >= child.next_start and not self._stop.is_set():
                        self._spawn(child)
                if all(c.done for c in self.children):
                    break
                self._stop.wait(0.05)
        finally:
            self._stop_all()
            for s, h in previous.items():
                signal.signal(s, h)
        return self.exit_code
