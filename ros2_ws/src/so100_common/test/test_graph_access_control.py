"""The README's recipe for opening the graph to named hosts, run as written: mutual TLS and zenoh's access control.

The robot's router takes the README's ``router.json5`` (certificate paths and port filled in); sim_bridge
connects to it with the robot's certificate. Each other host runs its own router that connects to the
robot's with that host's certificate, and its clients connect to it (none listens, so on this one machine
they cannot reach each other directly). An operator host (teleop-pc.lab) moves the follower and resets the
sim; a viewer (laptop.lab) sees the joint states and the latched robot description, but its commands and
service calls never reach sim_bridge; a client without a certificate sees nothing.
(``RUST_LOG=zenoh::net::routing::interceptor=trace`` on the router shows each ACL decision.)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from so100_common.testing import Proc, free_port

ROOT = Path(__file__).resolve().parents[4]
BIN = Path(sys.executable).parent


def _key(path: Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key


def make_pki(tmp: Path) -> dict[str, Path]:
    """A CA, the router's certificate (localhost) and one client certificate per host name."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = _key(tmp / "ca-key.pem")
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "so100 test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    (tmp / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths = {"ca": tmp / "ca.pem"}
    for name, usage in [("router", ExtendedKeyUsageOID.SERVER_AUTH), ("robot-pc.lab", ExtendedKeyUsageOID.CLIENT_AUTH),
                        ("teleop-pc.lab", ExtendedKeyUsageOID.CLIENT_AUTH),
                        ("laptop.lab", ExtendedKeyUsageOID.CLIENT_AUTH)]:
        key = _key(tmp / f"{name}-key.pem")
        dns = ["localhost"] if name == "router" else [name]
        san = [x509.DNSName(d) for d in dns]
        if name == "router":
            san.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0])]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName(san), critical=False)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        (tmp / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[name] = tmp / f"{name}.pem"
        paths[f"{name}-key"] = tmp / f"{name}-key.pem"
    return paths


def readme_router_config() -> str:
    """The json5 block of the README's "Opening the graph to other machines"."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("**Opening the graph to other machines**"):]
    return re.search(r"```json5\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("acl")
    pki = make_pki(tmp)
    port = free_port()
    config = readme_router_config()
    for placeholder, path in (("ca.pem", pki["ca"]), ("router.pem", pki["router"]),
                              ("router-key.pem", pki["router-key"])):
        config = config.replace(f'"{placeholder}"', json.dumps(str(path)))
    config = config.replace('"tls/0.0.0.0:7447"', json.dumps(f"tls/127.0.0.1:{port}"))
    (tmp / "router.json5").write_text(config)
    domain = str(180 + os.getpid() % 40)
    base = dict(os.environ, ROS_DOMAIN_ID=domain, SO100_TRANSPORT="zenoh", PYTHONUNBUFFERED="1",
                SO100_ROUTER_WAIT="5")
    base.pop("ZENOH_CONFIG_OVERRIDE", None)
    procs = [Proc([str(BIN / "so100"), "router"], dict(base, ZENOH_ROUTER_CONFIG_URI=str(tmp / "router.json5")))]

    def tls(host: str | None) -> list[str]:
        out = [f'transport/link/tls/root_ca_certificate={json.dumps(str(pki["ca"]))}']
        if host is not None:
            out += ["transport/link/tls/enable_mtls=true",
                    f'transport/link/tls/connect_certificate={json.dumps(str(pki[host]))}',
                    f'transport/link/tls/connect_private_key={json.dumps(str(pki[host + "-key"]))}']
        return out

    def override(*items: str) -> dict[str, str]:
        return dict(base, ZENOH_CONFIG_OVERRIDE=";".join(items))

    time.sleep(1.0)
    assert procs[0].alive(), procs[0].output
    # the robot's host: sim_bridge connects to the robot's router with the robot's certificate
    sim = Proc([str(BIN / "sim_bridge"), "--ros-args", "-p", "width:=64", "-p", "height:=48",
                "-p", "cameras:=[overhead]", "-p", "depth_cameras:=[]", "-p", "camera_rate:=5.0"],
               override(f'connect/endpoints=["tls/localhost:{port}"]', "listen/endpoints=[]", *tls("robot-pc.lab")))
    procs.append(sim)
    # every other host: its own router connects to the robot's with that host's certificate; its clients
    # connect to it (none listens: on one machine they would otherwise reach each other directly)
    local_port: dict[str, int] = {}

    def env(host: str | None) -> dict[str, str]:
        if host is None:  # a client without a certificate, straight to the robot's router
            return override(f'connect/endpoints=["tls/localhost:{port}"]', "listen/endpoints=[]", *tls(None))
        if host not in local_port:
            local_port[host] = free_port()
            procs.append(Proc([str(BIN / "so100"), "router", "--listen", f"tcp/127.0.0.1:{local_port[host]}"],
                              override(f'connect/endpoints=["tls/localhost:{port}"]', *tls(host))))
            time.sleep(1.5)
        return override(f'connect/endpoints=["tcp/127.0.0.1:{local_port[host]}"]', "listen/endpoints=[]")

    sim.wait_output("sim_bridge up", 60)
    yield env, sim
    for proc in reversed(procs):
        proc.stop(timeout=10)


def so100(env: dict[str, str], *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "so100"), *args], env=env, capture_output=True, text=True, timeout=timeout)


def echo_once(env: dict[str, str], topic: str, typename: str) -> subprocess.CompletedProcess:
    return so100(env, "topic", "echo", topic, typename, "--once", "--timeout", "8", timeout=30)


@pytest.mark.parametrize("host", ["laptop.lab", "teleop-pc.lab"])
def test_viewers_and_operators_see_states_and_the_latched_description(secured, host):
    env, _ = secured
    states = echo_once(env(host), "/follower/joint_states", "sensor_msgs/msg/JointState")
    assert "shoulder_pan" in states.stdout, states.stdout + states.stderr
    description = echo_once(env(host), "/robot_description", "std_msgs/msg/String")
    assert "<robot" in description.stdout, description.stdout + description.stderr


def test_a_client_without_a_certificate_sees_nothing(secured):
    env, _ = secured
    out = echo_once(env(None), "/follower/joint_states", "sensor_msgs/msg/JointState")
    assert "shoulder_pan" not in out.stdout


def _scene(env: dict[str, str]) -> str:
    out = echo_once(env, "/episode/scene", "std_msgs/msg/String")
    assert "seed" in out.stdout, out.stdout + out.stderr
    return out.stdout


def test_only_operators_reset_the_sim(secured):
    """A viewer's call never reaches sim_bridge (the scene stays); an operator's resets it."""
    env, _ = secured
    operator = env("teleop-pc.lab")
    before = _scene(operator)
    viewer = so100(env("laptop.lab"), "service", "call", "/sim/reset", "std_srvs/srv/Trigger", "--timeout", "3")
    assert "success: true" not in viewer.stdout, viewer.stdout
    assert _scene(operator) == before, "the viewer's call reset the sim"
    called = so100(operator, "service", "call", "/sim/reset", "std_srvs/srv/Trigger", "--timeout", "10")
    assert "success: true" in called.stdout, called.stdout + called.stderr
    assert _scene(operator) != before


def _state(env: dict[str, str]) -> tuple[list[str], list[float]]:
    out = so100(env, "topic", "echo", "/follower/joint_states", "sensor_msgs/msg/JointState", "--once", "--timeout", "8")
    import yaml

    msg = yaml.safe_load(out.stdout.split("---")[0])
    assert msg and msg.get("name"), out.stdout + out.stderr
    return msg["name"], [float(v) for v in msg["position"]]


def _command(env: dict[str, str], names: list[str], position: list[float]) -> None:
    so100(env, "topic", "pub", "/follower/joint_commands", "sensor_msgs/msg/JointState",
          json.dumps({"name": names, "position": position}), "--times", "20", "--rate", "10", timeout=60)


def test_only_operators_move_the_follower(secured):
    env, _ = secured
    operator = env("teleop-pc.lab")
    names, start = _state(operator)
    goal = [start[0] + 0.3, *start[1:]]
    _command(env("laptop.lab"), names, goal)
    assert abs(_state(operator)[1][0] - start[0]) < 0.02, "a viewer's command moved the follower"
    _command(operator, names, goal)
    assert abs(_state(operator)[1][0] - goal[0]) < 0.05, "the operator's command did not move it"


def test_a_router_config_file_without_mode_still_opens_a_router(tmp_path, monkeypatch):
    """zenoh opens a peer when a config file names no mode: `so100 router` with such a file would route nothing."""
    from so100_common.transport import zenoh_config

    (tmp_path / "r.json5").write_text('{ listen: { endpoints: ["tcp/127.0.0.1:0"] } }')
    monkeypatch.setenv("ZENOH_ROUTER_CONFIG_URI", str(tmp_path / "r.json5"))
    monkeypatch.delenv("ZENOH_CONFIG_OVERRIDE", raising=False)
    assert json.loads(zenoh_config.build_config(router=True).get_json("mode")) == "router"
    (tmp_path / "p.json5").write_text('{ mode: "peer" }')
    monkeypatch.setenv("ZENOH_ROUTER_CONFIG_URI", str(tmp_path / "p.json5"))
    assert json.loads(zenoh_config.build_config(router=True).get_json("mode")) == "peer"  # a mode given is kept
