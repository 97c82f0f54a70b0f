"""Declared parameters: type from the default, validation, overrides from the command line.

Follows rclpy: a parameter's type is fixed by its default (or ``type_``); overrides
come from ``-p`` and ``--params-file``. One deliberate difference: an integer given
for a double parameter is promoted (``-p rate:=30`` for ``rate: 30.0``), where rclpy
refuses it.

Dependency rule: imports only ``errors`` from the project.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from so100_common.errors import ParameterError

_TYPE_NAMES = {
    bool: "bool",
    int: "integer",
    float: "double",
    str: "string",
    bytes: "byte array",
    list: "array",
}


@dataclass
class ParameterSpec:
    """How a parameter was declared."""

    name: str
    type_: type
    default: Any
    description: str = ""
    choices: Sequence[Any] | None = None
    min_value: float | None = None
    max_value: float | None = None
    validator: Callable[[Any], str | None] | None = None  # returns an error text or None
    element_type: type | None = None  # for list parameters
    read_only: bool = False

    def type_text(self) -> str:
        if self.type_ is list:
            return f"{_TYPE_NAMES.get(self.element_type or str, 'string')} array"
        return _TYPE_NAMES[self.type_]


def infer_type(value: Any) -> tuple[type, type | None]:
    if isinstance(value, bool):
        return bool, None
    for t in (int, float, str, bytes):
        if isinstance(value, t):
            return t, None
    if isinstance(value, (list, tuple)):
        if not value:
            raise ParameterError("an empty list default needs type_=list and element_type")
        elem, _ = infer_type(value[0])
        if any(isinstance(v, float) for v in value) and elem is int:
            elem = float
        return list, elem
    raise ParameterError(f"unsupported parameter value {value!r} ({type(value).__name__})")


def coerce(spec: ParameterSpec, value: Any, source: str) -> Any:
    """Check ``value`` against ``spec``; returns it converted, or raises ParameterError."""

    def fail(why: str) -> ParameterError:
        return ParameterError(
            f"parameter '{spec.name}' ({spec.type_text()}) from {source}: {why}"
            + (f" — {spec.description}" if spec.description else "")
        )

    def one(t: type, v: Any) -> Any:
        if t is float and isinstance(v, int) and not isinstance(v, bool):
            return float(v)
        if t is int and isinstance(v, bool) or not isinstance(v, t):
            raise fail(f"got {v!r} of type {type(v).__name__}")
        return v

    if spec.type_ is list:
        if not isinstance(value, (list, tuple)):
            raise fail(f"got {value!r}, expected a list like [1.0, 2.0]")
        out: Any = [one(spec.element_type or str, v) for v in value]
    else:
        out = one(spec.type_, value)
    if spec.type_ is float and isinstance(out, float) and math.isnan(out):
        raise fail("NaN is not allowed")
    if spec.choices is not None and out not in spec.choices:
        raise fail(f"got {out!r}; valid values: {', '.join(map(repr, spec.choices))}")
    if spec.min_value is not None and out < spec.min_value:
        raise fail(f"{out!r} is below the minimum {spec.min_value!r}")
    if spec.max_value is not None and out > spec.max_value:
        raise fail(f"{out!r} is above the maximum {spec.max_value!r}")
    if spec.validator is not None:
        problem = spec.validator(out)
        if problem:
            raise fail(problem)
    return out


class ParameterStore:
    """A node's declared parameters and the overrides given to it."""

    def __init__(self, overrides: dict[str, Any], node_name: str) -> None:
        self._overrides = dict(overrides)
        self._node = node_name
        self.specs: dict[str, ParameterSpec] = {}
        self.values: dict[str, Any] = {}

    def declare(self, spec: ParameterSpec) -> Any:
        if spec.name in self.specs:
            raise ParameterError(f"parameter '{spec.name}' of {self._node} is declared twice")
        value = coerce(spec, spec.default, "its default")
        if spec.name in self._overrides:
            value = coerce(spec, self._overrides[spec.name], "the command line / params file")
        self.specs[spec.name] = spec
        self.values[spec.name] = value
        return value

    def get(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise ParameterError(
                f"parameter '{name}' of {self._node} is not declared; declared: "
                f"{', '.join(sorted(self.values)) or 'none'}"
            ) from None

    def set(self, name: str, value: Any) -> Any:
        spec = self.specs.get(name)
        if spec is None:
            self.get(name)  # raises with the list
            raise AssertionError
        if spec.read_only:
            raise ParameterError(f"parameter '{name}' of {self._node} is read-only")
        self.values[name] = coerce(spec, value, "set_parameter")
        return self.values[name]

    def unused_overrides(self) -> list[str]:
        """Overrides that name no declared parameter (usually a typo)."""
        return sorted(n for n in self._overrides if n not in self.specs and n != "use_sim_time")
