"""The operator packaging: systemd units, their environment files, the compose
file and the Dockerfile, checked against the real ``lilypad`` commands."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from lilypad.cli import main

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
UNITS = {"resource-provider": ("resource-provider", True), "mediator": ("mediator", True),
         "solver": ("solver", False), "jobcreator": ("jobcreator", False)}
#: Variables read by something other than a click option.
OTHER_VARIABLES = {"WEB3_PRIVATE_KEY", "PYTHONUNBUFFERED", "HOME", "LILYPAD_PROJECT_ROOT", "LILYPAD_DEPLOYMENTS_DIR",
                   "LILYPAD_DATA_DIR", "LILYPAD_LOG_FORMAT"}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as section -> key -> values (keys may repeat); comments skipped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert line.endswith("]"), f"{path.name}:{number}: bad section header"
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}:{number}: {line!r} is not KEY=VALUE in a section"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def envvars(command: str) -> set[str]:
    cmd = main.commands[command]
    names: set[str] = set()
    for param in cmd.params:
        if isinstance(param, click.Option) and param.envvar:
            names.update([param.envvar] if isinstance(param.envvar, str) else param.envvar)
    return names


@pytest.mark.parametrize("name", UNITS)
def test_unit_has_the_required_keys_and_hardening(name):
    command, docker = UNITS[name]
    unit = parse_unit(PACKAGING / "systemd" / f"lilypad-{name}.service")
    assert set(unit) == {"Unit", "Service", "Install"}
    u, s = unit["Unit"], unit["Service"]
    assert u["Description"][0].startswith("lilypad ")
    assert "network-online.target" in u["After"][0] and u["Wants"] == ["network-online.target"]
    exec_start = s["ExecStart"][0].split()
    assert exec_start[0] == "/opt/lilypad/.venv/bin/lilypad" and exec_start[1] == command
    assert command in main.commands, f"{command} is a real lilypad subcommand"
    assert s["User"] == ["lilypad"] and s["Type"] == ["simple"] and s["Restart"] == ["on-failure"]
    assert s["EnvironmentFile"] == [f"/etc/lilypad/{name}.env"], "secrets come from the root-only env file"
    assert s["StateDirectory"] == [f"lilypad/{name}"] and s["StateDirectoryMode"] == ["0700"]
    environment = dict(e.split("=", 1) for e in s["Environment"])
    data_var = "LILYPAD_SOLVER_DATA_DIR" if name == "solver" else "LILYPAD_DATA_DIR"
    assert environment[data_var] == f"/var/lib/lilypad/{name}", "state lives in the StateDirectory"
    assert data_var in envvars(command) | OTHER_VARIABLES
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes", "PrivateTmp": "no"}.items():
        assert s[key] == [value], key
    assert "AF_UNIX" in s["RestrictAddressFamilies"][0]
    if docker:  # talks to dockerd through its socket; NVML needs the devices
        assert "docker.service" in u["After"][0] and u["Requires"] == ["docker.service"]
        assert s["SupplementaryGroups"] == ["docker"] and s["PrivateDevices"] == ["no"]
    else:
        assert "Requires" not in u and "SupplementaryGroups" not in s
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (no systemd on this machine); "
                           "the units' sections and keys are checked by the tests above")
@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_verify_accepts_the_unit(name, tmp_path):
    # verify also checks that ExecStart exists: point it at this checkout's lilypad.
    exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
    text = (PACKAGING / "systemd" / f"lilypad-{name}.service").read_text()
    unit = tmp_path / f"lilypad-{name}.service"
    unit.write_text(text.replace("/opt/lilypad/.venv/bin/lilypad", exe))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (out.stdout + out.stderr).splitlines() if unit.name in line]
    assert out.returncode == 0 and not complaints, out.stdout + out.stderr


@pytest.mark.parametrize("name", UNITS)
def test_env_example_names_only_real_settings(name):
    command, _ = UNITS[name]
    path = PACKAGING / "systemd" / f"lilypad-{name}.env.example"
    assigned = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^#?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            assigned[match.group(1)] = match.group(2)
    assert assigned["WEB3_PRIVATE_KEY"] == "", "the template holds no key"
    assert "0600" in path.read_text() and f"/etc/lilypad/{name}.env" in path.read_text()
    known = envvars(command) | OTHER_VARIABLES
    unknown = {k for k in assigned if k not in known and not k.startswith("APE_")}
    assert not unknown, f"{path.name} sets variables `lilypad {command}` does not read: {sorted(unknown)}"


def compose() -> dict:
    return yaml.safe_load((PACKAGING / "docker-compose.yml").read_text())


def test_compose_file_runs_real_commands_with_docker_access_and_hardening():
    spec = compose()
    services = spec["services"]
    assert set(services) == set(UNITS)
    for name, service in services.items():
        command, docker = UNITS[name]
        assert service["command"] == [command] and service["image"] == "lilypad:local"
        assert service["build"] == {"context": "..", "dockerfile": "packaging/Dockerfile"}
        assert service["read_only"] is True and "no-new-privileges:true" in service["security_opt"]
        assert service["cap_drop"] == ["ALL"] and service["restart"] == "unless-stopped"
        assert service["env_file"] == [f"./{name}.env"]
        unknown = set(service["environment"]) - envvars(command) - OTHER_VARIABLES
        assert not unknown, f"{name}: {sorted(unknown)}"
        mounts = [list(re.fullmatch(r"(.+?):(/[^:]+)(?::(ro|rw))?", v).groups()) for v in service["volumes"]]
        data = service["environment"].get("LILYPAD_DATA_DIR") or service["environment"]["LILYPAD_SOLVER_DATA_DIR"]
        assert [data, data] in [m[:2] for m in mounts], "job directories: the same path inside and out"
        assert any(m[1] == "/opt/lilypad/deployments" and m[-1] == "ro" for m in mounts)
        socket = ["/var/run/docker.sock", "/var/run/docker.sock"] in [m[:2] for m in mounts]
        assert socket == docker
        if docker:
            assert service["group_add"] == ["${DOCKER_GID:-999}"]
        if name != "resource-provider":
            assert service["profiles"] == [name], "only the provider starts by default"


def _compose_cli() -> list[str] | None:
    """Docker Compose v2 (the plugin, or its standalone ``docker-compose``
    binary): v1 (Debian's docker-compose 1.29) cannot read the Compose
    Specification (top-level ``name``) the file is written in."""
    for cli in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cli[0]) is None:
            continue
        out = subprocess.run([*cli, "version", "--short"], capture_output=True, text=True)
        if out.returncode == 0 and re.match(r"v?([2-9]|\d{2,})\.", out.stdout.strip()):
            return cli
    return None


@pytest.mark.skipif(_compose_cli() is None, reason="needs Docker Compose v2, which apt does not offer here (Debian's "
                                                   "docker-compose 1.29 predates the Compose Specification the file "
                                                   "uses); the YAML is checked by the test above")
def test_docker_compose_config_validates(tmp_path):
    target = tmp_path / "packaging"
    shutil.copytree(PACKAGING, target)
    for name in UNITS:
        (target / f"{name}.env").write_text((target / "systemd" / f"lilypad-{name}.env.example").read_text())
    out = subprocess.run([*_compose_cli(), "-f", str(target / "docker-compose.yml"), "--profile", "solver",
                          "--profile", "mediator", "--profile", "jobcreator", "config", "-q"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_dockerfile_builds_from_a_local_base_and_runs_lilypad_unprivileged():
    text = (PACKAGING / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE=lilypad/python:3-bookworm$", text, re.M)
    assert re.search(r"^FROM \$\{BASE\}$", text, re.M)
    assert re.search(r'^ENTRYPOINT \["/opt/lilypad/.venv/bin/lilypad"\]$', text, re.M)
    assert re.search(r"^USER 10001$", text, re.M)
    for source in re.findall(r"^COPY (\S+) ", text, re.M):
        if source != ".build":  # made by `make compile` before building
            assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "node_modules" in ignored and ".build" not in ignored
