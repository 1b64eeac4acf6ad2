#!/usr/bin/env bash
# Put this machine back to what a fresh Debian 12 machine is, as far as this project goes: remove every
# process, package, user, group, venv, node module, spool, cache and file that tests/setup.sh, the
# Slurm, Kubernetes and OpenStack test clusters, the demo, the tests and the benchmarks create.  Then
#     bash tests/fresh.sh && bash .ci/run
# shows what CI sees on a new machine: a missing install step or an order dependence fails there,
# not after the next machine change.  As root; it asks nothing.
#   --keep-packages   keep the Debian packages (Slurm, munge, sudo, Chromium, etcd, containerd, Go, RabbitMQ, Erlang),
#                     the Kubernetes cache (binaries, the notebook and hub images' root filesystems) and the OpenStack
#                     venv: faster, a little less fresh
#   DAAS_PREFIX, DAAS_SLURM_DIR, DAAS_TEST_ARTIFACTS, DAAS_K8S_DIR, DAAS_K8S_CACHE, DAAS_OS_DIR, DAAS_OS_CACHE, DAAS_OS_VMS: as for
#                     the scripts that made them
set -euo pipefail

PREFIX=${DAAS_PREFIX:-/opt/jupyterhub-daas}
SLURM_DIR=${DAAS_SLURM_DIR:-/var/tmp/daas-slurm}
ARTIFACTS=${DAAS_TEST_ARTIFACTS:-/tmp/daas-test-artifacts}
K8S_DIR=${DAAS_K8S_DIR:-/var/tmp/daas-k8s}
K8S_CACHE=${DAAS_K8S_CACHE:-/var/cache/daas-kubernetes}
OS_DIR=${DAAS_OS_DIR:-/var/tmp/daas-openstack}
OS_CACHE=${DAAS_OS_CACHE:-/var/cache/daas-openstack}
OS_VMS=${DAAS_OS_VMS:-/var/tmp/daas-openstack-vms}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KEEP_PACKAGES=0
for arg in "$@"; do
    case $arg in
        --keep-packages) KEEP_PACKAGES=1 ;;
        *) echo "usage: $0 [--keep-packages]" >&2; exit 2 ;;
    esac
done
[[ $(id -u) -eq 0 ]] || { echo "fresh.sh: run as root" >&2; exit 1; }
say() { echo "[fresh.sh] $*"; }

# Accounts: the test cluster's users and slurmrestd's, the demo's service user, the unprivileged test hub's, the benchmarks' users.
ACCOUNTS=(alice bob carol daas-demo daas-hub slurmrest)
while IFS=: read -r name _; do
    [[ $name =~ ^(bench|scale)[0-9]+$ ]] && ACCOUNTS+=("$name")
done </etc/passwd
# Packages the project's scripts install that a fresh Debian image does not have (their dependencies go by autoremove).
PACKAGE_PATTERNS=('slurm*' 'libslurm*' 'munge' 'libmunge*' 'chromium*' 'sudo'
    'tigervnc-*' dbus-x11 'xfce4-*' xfwm4 xfdesktop4 'xfdesktop4-*' environment-modules
    etcd-server containerd runc containernetworking-plugins mmdebstrap umoci conntrack 'golang-1.19*'
    golang-github-modern-go-reflect2-dev rabbitmq-server 'erlang-*' 'postgresql*')

# 1. Processes: the cluster (it cancels its jobs first), then whatever a test, demo or benchmark left.
if command -v slurmctld >/dev/null && [[ -f $REPO/tests/cluster/slurm.sh ]]; then
    DAAS_SLURM_DIR=$SLURM_DIR bash "$REPO/tests/cluster/slurm.sh" stop || true
fi
if [[ -f $REPO/tests/cluster/kubernetes.sh ]]; then
    DAAS_K8S_DIR=$K8S_DIR bash "$REPO/tests/cluster/kubernetes.sh" stop || true
fi
if [[ -f $REPO/tests/cluster/openstack.sh ]]; then
    DAAS_OS_DIR=$OS_DIR DAAS_OS_CACHE=$OS_CACHE bash "$REPO/tests/cluster/openstack.sh" stop || true
fi
if [[ -f $REPO/tests/cluster/postgres.sh ]] && command -v runuser >/dev/null; then
    bash "$REPO/tests/cluster/postgres.sh" stop || true
fi
for account in "${ACCOUNTS[@]}"; do
    id "$account" >/dev/null 2>&1 && pkill -KILL -u "$account" 2>/dev/null || true
done
pkill -KILL -f "containerd-shim-runc-v2 -namespace k8s.io" 2>/dev/null || true
# The OpenStack cloud's services (its venv), its Neutron stand-in and RabbitMQ's Erlang VM (its arguments name
# $OS_DIR); epmd by name below (Debian's rabbitmq-server install starts nothing without systemd, but any Erlang
# program leaves an epmd behind).
for pattern in "$K8S_CACHE/bin/" "containerd --config $K8S_DIR/" "etcd --name daas-test" "$OS_CACHE/venv/" \
    "tests/cluster/openstack_network.py" "$OS_DIR/"; do
    pkill -KILL -f -- "$pattern" 2>/dev/null || true
