"""A site on the real Kubernetes test cluster: profiles, the facility data tree, home volumes, and a real
JupyterHub with the Kubernetes backend (tests/cluster/kubernetes.sh). Test modules share it, each in its own
namespace, and add their own hub settings (services, environment) with `extra_config`.

The hub runs with a service account's token and the Role a site grants it (kubernetes.HUB_RULES); the
tests look with the admin's. The notebook image is a Debian rootfs with python3; the pods mount the
test venv read-only as a site's image would carry its environment. Data: the facility tree of
data_tree.py on the host, mounted into pods as hostPath volumes with the person's uid and groups.
alice has proposal 20231234 (ID11), bob 20230042 (D22), carol none.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .conftest import public_tempdir
from .data_tree import PROPOSALS, make_data_tree
from .hub import Hub
from .kubernetes import DIR, HOST_IP, IMAGE, Kube, admin, cluster, grant_hub, write_kubeconfig

VENV = Path(sys.executable).parent.parent
HOME_CLASS = "daas-home"
CPU = "k8s-cpu"


def profile(profile_id: str, **resources: Any) -> dict[str, Any]:
    return {
        "id": profile_id,
        "display_name": profile_id,
        "backend": "kubernetes",
        "environments": [{"id": "daas", "display_name": "DaaS Python", "prefix": str(VENV)}],
        "kubernetes": {"images": {"daas": IMAGE}, "image_pull_policy": "Never", "cpu_request_ratio": 0.05},
        "resources": {
            "cores": {"presets": {"min": 1, "medium": 2}, "whole_node": True, "max": 2},
            "memory": {"min": "256M", "default": "512M", "max": "4G"},
            "walltime": {"default": "1:00:00", "max": "8:00:00"},
            **resources,
        },
    }


PROFILES = {
    "default_profile": CPU,
    "profiles": [
        profile(CPU),
        profile("k8s-gpu", gpus={"max": 2, "default": 1}),
        profile("k8s-power9", features=["power9"]),
    ],
}


def venv_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """The test venv as a read-only hostPath volume and its mount at the same path in the pod."""
    volume = {"name": "venv", "hostPath": {"path": str(VENV), "type": "Directory"}}
    return volume, {"name": "venv", "mountPath": str(VENV), "readOnly": True}


def remove_release(helm: Any, kube: Kube, release: str, namespace: str, volumes: list[str]) -> None:
    """What an earlier chart install that did not finish left: its release, its namespace, these volumes."""
    helm.uninstall(release, ignore_not_found=True, timeout=60)
    kube.delete(f"/api/v1/namespaces/{namespace}")
    kube.wait("the old namespace to go", lambda: kube.get(f"/api/v1/namespaces/{namespace}") is None, 120)
    for path in [f"/api/v1/persistentvolumes/{name}" for name in volumes]:
        kube.delete(path)
        kube.wait(f"{path} to go", lambda path=path: kube.get(path) is None, 60)


def home_volumes(
    kube: Kube, count: int, storage_class: str = HOME_CLASS, prefix: str = "daas-test-home", directory: str = "home"
) -> list[str]:
    """A StorageClass without a provisioner and `count` host-path volumes of it (`<prefix>-<index>`, on
    $DIR/pv/<directory>-<index>): the homes' claims bind to these. Returns the volumes' names.

    Cluster-wide, so one pool per class for every site with homes (the machine lock runs one at a time);
    a volume's source cannot change once it exists, so each class keeps its names and paths.
    """
    kube.apply(
        "/apis/storage.k8s.io/v1/storageclasses",
        {
            "metadata": {"name": storage_class},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "Immediate",
        },
    )
    names = []
    for index in range(count):
        path = DIR / "pv" / f"{directory}-{index}"
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o1777)
        names.append(f"{prefix}-{index}")
        kube.apply(
            "/api/v1/persistentvolumes",
            {
                "metadata": {"name": names[-1]},
                "spec": {
                    "storageClassName": storage_class,
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Delete",
                    "hostPath": {"path": str(path), "type": "Directory"},
                },
            },
        )
    return names


class KubeSite:
    """The site in `namespace` (deleted first: what an earlier run left). Without `homes`, each server
    gets an empty folder as its home instead of a persistent claim. `extra_config(site)` gives more hub
    settings; it runs once the workdir and the data tree exist, before the hub starts (a service's config
    file can name the data locations)."""

    def __init__(
        self, namespace: str, homes: bool = True, extra_config: Callable[[KubeSite], str] | None = None
    ) -> None:
        self.namespace = namespace
        self.hub_account = f"system:serviceaccount:{namespace}:daas-hub"
        cluster("start")
        subprocess.run(["bash", str(Path(__file__).parents[1] / "cluster" / "slurm.sh"), "users"], check=True)
        self.kube = admin()
        self.kube.delete(f"/api/v1/namespaces/{namespace}")
        self.kube.wait("the old namespace to go", lambda: self.kube.get(f"/api/v1/namespaces/{namespace}") is None, 120)
        self.workdir = workdir = public_tempdir("daas-k8s-")
        self.tree = make_data_tree(workdir / "facility")
        self.data_file = workdir / "data.yaml"
        self.data_file.write_text(self.tree.locations_yaml + "mount_root: /data/proposals\n")
        profiles = workdir / "profiles.yaml"
        profiles.write_text(yaml.safe_dump(PROFILES))
        token = grant_hub(self.kube, namespace)
        kubeconfig = write_kubeconfig(workdir / "hub.kubeconfig", token)
        if homes:
            home_volumes(self.kube, 12)
        venv, venv_mount = venv_volume()
        config = f"""
            from daas_spawner import load_profiles
            from daas_core.mounts import load_data_locations
            c.DaaSSpawner.profiles = load_profiles("{profiles}")
            c.DaaSSpawner.data_locations = load_data_locations("{self.data_file}")
            c.Authenticator.enable_auth_state = True
            c.JupyterHub.hub_ip = "0.0.0.0"
            c.JupyterHub.hub_connect_ip = "{HOST_IP}"
            c.KubernetesBackend.kubeconfig = "{kubeconfig}"
            c.KubernetesBackend.namespace = "{namespace}"
            c.KubernetesBackend.home_storage_class = {HOME_CLASS if homes else None!r}
            c.KubernetesBackend.home_size = "1Gi"
            c.KubernetesBackend.extra_volumes = [{venv!r}]
            c.KubernetesBackend.extra_volume_mounts = [{venv_mount!r}]
            c.JupyterHub.named_server_limit_per_user = 0  # stopped named servers count towards a limit
            c.Spawner.poll_interval = 1
            c.Spawner.start_timeout = 180
        """
        self.hub = Hub(
            workdir / "hub",
            textwrap.dedent(config) + textwrap.dedent(extra_config(self) if extra_config else ""),
            env={"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)},
        ).start()
        self.hub.create_users_with_proposals(PROPOSALS)

    def pods(self) -> list[dict[str, Any]]:
        return self.kube.pods(self.namespace)

    def pod_of(self, name: str, server: str = "") -> dict[str, Any]:
        model = self.hub.server_model(name, server)
        assert model is not None, f"{name}/{server} has no server"
        pod = self.kube.pod(self.namespace, model["state"]["daas"]["state"]["pod"])
        assert pod is not None
        return pod

    def stop_all_servers(self) -> None:
        self.hub.stop_all_servers(PROPOSALS)

    def close(self) -> None:
        self.hub.stop()
        self.kube.delete(f"/api/v1/namespaces/{self.namespace}/pods", gracePeriodSeconds=0)
