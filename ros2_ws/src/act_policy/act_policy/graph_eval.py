"""Evaluate a checkpoint through the ROS graph: ``act_inference`` drives ``sim_bridge`` as real processes.

The ``act_sim`` graph runs on the configured router and ``ROS_DOMAIN_ID`` (a router is started when
none answers, as ``so100 launch`` does); this process joins it as a node that, per episode, resets
the policy, resets the sim (``/sim/reset``: the next seed), starts the policy and waits for
``/task/success`` or the time limit. Unlike the in-process evaluation this exercises the deployed
path end to end: transport, observation ages, off-thread inference, the follower's command guard.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from act_policy.errors import ActPolicyError
from act_policy.eval_report import EpisodeResult, EvalReport
from act_policy.policy_io import checkpoint_inputs, resolve_checkpoint
from so100_common import messages, names
from so100_common.launch_graph import NodeLaunch, evaluate, find_graph, load_graph, parse_launch_args
from so100_common.node import Node
from so100_common.qos import LATCHED
from so100_common.supervisor import find_executable, router_endpoint, router_running

log = logging.getLogger(__name__)

GRAPH = "act_sim"
STOP_GRACE = 5.0


class GraphEvalError(ActPolicyError):
    """The evaluation graph did not come up or a node failed during it."""


class _Child:
    """One process of the graph with its output kept (for the error message when it fails)."""

    def __init__(self, name: str, cmd: list[str]) -> None:
        self.name = name
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            log.debug("[%s] %s", self.name, line)

    def tail(self, n: int = 15) -> str:
        return "\n".join(f"  [{self.name}] {ln}" for ln in self.lines[-n:])

    def stop(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):  # to the process group
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                continue
        self._reader.join(timeout=2)
        return self.proc.wait()


def _graph_nodes(
    checkpoint: Path, start_seed: int, width: int, height: int, device: str, extra_args: list[str]
) -> list[NodeLaunch]:
    graph = load_graph(find_graph(GRAPH))
    args = [
        f"checkpoint:={checkpoint}",
        f"seed:={start_seed}",
        f"width:={width}",
        f"height:={height}",
        f"device:={device}",
        "autostart:=false",
        "realtime:=true",
        *extra_args,
    ]
    return evaluate(graph, parse_launch_args(args, graph))


def evaluate_through_graph(
    checkpoint: Path,
    episodes: int,
    start_seed: int,
    episode_steps: int = 300,
    *,
    device: str = "auto",
    startup_timeout: float = 120.0,
    extra_args: list[str] | None = None,
) -> EvalReport:
    """Run ``episodes`` episodes of ``checkpoint`` through the ``act_sim`` graph.

    Args:
        checkpoint: any folder :func:`act_policy.policy_io.resolve_checkpoint` accepts.
        episodes: number of episodes; episode ``i`` uses the scene of seed ``start_seed + i``.
        start_seed: seed of the first episode (sim_bridge's start-up scene).
        episode_steps: time limit of an episode in control steps (at the checkpoint's fps).
        device: torch device of act_inference (``auto``: the GPU when there is one).
        startup_timeout: seconds for the graph's nodes to come up.
        extra_args: more ``name:=value`` arguments of the act_sim graph (e.g. ``temporal_ensemble_coeff:=0.01``).
    """
    if episodes < 1 or episode_steps < 1:
        raise GraphEvalError(f"episodes and episode_steps must be >= 1, got {episodes} and {episode_steps}")
    pretrained = resolve_checkpoint(checkpoint)
    inputs = checkpoint_inputs(pretrained)
    limit_s = episode_steps / inputs.fps
    height, width = inputs.render_size  # the recorded size; act_inference resizes as training did
    nodes = _graph_nodes(pretrained, start_seed, width, height, device, extra_args or [])
    t_start = time.monotonic()
    children: list[_Child] = []
    node: Node | None = None
    try:
        host, port = router_endpoint()
        if not router_running(host, port):
            router = _Child("router", [find_executable("so100"), "router", "--listen", f"tcp/{host}:{port}"])
            children.append(router)
            deadline = time.monotonic() + 10
            while not router_running(host, port):
                if router.proc.poll() is not None or time.monotonic() > deadline:
                    raise GraphEvalError(f"the zenoh router did not come up on {host}:{port}:\n{router.tail()}")
                time.sleep(0.05)
        children += [_Child(n.name, n.command(find_executable(n.executable))) for n in nodes]
        node = Node(f"graph_eval_{os.getpid()}", argv=[])
        success = threading.Event()
        node.create_subscription(
            messages.Bool, names.TASK_SUCCESS, lambda m: success.set() if m.data else success.clear(), LATCHED
        )
        clients = {
            name: node.create_client("std_srvs/srv/Trigger", name)
            for name in (
                names.ACT_INFERENCE_RESET,
                names.ACT_INFERENCE_START,
                names.ACT_INFERENCE_STOP,
                names.SIM_RESET,
            )
        }

        def check_alive() -> None:
            for c in children:
                if c.proc.poll() is not None:
                    raise GraphEvalError(
                        f"{c.name} exited with code {c.proc.returncode} during the evaluation:\n{c.tail()}"
                    )

        def call(name: str) -> Any:
            check_alive()
            response = clients[name].call(timeout=10.0)
            if not response.success:
                raise GraphEvalError(f"{name} failed: {response.message}")
            return response

        deadline = time.monotonic() + startup_timeout
        for name, client in clients.items():
            while not client.wait_for_service(0.5):
                check_alive()
                if time.monotonic() > deadline:
                    raise GraphEvalError(
                        f"{name} did not come up in {startup_timeout:.0f} s:\n" + "\n".join(c.tail(5) for c in children)
                    )
        log.info(
            "graph up in %.1f s; %d episode(s) of up to %d steps (%.1f s) from seed %d",
            time.monotonic() - t_start,
            episodes,
            episode_steps,
            limit_s,
            start_seed,
        )
        results: list[EpisodeResult] = []
        t_eval = time.monotonic()
        for i in range(episodes):
            call(names.ACT_INFERENCE_RESET)
            if i > 0:
                call(names.SIM_RESET)
            success.clear()
            call(names.ACT_INFERENCE_START)
            t0 = time.monotonic()
            node.spin(until=lambda t0=t0: success.is_set() or time.monotonic() - t0 >= limit_s, timeout=limit_s + 1)
            seconds = time.monotonic() - t0
            check_alive()
            ok = success.is_set()
            steps = min(episode_steps, round(seconds * inputs.fps))
            results.append(EpisodeResult(i, start_seed + i, ok, steps, seconds))
            log.info(
                "episode %d (seed %d): %s after %d steps (%.1f s)",
                i,
                start_seed + i,
                "success" if ok else "no success",
                steps,
                seconds,
            )
        call(names.ACT_INFERENCE_STOP)
        return EvalReport(results, time.monotonic() - t_eval, checkpoint=str(pretrained), mode="graph")
    finally:
        if node is not None:
            node.destroy()
        for c in reversed(children):
            code = c.stop()
            final = next((ln for ln in reversed(c.lines) if "final:" in ln), None)
            if final:
                log.info("%s", final.split("]: ", 1)[-1])
            if code != 0 and c.name != "router":
                log.warning("%s exited with code %d:\n%s", c.name, code, c.tail())
