"""The Node every executable is built on, over whichever transport is selected.

It mirrors rclpy's shape: publishers, subscriptions, timers, services, clients,
parameters, a logger and a clock, with a single-threaded executor: every
callback of a node runs on the thread that spins it, never two at once.
Transport threads only queue work. Subscriptions keep the last ``depth``
samples, like a KEEP_LAST history; a malformed payload, a payload larger than the
subscription accepts (``max_bytes``) or a failing callback is logged with its topic and
dropped, and the node keeps running.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from so100_common.errors import MessageError, ServiceTimeout
from so100_common.logs import setup_logging
from so100_common.messages import ServiceType, deserialize, msg_class, new_message, serialize, service_type
from so100_common.params import ParameterSpec, ParameterStore, infer_type
from so100_common.qos import DEFAULT, QoS
from so100_common.ros_args import NodeArgs, resolve_node_args
from so100_common.transport import get_backend, shutdown_backend, yielding

#: The largest serialized message a subscription accepts unless it says otherwise: camera images up
#: to 4K (rgb8 3840x2160 is 24.9 MB), URDF strings with room to spare, 1 MiB for everything else (a
#: 6-joint JointState is ~250 bytes). A larger payload is dropped before it is decoded: a 1M-name
#: JointState took 3.9 s to decode on a node's control thread.
MAX_MESSAGE_BYTES = {"sensor_msgs/msg/Image": 64 << 20, "sensor_msgs/msg/CompressedImage": 64 << 20,
                     "std_msgs/msg/String": 16 << 20}
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
#: The largest service request a node accepts (the contract's services take empty or one-field requests).
MAX_REQUEST_BYTES = 64 << 10


def _typename(msg_type: str | type) -> str:
    if isinstance(msg_type, str):
        msg_class(msg_type)  # validates
        return msg_type
    return msg_type.__msgtype__  # type: ignore[attr-defined]


class Publisher:
    """Publishes message objects (or ready CDR bytes) on one topic."""

    def __init__(self, node: Node, topic: str, typename: str, qos: QoS) -> None:
        self.topic = topic
        self.typename = typename
        self.qos = qos
        self._impl = node._backend_node.create_publisher(topic, typename, qos)
        self.count = 0

    def publish(self, msg: Any) -> None:
        if isinstance(msg, (bytes, bytearray, memoryview)):
            payload = bytes(msg)
        else:
            payload = serialize(msg, self.typename)
            yielding.after_payload(len(payload))
        self._impl.publish(payload)
        yielding.after_payload(len(payload))
        self.count += 1

    def destroy(self) -> None:
        self._impl.destroy()


@dataclass
class Subscription:
    topic: str
    typename: str
    callback: Callable[[Any], None]
    raw: bool
    queue: deque[tuple[bytes, int]]
    received: int = 0
    dropped_malformed: int = 0
    dropped_overflow: int = 0  # samples pushed out by the KEEP_LAST depth before the callback ran
    pending: int = 0  # this subscription's entries in the executor's ready queue (== len(queue))
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    dropped_oversize: int = 0  # payloads larger than max_bytes, dropped undecoded
    _last_warning: float = 0.0
    _last_oversize_warning: float = 0.0
    impl: Any = None

    def refuse_oversize(self, size: int, logger: logging.Logger) -> bool:
        """Count (and log at most every 5 s) a payload over ``max_bytes``; True when it must be dropped."""
        if size <= self.max_bytes:
            return False
        self.dropped_oversize += 1
        now = time.monotonic()
        if now - self._last_oversize_warning > 5.0:
            self._last_oversize_warning = now
            logger.warning("dropped a %d-byte message on %s, over its %d-byte limit (%d so far)", size, self.topic,
                           self.max_bytes, self.dropped_oversize)
        return True

    def destroy(self) -> None:
        if self.impl is not None:
            self.impl.destroy()


class Timer:
    """A drift-free periodic timer: ticks at start + k·period; late ticks are skipped, not bunched."""

    def __init__(self, period: float, callback: Callable[[], None]) -> None:
        if period <= 0:
            raise ValueError(f"timer period must be > 0, got {period}")
        self.period = period
        self.callback = callback
        self._start = time.monotonic()
        self._k = 1
        self.missed = 0
        self.cancelled = False

    @property
    def due(self) -> float:
        return self._start + self._k * self.period

    def advance(self, now: float) -> None:
        self._k += 1
        if self.due <= now:  # overran one or more periods: skip to the next future tick
            late = int((now - self.due) // self.period) + 1
            self.missed += late
            self._k += late

    def cancel(self) -> None:
        self.cancelled = True


class Future:
    """Result of an asynchronous service call."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[Future], None]] = []

    def set_result(self, value: Any) -> None:
        self._result = value
        self._done.set()
        for cb in self._callbacks:
            cb(self)

    def set_exception(self, error: BaseException) -> None:
        self._error = error
        self._done.set()
        for cb in self._callbacks:
            cb(self)

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> Any:
        if not self._done.wait(timeout):
            raise ServiceTimeout("the service call has not finished")
        if self._error is not None:
            raise self._error
        return self._result

    def add_done_callback(self, cb: Callable[[Future], None]) -> None:
        self._callbacks.append(cb)
        if self.done():
            cb(self)


