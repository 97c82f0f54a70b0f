"""Transport selection: ``SO100_TRANSPORT=auto|rclpy|zenoh`` (auto: rclpy when importable).

Only this package imports rclpy or zenoh; node code goes through :class:`so100_common.node.Node`.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import threading

from so100_common.errors import TransportError
from so100_common.transport.base import Backend

CHOICES = ("auto", "rclpy", "zenoh")
_backend: Backend | None = None
_lock = threading.Lock()


def selected_transport() -> str:
    """The backend ``SO100_TRANSPORT`` asks for, with ``auto`` resolved."""
    choice = os.environ.get("SO100_TRANSPORT", "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise TransportError(f"SO100_TRANSPORT={choice!r}; use one of {', '.join(CHOICES)}")
    if choice == "auto":
        return "rclpy" if importlib.util.find_spec("rclpy") is not None else "zenoh"
    return choice


def get_backend() -> Backend:
    """The process-wide backend, created on first use."""
    global _backend
    with _lock:
        if _backend is None:
            kind = selected_transport()
            if kind == "rclpy":
                try:
                    from so100_common.transport.rclpy_backend import RclpyBackend
                except ImportError as e:
                    raise TransportError(
                        f"SO100_TRANSPORT=rclpy but rclpy cannot be imported ({e}); "
                        "source ROS 2 Jazzy (`source /opt/ros/jazzy/setup.bash`) or use SO100_TRANSPORT=zenoh"
                    ) from e
                _backend = RclpyBackend()
            else:
                from so100_common.transport.zenoh_backend import ZenohBackend

                _backend = ZenohBackend()
            atexit.register(shutdown_backend)  # an open session would keep the process from exiting
        return _backend


def shutdown_backend() -> None:
    """Close the process's transport (the last node calls this)."""
    global _backend
    with _lock:
        if _backend is not None:
            _backend.shutdown()
            _backend = None
