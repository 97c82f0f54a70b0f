"""Standalone transport: ROS 2 over Zenoh, byte-compatible with rmw_zenoh_cpp (Jazzy).

One zenoh session per process (an rmw "context"); nodes and their endpoints take
ids from one counter, declare rmw_zenoh's liveliness tokens and put its
33-byte attachment on every sample, request and reply.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import zenoh
import zenoh.ext as zx

from so100_common.errors import ServiceTimeout, TransportError
from so100_common.messages import ServiceType, dds_type_name, type_hash
from so100_common.qos import QoS
from so100_common.transport import yielding, zenoh_config
from so100_common.transport.base import OnRequest, OnSample
from so100_common.transport.zenoh_wire import (
    Token,
    decode_attachment,
    encode_attachment,
    liveliness_prefix,
    mangle,
    qos_to_keyexpr,
    topic_key,
)

log = logging.getLogger(__name__)


class _RateLimitedWarning:
    """Log a warning at most once per ``period`` seconds, counting the rest."""

    def __init__(self, period: float = 5.0) -> None:
        self.period = period
        self.last = 0.0
        self.suppressed = 0

    def __call__(self, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self.last >= self.period:
            extra = f" ({self.suppressed} more suppressed)" if self.suppressed else ""
            log.warning(msg + extra, *args)
            self.last, self.suppressed = now, 0
        else:
            self.suppressed += 1


class ZenohContext:
    """The process's zenoh session, its zid and the entity id counter."""

    def __init__(self) -> None:
        self.domain_id = zenoh_config.domain_id()
        config = zenoh_config.build_config()
        try:
            self.session = zenoh.open(config)
        except Exception as e:
            raise TransportError(
                f"cannot open a zenoh session ({e}); is the router running? start it with `so100 router`"
            ) from e
        self.zid = str(self.session.zid())
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._warn_router(config)

    def _warn_router(self, config: Any) -> None:
        # the connection to the router completes shortly after open(); wait for it so the
        # first graph query or publication is not lost (rmw_zenoh checks the same way)
        deadline = time.monotonic() + float(os.environ.get("SO100_ROUTER_WAIT", "2.0"))
        while not self.session.info.routers_zid() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.session.info.routers_zid():
            endpoints = ", ".join(zenoh_config.connect_endpoints(config)) or "none configured"
            log.warning(
                "no zenoh router reachable at %s: this node only sees peers it finds by itself. "
                "Start one with `so100 router` (or `ros2 run rmw_zenoh_cpp rmw_zenohd`).",
                endpoints,
            )

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def close(self) -> None:
        try:
            self.session.close()
        except Exception as e:  # closing twice or after a fork
            log.debug("closing zenoh session: %s", e)


class _Entity:
    def __init__(self, node: ZenohNode, token: Token) -> None:
        self.node = node
        self.token = token
        self.gid = token.gid
        self._lv = node.ctx.session.liveliness().declare_token(token.keyexpr())

    def _undeclare_token(self) -> None:
        try:
            self._lv.undeclare()
        except Exception as e:
            log.debug("undeclare token: %s", e)


class ZenohPublisher(_Entity):
    def __init__(self, node: ZenohNode, topic: str, typename: str, qos: QoS) -> None:
        super().__init__(node, node.entity_token("MP", topic, typename, qos))
        s = node.ctx.session
        key = topic_key(node.ctx.domain_id, topic, typename)
        reliability = zenoh.Reliability.RELIABLE if qos.reliable else zenoh.Reliability.BEST_EFFORT
        keep_all = qos.history.name == "KEEP_ALL"
        cc = zenoh.CongestionControl.BLOCK if qos.reliable and keep_all else zenoh.CongestionControl.DROP
        if qos.transient_local:
            miss = zx.MissDetectionConfig(sporadic_heartbeat=0.5) if qos.reliable else None
            self._pub = zx.declare_advanced_publisher(
                s,
                key,
                congestion_control=cc,
                reliability=reliability,
                cache=zx.CacheConfig(max_samples=qos.depth),
                sample_miss_detection=miss,
                publisher_detection=True,
            )
        else:
            self._pub = s.declare_publisher(key, congestion_control=cc, reliability=reliability)
        self._seq = 0
        self._lock = threading.Lock()

    def publish(self, payload: bytes) -> None:
        with self._lock:
            self._seq += 1
            att = encode_attachment(self._seq, time.time_ns(), self.gid)
            self._pub.put(payload, attachment=att)

    def destroy(self) -> None:
        self._undeclare_token()
        self._pub.undeclare()


