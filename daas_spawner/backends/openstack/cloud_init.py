"""The VM's user_data: a #cloud-config that starts the single-user server as the person.

Pure functions, no I/O. The image carries the environment (Python, JupyterHub's single-user
server); the boot only writes three files and starts one systemd service:
- `/etc/daas/launcher.py`, the stdlib-only launcher (launcher.py);
- `/etc/daas/server.env` (0600, read by systemd as root): the server's environment, with the
  one-time bootstrap secret instead of its tokens (user_data stays readable from the metadata
  service for the VM's life, and to the project's admins through the API);
- `/etc/systemd/system/daas-server.service`: the launcher as the person's numeric uid, gid and
  groups (no account is created: the ids come from the site, as for pods), in their home.
The proposal's data is mounted by cloud-init's `mounts` (NFS, raw data read-only), from
`daas_core.mount_builders.cloud_init_mounts`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from daas_core.identity import PosixIdentity

SERVICE = "daas-server.service"
LAUNCHER_PATH = "/etc/daas/launcher.py"
ENV_PATH = "/etc/daas/server.env"
UNIT_PATH = f"/etc/systemd/system/{SERVICE}"
# Nova refuses user_data above 65535 bytes once base64-encoded.
MAX_USER_DATA = 65535 * 3 // 4
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNSAFE = ("\x00", "\n", "\r")


@dataclass(frozen=True)
class BootInputs:
    """What a VM's boot needs: the server's command, environment and the person's ids."""

    description: str  # the hub's name for the server, for the unit
    python: str  # the image's interpreter that runs the launcher
    launcher: str  # launcher.py's source
    command: Sequence[str]  # the single-user server and its arguments
    env: Mapping[str, str]  # no tokens: the bootstrap secret at most
    identity: PosixIdentity
    home: str
    mounts: Mapping[str, Any] = field(default_factory=dict)  # cloud_init_mounts' fragment


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the launcher, the unit) as literal blocks: user_data stays readable to operators."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text and text == text.rstrip(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _text)


def _checked(text: str, what: str) -> str:
    if any(char in text for char in _UNSAFE):
        raise ValueError(f"{what} contains a line break or NUL: {text[:40]!r}")
    return text


def systemd_word(text: str) -> str:
    """One argument of ExecStart=, double-quoted: systemd would otherwise expand $VAR and %-specifiers."""
    escaped = _checked(text, "a command argument").replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("%", "%%").replace("$", "$$") + '"'


def environment_file(env: Mapping[str, str]) -> str:
    """An EnvironmentFile= (systemd.exec): one NAME="value" line each; \\ " $ ` escaped inside the quotes."""
    lines = []
    for name, value in sorted(env.items()):
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        escaped = re.sub(r'(["\\$`])', r"\\\1", _checked(value, f"${name}"))
        lines.append(f'{name}="{escaped}"')
    return "\n".join(lines) + "\n"


def service_unit(inputs: BootInputs) -> str:
    """The systemd service that runs the launcher (which becomes the server) as the person."""
    ids = inputs.identity
    groups = " ".join(str(gid) for gid in ids.groups if gid != ids.gid)
    exec_start = " ".join(systemd_word(word) for word in (inputs.python, "-I", LAUNCHER_PATH, *inputs.command))
    lines = [
        "[Unit]",
        f"Description=JupyterHub server {_checked(inputs.description, 'the description')} (jupyterhub-daas)",
        "Wants=network-online.target",
        "After=network-online.target remote-fs.target",
        "",
        "[Service]",
        "Type=simple",
        f"User={ids.uid}",
        f"Group={ids.gid}",
        *([f"SupplementaryGroups={groups}"] if groups else []),
        f"EnvironmentFile={ENV_PATH}",
        f"WorkingDirectory={_checked(inputs.home, 'the home')}",
        f"ExecStart={exec_start}",
        "Restart=no",
        "KillMode=mixed",
        "",
    ]
    return "\n".join(lines)


def user_data(inputs: BootInputs) -> str:
    """The #cloud-config text; ValueError if a value cannot be written safely or it is too large for Nova."""
    ids = inputs.identity
    config: dict[str, Any] = dict(inputs.mounts)
    config["write_files"] = [
        {"path": LAUNCHER_PATH, "permissions": "0644", "content": inputs.launcher},
        {"path": ENV_PATH, "permissions": "0600", "content": environment_file(inputs.env)},
        {"path": UNIT_PATH, "permissions": "0644", "content": service_unit(inputs)},
    ]
    config["runcmd"] = [
        ["install", "-d", "-o", str(ids.uid), "-g", str(ids.gid), "-m", "0700", inputs.home],
        ["systemctl", "daemon-reload"],
        ["systemctl", "start", "--no-block", SERVICE],
    ]
    text = "#cloud-config\n" + yaml.dump(config, Dumper=_Dumper, sort_keys=False, width=1000)
    if len(text.encode()) > MAX_USER_DATA:
        raise ValueError(f"the VM's user_data is {len(text.encode())} bytes, above Nova's limit")
    return text
