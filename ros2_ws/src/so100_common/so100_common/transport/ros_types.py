"""ROS 2 message and service classes by type name, for the rclpy backend.

``pkg/msg/Type`` -> the class of the package's generated Python module (what
``rosidl_runtime_py.utilities.get_message`` does), without needing ``rosidl_runtime_py``: ROS 2
Jazzy's wheels on PyPI (``ros-jazzy-rclpy``, ``ros-jazzy-sensor-msgs``, ...) do not include it. A
package that is not installed raises :class:`MissingRosType` naming what to install.

Dependency rule: standard library only; imports the message packages it is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from so100_common.errors import TransportError


class MissingRosType(TransportError):
    """The ROS 2 package of a message or service type is not installed."""

    def __init__(self, typename: str, package: str, reason: str) -> None:
        self.typename, self.package = typename, package
        super().__init__(
            f"{typename}: the ROS 2 package {package} is not installed ({reason}); install its wheel "
            f"(ros-jazzy-{package.replace('_', '-')}) where PyPI has one, or source a ROS 2 Jazzy that has it"
        )


def _split(typename: str, kind: str) -> tuple[str, str]:
    parts = typename.split("/")
    if len(parts) == 2:
        parts = [parts[0], kind, parts[1]]
    if len(parts) != 3 or parts[1] != kind or not all(parts):
        raise TransportError(f"{typename!r} is not a ROS 2 {kind} type name like pkg/{kind}/Name")
    return parts[0], parts[2]


def _load(typename: str, kind: str) -> Any:
    package, name = _split(typename, kind)
    try:
        module = importlib.import_module(f"{package}.{kind}")
    except ImportError as e:
        raise MissingRosType(typename, package, str(e)) from None
    try:
        return getattr(module, name)
    except AttributeError:
        raise TransportError(f"{typename}: {package}.{kind} has no {name}") from None


def message_class(typename: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name`` (or ``pkg/Name``)."""
    return _load(typename, "msg")


def service_class(typename: str) -> Any:
    """The rclpy service class of ``pkg/srv/Name`` (or ``pkg/Name``)."""
    return _load(typename, "srv")
