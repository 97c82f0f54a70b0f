"""ROS 2's command line (``--ros-args``), params files and name resolution.

Pure functions following rcl's rules: ``-p [node:]name:=value``, ``-r [node:]from:=to``
(``__node``/``__name``, ``__ns``), ``--params-file FILE`` (``/**``, node-name and
wildcard sections, ``ros__parameters``, nested keys joined with ``.``) and
``--log-level [name:=]LEVEL``. Overrides apply in command-line order: the last wins.

Dependency rule: imports only ``errors`` from the project.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from so100_common.errors import ArgumentError, InvalidNameError

_NAME_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


@dataclass
class RosArgs:
    """What ``--ros-args`` sections said, before they are matched to a node."""

    # (node name or None, param name, value), in command-line order, files expanded
    params: list[tuple[str | None, str, Any]] = field(default_factory=list)
    # (node name or None, from, to)
    remaps: list[tuple[str | None, str, str]] = field(default_factory=list)
    log_levels: dict[str, str] = field(default_factory=dict)  # "" = default level
    enclave: str | None = None
    # params-file entries keep the section pattern they came from
    file_params: list[tuple[str, str, Any]] = field(default_factory=list)


def split_ros_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split argv into (program args, ros args) the way rcl does.

    Every ``--ros-args`` section runs until ``--`` or the end of argv.
    """
    user: list[str] = []
    ros: list[str] = []
    inside = False
    for arg in argv:
        if arg == "--ros-args":
            inside = True
        elif inside and arg == "--":
            inside = False
        elif inside:
            ros.append(arg)
        else:
            user.append(arg)
    return user, ros


def parse_value(text: str) -> Any:
    """A parameter value as rcl parses it: YAML scalars and flow lists."""
    try:
        value = yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError as e:
        raise ArgumentError(f"cannot parse parameter value {text!r}: {e}") from e
    if isinstance(value, dict):
        raise ArgumentError(f"parameter value {text!r} is a mapping; only scalars and lists are allowed")
    if value is None:
        return text  # rcl keeps `~`/`null` as a string
    if isinstance(value, str) and text.strip()[:1] not in ("'", '"') and _FLOAT.fullmatch(text.strip()):
        return float(text)  # rcl reads numbers with strtod: "1e3" is a double, as PyYAML's 1.1 rules miss
    return value


def _split_rule(rule: str, what: str) -> tuple[str | None, str, str]:
    if ":=" not in rule:
        raise ArgumentError(f"{what} {rule!r} must be of the form name:=value")
    lhs, rhs = rule.split(":=", 1)
    node: str | None = None
    if ":" in lhs:
        node, lhs = lhs.split(":", 1)
    if not lhs:
        raise ArgumentError(f"{what} {rule!r} has an empty name")
    return node, lhs, rhs


def parse_ros_args(ros_args: list[str]) -> RosArgs:
    """Parse the contents of ``--ros-args`` sections (see :func:`split_ros_args`)."""
    out = RosArgs()
    i = 0
    while i < len(ros_args):
        flag = ros_args[i]

        def value(i: int = i, flag: str = flag) -> str:
            if i + 1 >= len(ros_args):
                raise ArgumentError(f"{flag} needs a value")
            return ros_args[i + 1]

        if flag in ("-p", "--param"):
            node, name, text = _split_rule(value(), "parameter")
            out.params.append((node, name, parse_value(text)))
            i += 2
        elif flag in ("-r", "--remap"):
            node, src, dst = _split_rule(value(), "remapping")
            out.remaps.append((node, src, dst))
            i += 2
        elif flag == "--params-file":
            for pattern, name, val in load_params_file(value()):
                out.params.append((f"\0{pattern}", name, val))
            i += 2
        elif flag == "--log-level":
            text = value()
            name, _, level = text.rpartition(":=")
            out.log_levels[name] = level.upper()
            i += 2
        elif flag in ("-e", "--enclave"):
            out.enclave = value()
            i += 2
        elif flag in ("--disable-stdout-logs", "--disable-rosout-logs", "--disable-external-lib-logs",
                      "--enable-stdout-logs", "--enable-rosout-logs", "--enable-external-lib-logs"):
            i += 1
        elif flag == "--log-config-file":
            i += 2
        else:
            raise ArgumentError(
                f"unknown ROS argument {flag!r}; expected -p name:=value, -r from:=to, "
                "--params-file FILE, --log-level LEVEL or -e ENCLAVE"
            )
    return out


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out.append((prefix, value))


