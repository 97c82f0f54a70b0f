"""Launch graphs defined once, as data (``launch/<name>.graph.yaml``).

A graph file declares arguments and nodes::

    description: what the graph does
    arguments:
      rate: {default: 100, description: joint state rate (Hz)}
      follower: {default: sim, choices: [sim, real], description: which follower}
    nodes:
      - {package: so100_common, executable: demo_talker, name: talker,
         parameters: {rate: $(arg rate)}, remappings: {a: /b},
         respawn: true, respawn_delay: 1.0, required: false,
         if: "$(arg follower) == sim"}

``$(arg NAME)`` is substituted everywhere; a value that is exactly one
substitution takes the argument's YAML type. ``if``/``unless`` take a boolean
argument or ``A == B`` / ``A != B``. ``so100 launch`` runs the evaluated graph as
supervised processes; ``launch/<name>.launch.py`` turns it into launch_ros actions.

A node with ``ros_only: true`` (RViz, robot_state_publisher: C++ ROS 2 programs)
runs only under ``ros2 launch``; ``so100 launch`` skips it and says so. Other ROS
launch substitutions such as ``$(find-pkg-share pkg)`` or ``$(command ...)`` are
left as text here and resolved by ``launch`` itself, so use them only in
``ros_only`` nodes.

Dependency rule: imports only ``errors`` and ``ros_args`` from the project.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from so100_common.errors import LaunchError
from so100_common.ros_args import parse_value

_SUBST = re.compile(r"\$\(arg ([A-Za-z_][A-Za-z0-9_]*)\)")
_NODE_KEYS = {
    "package", "executable", "name", "namespace", "parameters", "remappings", "arguments",
    "respawn", "respawn_delay", "required", "if", "unless", "env", "output", "ros_only",
}


@dataclass(frozen=True)
class ArgumentSpec:
    name: str
    default: Any
    description: str = ""
    choices: tuple[Any, ...] | None = None


@dataclass
class NodeLaunch:
    """One node of an evaluated graph: everything needed to start its process."""

    package: str
    executable: str
    name: str
    namespace: str = "/"
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: dict[str, str] = field(default_factory=dict)
    arguments: list[str] = field(default_factory=list)
    respawn: bool = False
    respawn_delay: float = 1.0
    required: bool = False
    env: dict[str, str] = field(default_factory=dict)
    ros_only: bool = False  # a ROS 2 program (rviz2, robot_state_publisher): ros2 launch only

    def ros_args(self) -> list[str]:
        """The ``--ros-args`` part of the command line, as ``ros2 launch`` would write it."""
        out = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace not in ("", "/"):
            out += ["-r", f"__ns:={self.namespace}"]
        for key, value in self.parameters.items():
            out += ["-p", f"{key}:={format_value(value)}"]
        for src, dst in self.remappings.items():
            out += ["-r", f"{src}:={dst}"]
        return out

    def command(self, executable_path: str) -> list[str]:
        return [executable_path, *self.arguments, *self.ros_args()]


@dataclass
class Graph:
    name: str
    path: Path
    description: str
    arguments: dict[str, ArgumentSpec]
    nodes: list[dict[str, Any]]


def format_value(value: Any) -> str:
    """A parameter value as command-line YAML that parses back to the same value."""
    if isinstance(value, str):
        try:
            plain = bool(value) and value.strip() == value and parse_value(value) == value
        except Exception:
            plain = False
        return value if plain else json.dumps(value)
    return json.dumps(value)


def load_graph(path: str | Path) -> Graph:
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise LaunchError(f"launch graph {str(p)!r} does not exist") from None
    except yaml.YAMLError as e:
        raise LaunchError(f"launch graph {p} is not valid YAML: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
        raise LaunchError(f"launch graph {p} needs a 'nodes' list")
    args: dict[str, ArgumentSpec] = {}
    for name, spec in (doc.get("arguments") or {}).items():
        spec = spec if isinstance(spec, dict) else {"default": spec}
        choices = spec.get("choices")
        args[name] = ArgumentSpec(name, spec.get("default"), spec.get("description", ""),
                                  tuple(choices) if choices is not None else None)
    for i, node in enumerate(doc["nodes"]):
        if not isinstance(node, dict) or "package" not in node or "executable" not in node:
            raise LaunchError(f"{p}: node #{i + 1} needs 'package' and 'executable'")
        unknown = set(node) - _NODE_KEYS
        if unknown:
            raise LaunchError(f"{p}: node #{i + 1} has unknown key(s) {sorted(unknown)}; allowed: {sorted(_NODE_KEYS)}")
    graph_name = p.name.removesuffix(".graph.yaml").removesuffix(".yaml")
    return Graph(graph_name, p, doc.get("description", ""), args, doc["nodes"])


def parse_launch_args(items: list[str], graph: Graph) -> dict[str, Any]:
    """``name:=value`` items checked against the graph's arguments, defaults filled in."""
    values = {name: spec.default for name, spec in graph.arguments.items()}
    for item in items:
        if ":=" not in item:
            raise LaunchError(f"launch argument {item!r} must be name:=value")
        name, text = item.split(":=", 1)
        if name not in graph.arguments:
            raise LaunchError(
                f"graph '{graph.name}' has no argument {name!r}; valid arguments: "
                + (", ".join(sorted(graph.arguments)) or "none")
            )
        values[name] = parse_value(text)
    for name, spec in graph.arguments.items():
        if values[name] is None:
            raise LaunchError(f"graph '{graph.name}' needs the argument {name}:=... ({spec.description})")
        if spec.choices is not None and values[name] not in spec.choices:
            raise LaunchError(
                f"argument {name}:={values[name]} is not valid for graph '{graph.name}'; "
                f"choose one of: {', '.join(map(str, spec.choices))}"
            )
    return values


