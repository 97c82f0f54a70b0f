"""Parameters: type from the default, validation, overrides, clear errors."""

import pytest

from so100_common.errors import ParameterError
from so100_common.params import ParameterSpec, ParameterStore, infer_type


def store(**overrides):
    return ParameterStore(overrides, "/node")


def test_override_replaces_default_and_int_promotes_to_double():
    s = store(rate=30)
    assert s.declare(ParameterSpec("rate", float, 100.0)) == 30.0
    assert isinstance(s.get("rate"), float)


def test_wrong_type_is_refused_with_the_parameter_named():
    s = store(rate="fast")
    with pytest.raises(ParameterError, match=r"'rate' \(double\).*'fast'"):
        s.declare(ParameterSpec("rate", float, 100.0, description="control rate (Hz)"))
    with pytest.raises(ParameterError, match="integer"):
        store(n=True).declare(ParameterSpec("n", int, 1))
    with pytest.raises(ParameterError):
        store(flag=1).declare(ParameterSpec("flag", bool, False))


def test_choices_ranges_validators_and_nan():
    with pytest.raises(ParameterError, match="valid values: 'sim', 'real'"):
        store(follower="mars").declare(ParameterSpec("follower", str, "sim", choices=("sim", "real")))
    with pytest.raises(ParameterError, match="above the maximum 200"):
        store(rate=500.0).declare(ParameterSpec("rate", float, 30.0, max_value=200))
    with pytest.raises(ParameterError, match="NaN"):
        store(rate=float("nan")).declare(ParameterSpec("rate", float, 30.0))
    with pytest.raises(ParameterError, match="must be even"):
        store(n=3).declare(ParameterSpec("n", int, 2, validator=lambda v: None if v % 2 == 0 else "must be even"))


def test_lists():
    t, elem = infer_type([1, 2.5])
    assert t is list and elem is float
    s = store(gains=[1, 2, 3])
    assert s.declare(ParameterSpec("gains", list, [0.0], element_type=float)) == [1.0, 2.0, 3.0]
    with pytest.raises(ParameterError, match="list"):
        store(gains=3).declare(ParameterSpec("gains", list, [0.0], element_type=float))


def test_undeclared_and_unused():
    s = store(rat=3, rate=4)
    s.declare(ParameterSpec("rate", int, 1))
    assert s.unused_overrides() == ["rat"]
    with pytest.raises(ParameterError, match="declared: rate"):
        s.get("rat")
    with pytest.raises(ParameterError, match="twice"):
        s.declare(ParameterSpec("rate", int, 1))


def test_set_checks_type_and_read_only():
    s = store()
    s.declare(ParameterSpec("rate", float, 1.0))
    assert s.set("rate", 2) == 2.0
    s.declare(ParameterSpec("port", str, "/dev/ttyACM0", read_only=True))
    with pytest.raises(ParameterError, match="read-only"):
        s.set("port", "x")