class Client:
    """Calls a service; ``call`` blocks (any thread), ``call_async`` returns a Future."""

    def __init__(self, node: Node, name: str, srv: ServiceType, qos: QoS) -> None:
        self.name = name
        self.srv = srv
        self._impl = node._backend_node.create_client(name, srv, qos)
        self.Request = msg_class(srv.request)
        self.Response = msg_class(srv.response)

    def wait_for_service(self, timeout: float = 5.0) -> bool:
        return self._impl.service_available(timeout)

    def call(self, request: Any | None = None, timeout: float = 10.0) -> Any:
        request = new_message(self.srv.request) if request is None else request
        raw = self._impl.call(serialize(request, self.srv.request), timeout)
        return deserialize(raw, self.srv.response)

    def call_async(self, request: Any | None = None, timeout: float = 10.0) -> Future:
        future = Future()

        def work() -> None:
            try:
                future.set_result(self.call(request, timeout))
            except BaseException as e:  # delivered through the future
                future.set_exception(e)

        threading.Thread(target=work, name=f"call{self.name}", daemon=True).start()
        return future

    def destroy(self) -> None:
        self._impl.destroy()


@dataclass
class _ServiceQueue:
    """A service's requests waiting for the executor (KEEP_LAST: at most the QoS depth)."""

    srv: ServiceType
    name: str
    callback: Callable[[Any, Any], Any]
    queue: deque[tuple[bytes, Callable[[bytes], None]]]
    pending: int = 0
    dropped_overflow: int = 0
    dropped_oversize: int = 0


def _keep_last_put(holder: Subscription | _ServiceQueue, item: Any) -> bool:
    """KEEP_LAST for a subscription's samples or a service's requests (the caller holds the executor lock).

    True when ``item`` needs an entry in the ready queue. When the holder already has one per queued item, the
    oldest item went and its entry serves the newest, so the work queue holds at most the QoS depth however
    fast items come; the drop is counted.
    """
    holder.queue.append(item)
    if holder.pending >= holder.queue.maxlen:
        holder.dropped_overflow += 1
        return False
    holder.pending += 1
    return True


def _keep_last_take(holder: Subscription | _ServiceQueue) -> Any | None:
    """The oldest waiting item for one ready entry (the caller holds the executor lock); None if none is left."""
    holder.pending = max(0, holder.pending - 1)
    return holder.queue.popleft() if holder.queue else None


@dataclass
class _Work:
    """Queue of things for the executor, guarded by one condition."""

    cv: threading.Condition = field(default_factory=threading.Condition)
    ready: deque[Any] = field(default_factory=deque)  # a Subscription or _ServiceQueue per waiting sample