class ZenohSubscription(_Entity):
    def __init__(
        self, node: ZenohNode, topic: str, typename: str, qos: QoS, on_sample: OnSample
    ) -> None:
        super().__init__(node, node.entity_token("MS", topic, typename, qos))
        self.topic = topic
        self._on_sample = on_sample
        self._warn = _RateLimitedWarning()
        s = node.ctx.session
        key = topic_key(node.ctx.domain_id, topic, typename)
        if qos.transient_local:
            self._sub = zx.declare_advanced_subscriber(
                s,
                key,
                self._handle,
                history=zx.HistoryConfig(detect_late_publishers=True, max_samples=qos.depth),
                recovery=zx.RecoveryConfig(heartbeat=True) if qos.reliable else None,
                subscriber_detection=True,
            )
        else:
            self._sub = s.declare_subscriber(key, self._handle)

    def _handle(self, sample: Any) -> None:
        att = sample.attachment
        if att is None:
            self._warn("dropped a sample on %s without rmw_zenoh's attachment", self.topic)
            return
        try:
            _, ts, _ = decode_attachment(att.to_bytes())
        except TransportError as e:
            self._warn("dropped a sample on %s: %s", self.topic, e)
            return
        payload = sample.payload.to_bytes()
        try:
            self._on_sample(payload, ts)
        except Exception:
            log.exception("subscription callback failed on %s", self.topic)
        yielding.after_payload(len(payload))

    def destroy(self) -> None:
        self._undeclare_token()
        self._sub.undeclare()


class ZenohService(_Entity):
    def __init__(
        self, node: ZenohNode, name: str, srv: ServiceType, qos: QoS, on_request: OnRequest
    ) -> None:
        super().__init__(node, node.entity_token("SS", name, srv.name, qos))
        self.name = name
        self.key = topic_key(node.ctx.domain_id, name, srv.name)
        self._on_request = on_request
        self._warn = _RateLimitedWarning()
        self._q = node.ctx.session.declare_queryable(self.key, self._handle, complete=True)

    def _handle(self, query: Any) -> None:
        if query.attachment is None or query.payload is None:
            self._warn("rejected a request on %s without payload or attachment", self.name)
            query.drop()
            return
        try:
            seq, _, client_gid = decode_attachment(query.attachment.to_bytes())
        except TransportError as e:
            self._warn("rejected a request on %s: %s", self.name, e)
            query.drop()
            return

        def reply(response: bytes) -> None:
            try:
                att = encode_attachment(seq, time.time_ns(), client_gid)
                query.reply(self.key, response, attachment=att)
            finally:
                query.drop()

        self._on_request(query.payload.to_bytes(), reply)

    def destroy(self) -> None:
        self._undeclare_token()
        self._q.undeclare()


class ZenohClient(_Entity):
    def __init__(self, node: ZenohNode, name: str, srv: ServiceType, qos: QoS) -> None:
        super().__init__(node, node.entity_token("SC", name, srv.name, qos))
        self.name = name
        self.srv = srv
        self.key = topic_key(node.ctx.domain_id, name, srv.name)
        self._seq = 0
        self._lock = threading.Lock()

    def call(self, payload: bytes, timeout: float) -> bytes:
        with self._lock:
            self._seq += 1
            seq = self._seq
        att = encode_attachment(seq, time.time_ns(), self.gid)
        replies = self.node.ctx.session.get(
            self.key,
            payload=payload,
            attachment=att,
            target=zenoh.QueryTarget.ALL_COMPLETE,
            consolidation=zenoh.ConsolidationMode.NONE,
            timeout=timeout,
        )
        for reply in replies:
            if reply.ok is None:
                continue
            sample = reply.ok
            if sample.attachment is not None:
                rseq, _, gid = decode_attachment(sample.attachment.to_bytes())
                if rseq != seq or gid != self.gid:
                    continue
            return sample.payload.to_bytes()
        raise ServiceTimeout(
            f"no reply from service {self.name} ({self.srv.name}) within {timeout:g} s; "
            "is its server running? check with `so100 service list`"
        )

    def service_available(self, timeout: float) -> bool:
        domain = self.node.ctx.domain_id
        pattern = (
            f"@ros2_lv/{domain}/*/*/*/SS/*/*/*/{mangle(self.name)}/"
            f"{mangle(dds_type_name(self.srv.name))}/{type_hash(self.srv.name)}/*"
        )
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            for reply in self.node.ctx.session.liveliness().get(pattern, timeout=max(0.05, min(remaining, 1.0))):
                if reply.ok is not None:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def destroy(self) -> None:
        self._undeclare_token()


