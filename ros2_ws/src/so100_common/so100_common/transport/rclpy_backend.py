"""ROS mode: the same CDR bytes through rclpy (serialized publish, raw subscriptions).

rclpy spins in a background thread; every callback is forwarded as bytes to the
Node's own executor, so node code behaves identically in both modes. Names arrive
already expanded and remapped by :mod:`so100_common.ros_args`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from rclpy.signals import SignalHandlerOptions
from rclpy.task import Future

from so100_common.errors import ServiceTimeout
from so100_common.messages import ServiceType
from so100_common.params import ParameterSpec
from so100_common.qos import QoS
from so100_common.transport.base import OnRequest, OnSample
from so100_common.transport.ros_types import MissingRosType, message_class, service_class

log = logging.getLogger(__name__)

def _profile(qos: QoS) -> QoSProfile:
    return QoSProfile(
        depth=qos.depth,
        history=HistoryPolicy.KEEP_LAST if qos.history.name == "KEEP_LAST" else HistoryPolicy.KEEP_ALL,
        reliability=ReliabilityPolicy.RELIABLE if qos.reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if qos.transient_local else DurabilityPolicy.VOLATILE,
    )


class _Handle:
    def __init__(self, node: Any, entity: Any, kind: str) -> None:
        self._node, self._entity, self._kind = node, entity, kind

    def destroy(self) -> None:
        getattr(self._node, f"destroy_{self._kind}")(self._entity)


class _Publisher(_Handle):
    def publish(self, payload: bytes) -> None:
        self._entity.publish(payload)


class _Client(_Handle):
    def __init__(self, node: Any, entity: Any, srv_cls: Any) -> None:
        super().__init__(node, entity, "client")
        self._srv_cls = srv_cls

    def call(self, payload: bytes, timeout: float) -> bytes:
        request = deserialize_message(payload, self._srv_cls.Request)
        future = self._entity.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            self._entity.remove_pending_request(future)
            raise ServiceTimeout(f"no reply from service {self._entity.srv_name} within {timeout:g} s")
        return serialize_message(future.result())

    def service_available(self, timeout: float) -> bool:
        return bool(self._entity.wait_for_service(timeout_sec=timeout))


class _Off:
    """A topic whose message package is not installed: publishes and receives nothing (said once, at creation)."""

    def publish(self, payload: bytes) -> None:
        pass

    def destroy(self) -> None:
        pass


class RclpyNode:
    def __init__(self, backend: RclpyBackend, name: str, namespace: str) -> None:
        self._node = rclpy.create_node(
            name, namespace=namespace, use_global_arguments=False, start_parameter_services=True,
            automatically_declare_parameters_from_overrides=False,
        )
        backend.executor.add_node(self._node)
        self._backend = backend
        # reentrant: a service coroutine awaiting the Node's answer must not block the node's other callbacks
        # (nor the guard condition that wakes the executor for that answer); one thread runs them all anyway
        self._group = ReentrantCallbackGroup()

    def show_parameter(self, spec: ParameterSpec, value: Any) -> None:
        """Declare a parameter's value on the rclpy node, read-only, so that ``ros2 param list/get/describe``
        show what the node runs with (the node reads its parameters once: ``ros2 param set`` is refused)."""
        if self._node.has_parameter(spec.name):  # use_sim_time: rclpy's own
            return
        if spec.type_ is list:  # typed as rclpy types it (an empty list: a byte array, as in any rclpy node)
            value = [(spec.element_type or str)(v) for v in value]
        descriptor = ParameterDescriptor(description=spec.description, read_only=True)
        try:
            self._node.declare_parameter(spec.name, value, descriptor)
        except Exception as e:  # noqa: BLE001 - showing a parameter must never stop a node
            log.debug("parameter %s not shown to ros2 param: %s", spec.name, e)

    def _message_class(self, topic: str, typename: str) -> Any | None:
        """The class, or None (logged) when its package has no wheel and no sourced ROS provides it."""
        try:
            return message_class(typename)
        except MissingRosType as e:
            log.warning("%s is off in ROS mode: %s", topic, e)
            return None

    def create_publisher(self, topic: str, typename: str, qos: QoS) -> _Publisher | _Off:
        cls = self._message_class(topic, typename)
        if cls is None:
            return _Off()
        pub = self._node.create_publisher(cls, topic, _profile(qos))
        return _Publisher(self._node, pub, "publisher")

    def create_subscription(self, topic: str, typename: str, qos: QoS, on_sample: OnSample) -> _Handle | _Off:
        def cb(raw: bytes) -> None:
            on_sample(bytes(raw), 0)

        cls = self._message_class(topic, typename)
        if cls is None:
            return _Off()
        sub = self._node.create_subscription(cls, topic, cb, _profile(qos), raw=True, callback_group=self._group)
        return _Handle(self._node, sub, "subscription")

    def create_service(self, name: str, srv: ServiceType, qos: QoS, on_request: OnRequest) -> _Handle:
        """A coroutine callback: the request waits for the Node's executor without holding rclpy's spin thread.

        The Node answers every request it is handed (its reply, or a refusal with the reason); the guard
        condition wakes rclpy's executor to send it.
        """
        srv_cls = service_class(srv.name)
        wake = self._node.create_guard_condition(lambda: None, callback_group=self._group)

        async def cb(request: Any, response: Any) -> Any:
            answer: Future = Future()

            def reply(raw: bytes) -> None:
                if not answer.done():
                    answer.set_result(raw)
                wake.trigger()

            on_request(serialize_message(request), reply)
            raw = await answer
            return deserialize_message(raw, srv_cls.Response)

        service = self._node.create_service(srv_cls, name, cb, qos_profile=_profile(qos), callback_group=self._group)
        return _Handle(self._node, service, "service")

    def create_client(self, name: str, srv: ServiceType, qos: QoS) -> _Client:
        srv_cls = service_class(srv.name)
        client = self._node.create_client(srv_cls, name, qos_profile=_profile(qos), callback_group=self._group)
        return _Client(self._node, client, srv_cls)

    def destroy(self) -> None:
        self._backend.executor.remove_node(self._node)
        self._node.destroy_node()


class RclpyBackend:
    name = "rclpy"

    def __init__(self) -> None:
        if not rclpy.ok():
            # our run_node owns SIGINT/SIGTERM; rclpy must not install its own handlers
            rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
        # one thread: callbacks only hand bytes to the Node's executor, service callbacks are coroutines that
        # await its answer (rclpy's MultiThreadedExecutor spun a core busy and lost samples under 60 images/s)
        self.executor = SingleThreadedExecutor()
        self._closing = False
        self._thread = threading.Thread(target=self._spin, name="rclpy-spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass
        except Exception as e:  # noqa: BLE001 - the context may already be gone while closing
            if not self._closing:
                log.error("rclpy executor stopped: %s: %s", type(e).__name__, e)

    def create_node(self, name: str, namespace: str, enclave: str) -> RclpyNode:
        return RclpyNode(self, name, namespace)

    def graph_snapshot(self, timeout: float) -> dict[str, Any]:
        """What a hidden probe node discovers in ``timeout`` s: nodes, topics (types, publisher and subscriber
        counts, latched ones) and services, as ``ros2 node/topic/service list`` read them."""
        probe = rclpy.create_node(f"_so100_graph_{os.getpid()}", start_parameter_services=False)
        try:
            time.sleep(max(0.0, timeout))  # DDS discovery; then on while it still finds nodes (at most as long again)
            seen, end = len(probe.get_node_names_and_namespaces()), time.monotonic() + timeout
            while time.monotonic() < end:
                time.sleep(0.25)
                now = len(probe.get_node_names_and_namespaces())
                if now == seen:
                    break
                seen = now
            snapshot: dict[str, Any] = {"nodes": [], "topics": {}, "publishers": {}, "subscribers": {},
                                        "latched": [], "services": {}}
            for name, ns in probe.get_node_names_and_namespaces():
                snapshot["nodes"].append(ns.rstrip("/") + "/" + name)
            for topic, types in probe.get_topic_names_and_types():
                pubs = probe.get_publishers_info_by_topic(topic)
                snapshot["topics"][topic] = list(types)
                snapshot["publishers"][topic] = len(pubs)
                snapshot["subscribers"][topic] = probe.count_subscribers(topic)
                if any(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in pubs):
                    snapshot["latched"].append(topic)
            for name, types in probe.get_service_names_and_types():
                snapshot["services"][name] = list(types)
            return snapshot
        finally:
            probe.destroy_node()

    def shutdown(self) -> None:
        """Stop spinning and wait for the spin thread before rclpy shuts down: a thread still inside rcl's
        wait set when the process exits aborts it (``terminate called without an active exception``)."""
        self._closing = True
        self.executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)
        rclpy.try_shutdown()