def _substitute(value: Any, args: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _SUBST.fullmatch(value.strip())
        if whole:
            return args[whole.group(1)]
        return _SUBST.sub(lambda m: str(args[m.group(1)]).lower() if isinstance(args[m.group(1)], bool)
                          else str(args[m.group(1)]), value)
    if isinstance(value, list):
        return [_substitute(v, args) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, args) for k, v in value.items()}
    return value


def _truthy(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    for op in ("==", "!="):
        if op in text:
            lhs, rhs = (s.strip() for s in text.split(op, 1))
            return (lhs == rhs) == (op == "==")
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no", ""):
        return False
    raise LaunchError(f"{where}: condition {value!r} is neither a boolean nor A == B")


def evaluate(graph: Graph, args: dict[str, Any]) -> list[NodeLaunch]:
    """The nodes to start for these argument values."""
    for name in _used_args(graph):
        if name not in args:
            raise LaunchError(f"{graph.path}: $(arg {name}) is used but not declared under 'arguments'")
    out = []
    for i, raw in enumerate(graph.nodes):
        node = _substitute(raw, args)
        where = f"{graph.path}: node #{i + 1}"
        if "if" in node and not _truthy(node["if"], where):
            continue
        if "unless" in node and _truthy(node["unless"], where):
            continue
        out.append(
            NodeLaunch(
                package=node["package"],
                executable=node["executable"],
                name=node.get("name") or node["executable"],
                namespace=node.get("namespace", "/"),
                parameters=dict(node.get("parameters") or {}),
                remappings={str(k): str(v) for k, v in (node.get("remappings") or {}).items()},
                arguments=[str(a) for a in node.get("arguments") or []],
                respawn=bool(node.get("respawn", False)),
                respawn_delay=float(node.get("respawn_delay", 1.0)),
                required=bool(node.get("required", False)),
                env={str(k): str(v) for k, v in (node.get("env") or {}).items()},
                ros_only=_truthy(node.get("ros_only", False), where),
            )
        )
    names = [f"{n.namespace.rstrip('/')}/{n.name}" for n in out]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise LaunchError(f"{graph.path}: two nodes would be named {sorted(dupes)}")
    return out


def split_ros_only(nodes: list[NodeLaunch]) -> tuple[list[NodeLaunch], list[NodeLaunch]]:
    """(nodes ``so100 launch`` runs, ``ros_only`` nodes it leaves to ``ros2 launch``)."""
    return [n for n in nodes if not n.ros_only], [n for n in nodes if n.ros_only]


def _used_args(graph: Graph) -> set[str]:
    return set(_SUBST.findall(yaml.safe_dump(graph.nodes)))


def launch_dirs() -> list[Path]:
    """Where ``so100 launch NAME`` looks for ``NAME.graph.yaml``, in order.

    ``SO100_LAUNCH_PATH`` (``os.pathsep``-separated), ``./launch``, then the
    repository's ``launch/`` (this package installed in editable mode from it).
    """
    dirs = [Path(d) for d in os.environ.get("SO100_LAUNCH_PATH", "").split(os.pathsep) if d]
    dirs.append(Path.cwd() / "launch")
    repo = Path(__file__).resolve().parents[4] / "launch"
    dirs.append(repo)
    return dirs


def find_graph(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise LaunchError(f"launch graph file {name_or_path!r} does not exist")
        return p
    for d in launch_dirs():
        candidate = d / f"{name_or_path}.graph.yaml"
        if candidate.exists():
            return candidate
    available = sorted({c.name.removesuffix(".graph.yaml") for d in launch_dirs() if d.is_dir()
                        for c in d.glob("*.graph.yaml")})
    raise LaunchError(
        f"no launch graph named {name_or_path!r}; available: {', '.join(available) or 'none'} "
        f"(searched {', '.join(str(d) for d in launch_dirs())})"
    )
