"""A node for transport tests: relays topics, serves services, latches a message."""

from __future__ import annotations

from typing import Any

from so100_common import messages
from so100_common.node import Node, run_node
from so100_common.qos import LATCHED, QoS


class RelayNode(Node):
    def __init__(self, argv: list[str]) -> None:
        super().__init__("relay", argv=argv)
        self.greeting = self.declare_parameter("greeting", "hello", description="text of the latched message")
        self.calls = 0
        depth = QoS(depth=50)
        self.js_out = self.create_publisher(messages.JointState, "out/joint_states", depth)
        self.img_out = self.create_publisher(messages.Image, "out/image", depth)
        self.create_subscription(messages.JointState, "in/joint_states", self.js_out.publish, depth)
        self.create_subscription(messages.Image, "in/image", self.img_out.publish, depth)
        self.create_subscription(messages.String, "chatter", self.on_chatter)
        self.create_service("std_srvs/srv/Trigger", "~/trigger", self.on_trigger)
        self.create_service("std_srvs/srv/SetBool", "~/set_bool", self.on_set_bool)
        latched = self.create_publisher(messages.String, "latched", LATCHED)
        latched.publish(messages.string_msg(f"{self.greeting} from {self.fqn}"))
        self.logger.info("relay ready")

    def on_chatter(self, msg: Any) -> None:
        self.logger.info("heard: %s", msg.data)

    def on_trigger(self, request: Any, response: Any) -> Any:
        self.calls += 1
        response.success = True
        response.message = f"call {self.calls}"
        return response

    def on_set_bool(self, request: Any, response: Any) -> Any:
        response.success = bool(request.data)
        response.message = f"data was {bool(request.data)}"
        return response


if __name__ == "__main__":
    raise SystemExit(run_node(RelayNode))