class HelpRequested(Exception):  # noqa: N818 - a request, not an error
    """``--help`` was given: the node's parameters are declared; it must not touch hardware or the network."""

    def __init__(self, node: Node) -> None:
        super().__init__(f"{node.name} --help")
        self.node = node


HELP_FLAGS = ("-h", "--help")


def format_help(node: Node, executable: str) -> str:
    """What ``<node executable> --help`` prints: usage and every declared parameter."""
    doc = (sys.modules[type(node).__module__].__doc__ or "").strip().split("\n\n")[0]
    lines = [f"usage: {executable} [--ros-args -p NAME:=VALUE ... -r FROM:=TO ... --params-file FILE]", ""]
    if doc:
        lines += [doc, ""]
    lines.append(f"parameters of {node.name} (default, then what it means):")
    for spec in node.parameter_specs.values():
        kind = spec.type_text()
        limits = []
        if spec.choices:
            limits.append("one of " + ", ".join(map(str, spec.choices)))
        if spec.min_value is not None:
            limits.append(f">= {spec.min_value:g}")
        if spec.max_value is not None:
            limits.append(f"<= {spec.max_value:g}")
        extra = f" ({'; '.join(limits)})" if limits else ""
        lines.append(f"  {spec.name} ({kind}, default {spec.default!r}): {spec.description}{extra}")
    return "\n".join(lines)


