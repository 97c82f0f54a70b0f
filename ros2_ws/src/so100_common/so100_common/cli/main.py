"""``so100``: the stack's command line, shaped like ``ros2``'s, working without ROS 2.

It talks rmw_zenoh's protocol directly, so it also sees ROS 2 nodes that run
``rmw_zenoh_cpp`` on the same router.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np
import yaml

from so100_common.errors import So100Error

VERB_GROUP = "so100.verbs"
BUILTIN = ("router", "launch", "node", "topic", "service", "-h", "--help")

HELP = """\
so100: run and inspect the SO-100 ROS 2 graph, with or without ROS 2 installed.

examples:
  so100 launch demo                      run a graph (launch/<name>.graph.yaml)
  so100 launch demo --show-args          list a graph's arguments
  so100 router                           run the zenoh router nodes connect to
  so100 node list                        nodes in the graph
  so100 topic list -t                    topics and their types
  so100 topic echo /leader/joint_states  print messages
  so100 topic hz /leader/joint_states    measure a topic's rate
  so100 topic pub /chatter std_msgs/msg/String "{data: hi}"
  so100 service call /sim/reset std_srvs/srv/Trigger
  so100 calibrate follower --port /dev/ttyACM0 --id my_follower
  so100 dataset from-bags recordings/ --out datasets/so100   bags -> LeRobot dataset
  so100 dataset info|check|merge|to-ee ...   inspect, validate, merge, end-effector actions
  so100 pipeline --episodes 3            record the scripted expert in the sim, convert, summarize
  so100 train --dataset DIR --out RUN    ACT training, every checkpoint evaluated in the sim, best/ kept
  so100 eval RUN --episodes 50           success rate (Wilson 95% interval) in the sim; --graph via ROS