done
for pattern in slurmctld slurmd slurmstepd slurmrestd munged configurable-http-proxy epmd; do
    pkill -KILL -x "$pattern" 2>/dev/null || true
done
for pattern in "$PREFIX/" "tests/oidc/provider.mjs" "jupyterhub_config.py"; do
    pkill -KILL -f -- "$pattern" 2>/dev/null || true
done
for _ in $(seq 50); do
    pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || pgrep -f -- "$PREFIX/" >/dev/null || break
    sleep 0.1
done

# 2. Accounts and groups (homes and mail spools with them).
for account in "${ACCOUNTS[@]}"; do
    if id "$account" >/dev/null 2>&1; then
        userdel --remove "$account" 2>/dev/null || userdel "$account"
        say "removed user $account"
    fi
    rm -rf "/home/$account"
done
while IFS=: read -r name _; do
    # per-proposal groups (tests, demo) and the groups the accounts above had
    if [[ $name =~ ^daas-p ]] || printf '%s\n' "${ACCOUNTS[@]}" | grep -qx -- "$name"; then
        groupdel "$name" && say "removed group $name"
    fi
done < <(cat /etc/group)

# 3. Packages (their configuration, users and state with them).
if ((!KEEP_PACKAGES)); then
    installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGE_PATTERNS[@]}" 2>/dev/null |
        awk '$NF == "installed" || $NF == "config-files" {print $1}' || true)
    if [[ -n $installed ]]; then
        say "purging $(wc -w <<<"$installed") package(s): $(tr '\n' ' ' <<<"$installed")"
        # shellcheck disable=SC2086
        # sudo refuses to go without SUDO_FORCE_REMOVE: root needs no sudo, and setup.sh brings it back
        DEBIAN_FRONTEND=noninteractive SUDO_FORCE_REMOVE=yes apt-get purge -y -q $installed >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get autoremove --purge -y -q >/dev/null
    fi
    for account in slurm munge rabbitmq postgres; do
        id "$account" >/dev/null 2>&1 && userdel "$account" && say "removed user $account"
        getent group "$account" >/dev/null && groupdel "$account" && say "removed group $account"
    done
    rm -rf /etc/slurm /etc/munge /var/lib/munge /var/log/munge /run/munge /var/lib/slurm /var/log/slurm \
        /var/spool/slurmd /var/spool/slurmctld /var/lib/rabbitmq /var/log/rabbitmq /etc/rabbitmq \
        /etc/postgresql /var/lib/postgresql /var/log/postgresql
fi

# The Kubernetes test cluster's network: the pods' bridge, and the chains its CNI plugins (CNI-*), the kubelet and
# kube-proxy (KUBE-*: Services, NodePorts, masquerading) added, with the rules that jump to them. Each table is
# written back without them in one iptables-restore, the machine's own rules as they were.
ip link show daas-k8s0 >/dev/null 2>&1 && ip link delete daas-k8s0 && say "removed bridge daas-k8s0"
for family in iptables ip6tables; do
    command -v "$family-save" >/dev/null || continue
    for table in nat filter mangle; do
        rules=$("$family-save" -t "$table" 2>/dev/null) || continue
        grep -qE '(CNI|KUBE)-' <<<"$rules" || continue
        grep -vE '^:(CNI|KUBE)-|^-A (CNI|KUBE)-| -[jg] (CNI|KUBE)-' <<<"$rules" | "$family-restore" -T "$table" &&
            say "removed the test cluster's $family chains from table $table"
    done
done
# kube-proxy lets NodePorts answer on 127.0.0.1; Debian's default is off.
[[ -e /proc/sys/net/ipv4/conf/all/route_localnet ]] && sysctl -qw net.ipv4.conf.all.route_localnet=0
# The kubelet's volume mounts and containerd's overlay mounts, then their directories.
{ findmnt -rn -o TARGET | grep -E "^($K8S_DIR|/run/daas-containerd)(/|$)" || true; } | sort -r | while read -r target; do
    umount -l "$target" 2>/dev/null || true
done
rm -rf "$K8S_DIR" /run/daas-containerd
((KEEP_PACKAGES)) || rm -rf "$K8S_CACHE" /etc/apt/sources.list.d/daas-bookworm-src.sources
# The OpenStack cloud: databases, configuration, passwords, RabbitMQ's data and home, the boot agent's VMs; the
# venv and the unpacked cloud-init unless kept.
rm -rf "$OS_DIR" "$OS_VMS"
((KEEP_PACKAGES)) || rm -rf "$OS_CACHE"

# 4. Files: install prefix, cluster scratch, demo state and data, test and benchmark output, caches.
rm -rf "$PREFIX" "$SLURM_DIR" "${DAAS_POSTGRES_DIR:-/var/tmp/daas-postgres}" "$ARTIFACTS" /var/lib/jupyterhub-daas-demo /srv/daas-demo-data /var/lib/daas-dask
rm -rf /tmp/daas-* /tmp/pytest-of-* /tmp/dask-scratch-space*
rm -rf /root/.cache/pip /root/.cache/dconf /root/.config/chromium /root/.npm/_cacache
say "done: this machine is back to a fresh Debian as far as jupyterhub-daas goes"
