"""Command-line parsing follows rcl: --ros-args sections, -p, -r, --params-file, wildcards."""

import pytest

from so100_common.errors import ArgumentError, InvalidNameError
from so100_common.ros_args import (
    expand_name,
    node_pattern_matches,
    parse_value,
    resolve_node_args,
    split_ros_args,
)


def test_split_sections_and_user_args():
    user, ros = split_ros_args(["a", "--ros-args", "-p", "x:=1", "--", "b", "--ros-args", "-r", "c:=d"])
    assert user == ["a", "b"] and ros == ["-p", "x:=1", "-r", "c:=d"]


@pytest.mark.parametrize(
    "text,value",
    [("1", 1), ("1.5", 1.5), ("true", True), ("False", False), ("abc", "abc"), ("[1, 2]", [1, 2]),
     ("'42'", "42"), ("[a, b]", ["a", "b"]), ("", ""), ("1e3", 1000.0), ("1.0e3", 1000.0)],
)
def test_parameter_values_parse_like_yaml(text, value):
    assert parse_value(text) == value


def test_mapping_value_is_rejected():
    with pytest.raises(ArgumentError, match="mapping"):
        parse_value("{a: 1}")


def test_node_name_namespace_and_remaps():
    args, user = resolve_node_args(
        ["--ros-args", "-r", "__node:=follower", "-r", "__ns:=/arm", "-r", "joint_commands:=/cmd", "-p", "rate:=50"],
        "sim_bridge",
    )
    assert (args.name, args.namespace, args.fqn) == ("follower", "/arm", "/arm/follower")
    assert args.params == {"rate": 50}
    assert args.resolve("joint_commands") == "/cmd"
    assert args.resolve("joint_states") == "/arm/joint_states"
    assert args.resolve("/abs") == "/abs"
    assert args.resolve("~/reset") == "/arm/follower/reset"
    assert user == []


def test_node_targeted_rules_apply_only_to_that_node():
    argv = ["--ros-args", "-p", "other:rate:=1", "-p", "me:rate:=2", "-r", "other:__node:=x", "-r", "me:a:=b"]
    args, _ = resolve_node_args(argv, "me")
    assert args.name == "me" and args.params == {"rate": 2} and args.resolve("a") == "/b"


def test_last_override_wins_across_files_and_flags(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters:\n    rate: 10\n    gains: {p: 1.5, d: 0.1}\n"
                 "talker:\n  ros__parameters:\n    rate: 20\n"
                 "/other/talker:\n  ros__parameters:\n    rate: 99\n")
    args, _ = resolve_node_args(["--ros-args", "-p", "rate:=5", "--params-file", str(f)], "talker")
    assert args.params == {"rate": 20, "gains.p": 1.5, "gains.d": 0.1}
    args, _ = resolve_node_args(["--ros-args", "--params-file", str(f), "-p", "rate:=5"], "talker")
    assert args.params["rate"] == 5


def test_params_file_errors(tmp_path):
    with pytest.raises(ArgumentError, match="does not exist"):
        resolve_node_args(["--ros-args", "--params-file", str(tmp_path / "none.yaml")], "n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("n:\n  ros__parameters: [1, 2]\n")
    with pytest.raises(ArgumentError, match="must be a mapping"):
        resolve_node_args(["--ros-args", "--params-file", str(bad)], "n")


@pytest.mark.parametrize(
    "pattern,fqn,match",
    [("/**", "/a/b/n", True), ("n", "/n", True), ("n", "/ns/n", False), ("/ns/n", "/ns/n", True),
     ("/*/n", "/ns/n", True), ("/*/n", "/a/b/n", False), ("/**/n", "/a/b/n", True), ("/**/n", "/n", True),
     ("/ns/*", "/ns/x", True), ("/ns/*", "/other/x", False)],
)
def test_params_file_node_patterns(pattern, fqn, match):
    assert node_pattern_matches(pattern, fqn) is match


def test_bad_arguments_are_explained():
    with pytest.raises(ArgumentError, match="name:=value"):
        resolve_node_args(["--ros-args", "-p", "rate=5"], "n")
    with pytest.raises(ArgumentError, match="unknown ROS argument"):
        resolve_node_args(["--ros-args", "--bogus"], "n")
    with pytest.raises(ArgumentError, match="needs a value"):
        resolve_node_args(["--ros-args", "-p"], "n")
    with pytest.raises(InvalidNameError):
        resolve_node_args(["--ros-args", "-r", "__node:=9lives"], "n")


def test_name_expansion_rules():
    assert expand_name("chatter", "n", "/") == "/chatter"
    assert expand_name("chatter", "n", "/ns") == "/ns/chatter"
    assert expand_name("~/x", "n", "/ns") == "/ns/n/x"
    for bad in ("", "a//b", "1abc", "a/", "a b"):
        with pytest.raises(InvalidNameError):
            expand_name(bad, "n", "/")


def test_log_level():
    args, _ = resolve_node_args(["--ros-args", "--log-level", "debug"], "n")
    assert args.log_level == "DEBUG"
    args, _ = resolve_node_args(["--ros-args", "--log-level", "n:=warn"], "n")
    assert args.log_level == "WARN"
