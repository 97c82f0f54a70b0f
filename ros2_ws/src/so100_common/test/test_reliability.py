"""The fast cases of the reliability benchmark (``benchmarks/reliability.py``, issue 15) as tests.

Each case runs against the real nodes (sim_bridge with ``max_step:=0.02``, webxr_server) on the shared
test graph and must meet every target: no crash, no commanded step above the guard's ``max_step``, no
non-finite goal, the follower's control gap p99 under 2 periods during floods, RSS growth under 20 MB,
and the case's own check (rejected, refused, answered with an error...). The whole module takes
about 35 s; the full corpus (47 cases) is ``nice -n 10 .venv/bin/python benchmarks/reliability.py``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "benchmarks"))

import reliability  # noqa: E402

FAST = [c for c in reliability.CASES if c.fast]


@pytest.fixture(scope="module")
def ctx(graph: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[reliability.Ctx]:
    args = argparse.Namespace(seed=15, kills=1, cases=None, quiet=True)
    c = reliability.Ctx(args, tmp_path_factory.mktemp("reliability"), graph)
    try:
        yield c
    finally:
        c.close()


def test_the_corpus_has_at_least_30_cases() -> None:
    names = [c.name for c in reliability.CASES]
    assert len(names) >= 30 and len(set(names)) == len(names)
    assert 8 <= len(FAST) <= 12


@pytest.mark.parametrize("case", FAST, ids=lambda c: c.name)
def test_fast_case_meets_every_target(ctx: reliability.Ctx, case: reliability.Case) -> None:
    r = reliability.run_case(ctx, case)
    assert not r.skipped, r.skipped
    assert not r.violations(), f"{r.name}: {r.violations()}; {r.note}\n{reliability.table([r])}"
    assert r.max_step is not None and r.gap_p99_ms is not None, "the follower was not observed"