def load_params_file(path: str | Path) -> list[tuple[str, str, Any]]:
    """Read a ROS 2 params file into (node pattern, parameter, value) triples."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ArgumentError(f"params file {str(p)!r} does not exist") from None
    except yaml.YAMLError as e:
        raise ArgumentError(f"params file {str(p)!r} is not valid YAML: {e}") from e
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise ArgumentError(f"params file {str(p)!r} must map node names to ros__parameters")
    out: list[tuple[str, str, Any]] = []

    def walk(prefix: str, node: dict) -> None:
        for key, val in node.items():
            if key == "ros__parameters":
                if not isinstance(val, dict):
                    raise ArgumentError(f"{p}: ros__parameters of {prefix!r} must be a mapping")
                flat: list[tuple[str, Any]] = []
                _flatten("", val, flat)
                out.extend((prefix, name, v) for name, v in flat)
            elif isinstance(val, dict):
                key = str(key)
                joined = key if key.startswith("/") or not prefix else f"{prefix}/{key}"
                walk(joined, val)
            else:
                raise ArgumentError(
                    f"{p}: {key!r} under {prefix or 'the top level'} is neither a node name nor ros__parameters"
                )

    walk("", doc)
    return out


def node_pattern_matches(pattern: str, node_fqn: str) -> bool:
    """Whether a params-file section names a node, by rcl's rules.

    A section without a leading ``/`` is taken from the root (``talker`` = ``/talker``);
    ``*`` matches one name token and ``**`` any number of them (``/**`` = every node).
    """
    if not pattern.startswith("/"):
        pattern = "/" + pattern
    tokens = pattern[1:].split("/")
    parts = []
    for tok in tokens:
        if tok == "**":
            parts.append("(?:/[^/]+)*")
        else:
            parts.append("/" + re.escape(tok).replace(r"\*", "[^/]*"))
    return re.fullmatch("".join(parts), node_fqn) is not None


def validate_node_name(name: str) -> str:
    if not _NAME_TOKEN.match(name):
        raise InvalidNameError(
            f"invalid node name {name!r}: use letters, digits and underscores, not starting with a digit"
        )
    return name


def validate_namespace(ns: str) -> str:
    if not ns.startswith("/"):
        ns = "/" + ns
    ns = ns.rstrip("/") or "/"
    if ns != "/" and not all(_NAME_TOKEN.match(t) for t in ns[1:].split("/")):
        raise InvalidNameError(f"invalid namespace {ns!r}")
    return ns


def expand_name(name: str, node_name: str, namespace: str) -> str:
    """Fully qualified name of a topic or service, as rcl expands it."""
    if not name:
        raise InvalidNameError("empty topic or service name")
    ns = namespace.rstrip("/")
    if name.startswith("~"):
        name = f"{ns}/{node_name}{name[1:]}"
    elif not name.startswith("/"):
        name = f"{ns}/{name}"
    tokens = name[1:].split("/")
    if name.endswith("/") or not all(_NAME_TOKEN.match(t) for t in tokens):
        raise InvalidNameError(
            f"invalid topic or service name {name!r}: tokens of letters, digits and underscores separated by '/'"
        )
    return name


@dataclass
class NodeArgs:
    """The command line resolved for one node: its name, namespace, overrides, remaps."""

    name: str
    namespace: str
    params: dict[str, Any]
    remaps: list[tuple[str, str]]  # fully qualified from -> to (to still unexpanded)
    log_level: str | None
    enclave: str

    @property
    def fqn(self) -> str:
        return f"{self.namespace.rstrip('/')}/{self.name}"

    def resolve(self, name: str) -> str:
        """Expand a topic/service name and apply the first matching remap rule."""
        fq = expand_name(name, self.name, self.namespace)
        for src, dst in self.remaps:
            if src == fq:
                return expand_name(dst, self.name, self.namespace)
        return fq


def resolve_node_args(
    argv: list[str], default_name: str, default_namespace: str = "/"
) -> tuple[NodeArgs, list[str]]:
    """Apply ``argv``'s ``--ros-args`` to a node; returns it and the non-ROS args."""
    user, ros = split_ros_args(argv)
    parsed = parse_ros_args(ros)
    name, namespace = default_name, default_namespace
    for node, src, dst in parsed.remaps:
        if node not in (None, default_name):
            continue
        if src in ("__node", "__name"):
            name = dst
        elif src == "__ns":
            namespace = dst
    name = validate_node_name(name)
    namespace = validate_namespace(namespace)
    fqn = f"{namespace.rstrip('/')}/{name}"
    params: dict[str, Any] = {}
    for node, pname, val in parsed.params:
        if node is not None and node.startswith("\0"):
            if not node_pattern_matches(node[1:], fqn):
                continue
        elif node not in (None, name):
            continue
        params[pname] = val
    remaps: list[tuple[str, str]] = []
    for node, src, dst in parsed.remaps:
        if node not in (None, name, default_name) or src.startswith("__"):
            continue
        remaps.append((expand_name(src, name, namespace), dst))
    level = parsed.log_levels.get(name, parsed.log_levels.get(""))
    return (
        NodeArgs(name, namespace, params, remaps, level, parsed.enclave or "/"),
        user,
    )
