#!/usr/bin/env bash
# Private Docker engine + buildx plugin for building sumbench images.
#
#   scripts/docker-engine.sh start   # install if needed, start dockerd, print the export lines
#   scripts/docker-engine.sh env     # print the export lines only
#   scripts/docker-engine.sh status  # exit 0 when the engine answers
#   scripts/docker-engine.sh stop    # stop the engine started by `start` (by its pid)
#
# Typical use (also from .ci/run):   eval "$(scripts/docker-engine.sh start)"
#
# The engine is Debian 12's docker.io (engine 20.10) started by hand, with no bridge
# network and no iptables rules: builds and containers use `--network none` (or host).
# buildx is the docker-buildx CLI plugin from Debian's unstable suite (a static Go binary
# that runs on Debian 12; the stable suites' builds are too old for bake's `network` key),
# fetched with `apt-get download` through a second sources list derived from the Debian
# URI already configured on the machine.
#
# The export lines: DOCKER_HOST, and SUMBENCH_BUILD_NETWORK=none, which docker-bake.hcl reads: this
# engine has no bridge network, so build steps run with network "none" (offline, from the
# wheelhouse; `--set TARGET.network=none` does not take effect with buildx 0.29.1).
#
# Everything lives under SUMBENCH_DOCKER_DIR (default ~/.cache/sumbench-docker): socket,
# data root, exec root, pid file, log, and the cached buildx .deb. Idempotent: running
# `start` again when the engine already answers only prints the export line.
# Progress goes to stderr; stdout carries only the export lines.
set -euo pipefail

STATE_DIR="${SUMBENCH_DOCKER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sumbench-docker}"
SOCK="$STATE_DIR/docker.sock"
PIDFILE="$STATE_DIR/dockerd.pid"
LOG="$STATE_DIR/dockerd.log"
# Oldest buildx accepted: bake's per-target `network` key is needed (see images/README.md).
BUILDX_MIN="0.17"
# Optional exact Debian version of docker-buildx to fetch (e.g. "0.29.1+ds1-1"); default: sid's current.
BUILDX_DEB_VERSION="${SUMBENCH_BUILDX_DEB_VERSION:-}"
START_TIMEOUT="${SUMBENCH_DOCKER_START_TIMEOUT:-90}"

log() { printf '[docker-engine] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    die "need root (or sudo) for: $*"
  fi
}

export_line() {
  printf 'export DOCKER_HOST=unix://%s\n' "$SOCK"
  printf 'export SUMBENCH_BUILD_NETWORK=none\n'
}

engine_up() { DOCKER_HOST="unix://$SOCK" docker info >/dev/null 2>&1; }

engine_pid() {
  local pid
  [ -s "$PIDFILE" ] || return 1
  pid="$(cat "$PIDFILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && printf '%s\n' "$pid"
}

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get update -qq >&2
    apt_updated=1
  fi
}

ensure_engine_installed() {
  if command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; then
    return 0
  fi
  log "installing docker.io (Debian) ..."
  apt_update_once
  # No init system here: keep the package's scripts from trying to start a service.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 0755 "$policy"
    created_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    docker.io >&2 || { [ "$created_policy" -eq 1 ] && as_root rm -f "$policy"; die "apt-get install docker.io failed"; }
  [ "$created_policy" -eq 1 ] && as_root rm -f "$policy"
  command -v dockerd >/dev/null 2>&1 || die "dockerd still missing after installing docker.io"
}

# Print the first configured Debian archive URI (not the security one), e.g. http://HOST/debian.
debian_uri() {
  if [ -n "${SUMBENCH_DEBIAN_URI:-}" ]; then printf '%s\n' "$SUMBENCH_DEBIAN_URI"; return 0; fi
  {
    # deb822 (*.sources): "URIs: a b c"
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] && sed -n 's/^[[:space:]]*URIs:[[:space:]]*//p' "$f" | tr ' ' '\n'
    done
    # one-line format: "deb [opts] URI suite comp..."
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] && sed -n -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' "$f"
    done
  } | sed 's:/*$::' | grep -E '/debian$' | grep -v -- '-security' | head -n 1
}

buildx_ok() {
  local v
  v="$(docker buildx version 2>/dev/null | awk '{print $2}')" || return 1
  [ -n "$v" ] || return 1
  v="${v#v}"
  # version >= BUILDX_MIN ?
  [ "$(printf '%s\n%s\n' "$BUILDX_MIN" "$v" | sort -V | head -n 1)" = "$BUILDX_MIN" ]
}