class ZenohNode:
    """A node's presence in the graph: its NN token and the factories of its entities."""

    def __init__(self, ctx: ZenohContext, name: str, namespace: str, enclave: str) -> None:
        self.ctx = ctx
        self.name = name
        self.namespace = namespace
        self.enclave = enclave
        self.node_id = ctx.next_id()
        token = Token(ctx.domain_id, ctx.zid, self.node_id, self.node_id, "NN", enclave, namespace, name)
        self._lv = ctx.session.liveliness().declare_token(token.keyexpr())
        self._entities: list[Any] = []

    def entity_token(self, kind: str, topic: str, typename: str, qos: QoS) -> Token:
        return Token(
            self.ctx.domain_id,
            self.ctx.zid,
            self.node_id,
            self.ctx.next_id(),
            kind,
            self.enclave,
            self.namespace,
            self.name,
            topic,
            typename,
            type_hash(typename),
            qos_to_keyexpr(qos),
        )

    def _keep(self, entity: Any) -> Any:
        self._entities.append(entity)
        return entity

    def create_publisher(self, topic: str, typename: str, qos: QoS) -> ZenohPublisher:
        return self._keep(ZenohPublisher(self, topic, typename, qos))

    def create_subscription(self, topic: str, typename: str, qos: QoS, on_sample: OnSample) -> ZenohSubscription:
        return self._keep(ZenohSubscription(self, topic, typename, qos, on_sample))

    def create_service(self, name: str, srv: ServiceType, qos: QoS, on_request: OnRequest) -> ZenohService:
        return self._keep(ZenohService(self, name, srv, qos, on_request))

    def create_client(self, name: str, srv: ServiceType, qos: QoS) -> ZenohClient:
        return self._keep(ZenohClient(self, name, srv, qos))

    def destroy(self) -> None:
        for entity in reversed(self._entities):
            try:
                entity.destroy()
            except Exception as e:
                log.debug("destroying %s: %s", entity, e)
        self._entities.clear()
        try:
            self._lv.undeclare()
        except Exception as e:
            log.debug("undeclare node token: %s", e)


class ZenohBackend:
    """Backend factory; the session opens with the first node."""

    name = "zenoh"

    def __init__(self) -> None:
        self._ctx: ZenohContext | None = None
        self._lock = threading.Lock()

    @property
    def context(self) -> ZenohContext:
        with self._lock:
            if self._ctx is None:
                self._ctx = ZenohContext()
            return self._ctx

    def create_node(self, name: str, namespace: str, enclave: str) -> ZenohNode:
        return ZenohNode(self.context, name, namespace, enclave)

    def graph_tokens(self, timeout: float = 1.0, settle: float = 0.15) -> list[Token]:
        """Every rmw_zenoh liveliness token of this domain (for ``so100 node/topic list``).

        Like rmw_zenoh's graph cache, a liveliness subscriber with history receives the
        tokens the router knows; it is read until no new token came for ``settle`` s.
        """
        ctx = self.context
        keys: dict[str, float] = {}
        lock = threading.Lock()

        def on_token(sample: Any) -> None:
            with lock:
                keys[str(sample.key_expr)] = time.monotonic()

        start = time.monotonic()
        sub = ctx.session.liveliness().declare_subscriber(liveliness_prefix(ctx.domain_id), on_token, history=True)
        try:
            while True:
                now = time.monotonic()
                with lock:
                    last = max(keys.values(), default=start)
                if now - last >= settle or now - start >= timeout:
                    break
                time.sleep(0.01)
            for reply in ctx.session.liveliness().get(liveliness_prefix(ctx.domain_id), timeout=settle):
                if reply.ok is not None:
                    keys.setdefault(str(reply.ok.key_expr), now)
        finally:
            sub.undeclare()
        out = []
        for key in keys:
            try:
                out.append(Token.parse(key))
            except (TransportError, ValueError) as e:
                log.debug("ignoring token %s: %s", key, e)
        return out

    def raw_put(self, key: str, payload: bytes, attachment: bytes | None = None) -> None:
        """Put raw bytes on a key (tests and tools that probe robustness)."""
        self.context.session.put(key, payload, attachment=attachment)

    def shutdown(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._ctx.close()
                self._ctx = None


def run_router(endpoints: list[str] | None, stop: Callable[[], bool]) -> None:
    """Run a zenoh router session until ``stop()`` returns true (``RUST_LOG=debug`` shows zenoh's own log)."""
    if os.environ.get("RUST_LOG"):
        zenoh.try_init_log_from_env()
    extra = {"listen/endpoints": endpoints} if endpoints else None
    config = zenoh_config.build_config(router=True, extra=extra)
    try:
        session = zenoh.open(config)
    except Exception as e:
        raise TransportError(
            f"cannot start the zenoh router ({e}); is another router already listening there?"
        ) from e
    try:
        while not stop():
            time.sleep(0.1)
    finally:
        session.close()
