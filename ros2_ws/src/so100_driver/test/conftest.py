"""Fixtures for the driver's tests: an emulated arm on a pty and LeRobot's bus connected to it."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator

import pytest

from so100_common.names import JOINT_NAMES
from so100_driver.emulator import EmulatedBus


def make_lerobot_bus(port: str, *, calibration=None, degrees: bool = True):
    """LeRobot's FeetechMotorsBus for an SO-100 arm (ids 1..6, sts3215), as SOFollower builds it."""
    from lerobot.motors import Motor, MotorNormMode
    from lerobot.motors.feetech import FeetechMotorsBus

    body = MotorNormMode.DEGREES if degrees else MotorNormMode.RANGE_M100_100
    motors = {
        name: Motor(i + 1, "sts3215", MotorNormMode.RANGE_0_100 if name == "gripper" else body)
        for i, name in enumerate(JOINT_NAMES)
    }
    return FeetechMotorsBus(port, motors, calibration=calibration)


@pytest.fixture(scope="session", autouse=True)
def _frozen_heap() -> Iterator[None]:
    """Freeze the objects that exist after the imports, so the garbage collector never walks them.

    The emulator runs in the test process and shares the GIL with LeRobot: with lerobot (torch)
    loaded a full collection pauses every thread for ~70 ms, longer than the SDK's ~50 ms wait for
    a status packet, and a reply would be "lost" to the collector. Real servos answer from outside
    the process, so this is an artefact of in-process emulation only.
    """
    import lerobot.motors.feetech  # noqa: F401  (load the heavy modules before freezing)
    import lerobot.robots.so_follower  # noqa: F401

    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture
def emu() -> Iterator[EmulatedBus]:
    """Six factory-fresh STS3215s (ids 1..6) on a pseudo-terminal, physics in real time."""
    with EmulatedBus(range(1, 7), seed=1, record=200) as bus:
        yield bus


@pytest.fixture
def new_lerobot_bus() -> Callable[..., object]:
    """``new_lerobot_bus(port, calibration=None)``: an unconnected LeRobot bus for an SO-100 arm."""
    return make_lerobot_bus


@pytest.fixture
def lerobot_bus(emu: EmulatedBus):
    """LeRobot's bus, connected (handshake done) to ``emu``; the port is closed afterwards."""
    bus = make_lerobot_bus(emu.port)
    bus.connect()
    yield bus
    if bus.is_connected:
        bus.port_handler.closePort()


@pytest.fixture
def wait_for() -> Callable[..., None]:
    """``wait_for(condition, timeout=10.0, what="...")``: poll until true, fail with ``what`` on timeout."""

    def wait(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.005)

    return wait
