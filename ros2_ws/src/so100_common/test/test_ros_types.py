"""ROS 2 type names to rclpy classes without rosidl_runtime_py (the PyPI wheels lack it)."""

from __future__ import annotations

import sys
import types

import pytest

from so100_common.errors import TransportError
from so100_common.transport.ros_types import MissingRosType, message_class, service_class


@pytest.fixture
def fake_package(monkeypatch):
    """A generated-looking package ``so100_fake_msgs`` with msg.Thing and srv.Do (importlib finds them)."""
    pkg, msg, srv = (types.ModuleType(n) for n in ("so100_fake_msgs", "so100_fake_msgs.msg", "so100_fake_msgs.srv"))
    msg.Thing, srv.Do = type("Thing", (), {}), type("Do", (), {})
    for m in (pkg, msg, srv):
        monkeypatch.setitem(sys.modules, m.__name__, m)
    return msg, srv


def test_type_names_resolve_to_the_generated_classes(fake_package):
    msg, srv = fake_package
    assert message_class("so100_fake_msgs/msg/Thing") is msg.Thing
    assert message_class("so100_fake_msgs/Thing") is msg.Thing
    assert service_class("so100_fake_msgs/srv/Do") is srv.Do


def test_a_missing_package_names_the_wheel_to_install():
    with pytest.raises(MissingRosType, match=r"\(ros-jazzy-no-such-msgs\) where PyPI has one") as e:
        message_class("no_such_msgs/msg/Thing")
    assert e.value.package == "no_such_msgs"


@pytest.mark.parametrize("bad", ["Thing", "a/b/c/d", "pkg/srv/Thing", "pkg//Thing"])
def test_malformed_names_are_refused(bad):
    with pytest.raises(TransportError, match="not a ROS 2 msg type name"):
        message_class(bad)


def test_an_unknown_name_in_a_present_package(fake_package):
    with pytest.raises(TransportError, match="has no Other"):
        message_class("so100_fake_msgs/msg/Other")
