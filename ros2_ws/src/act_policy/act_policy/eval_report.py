"""Evaluation results: per-episode rows, the success rate with its Wilson 95% interval, tables and JSON.

Shared by the in-process evaluation (:mod:`act_policy.evaluate`), the evaluation through the ROS
graph (:mod:`act_policy.graph_eval`) and the per-checkpoint evaluation of ``so100 train``, so
all three report the same numbers the same way.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from so100_common.stats import wilson_interval


@dataclasses.dataclass(frozen=True)
class EpisodeResult:
    """One evaluation episode."""

    index: int
    seed: int
    success: bool
    steps: int  # control steps until success or the time limit
    seconds: float  # wall-clock time from the episode's start to its end


@dataclasses.dataclass
class EvalReport:
    """The outcome of N evaluation episodes of one checkpoint."""

    episodes: list[EpisodeResult]
    wall_s: float
    checkpoint: str = ""
    mode: str = "sim"  # "sim" (in-process env) or "graph" (act_inference <-> sim_bridge)
    step: int | None = None  # training step of the checkpoint, when known
    execution: str = ""  # how chunks were executed, e.g. "15 actions per chunk"

    @property
    def n(self) -> int:
        return len(self.episodes)

    @property
    def successes(self) -> int:
        return sum(e.success for e in self.episodes)

    @property
    def success_rate(self) -> float:
        return self.successes / self.n if self.n else 0.0

    @property
    def wilson95(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.n)

    @property
    def avg_steps(self) -> float:
        return sum(e.steps for e in self.episodes) / self.n if self.n else 0.0

    @property
    def avg_episode_s(self) -> float:
        return sum(e.seconds for e in self.episodes) / self.n if self.n else 0.0

    @property
    def episodes_per_min(self) -> float:
        return 60.0 * self.n / self.wall_s if self.wall_s > 0 else 0.0

    def better_than(self, other: EvalReport | None) -> bool:
        """Higher success wins; on a tie, fewer average steps (a quicker policy)."""
        if other is None:
            return True
        if self.success_rate != other.success_rate:
            return self.success_rate > other.success_rate
        return self.avg_steps < other.avg_steps

    def summary(self) -> str:
        lo, hi = self.wilson95
        return (f"success {self.successes}/{self.n} = {100 * self.success_rate:.1f}% "
                f"(Wilson 95% [{100 * lo:.1f}, {100 * hi:.1f}]), avg steps {self.avg_steps:.1f}, "
                f"avg {self.avg_episode_s:.1f} s/episode, {self.episodes_per_min:.1f} episodes/min")

    def episode_table(self) -> str:
        rows = ["episode  seed        success  steps  seconds"]
        rows += [f"{e.index:>7}  {e.seed:<10}  {'yes' if e.success else 'no':<7}  {e.steps:>5}  {e.seconds:>7.2f}"
                 for e in self.episodes]
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.wilson95
        return {
            "checkpoint": self.checkpoint, "mode": self.mode, "step": self.step, "execution": self.execution,
            "episodes": self.n, "successes": self.successes, "success_rate": self.success_rate,
            "wilson95": [lo, hi], "avg_steps": self.avg_steps, "avg_episode_s": self.avg_episode_s,
            "wall_s": self.wall_s, "episodes_per_min": self.episodes_per_min,
            "per_episode": [dataclasses.asdict(e) for e in self.episodes],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalReport:
        return cls(episodes=[EpisodeResult(**e) for e in d["per_episode"]], wall_s=float(d["wall_s"]),
                   checkpoint=d.get("checkpoint", ""), mode=d.get("mode", "sim"), step=d.get("step"),
                   execution=d.get("execution", ""))

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def checkpoint_table(rows: Sequence[tuple[int, float | None, EvalReport | None]], best_step: int | None) -> str:
    """The end-of-training table: one row per checkpoint (step, training loss, evaluation), best marked."""
    lines = ["  step      loss   success   Wilson 95%        avg steps  s/episode",
             "  --------  -----  --------  ----------------  ---------  ---------"]
    for step, loss, rep in rows:
        mark = "*" if step == best_step else " "
        loss_s = f"{loss:.3f}" if loss is not None else "  -  "
        if rep is None:
            lines.append(f"{mark} {step:>8}  {loss_s:>5}  (not evaluated)")
            continue
        lo, hi = rep.wilson95
        lines.append(f"{mark} {step:>8}  {loss_s:>5}  {100 * rep.success_rate:>7.1f}%  "
                     f"[{100 * lo:5.1f}, {100 * hi:5.1f}]%   {rep.avg_steps:>9.1f}  {rep.avg_episode_s:>9.2f}")
    if best_step is not None:
        lines.append("  * best checkpoint by success (ties: fewer steps), kept as best/")
    return "\n".join(lines)