ensure_buildx() {
  if buildx_ok; then return 0; fi
  local uri arch work plugdir deb
  uri="$(debian_uri)" || true
  [ -n "$uri" ] || die "no Debian archive URI in the apt sources; set SUMBENCH_DEBIAN_URI"
  arch="$(dpkg --print-architecture)"
  work="$STATE_DIR/apt-sid"
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
  deb="$(ls -1 "$work"/debs/docker-buildx_*.deb 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -z "$deb" ]; then
    log "fetching docker-buildx from Debian unstable via $uri ..."
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    printf 'deb [arch=%s signed-by=%s] %s sid main\n' "$arch" "$keyring" "$uri" >"$work/sid.list"
    local -a opts=(
      -o "Dir::Etc::SourceList=$work/sid.list"
      -o "Dir::Etc::SourceParts=/dev/null"
      -o "Dir::State::Lists=$work/lists"
      -o "Dir::Cache=$work/cache"
      -o "APT::Architectures=$arch"
      -o "APT::Sandbox::User=root"
    )
    as_root apt-get "${opts[@]}" update -qq >&2
    (cd "$work/debs" && as_root apt-get "${opts[@]}" download \
      "docker-buildx${BUILDX_DEB_VERSION:+=$BUILDX_DEB_VERSION}" >&2)
    deb="$(ls -1 "$work"/debs/docker-buildx_*.deb 2>/dev/null | sort -V | tail -n 1 || true)"
    [ -n "$deb" ] || die "apt-get download docker-buildx produced no .deb"
    # The sid package lists are ~100 MB and only needed for this one download.
    rm -rf "$work/lists" "$work/cache"
  fi
  rm -rf "$work/x"
  dpkg -x "$deb" "$work/x"
  plugdir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
  mkdir -p "$plugdir"
  install -m 0755 "$work/x/usr/libexec/docker/cli-plugins/docker-buildx" "$plugdir/docker-buildx"
  rm -rf "$work/x"
  buildx_ok || die "docker buildx still not usable after installing $(basename "$deb")"
  log "installed $(docker buildx version 2>/dev/null) into $plugdir"
}

start_engine() {
  if engine_up; then log "engine already answering on $SOCK"; return 0; fi
  if pid="$(engine_pid)"; then
    log "dockerd pid $pid is running but not answering yet; waiting"
  else
    # Unix socket paths are limited to 107 bytes; containerd's lives under the exec root.
    [ "${#SOCK}" -lt 100 ] || die "state dir path too long for a socket: $STATE_DIR (set SUMBENCH_DOCKER_DIR)"
    mkdir -p "$STATE_DIR/root" "$STATE_DIR/exec"
    rm -f "$SOCK" "$PIDFILE"
    log "starting dockerd (log: $LOG)"
    # setsid + nohup: the engine outlives this script and the calling shell.
    as_root setsid nohup dockerd \
      --host "unix://$SOCK" \
      --data-root "$STATE_DIR/root" \
      --exec-root "$STATE_DIR/exec" \
      --pidfile "$PIDFILE" \
      --bridge=none --iptables=false --ip-masq=false \
      >"$LOG" 2>&1 </dev/null &
    disown || true
  fi
  local i
  for ((i = 0; i < START_TIMEOUT; i++)); do
    if engine_up; then
      # A non-root caller (with sudo) should be able to use the socket.
      [ "$(id -u)" -eq 0 ] || as_root chown "$(id -u):$(id -g)" "$SOCK" || true
      log "engine up after ${i}s: $(DOCKER_HOST="unix://$SOCK" docker version --format 'server {{.Server.Version}}, client {{.Client.Version}}' 2>/dev/null)"
      return 0
    fi
    sleep 1
  done
  tail -n 30 "$LOG" >&2 || true
  die "dockerd did not answer within ${START_TIMEOUT}s"
}

stop_engine() {
  local pid i
  if ! pid="$(engine_pid)"; then log "no dockerd running from $STATE_DIR"; return 0; fi
  log "stopping dockerd pid $pid"
  as_root kill -TERM "$pid"
  for ((i = 0; i < 30; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; log "stopped"; return 0; }
    sleep 1
  done
  log "dockerd pid $pid still alive after 30s; sending KILL"
  as_root kill -KILL "$pid" || true
  rm -f "$PIDFILE"
}

cmd="${1:-start}"
case "$cmd" in
  start)
    mkdir -p "$STATE_DIR"
    ensure_engine_installed
    ensure_buildx
    start_engine
    export_line
    ;;
  env) export_line ;;
  status)
    if engine_up; then log "up: $SOCK (pid $(engine_pid || echo '?'))"; else log "down"; exit 1; fi
    ;;
  stop) stop_engine ;;
  -h | --help | help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$cmd' (start|stop|env|status)" ;;
esac
