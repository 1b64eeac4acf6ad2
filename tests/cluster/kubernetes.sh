#!/usr/bin/env bash
# Start and stop a small, real Kubernetes cluster on this single machine (Debian 12, as root, no systemd).
#
#   bash tests/cluster/kubernetes.sh build|install|start|stop|status|env|hub-image <checkout>
#
# build    Kubernetes v1.20 from Debian bookworm's `kubernetes` source package (its Makefile, GOPATH mode):
#          kube-apiserver, kube-scheduler, kube-controller-manager, kubelet, kube-proxy. Once per machine: the
#          binaries are cached in ${DAAS_K8S_CACHE:-/var/cache/daas-kubernetes}/bin (about 12 minutes on 2 cores);
#          a component missing from the cache is built alone (kube-proxy: a few minutes).
# install  Debian's etcd, containerd, runc, CNI plugins, conntrack, mmdebstrap and umoci.
# start    build and install if needed; the two images the node runs, made without a registry (once):
#          `daas.local/pause:1` (a static pause binary) and `daas.local/notebook:1` (a Debian bookworm rootfs
#          with python3: the tests mount the project's venv into pods read-only, as a site's image would carry
#          its environment); then etcd, the apiserver (static tokens, an audit log of every request), scheduler, controller-manager,
#          containerd, one kubelet (node `node01`, labels daas.io/pool=cpu, two fake `nvidia.com/gpu`
#          advertised in its status) and kube-proxy (iptables mode). Pods get addresses on the bridge daas-k8s0
#          (10.88.0.0/16, the host is 10.88.0.1): a hub on the host reaches pods there and pods reach it at
#          10.88.0.1. Services (10.0.0.0/24) work through kube-proxy's iptables rules, from pods and from the
#          host; NodePorts only on 10.88.0.1. The apiserver listens on all addresses (clients on the host use
#          127.0.0.1) and advertises 10.88.0.1: pods reach it through the `kubernetes` Service (10.0.0.1:443).
#          No cluster DNS: pods find Services by the *_SERVICE_HOST/_PORT variables Kubernetes sets.
# hub-image <checkout>
#          The hub image of helm/jupyterhub-daas without a registry: docker/hub/install.sh run in a chroot of
#          an mmdebstrap bookworm rootfs (cached in the cache directory, keyed by install.sh, its package lists
#          and pyproject.toml), the checkout's suite installed over it each time, wrapped as an OCI image with
#          the Dockerfile's user, working directory and command, and imported as daas.local/hub:<hash of the
#          sources>. Prints the image's name last. Needs the cluster's containerd (start).
# env      Print KUBECONFIG=... for the admin (the tests read it from $DIR/admin.kubeconfig).
#
# State, logs, certificates and the audit log live in ${DAAS_K8S_DIR:-/var/tmp/daas-k8s}.
set -euo pipefail

DIR=${DAAS_K8S_DIR:-/var/tmp/daas-k8s}
CACHE=${DAAS_K8S_CACHE:-/var/cache/daas-kubernetes}
BIN=$CACHE/bin
COMPONENTS=(kube-apiserver kube-scheduler kube-controller-manager kubelet kube-proxy)
PACKAGES=(etcd-server containerd runc containernetworking-plugins mmdebstrap umoci iptables conntrack iproute2 openssl
    curl gcc libc6-dev)
BUILD_PACKAGES=(golang-1.19-go rsync dpkg-dev golang-github-modern-go-reflect2-dev)
API_PORT=6443
ETCD_PORT=12379
ETCD_PEER_PORT=12380
NODE=node01
BRIDGE=daas-k8s0
POD_CIDR=10.88.0.0/16
HOST_IP=10.88.0.1
SERVICE_CIDR=10.0.0.0/24  # the `kubernetes` Service is its first address, 10.0.0.1
CONTAINERD_SOCK=/run/daas-containerd/containerd.sock
IMAGES=(daas.local/pause:1 daas.local/notebook:1)
TIMEOUT=${DAAS_K8S_TIMEOUT:-90}