class Node:
    """A ROS node. Name, namespace, parameters and remaps come from ``--ros-args``.

    With ``--help`` (or ``-h``) among its non-ROS arguments a node joins no network: it only declares its
    parameters, and the first endpoint, timer or :meth:`end_parameters` raises :class:`HelpRequested`,
    which :func:`run_node` turns into the parameter list and exit code 0.
    """

    def __init__(
        self,
        name: str,
        *,
        namespace: str = "/",
        argv: list[str] | None = None,
    ) -> None:
        args, self.argv = resolve_node_args(list(sys.argv[1:] if argv is None else argv), name, namespace)
        self.args: NodeArgs = args
        self.name = args.name
        self.namespace = args.namespace
        self.logger = logging.getLogger(self.fqn.lstrip("/").replace("/", ".") or name)
        setup_logging()
        if args.log_level:
            self.logger.setLevel(args.log_level)
        self._params = ParameterStore(args.params, self.fqn)
        self.help_requested = any(a in HELP_FLAGS for a in self.argv)
        self._backend = None if self.help_requested else get_backend()
        self._backend_node = (None if self._backend is None
                              else self._backend.create_node(self.name, self.namespace, args.enclave))
        self._work = _Work()
        self._subs: list[Subscription] = []
        self._timers: list[Timer] = []
        self._entities: list[Any] = []
        self._shutdown = threading.Event()
        self._sim_time_ns: int | None = None
        self.use_sim_time = self.declare_parameter(
            "use_sim_time", False, description="take the clock from /clock instead of the wall clock"
        )
        if self.use_sim_time:
            self.create_subscription("rosgraph_msgs/msg/Clock", "/clock", self._on_clock, qos=QoS(depth=1))

    # ------------------------------------------------------------ identity
    @property
    def fqn(self) -> str:
        return self.args.fqn

    @property
    def transport(self) -> str:
        return self._backend.name if self._backend is not None else "none (--help)"

    def end_parameters(self) -> None:
        """Call after declaring the parameters and before opening hardware: with ``--help`` it stops here."""
        if self.help_requested:
            raise HelpRequested(self)

    def get_logger(self) -> logging.Logger:
        return self.logger

    def resolve(self, name: str) -> str:
        """Fully qualified, remapped name of a topic or service."""
        return self.args.resolve(name)

    # ------------------------------------------------------------ clock
    def _on_clock(self, msg: Any) -> None:
        self._sim_time_ns = msg.clock.sec * 1_000_000_000 + msg.clock.nanosec

    def now_ns(self) -> int:
        """Current time in ns: /clock under use_sim_time, else the wall clock."""
        if self.use_sim_time:
            return self._sim_time_ns or 0
        return time.time_ns()

    # ------------------------------------------------------------ parameters
    def declare_parameter(
        self,
        name: str,
        default: Any,
        *,
        description: str = "",
        type_: type | None = None,
        element_type: type | None = None,
        choices: list[Any] | tuple[Any, ...] | None = None,
        min_value: float | None = None,
        max_value: float | None = None,
        validator: Callable[[Any], str | None] | None = None,
        read_only: bool = False,
    ) -> Any:
        """Declare a parameter and return its value (override or default)."""
        if type_ is None:
            type_, inferred_elem = infer_type(default)
            element_type = element_type or inferred_elem
        spec = ParameterSpec(
            name, type_, default, description, choices, min_value, max_value, validator, element_type, read_only
        )
        value = self._params.declare(spec)
        show = getattr(self._backend_node, "show_parameter", None)
        if show is not None:  # ROS mode: visible to ros2 param list/get/describe
            show(spec, value)
        return value

    def get_parameter(self, name: str) -> Any:
        return self._params.get(name)

    def set_parameter(self, name: str, value: Any) -> Any:
        return self._params.set(name, value)

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self._params.values)

    @property
    def parameter_specs(self) -> dict[str, ParameterSpec]:
        return dict(self._params.specs)

    # ------------------------------------------------------------ endpoints
    def create_publisher(self, msg_type: str | type, topic: str, qos: QoS = DEFAULT) -> Publisher:
        self.end_parameters()
        pub = Publisher(self, self.resolve(topic), _typename(msg_type), qos)
        self._entities.append(pub)
        return pub

    def create_subscription(
        self,
        msg_type: str | type,
        topic: str,
        callback: Callable[[Any], None],
        qos: QoS = DEFAULT,
        *,
        raw: bool = False,
        max_bytes: int | None = None,
    ) -> Subscription:
        """Subscribe; ``callback`` gets the message, or ``(cdr_bytes, source_ts_ns)`` when ``raw``.

        Payloads over ``max_bytes`` (default: :data:`MAX_MESSAGE_BYTES` by type) are dropped and counted.
        """
        self.end_parameters()
        typename = _typename(msg_type)
        limit = max_bytes if max_bytes is not None else MAX_MESSAGE_BYTES.get(typename, DEFAULT_MAX_MESSAGE_BYTES)
        sub = Subscription(self.resolve(topic), typename, callback, raw, deque(maxlen=qos.depth), max_bytes=limit)

        def on_sample(payload: bytes, ts: int) -> None:
            if sub.refuse_oversize(len(payload), self.logger):
                return
            with self._work.cv:
                if _keep_last_put(sub, (payload, ts)):
                    self._work.ready.append(sub)
                    self._work.cv.notify()

        sub.impl = self._backend_node.create_subscription(sub.topic, typename, qos, on_sample)
        self._subs.append(sub)
        self._entities.append(sub)
        return sub

    def create_timer(self, period: float, callback: Callable[[], None]) -> Timer:
        self.end_parameters()
        timer = Timer(period, callback)
        with self._work.cv:
            self._timers.append(timer)
            self._work.cv.notify()
        return timer

    def create_service(
        self,
        srv_type: str | ServiceType,
        name: str,
        callback: Callable[[Any, Any], Any],
        qos: QoS = DEFAULT,
    ) -> Any:
        """Serve ``callback(request, response) -> response`` on the executor thread."""
        self.end_parameters()
        srv = service_type(srv_type) if isinstance(srv_type, str) else srv_type
        fq = self.resolve(name)
        entry = _ServiceQueue(srv, fq, callback, deque(maxlen=max(1, qos.depth)))

        def on_request(payload: bytes, reply: Callable[[bytes], None]) -> None:
            if len(payload) > MAX_REQUEST_BYTES:
                entry.dropped_oversize += 1
                if entry.dropped_oversize in (1, 10, 100) or entry.dropped_oversize % 1000 == 0:
                    self.logger.warning("service %s: refused a %d-byte request, over the %d-byte limit (%d so far)",
                                        fq, len(payload), MAX_REQUEST_BYTES, entry.dropped_oversize)
                self._refuse(entry, reply, f"request of {len(payload)} bytes refused (limit {MAX_REQUEST_BYTES})")
                return
            with self._work.cv:
                evicted = entry.queue[0] if len(entry.queue) == entry.queue.maxlen else None
                if _keep_last_put(entry, (payload, reply)):
                    self._work.ready.append(entry)
                    self._work.cv.notify()
                    return
            n = entry.dropped_overflow  # the oldest request is answered with a refusal
            if n in (1, 10, 100) or n % 1000 == 0:
                self.logger.warning("service %s: %d request(s) dropped (more than %d waiting)", fq, n,
                                    entry.queue.maxlen)
            if evicted is not None:
                self._refuse(entry, evicted[1], f"request dropped: more than {entry.queue.maxlen} waiting")

        impl = self._backend_node.create_service(fq, srv, qos, on_request)
        self._entities.append(impl)
        return impl

    def create_client(self, srv_type: str | ServiceType, name: str, qos: QoS = DEFAULT) -> Client:
        self.end_parameters()
        srv = service_type(srv_type) if isinstance(srv_type, str) else srv_type
        client = Client(self, self.resolve(name), srv, qos)
        self._entities.append(client)
        return client

    # ------------------------------------------------------------ executor
    def _dispatch_sub(self, sub: Subscription) -> None:
        with self._work.cv:
            item = _keep_last_take(sub)
        if item is None:
            return
        payload, ts = item
        sub.received += 1
        if sub.raw:
            arg: Any = (payload, ts)
        else:
            try:
                arg = deserialize(payload, sub.typename)
            except MessageError as e:
                sub.dropped_malformed += 1
                now = time.monotonic()
                if now - sub._last_warning > 5.0:
                    sub._last_warning = now
                    self.logger.warning(
                        "dropped a malformed message on %s (%d so far): %s", sub.topic, sub.dropped_malformed, e
                    )
                return
        try:
            sub.callback(arg)
        except Exception:
            self.logger.exception("callback for %s raised; message dropped", sub.topic)
        yielding.after_payload(len(payload))

    def _dispatch_request(self, entry: _ServiceQueue) -> None:
        with self._work.cv:
            item = _keep_last_take(entry)
        if item is None:
            return
        payload, reply = item
        srv, fq, callback = entry.srv, entry.name, entry.callback
        try:
            request = deserialize(payload, srv.request)
        except MessageError as e:
            self.logger.warning("refused a malformed request on %s: %s", fq, e)
            self._refuse(entry, reply, f"malformed request: {e}")
            return
        try:
            raw = serialize(callback(request, new_message(srv.response)), srv.response)
        except Exception as e:
            self.logger.exception("service %s raised", fq)
            self._refuse(entry, reply, f"the service raised {type(e).__name__}: {e}")
            return
        reply(raw)

    def _refuse(self, entry: _ServiceQueue, reply: Callable[[bytes], None], why: str) -> None:
        """Answer a request the service does not serve (success false where the type has it, the reason in its
        message): every request gets one answer, none leaves its caller waiting for a timeout."""
        response = new_message(entry.srv.response)
        if hasattr(response, "message"):
            response.message = why
        try:
            reply(serialize(response, entry.srv.response))
        except Exception as e:  # noqa: BLE001 - the caller may be gone
            self.logger.debug("service %s: refusal not sent: %s", entry.name, e)

    def spin_once(self, timeout: float | None = None) -> bool:
        """Run due timers and queued callbacks, waiting up to ``timeout`` for work."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._work.cv:
            while not self._work.ready and not self._shutdown.is_set():
                now = time.monotonic()
                self._timers = [t for t in self._timers if not t.cancelled]
                next_due = min((t.due for t in self._timers), default=None)
                if next_due is not None and next_due <= now:
                    break
                wake = min(x for x in (next_due, deadline) if x is not None) if (next_due or deadline) else None
                if wake is not None and wake <= now:
                    return False
                self._work.cv.wait(None if wake is None else wake - now)
            items = list(self._work.ready)
            self._work.ready.clear()
        did = self._run_due_timers()
        next_due = min((t.due for t in self._timers if not t.cancelled), default=None)
        for item in items:
            if isinstance(item, Subscription):
                self._dispatch_sub(item)
            else:
                self._dispatch_request(item)
            did = True
            if next_due is not None and time.monotonic() >= next_due:  # timers keep their period under any load
                self._run_due_timers()
                next_due = min((t.due for t in self._timers if not t.cancelled), default=None)
        return did

    def _run_due_timers(self) -> bool:
        now = time.monotonic()
        did = False
        for timer in list(self._timers):
            if not timer.cancelled and timer.due <= now:
                timer.advance(now)
                try:
                    timer.callback()
                except Exception:
                    self.logger.exception("timer callback raised")
                did = True
        return did

    def spin(self, until: Callable[[], bool] | None = None, timeout: float | None = None) -> None:
        """Process callbacks until shutdown, ``until()`` is true, or ``timeout`` seconds pass."""
        for name in self._params.unused_overrides():
            self.logger.warning(
                "parameter override '%s' matches no declared parameter (declared: %s)",
                name,
                ", ".join(sorted(self._params.specs)),
            )
        end = None if timeout is None else time.monotonic() + timeout
        while not self._shutdown.is_set():
            if until is not None and until():
                return
            if end is not None and time.monotonic() >= end:
                return
            step = 0.1 if until is not None or end is not None else None
            if end is not None:
                step = min(step or 0.1, max(0.0, end - time.monotonic()))
            self.spin_once(step)

    @property
    def ok(self) -> bool:
        return not self._shutdown.is_set()

    def shutdown(self) -> None:
        """Ask spin() to return (safe from signal handlers and other threads)."""
        self._shutdown.set()
        with self._work.cv:
            self._work.cv.notify_all()

    def destroy(self) -> None:
        self.shutdown()
        for entity in reversed(self._entities):
            try:
                entity.destroy()
            except Exception as e:
                self.logger.debug("destroying %s: %s", entity, e)
        self._entities.clear()
        self._backend_node.destroy()


def run_node(factory: Callable[[list[str]], Node], argv: list[str] | None = None) -> int:
    """Build a node, spin it until SIGINT/SIGTERM, then tear it down cleanly.

    The whole ``main()`` of a node executable: ``return run_node(MyNode)``.
    Returns the process exit code (0 on a clean shutdown, 1 when start-up failed).
    """
    setup_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        node = factory(argv)
    except HelpRequested as h:
        print(format_help(h.node, Path(sys.argv[0]).name))
        return 0
    except KeyboardInterrupt:
        return 0
    except Exception as e:
        logging.getLogger("so100").error("%s", e, exc_info=logging.getLogger().isEnabledFor(logging.DEBUG))
        shutdown_backend()
        return 1

    def stop(signum: int, _frame: Any) -> None:
        node.logger.info("%s received, shutting down", signal.Signals(signum).name)
        node.shutdown()

    if node.help_requested:  # a node without endpoints built completely
        print(format_help(node, Path(sys.argv[0]).name))
        return 0
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        node.spin()
    finally:
        for s in previous:  # already stopping: a repeated Ctrl-C (or a launcher's SIGINT) must not break teardown
            signal.signal(s, signal.SIG_IGN)
        try:
            node.destroy()
            shutdown_backend()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
    return getattr(node, "exit_code", 0)
