#!/bin/sh
# Installs the hub image's software into the root filesystem it runs in, as root: JupyterHub and this
# suite in a venv of Debian's python3, and configurable-http-proxy from npm. docker/hub/Dockerfile runs
# it in debian:bookworm-slim; the tests run the same script in a chroot of an mmdebstrap rootfs, so
# both images hold the same software. Usage: install.sh <repository checkout>
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
SOURCE=${1:?usage: install.sh <repository checkout>}
PREFIX=/opt/jupyterhub-daas
EXTRAS=data,dask,kubernetes                   # pyproject.toml's extras: the services', the Kubernetes backend's
PROXY=configurable-http-proxy@5               # npm
HUB_UID=900                                   # a system account: people's uids start at 1000

list() { grep -v -e '^#' -e '^$' "$HERE/$1"; }
runtime=$(list debian-packages.txt)
build=$(list debian-build-packages.txt)

export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # one package a word
apt-get install -y --no-install-recommends $runtime $build

python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --no-cache-dir "$SOURCE[$EXTRAS]"
npm install --no-audit --no-fund --prefix "$PREFIX/node" "$PROXY"

# On PATH without relying on the image's environment (a hand-made OCI config may carry none).
for command in jupyterhub daas-data daas-dask; do
    ln -sf "$PREFIX/venv/bin/$command" /usr/local/bin/$command
done
ln -sf "$PREFIX/node/node_modules/.bin/configurable-http-proxy" /usr/local/bin/configurable-http-proxy

# shellcheck disable=SC2086
apt-get purge -y --auto-remove $build
rm -rf /var/lib/apt/lists/* /root/.npm /root/.cache

# The hub's account (the chart runs the hub as it); /srv/jupyterhub holds its database.
groupadd --system --gid "$HUB_UID" jupyterhub
useradd --system --uid "$HUB_UID" --gid "$HUB_UID" --home-dir /srv/jupyterhub --shell /usr/sbin/nologin jupyterhub
install -d -o jupyterhub -g jupyterhub /srv/jupyterhub