T0=${EPOCHREALTIME/[.,]/}
elapsed() { local now=${EPOCHREALTIME/[.,]/}; printf '%d.%d' $(((now - T0) / 1000000)) $((((now - T0) / 100000) % 10)); }
say() { echo "[kubernetes.sh $(elapsed)s] $*"; }
die() { echo "[kubernetes.sh] ERROR: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
export DEBIAN_FRONTEND=noninteractive

apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    say "installing ${missing[*]}"
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ---------------------------------------------------------------- build (once per machine)

cmd_build() {
    local missing=() b
    for b in "${COMPONENTS[@]}"; do [[ -x $BIN/$b ]] || missing+=("$b"); done
    if ((!${#missing[@]})); then
        say "Kubernetes binaries cached in $BIN"
        return 0
    fi
    # Debian ships the sources only: add bookworm's deb-src once.
    local sources=/etc/apt/sources.list.d/daas-bookworm-src.sources
    if [[ ! -f $sources ]]; then
        printf '%s\n' "Types: deb-src" "URIs: http://deb.debian.org/debian" "Suites: bookworm" "Components: main" \
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" >"$sources"
        apt-get update -qq
    fi
    apt_install "${BUILD_PACKAGES[@]}"
    mkdir -p "$CACHE/src" "$BIN"
    local src
    src=$(find "$CACHE/src" -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
    if [[ -z $src ]]; then
        (cd "$CACHE/src" && apt-get source -qq kubernetes >/dev/null)
        src=$(find "$CACHE/src" -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
    fi
    [[ -n $src ]] || die "apt-get source kubernetes gave no source tree"
    # v1.20 vendors reflect2 1.0.1, whose unsafe map iteration crashes under Go >= 1.18 (the apiserver dies
    # with "fatal error: fault" in mapiternext while it encodes JSON); Debian's 1.0.2 has the fix.
    rsync -a --delete --exclude BUILD /usr/share/gocode/src/github.com/modern-go/reflect2/ \
        "$src/vendor/github.com/modern-go/reflect2/"
    # Only what the cache lacks: a component added later does not rebuild the others.
    say "building ${missing[*]} from $src (about 12 minutes on 2 cores for all)"
    (cd "$src" && PATH=/usr/lib/go-1.19/bin:$PATH CGO_ENABLED=0 GOFLAGS= \
        make WHAT="$(printf 'cmd/%s ' "${missing[@]}")" >"$CACHE/build.log" 2>&1) ||
        { tail -30 "$CACHE/build.log" >&2; die "the Kubernetes build failed ($CACHE/build.log)"; }
    for b in "${missing[@]}"; do install -m 0755 "$src/_output/bin/$b" "$BIN/$b"; done
    rm -rf "$src/_output"
    say "built: $("$BIN/kube-apiserver" --version)"
}

# ---------------------------------------------------------------- images (no registry)

ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# Wrap a root filesystem tarball as an OCI image and import it into containerd as $name.
import_image() {
    local name=$1 rootfs_tar=$2 entry=$3 work
    work=$(mktemp -d "$DIR/image.XXXXXX")
    umoci init --layout "$work/oci" >/dev/null
    umoci new --image "$work/oci:1" >/dev/null
    umoci unpack --rootless --image "$work/oci:1" "$work/bundle" >/dev/null
    tar -xf "$rootfs_tar" -C "$work/bundle/rootfs"
    umoci repack --image "$work/oci:1" "$work/bundle" >/dev/null
    umoci config --image "$work/oci:1" --config.entrypoint "$entry" >/dev/null
    (cd "$work/oci" && tar -cf "$work/image.tar" .)
    ctr_ images import --base-name "${name%:*}" --digests "$work/image.tar" >/dev/null
    rm -rf "$work"
}

build_images() {
    local have
    have=$(ctr_ images list -q 2>/dev/null || true)
    if ! grep -qx "daas.local/pause:1" <<<"$have"; then
        say "making image daas.local/pause:1"
        local work
        work=$(mktemp -d "$DIR/pause.XXXXXX")
        printf '%s\n' '#include <signal.h>' '#include <unistd.h>' 'static void quit(int s) { (void)s; _exit(0); }' \
            'int main(void) { signal(SIGINT, quit); signal(SIGTERM, quit); for (;;) pause(); }' >"$work/pause.c"
        mkdir -p "$work/root"
        gcc -static -O2 -o "$work/root/pause" "$work/pause.c"
        tar -C "$work/root" -cf "$work/rootfs.tar" pause
        import_image daas.local/pause:1 "$work/rootfs.tar" /pause
        rm -rf "$work"
    fi
    if ! grep -qx "daas.local/notebook:1" <<<"$have"; then
        say "making image daas.local/notebook:1 (Debian bookworm rootfs with python3)"
        local tarball=$CACHE/notebook-rootfs.tar
        if [[ ! -s $tarball ]]; then
            mmdebstrap --quiet --format=tar --variant=apt --include=python3,ca-certificates bookworm "$tarball.tmp" >/dev/null
            mv "$tarball.tmp" "$tarball"
        fi
        import_image daas.local/notebook:1 "$tarball" /usr/bin/python3
    fi
}

# ---------------------------------------------------------------- the hub image (helm/jupyterhub-daas)

HUB_IMAGE=daas.local/hub
HUB_PREFIX=/opt/jupyterhub-daas
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin  # debian:bookworm-slim's

# What docker/hub/Dockerfile copies into the image (its COPY sources): both builds take the same files.
hub_sources() {
    awk '$1 == "COPY" { for (i = 2; i < NF; i++) print $i }' "$1/docker/hub/Dockerfile"
}

copy_hub_sources() {
    local checkout=$1 target=$2 sources
    mapfile -t sources < <(hub_sources "$checkout")
    mkdir -p "$target"
    tar -C "$checkout" --exclude=__pycache__ -cf - "${sources[@]}" | tar -C "$target" -xf -
}

# The Dockerfile's USER, WORKDIR, EXPOSE and CMD (and debian:bookworm-slim's PATH) as `umoci config` options.
hub_image_config() {
    python3 - "$1/docker/hub/Dockerfile" "$IMAGE_PATH" <<'EOF'
import json
import sys

options = [f"--config.env=PATH={sys.argv[2]}"]
for line in open(sys.argv[1]):
    instruction, _, argument = line.strip().partition(" ")
    if instruction == "USER":
        options.append(f"--config.user={argument}")
    elif instruction == "WORKDIR":
        options.append(f"--config.workingdir={argument}")
    elif instruction == "EXPOSE":
        options += [f"--config.exposedports={port}/tcp" for port in argument.split()]
    elif instruction == "CMD":
        options += [f"--config.cmd={word}" for word in json.loads(argument)]
print("\n".join(options))
EOF
}

# The slow part, cached: a bookworm rootfs in which docker/hub/install.sh ran (Debian packages, the venv with the
# suite's dependencies, configurable-http-proxy, the hub's account), with the suite itself uninstalled again and
# its build backend added, so each image only installs the checkout's suite (no network). Keyed by install.sh,
# its package lists and pyproject.toml; prints the tarball's path.
hub_base() {
    local checkout=$1 key tarball work requires
    key=$(cat "$checkout/docker/hub/install.sh" "$checkout"/docker/hub/*.txt "$checkout/pyproject.toml" | sha256sum)
    tarball=$CACHE/hub-base-${key:0:16}.tar
    if [[ ! -s $tarball ]]; then
        say "making the hub image's base: install.sh in an mmdebstrap bookworm chroot (a few minutes)" >&2
        mkdir -p "$CACHE"
        rm -rf "$CACHE"/hub-base.*/  # a failed build's (kept for its log until now)
        work=$(mktemp -d "$CACHE/hub-base.XXXXXX")
        copy_hub_sources "$checkout" "$work/src"
        requires=$(python3 -c 'import shlex, sys, tomllib
print(shlex.join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]))' "$checkout/pyproject.toml")
        # mmdebstrap mounts /proc, /sys and /dev for the hooks and gives the chroot the host's resolv.conf. The
        # chroot gets none of the host's environment (its pip settings), except that pip and npm reach their
        # registries with the host's CA certificates (a machine behind a TLS-inspecting proxy trusts its CA
        # there); the image keeps Debian's.
        cp /etc/ssl/certs/ca-certificates.crt "$work/host-ca.crt"
        local ca=/tmp/host-ca.crt trust
        trust="env -i PATH=$IMAGE_PATH HOME=/root PIP_CERT=$ca npm_config_cafile=$ca NODE_EXTRA_CA_CERTS=$ca"
        mmdebstrap --quiet --format=tar --variant=apt \
            --customize-hook="cp -a '$work/src' \"\$1/src\" && cp '$work/host-ca.crt' \"\$1$ca\"" \
            --customize-hook="chroot \"\$1\" $trust sh /src/docker/hub/install.sh /src" \
            --customize-hook="chroot \"\$1\" $HUB_PREFIX/venv/bin/pip uninstall -q -y jupyterhub-daas" \
            --customize-hook="chroot \"\$1\" $trust $HUB_PREFIX/venv/bin/pip install -q --no-cache-dir $requires" \
            --customize-hook="rm -rf \"\$1/src\" \"\$1/root/.cache\" \"\$1$ca\"" \
            bookworm "$work/rootfs.tar" >"$work/build.log" 2>&1 ||
            { tail -30 "$work/build.log" >&2; die "the hub image's base failed ($work/build.log)"; }
        find "$CACHE" -maxdepth 1 -name 'hub-base-*.tar' -delete  # an older key's
        mv "$work/rootfs.tar" "$tarball"
        rm -rf "$work"
    fi
    echo "$tarball"
}

cmd_hub_image() {
    local checkout=${1:?usage: $0 hub-image <repository checkout>}
    checkout=$(cd "$checkout" && pwd)
    cmd_install
    local base tag name work sources config
    base=$(hub_base "$checkout")
    mapfile -t sources < <(hub_sources "$checkout")
    tag=$({ echo "$base"; tar -C "$checkout" --exclude=__pycache__ --sort=name --mtime=@0 --owner=0 --group=0 \
        --numeric-owner -cf - "${sources[@]}"; } | sha256sum)
    tag=${tag:0:12}
    name=$HUB_IMAGE:$tag
    test -S "$CONTAINERD_SOCK" || die "containerd is not running: start the cluster first"
    if ! grep -qx "$name" <<<"$(ctr_ images list -q)"; then
        say "making image $name" >&2
        mkdir -p "$DIR"
        rm -rf "$DIR"/hub-image.*/  # a failed build's
        work=$(mktemp -d "$DIR/hub-image.XXXXXX")
        mkdir "$work/rootfs"
        tar -C "$work/rootfs" -xf "$base"
        copy_hub_sources "$checkout" "$work/rootfs/src"
        chroot "$work/rootfs" "$HUB_PREFIX/venv/bin/pip" install -q --no-cache-dir --no-deps --no-build-isolation /src \
            >"$work/pip.log" 2>&1 || { cat "$work/pip.log" >&2; die "installing the suite into the hub image failed"; }
        rm -rf "$work/rootfs/src" "$work/rootfs/root/.cache"
        tar -C "$work/rootfs" --numeric-owner -cf "$work/layer.tar" .
        umoci init --layout "$work/oci" >/dev/null
        umoci new --image "$work/oci:$tag" >/dev/null
        umoci raw add-layer --image "$work/oci:$tag" "$work/layer.tar" >/dev/null
        mapfile -t config < <(hub_image_config "$checkout")
        umoci config --image "$work/oci:$tag" "${config[@]}" >/dev/null
        (cd "$work/oci" && tar -cf "$work/image.tar" .)
        ctr_ images import --base-name "$HUB_IMAGE" --digests "$work/image.tar" >/dev/null
        rm -rf "$work"
        # Earlier checkouts' images (containerd drops their layers once no container uses them).
        local old
        for old in $(ctr_ images list -q | grep "^$HUB_IMAGE:" | grep -vx "$name"); do ctr_ images rm "$old" >/dev/null; done
    fi
    say "hub image $name" >&2
    echo "$name"
}

# ---------------------------------------------------------------- configuration

write_pki() {
    local pki=$DIR/pki
    [[ -s $pki/apiserver.crt && -s $pki/sa.key ]] && return 0
    mkdir -p "$pki"
    chmod 700 "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=daas-test-ca" \
        -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
        -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:%s,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default\n' \
        "$HOST_IP" >"$pki/san.ext"
    openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
        -days 3650 -extfile "$pki/san.ext" -out "$pki/apiserver.crt" 2>/dev/null
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# Static bearer tokens for the control plane's own clients and the test admin (kept in $DIR, root only). A client
# added since the file was written (kube-proxy) gets its token at the next start; the others keep theirs.
write_tokens() {
    local file=$DIR/tokens.csv entry kubeconfig user uid groups token
    touch "$file"
    chmod 600 "$file"
    for entry in "admin daas-test-admin 1 system:masters" "kubelet system:node:$NODE 2 system:nodes" \
        "scheduler system:kube-scheduler 3" "controller-manager system:kube-controller-manager 4" \
        "kube-proxy system:kube-proxy 5"; do
        read -r kubeconfig user uid groups <<<"$entry"
        token=$(awk -F, -v user="$user" '$2 == user {print $1}' "$file")
        if [[ -z $token ]]; then
            token=$(openssl rand -hex 24)
            echo "$token,$user,$uid${groups:+,$groups}" >>"$file"
        fi
        [[ -s $DIR/$kubeconfig.kubeconfig ]] || write_kubeconfig "$kubeconfig" "$token"
    done
}

write_kubeconfig() {
    local name=$1 token=$2 file=$DIR/$1.kubeconfig
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: daas-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $DIR/pki/ca.crt
users:
- name: $name
  user:
    token: $token
contexts:
- name: $name
  context: {cluster: daas-test, user: $name}
current-context: $name
EOF
    chmod 600 "$file"
}

# Every request at Metadata level: the tests count the hub's calls by verb and resource.
write_audit_policy() {
    cat >"$DIR/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
EOF
}

write_node_config() {
    mkdir -p "$DIR/cni/net.d" "$DIR/containerd" "$DIR/kubelet"
    # Pods reach the bridge's subnet directly and Service IPs through the host (kube-proxy's rules); no other route.
    cat >"$DIR/cni/net.d/10-daas.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "daas-pods", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$HOST_IP"}]],
            "routes": [{"dst": "$SERVICE_CIDR", "gw": "$HOST_IP"}], "dataDir": "$DIR/cni/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
    cat >"$DIR/containerd/config.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "/run/daas-containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "daas.local/pause:1"
  # The kubelet asks for oom_score_adj -998 for sandboxes, which a VM's sandboxed root may not set
  # ("failed to update /proc/self/oom_score_adj: Permission denied"): keep at containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
EOF
    cat >"$DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
address: $HOST_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
staticPodPath: ""
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
maxPods: 110
EOF
}

# ---------------------------------------------------------------- processes

running() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
pid_of() { local f=$DIR/run/$1.pid; [[ -s $f ]] && running "$(<"$f")" && cat "$f"; }

launch() {
    local name=$1
    shift
    if pid_of "$name" >/dev/null; then return 0; fi
    setsid "$@" >>"$DIR/log/$name.log" 2>&1 </dev/null &
    echo $! >"$DIR/run/$name.pid"
}

wait_for() {
    local what=$1 i
    shift
    for ((i = 0; i < TIMEOUT * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    die "$what did not come up within ${TIMEOUT}s (logs in $DIR/log)"
}

admin_curl() {
    local token
    token=$(awk -F, '$2 == "daas-test-admin" {print $1}' "$DIR/tokens.csv")
    curl -sf --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $token" "$@"
}

api_ready() { admin_curl "https://127.0.0.1:$API_PORT/readyz"; }
node_ready() {
    admin_curl "https://127.0.0.1:$API_PORT/api/v1/nodes/$NODE" |
        python3 -c 'import json,sys; n=json.load(sys.stdin); sys.exit(not any(c["type"]=="Ready" and c["status"]=="True" for c in n["status"]["conditions"]) or bool(n["spec"].get("taints")))'
}
sa_ready() { admin_curl "https://127.0.0.1:$API_PORT/api/v1/namespaces/default/serviceaccounts/default"; }

start_network() {
    ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
    [[ $(ip -4 -o addr show dev "$BRIDGE") == *" $HOST_IP/"* ]] || ip addr add "$HOST_IP/16" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    sysctl -qw net.ipv4.ip_forward=1
    # A pod that reaches another pod on the bridge through a Service IP gets the answer back through the host's
    # iptables (conntrack undoes kube-proxy's DNAT) only if bridged packets pass iptables.
    [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || die "the kernel module br_netfilter is not loaded"
    sysctl -qw net.bridge.bridge-nf-call-iptables=1
}

cmd_start() {
    cmd_build
    cmd_install
    mkdir -p "$DIR/run" "$DIR/log" "$DIR/etcd"
    chmod 700 "$DIR"
    write_pki
    write_tokens
    write_audit_policy
    write_node_config
    start_network
    say "starting etcd, containerd, kube-apiserver"
    launch etcd etcd --name daas-test --data-dir "$DIR/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "daas-test=http://127.0.0.1:$ETCD_PEER_PORT"
    launch containerd containerd --config "$DIR/containerd/config.toml"
    launch kube-apiserver "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 0.0.0.0 --advertise-address "$HOST_IP" --secure-port "$API_PORT" \
        --tls-cert-file "$DIR/pki/apiserver.crt" --tls-private-key-file "$DIR/pki/apiserver.key" \
        --client-ca-file "$DIR/pki/ca.crt" --token-auth-file "$DIR/tokens.csv" \
        --service-account-key-file "$DIR/pki/sa.pub" --service-account-signing-key-file "$DIR/pki/sa.key" \
        --service-account-issuer https://kubernetes.default.svc \
        --service-cluster-ip-range "$SERVICE_CIDR" --authorization-mode Node,RBAC \
        --enable-admission-plugins NodeRestriction,ResourceQuota,LimitRanger,ServiceAccount \
        --kubelet-preferred-address-types InternalIP --allow-privileged=false \
        --audit-policy-file "$DIR/audit-policy.yaml" --audit-log-path "$DIR/log/audit.log" \
        --audit-log-format json --audit-log-maxsize 200
    wait_for "kube-apiserver" api_ready
    say "kube-apiserver ready; starting scheduler, controller-manager, kube-proxy, kubelet"
    launch kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$DIR/scheduler.kubeconfig" \
        --authentication-kubeconfig "$DIR/scheduler.kubeconfig" --authorization-kubeconfig "$DIR/scheduler.kubeconfig" \
        --bind-address 127.0.0.1 --port 0 --leader-elect=false
    launch kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$DIR/controller-manager.kubeconfig" \
        --authentication-kubeconfig "$DIR/controller-manager.kubeconfig" \
        --authorization-kubeconfig "$DIR/controller-manager.kubeconfig" \
        --bind-address 127.0.0.1 --port 0 --leader-elect=false \
        --service-account-private-key-file "$DIR/pki/sa.key" --root-ca-file "$DIR/pki/ca.crt" \
        --controllers '*,-nodeipam' --node-monitor-grace-period 20s --use-service-account-credentials
    # Services: iptables rules for every Service IP and NodePort (NodePorts on the bridge's address only).
    # Connection-tracking limits stay the kernel's (0: do not set them).
    launch kube-proxy "$BIN/kube-proxy" --kubeconfig "$DIR/kube-proxy.kubeconfig" --hostname-override "$NODE" \
        --proxy-mode iptables --cluster-cidr "$POD_CIDR" --nodeport-addresses "$HOST_IP/32" \
        --healthz-bind-address 127.0.0.1:10256 --metrics-bind-address 127.0.0.1:10249 \
        --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0
    wait_for "containerd" test -S "$CONTAINERD_SOCK"
    build_images
    launch kubelet "$BIN/kubelet" --kubeconfig "$DIR/kubelet.kubeconfig" --config "$DIR/kubelet/config.yaml" \
        --container-runtime remote --container-runtime-endpoint "unix://$CONTAINERD_SOCK" \
        --hostname-override "$NODE" --node-ip "$HOST_IP" --root-dir "$DIR/kubelet/root" \
        --node-labels daas.io/pool=cpu --pod-infra-container-image daas.local/pause:1 --v 1
    wait_for "node $NODE Ready" node_ready
    advertise_gpus
    wait_for "the default service account" sa_ready
    wait_for "kube-proxy's first sync" curl -sf http://127.0.0.1:10256/healthz
    say "cluster ready (KUBECONFIG=$DIR/admin.kubeconfig)"
}

# Extended resources are advertised by patching the node's status: the scheduler counts them like real GPUs.
advertise_gpus() {
    admin_curl -X PATCH -H "Content-Type: application/json-patch+json" \
        --data '[{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": "2"}]' \
        "https://127.0.0.1:$API_PORT/api/v1/nodes/$NODE/status" >/dev/null
}

cmd_install() {
    apt_install "${PACKAGES[@]}"
}

stop_one() {
    local name=$1 pid i
    pid=$(pid_of "$name") || { rm -f "$DIR/run/$name.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do running "$pid" || break; sleep 0.1; done
    running "$pid" && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$DIR/run/$name.pid"
}

cmd_stop() {
    [[ -d $DIR/run ]] || return 0
    say "stopping"
    # Pods first (their containers outlive the kubelet): delete them through the API while it is up.
    if pid_of kube-apiserver >/dev/null && pid_of kubelet >/dev/null; then
        admin_curl -X DELETE "https://127.0.0.1:$API_PORT/api/v1/namespaces/default/pods?gracePeriodSeconds=0" \
            >/dev/null 2>&1 || true
    fi
    local name
    for name in kubelet kube-proxy kube-controller-manager kube-scheduler kube-apiserver; do stop_one "$name"; done
    # The kubelet's containers: stop their shims, then containerd.
    pkill -TERM -f "containerd-shim-runc-v2 -namespace k8s.io" 2>/dev/null || true
    stop_one containerd
    stop_one etcd
    pkill -KILL -f "containerd-shim-runc-v2 -namespace k8s.io" 2>/dev/null || true
    say "stopped"
}

cmd_status() {
    local name
    for name in etcd containerd kube-apiserver kube-scheduler kube-controller-manager kube-proxy kubelet; do
        if pid=$(pid_of "$name"); then echo "$name: running ($pid)"; else echo "$name: stopped"; fi
    done
}

case ${1:-} in
    build) cmd_build ;;
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) echo "KUBECONFIG=$DIR/admin.kubeconfig" ;;
    hub-image) cmd_hub_image "${2:-}" ;;
    *) echo "usage: $0 build|install|start|stop|status|env|hub-image <checkout>" >&2; exit 2 ;;
esac
