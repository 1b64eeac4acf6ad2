"""The test cloud's virtual machines: boots each ACTIVE server of Nova's fake driver as a local process.

Nova's fake compute driver boots nothing. This agent plays the VMs: it watches every server
(as the cloud's admin), and for each new ACTIVE one does what cloud-init and systemd would do in
a real VM with the server's user_data, so the notebook behind an OpenStack spawn is real:
- the user_data must pass cloud-init's own schema check (Debian's cloud-init package, unpacked,
  not installed: `--cloud-init DIR`) and its service unit systemd's offline check
  (`systemd-analyze verify`); a VM whose boot would fail there does not boot;
- the VM gets its own loopback address (127.77.x.y), written for the Neutron stand-in
  (`<ports dir>/<server id>.json`), which answers the VM's port with it;
- `write_files` are written under the VM's root (`<vms dir>/<server id>/root`), with their
  permissions; `bootcmd`, `mounts` and `runcmd` are kept in `boot.json` for tests to read;
  `runcmd`'s `install -d` makes the directory in the VM's root, `systemctl start` starts the
  unit: its ExecStart as its User, Group and SupplementaryGroups, with its EnvironmentFile
  (systemd's quoting rules), in its WorkingDirectory, and DAAS_BIND_IP set to the VM's address
  (its only interface). Paths the boot created are mapped into the VM's root; everything else
  (the image: Python, JupyterHub) is the host's. Anything else in runcmd fails the boot loudly;
- a server that leaves the list, or stops being ACTIVE, has its process group killed.
NFS mounts are not made (there is no NFS server in the test cloud); the launcher then reports
the data it cannot open, as on a node that lacks a proposal's group.

Usage: python openstack_vms.py --cloud daas-admin --dir DIR --ports DIR [--cloud-init DIR] [--interval S]
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openstack
import yaml

log = logging.getLogger("openstack_vms")
SUBNET = "127.77"
_ESCAPED = re.compile(r"\\(.)")


def env_file_values(text: str) -> dict[str, str]:
    """An EnvironmentFile= as systemd reads it: NAME=value or NAME="value" with \\ escapes; # and ; comments."""
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        name, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = _ESCAPED.sub(r"\1", value[1:-1])
        env[name.strip()] = value
    return env


def exec_words(line: str) -> list[str]:
    """ExecStart='s words: systemd's quoting (like the shell's for double quotes), then $$ -> $ and %% -> %."""
    return [word.replace("$$", "$").replace("%%", "%") for word in shlex.split(line)]


def unit_settings(text: str) -> dict[str, str]:
    """The [Service] section's settings (one value each, as DaaS writes them)."""
    settings, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            key, _, value = line.partition("=")
            settings[key] = value
    return settings


