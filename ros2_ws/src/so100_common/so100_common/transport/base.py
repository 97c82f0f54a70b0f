"""The contract between :class:`so100_common.node.Node` and a transport backend.

A backend moves CDR bytes; it never sees message objects. Callbacks it is given
may be called from its own threads: the Node queues them for its executor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from so100_common.messages import ServiceType
from so100_common.qos import QoS

#: subscription callback: (CDR payload, source timestamp in ns or 0)
OnSample = Callable[[bytes, int], None]
#: service callback: (CDR request, reply function taking the CDR response)
OnRequest = Callable[[bytes, Callable[[bytes], None]], None]


class BackendPublisher(Protocol):
    def publish(self, payload: bytes) -> None: ...
    def destroy(self) -> None: ...


class BackendClient(Protocol):
    def call(self, payload: bytes, timeout: float) -> bytes:
        """Send a request and wait for its reply; raises ServiceTimeout."""
        ...

    def service_available(self, timeout: float) -> bool: ...
    def destroy(self) -> None: ...


class BackendHandle(Protocol):
    def destroy(self) -> None: ...


class BackendNode(Protocol):
    def create_publisher(self, topic: str, typename: str, qos: QoS) -> BackendPublisher: ...
    def create_subscription(
        self, topic: str, typename: str, qos: QoS, on_sample: OnSample
    ) -> BackendHandle: ...
    def create_service(
        self, name: str, srv: ServiceType, qos: QoS, on_request: OnRequest
    ) -> BackendHandle: ...
    def create_client(self, name: str, srv: ServiceType, qos: QoS) -> BackendClient: ...
    def destroy(self) -> None: ...


class Backend(Protocol):
    name: str

    def create_node(self, name: str, namespace: str, enclave: str) -> BackendNode: ...
    def shutdown(self) -> None: ...
