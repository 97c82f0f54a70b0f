"""Fixtures shared by every package's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from so100_common.testing import Graph


@pytest.fixture(scope="session")
def graph() -> Iterator[Graph]:
    """A router on a free port and an isolated ROS_DOMAIN_ID, shared by the session.

    The test process's own nodes (zenoh backend) join the same graph.
    """
    g = Graph()
    saved = {k: os.environ.get(k) for k in ("ROS_DOMAIN_ID", "ZENOH_CONFIG_OVERRIDE", "SO100_TRANSPORT")}
    os.environ.update({k: g.env[k] for k in saved})
    try:
        yield g
    finally:
        from so100_common.transport import shutdown_backend

        shutdown_backend()
        g.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def procs(graph: Graph) -> Iterator[Graph]:
    """The shared graph; processes a test starts are stopped when it ends."""
    before = len(graph.procs)
    yield graph
    for proc in graph.procs[before:]:
        proc.stop(timeout=5)
    del graph.procs[before:]