class VM:
    """One booted server: its root, its address and its service's process."""

    def __init__(self, server_id: str, address: str, vms: Path) -> None:
        self.id = server_id
        self.address = address
        self.dir = vms / server_id
        self.root = self.dir / "root"
        self.created: list[str] = []  # paths the boot made, mapped into root
        self.process: subprocess.Popen[bytes] | None = None

    def path(self, path: str) -> str:
        """A path the boot created, inside the VM's root; any other path is the image's (the host's)."""
        for made in self.created:
            if path == made or path.startswith(made.rstrip("/") + "/"):
                return str(self.root) + path
        return path

    def write_files(self, entries: list[dict]) -> None:
        for entry in entries:
            target = Path(str(self.root) + entry["path"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(entry.get("content", ""))
            target.chmod(int(str(entry.get("permissions", "0644")), 8))
            self.created.append(entry["path"])

    def run(self, argv: list[str]) -> None:
        """One runcmd entry, as the VM would run it."""
        if argv[:2] == ["install", "-d"]:
            options = dict(zip(argv[2:-1:2], argv[3:-1:2], strict=True))
            target = Path(str(self.root) + argv[-1])
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(int(options.get("-m", "0755"), 8))
            os.chown(target, int(options.get("-o", "0")), int(options.get("-g", "0")))
            self.created.append(argv[-1])
        elif argv == ["systemctl", "daemon-reload"]:
            pass
        elif argv[:2] == ["systemctl", "start"]:
            self.start_unit(argv[-1])
        else:
            raise ValueError(f"runcmd entry this test VM cannot run: {argv}")

    def start_unit(self, name: str) -> None:
        settings = unit_settings(Path(self.path(f"/etc/systemd/system/{name}")).read_text())
        env = env_file_values(Path(self.path(settings["EnvironmentFile"])).read_text())
        env = {key: self.path(value) if value.startswith("/") else value for key, value in env.items()}
        env["DAAS_BIND_IP"] = self.address
        argv = [self.path(word) for word in exec_words(settings["ExecStart"])]
        groups = [int(gid) for gid in settings.get("SupplementaryGroups", "").split()]
        log_file = open(self.dir / "server.log", "ab")
        self.process = subprocess.Popen(
            argv,
            env=env,
            cwd=self.path(settings["WorkingDirectory"]),
            user=int(settings["User"]),
            group=int(settings["Group"]),
            extra_groups=groups,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log_file.close()
        log.info("VM %s at %s: started %s as uid %s", self.id, self.address, name, settings["User"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        log.info("VM %s: stopped", self.id)


class Agent:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.conn = openstack.connect(cloud=args.cloud)
        self.vms_dir = Path(args.dir)
        self.ports_dir = Path(args.ports)
        self.vms: dict[str, VM] = {}
        self.refused: set[str] = set()
        self.next_address = 0

    def servers(self) -> list[dict]:
        answer = self.conn.compute.get("/servers/detail?all_tenants=1", microversion="2.3")
        answer.raise_for_status()
        return answer.json()["servers"]

    def check(self, user_data: str, workdir: Path) -> None:
        """cloud-init's schema check and systemd's unit check; ValueError with their output."""
        if self.args.cloud_init:
            (workdir / "user-data").write_text(user_data)
            lib = next(Path(self.args.cloud_init).glob("usr/lib/python3*/dist-packages"))
            result = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "from cloudinit.cmd.main import main; main()",
                    "schema",
                    "--config-file",
                    str(workdir / "user-data"),
                ],
                env={**os.environ, "PYTHONPATH": str(lib)},
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise ValueError(f"cloud-init schema: {result.stdout}{result.stderr}")
        for entry in yaml.safe_load(user_data).get("write_files", []):
            if entry["path"].endswith(".service"):
                unit = workdir / Path(entry["path"]).name
                unit.write_text(entry["content"])
                result = subprocess.run(
                    ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
                )
                if result.returncode != 0:
                    raise ValueError(f"systemd-analyze verify: {result.stdout}{result.stderr}")

    def boot(self, server: dict) -> None:
        text = base64.b64decode(server.get("OS-EXT-SRV-ATTR:user_data") or "").decode()
        if not text.startswith("#cloud-config"):
            log.info("VM %s has no cloud-config: nothing to boot", server["id"])
            self.refused.add(server["id"])
            return
        self.next_address += 1
        address = f"{SUBNET}.{self.next_address // 250}.{self.next_address % 250 + 1}"
        vm = VM(server["id"], address, self.vms_dir)
        vm.dir.mkdir(parents=True, exist_ok=True)
        vm.dir.chmod(0o755)
        vm.root.mkdir(mode=0o755, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=vm.dir) as workdir:
            try:
                self.check(text, Path(workdir))
            except ValueError as err:
                log.error("VM %s does not boot: %s", server["id"], err)
                (vm.dir / "boot-error.txt").write_text(str(err))
                self.refused.add(server["id"])
                return
        config = yaml.safe_load(text)
        (vm.dir / "boot.json").write_text(json.dumps({key: config.get(key) for key in ("bootcmd", "mounts", "runcmd")}))
        (self.ports_dir / f"{server['id']}.json").write_text(json.dumps({"ip_address": address}))
        self.vms[server["id"]] = vm
        try:
            vm.write_files(config.get("write_files", []))
            for argv in config.get("runcmd", []):
                vm.run(argv)
        except Exception as err:
            log.exception("VM %s failed to boot", server["id"])
            (vm.dir / "boot-error.txt").write_text(str(err))

    def end(self, server_id: str) -> None:
        vm = self.vms.pop(server_id)
        vm.stop()
        (self.ports_dir / f"{server_id}.json").unlink(missing_ok=True)

    def step(self) -> None:
        active = {server["id"]: server for server in self.servers() if server["status"] == "ACTIVE"}
        for server_id in set(self.vms) - set(active):
            self.end(server_id)
        for server_id, server in active.items():
            if server_id not in self.vms and server_id not in self.refused:
                self.boot(server)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while True:
                try:
                    self.step()
                except Exception as err:  # the cloud restarting: keep the VMs, try again
                    log.warning("listing servers failed: %s", err)
                time.sleep(self.args.interval)
        finally:
            for server_id in list(self.vms):
                self.end(server_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cloud", required=True)
    parser.add_argument("--dir", required=True, help="where each VM's root, boot record and log go")
    parser.add_argument("--ports", required=True, help="the Neutron stand-in's ports directory")
    parser.add_argument("--cloud-init", default="", help="Debian's cloud-init package, unpacked")
    parser.add_argument("--interval", type=float, default=0.5)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    Agent(parser.parse_args()).run()


if __name__ == "__main__":
    main()