environment: ROS_DOMAIN_ID, ZENOH_CONFIG_OVERRIDE ("key=json5;..."), ZENOH_SESSION_CONFIG_URI,
SO100_TRANSPORT (auto|rclpy|zenoh, for nodes), SO100_LOG_LEVEL.
"""


def _cli_node(name: str) -> Any:
    """A hidden node on the selected transport (SO100_TRANSPORT; rclpy where it imports, as the nodes do)."""
    from so100_common.node import Node

    return Node(f"_so100_{name}_{os.getpid()}", argv=[])


def _backend() -> Any:
    from so100_common.transport import get_backend

    return get_backend()


def _view(timeout: float) -> Any:
    from so100_common.cli.graph import build_view, view_from_rclpy
    from so100_common.transport import selected_transport

    if selected_transport() == "rclpy":
        return view_from_rclpy(_backend().graph_snapshot(timeout))
    return build_view(_backend().graph_tokens(timeout))


def _topic_types(topic: str, wait: float) -> tuple[str, bool]:
    """(type name, latched) of a topic from the graph, waiting up to ``wait`` s for it."""
    deadline = time.monotonic() + wait
    while True:
        view = _view(0.5)
        types = view.topics.get(topic)
        if types:
            if len(types) > 1:
                raise So100Error(f"{topic} is published with several types {sorted(types)}; name one")
            return next(iter(types)), topic in view.latched
        if time.monotonic() > deadline:
            raise So100Error(f"topic {topic} does not appear in the graph; name its type to wait for it")
        time.sleep(0.2)


# ---------------------------------------------------------------- commands
def cmd_router(a: argparse.Namespace) -> int:
    import signal
    import threading

    from so100_common.logs import setup_logging
    from so100_common.transport.zenoh_backend import run_router

    setup_logging()
    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    endpoints = a.listen or None
    from so100_common.transport import zenoh_config

    config = zenoh_config.build_config(router=True, extra={"listen/endpoints": endpoints} if endpoints else None)
    shown = json.loads(config.get_json("listen/endpoints") or "[]") or ["(none)"]
    print(f"zenoh router listening on {', '.join(shown)} (Ctrl-C to stop)", flush=True)
    run_router(endpoints, stop.is_set)
    return 0


def cmd_launch(a: argparse.Namespace) -> int:
    from so100_common.launch_graph import evaluate, find_graph, load_graph, parse_launch_args
    from so100_common.logs import setup_logging
    from so100_common.supervisor import Supervisor

    graph = load_graph(find_graph(a.graph))
    if a.show_args:
        print(f"{graph.name}: {graph.description}".rstrip(": "))
        for spec in graph.arguments.values():
            choices = f" (one of: {', '.join(map(str, spec.choices))})" if spec.choices else ""
            print(f"  {spec.name}:={spec.default}  {spec.description}{choices}")
        return 0
    nodes = evaluate(graph, parse_launch_args(a.args, graph))
    setup_logging()
    return Supervisor(nodes, start_router=not a.no_router).run()


def cmd_node_list(a: argparse.Namespace) -> int:
    from so100_common.cli.graph import is_hidden

    for name in sorted(_view(a.timeout).nodes):
        if a.all or not is_hidden(name):
            print(name)
    return 0


def cmd_topic_list(a: argparse.Namespace) -> int:
    view = _view(a.timeout)
    for topic in sorted(view.topics):
        types = ", ".join(sorted(view.topics[topic]))
        if a.verbose:
            print(f"{topic} [{types}] {view.publishers[topic]} publisher(s), {view.subscribers[topic]} subscriber(s)")
        elif a.show_types:
            print(f"{topic} [{types}]")
        else:
            print(topic)
    return 0


def _publishers_latched(topic: str, wait: float) -> bool:
    """Whether the topic's publishers offer transient-local, as ``ros2 topic echo`` adapts its QoS to them;
    False when none shows up within ``wait`` s."""
    try:
        return _topic_types(topic, wait)[1]
    except So100Error:
        return False


def _qos_for(latched: bool) -> Any:
    from so100_common.qos import DEFAULT, Durability, QoS

    return QoS(depth=1, durability=Durability.TRANSIENT_LOCAL) if latched else DEFAULT


def cmd_topic_echo(a: argparse.Namespace) -> int:
    from so100_common.messages import message_to_dict

    if a.type:  # the type is given, the QoS still follows the publishers (a latched one replays its last)
        typename, latched = a.type, a.latched or _publishers_latched(a.topic, min(a.wait, 2.0))
    else:
        typename, latched = _topic_types(a.topic, a.wait)
    node = _cli_node("echo")
    count = {"n": 0}
    limit = 1 if a.once else a.count

    def on_msg(msg: Any) -> None:
        data = message_to_dict(msg, max_array=None if not a.no_arr else 0)
        if a.field:
            for part in a.field.split("."):
                data = data[part]
        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip() if isinstance(data, dict) else data)
        print("---", flush=True)
        count["n"] += 1
        if limit and count["n"] >= limit:
            node.shutdown()

    node.create_subscription(typename, a.topic, on_msg, _qos_for(latched or a.latched))
    return _spin_cli(node, a.timeout)


def _spin_cli(node: Any, timeout: float | None) -> int:
    import signal

    signal.signal(signal.SIGINT, lambda *_: node.shutdown())
    try:
        node.spin(timeout=timeout or None)
    finally:
        node.destroy()
    return 0


def cmd_topic_hz(a: argparse.Namespace) -> int:
    typename, latched = (a.type, False) if a.type else _topic_types(a.topic, a.wait)
    node = _cli_node("hz")
    stamps: list[float] = []

    def on_raw(_: Any) -> None:
        stamps.append(time.monotonic())
        del stamps[: -a.window - 1]

    def report() -> None:
        if len(stamps) < 2:
            print("no new messages")
            return
        d = np.diff(stamps)
        print(f"average rate: {1.0 / d.mean():.3f}\n\tmin: {d.min():.3f}s max: {d.max():.3f}s "
              f"std dev: {d.std():.5f}s window: {len(d)}", flush=True)

    node.create_subscription(typename, a.topic, on_raw, _qos_for(latched), raw=True)
    node.create_timer(1.0, report)
    return _spin_cli(node, a.duration)


def cmd_topic_pub(a: argparse.Namespace) -> int:
    from so100_common.messages import new_message

    values = yaml.safe_load(a.values) if a.values else {}
    if values is not None and not isinstance(values, dict):
        raise So100Error(f"message values must be a YAML mapping like \"{{data: hi}}\", got {a.values!r}")
    msg = new_message(a.type, values or {})
    node = _cli_node("pub")
    pub = node.create_publisher(a.type, a.topic, _qos_for(a.latched))
    times = 1 if a.once else a.times
    state = {"n": 0}

    def tick() -> None:
        pub.publish(msg)
        state["n"] += 1
        print(f"publishing #{state['n']}: {a.type}", flush=True)
        if times and state["n"] >= times:
            node.create_timer(a.keep_alive, node.shutdown)  # let subscribers receive it

    time.sleep(a.wait_matching)
    node.create_timer(1.0 / a.rate, tick)
    return _spin_cli(node, None)


def cmd_service_list(a: argparse.Namespace) -> int:
    view = _view(a.timeout)
    for name in sorted(view.services):
        print(f"{name} [{', '.join(sorted(view.services[name]))}]" if a.show_types else name)
    return 0


def cmd_service_call(a: argparse.Namespace) -> int:
    from so100_common.messages import message_to_dict, new_message, service_type

    srv = service_type(a.type)
    values = yaml.safe_load(a.values) if a.values else {}
    request = new_message(srv.request, values or {})
    node = _cli_node("call")
    try:
        client = node.create_client(srv, a.service)
        print("waiting for service to become available...", flush=True)
        if not client.wait_for_service(a.timeout):
            raise So100Error(f"service {a.service} ({a.type}) is not available; see `so100 service list`")
        print(f"requester: making request: {message_to_dict(request)}")
        response = client.call(request, timeout=a.timeout)
        print("\nresponse:")
        print(yaml.safe_dump(message_to_dict(response), sort_keys=False).rstrip())
    finally:
        node.destroy()
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    more = ", ".join(sorted(verbs())) or "none installed"
    p = argparse.ArgumentParser(prog="so100", description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f"verbs of the installed packages (so100 VERB --help): {more}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("router", help="run a zenoh router (what rmw_zenohd is for ROS 2)")
    r.add_argument("--listen", action="append", metavar="ENDPOINT",
                   help="endpoint to listen on (repeatable); default tcp/127.0.0.1:7447; "
                        "use tcp/[::]:7447 to accept other machines")
    r.set_defaults(func=cmd_router)

    la = sub.add_parser("launch", help="run a launch graph as supervised processes")
    la.add_argument("graph", help="graph name (launch/<name>.graph.yaml) or path to a .graph.yaml file")
    la.add_argument("args", nargs="*", metavar="name:=value", help="graph arguments")
    la.add_argument("--show-args", action="store_true", help="list the graph's arguments and exit")
    la.add_argument("--no-router", action="store_true", help="do not start a router when none is running")
    la.set_defaults(func=cmd_launch)

    n = sub.add_parser("node", help="inspect nodes").add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    nl = n.add_parser("list", help="list nodes")
    nl.add_argument("-a", "--all", action="store_true", help="include hidden nodes (names starting with _)")
    nl.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for the graph (default 1)")
    nl.set_defaults(func=cmd_node_list)

    t = sub.add_parser("topic", help="inspect and use topics").add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    tl = t.add_parser("list", help="list topics")
    tl.add_argument("-t", "--show-types", action="store_true", help="show each topic's type")
    tl.add_argument("-v", "--verbose", action="store_true", help="show types and endpoint counts")
    tl.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for the graph (default 1)")
    tl.set_defaults(func=cmd_topic_list)

    te = t.add_parser("echo", help="print messages of a topic")
    te.add_argument("topic")
    te.add_argument("type", nargs="?", help="message type (default: from the graph)")
    te.add_argument("--once", action="store_true", help="print one message and exit")
    te.add_argument("-n", "--count", type=int, default=0, help="exit after N messages")
    te.add_argument("--field", help="print only this field (dot-separated)")
    te.add_argument("--no-arr", action="store_true", help="do not print array contents")
    te.add_argument("--latched", action="store_true", help="subscribe transient-local (receive latched messages)")
    te.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the topic to appear (default 5)")
    te.add_argument("--timeout", type=float, default=0.0, help="exit after this many seconds (default: never)")
    te.set_defaults(func=cmd_topic_echo)

    th = t.add_parser("hz", help="print the average publishing rate")
    th.add_argument("topic")
    th.add_argument("type", nargs="?", help="message type (default: from the graph)")
    th.add_argument("-w", "--window", type=int, default=100, help="messages in the rate window (default 100)")
    th.add_argument("--duration", type=float, default=0.0, help="exit after this many seconds (default: never)")
    th.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the topic to appear (default 5)")
    th.set_defaults(func=cmd_topic_hz)

    tp = t.add_parser("pub", help="publish a message")
    tp.add_argument("topic")
    tp.add_argument("type", help="message type, e.g. std_msgs/msg/String")
    tp.add_argument("values", nargs="?", help='YAML mapping of field values, e.g. "{data: hi}"')
    tp.add_argument("-r", "--rate", type=float, default=1.0, help="publishing rate in Hz (default 1)")
    tp.add_argument("-1", "--once", action="store_true", help="publish one message and exit")
    tp.add_argument("-t", "--times", type=int, default=0, help="publish N messages and exit")
    tp.add_argument("--latched", action="store_true", help="publish transient-local (late subscribers get it)")
    tp.add_argument("--wait-matching", type=float, default=0.5, help="seconds to wait before the first message")
    tp.add_argument("--keep-alive", type=float, default=0.5, help="seconds to stay up after the last message")
    tp.set_defaults(func=cmd_topic_pub)

    s = sub.add_parser("service", help="inspect and call services").add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    sl = s.add_parser("list", help="list services")
    sl.add_argument("-t", "--show-types", action="store_true", help="show each service's type")
    sl.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for the graph (default 1)")
    sl.set_defaults(func=cmd_service_list)
    sc = s.add_parser("call", help="call a service")
    sc.add_argument("service")
    sc.add_argument("type", help="service type, e.g. std_srvs/srv/Trigger")
    sc.add_argument("values", nargs="?", help='YAML mapping of request fields, e.g. "{data: true}"')
    sc.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the service and its reply")
    sc.set_defaults(func=cmd_service_call)
    return p


def verbs() -> dict[str, Any]:
    """Verbs the installed packages register in the ``so100.verbs`` entry-point group (as ros2cli's verbs are):
    ``name = package.module:function``, the function taking the verb's arguments and returning an exit code.
    This package registers none and imports nothing above it."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=VERB_GROUP)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] not in BUILTIN:
        verb = verbs().get(argv[0])
        if verb is not None:
            try:
                function = verb.load()
            except ImportError as e:
                print(f"so100: error: `so100 {argv[0]}` ({verb.value}) cannot be imported: {e}", file=sys.stderr)
                return 2
            return int(function(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except So100Error as e:
        print(f"so100: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        from so100_common.transport import shutdown_backend

        shutdown_backend()


if __name__ == "__main__":
    raise SystemExit(main())
