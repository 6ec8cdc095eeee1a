#!/usr/bin/env bash
# Fill wheelhouse/<image>/ with every wheel an image installs, for an offline build.
#
#   scripts/wheelhouse.sh IMAGE            # IMAGE: cpu, vllm-cpu, hf, hf-bnb, hf-flash, hf-legacy,
#                                          #        vllm, vllm-awq, awq-quantize
#   scripts/wheelhouse.sh IMAGE --clean    # empty the folder first
#
# Reads images/<lock>/constraints.txt (the whole closure, exact pins) and runs `pip download
# --no-deps` for CPython 3.11 / manylinux x86_64 wheels, so no resolution happens here and the
# result is exactly the lock. Packages that ship only an sdist (lines tagged `# sdist` in
# requirements.txt: rouge-score, autoawq) are downloaded and built into wheels here, so the image
# build needs no build backend from an index. Packages tagged `# build-against-torch`
# (flash-attn) cannot be built without CUDA: put their prebuilt wheel into the folder yourself;
# the script says so.
#
# The Dockerfile bind-mounts the folder; with wheels in it the build uses --no-index, so
# `NETWORK=none docker buildx bake IMAGE` works. wheelhouse/ is git-ignored.
#
# Which index: the CPU images (cpu, vllm-cpu) want torch==2.13.0+cpu, which is not on PyPI: pip's own
# configuration (pip.conf, PIP_FIND_LINKS, PIP_EXTRA_INDEX_URL, e.g. PyTorch's CPU wheel index)
# must provide it, so for them pip runs with the caller's configuration. For the GPU images the
# caller's configuration is ignored (PIP_CONFIG_FILE=/dev/null) unless SUMBENCH_PIP_KEEP_CONFIG=1,
# so that a local CPU torch cannot stand in for the CUDA build; the torch wheel is checked either way.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PIP=(${SUMBENCH_PIP:-python3 -m pip})

log() { printf '[wheelhouse] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# -ge 1 ] || die "usage: scripts/wheelhouse.sh IMAGE [--clean]"
image="$1"
clean=0
[ "${2:-}" = "--clean" ] && clean=1

# Lock dir: images/<image>/ or a stage dir named <image> (images/vllm-awq/awq-quantize/).
lock=""
for d in "$ROOT/images/$image" "$ROOT"/images/*/"$image"; do
  if [ -f "$d/constraints.txt" ]; then lock="$d"; break; fi
done
[ -n "$lock" ] || die "no constraints.txt for image '$image' under images/"
dest="$ROOT/wheelhouse/$image"
[ "$clean" -eq 1 ] && rm -rf "$dest"
mkdir -p "$dest"

# Every manylinux tag a Debian 12 base (glibc 2.36) accepts. pip does not widen
# `--platform manylinux_2_X` to older glibc levels, so each one is listed (the CUDA 13
# nvidia-* wheels, for one, are tagged manylinux_2_25 only).
platform_args=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311)
for ((glibc = 36; glibc >= 5; glibc--)); do
  platform_args+=(--platform "manylinux_2_${glibc}_x86_64")
done
platform_args+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64
  --platform manylinux1_x86_64 --platform linux_x86_64)

# A CPU image (cpu, vllm-cpu) is one whose lock pins the +cpu torch build.
cpu_torch=0
grep -q '^torch==.*+cpu' "$lock/constraints.txt" && cpu_torch=1

pip_env=()
if [ "$cpu_torch" -eq 0 ] && [ "${SUMBENCH_PIP_KEEP_CONFIG:-0}" != "1" ]; then
  pip_env=(env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null)
fi

# Split the lock: binary wheels / sdists to build / wheels that must be supplied.
mapfile -t tagged < <(sed -n -E 's/^([A-Za-z0-9_.-]+)[^#]*#.*\b(sdist|build-against-torch)\b.*/\1 \2/p' "$lock/requirements.txt")
canon() { echo "$1" | tr 'A-Z_.' 'a-z--'; }
kind_of() {
  local n t
  for t in "${tagged[@]}"; do
    n="${t% *}"
    if [ "$(canon "$n")" = "$(canon "$1")" ]; then echo "${t#* }"; return; fi
  done
  echo binary
}
binary=() sdists=() supplied=()
while IFS= read -r line; do
  line="${line%%#*}"
  line="$(echo "$line" | tr -d '[:space:]')"
  case "$line" in *==*) ;; *) continue ;; esac
  case "$(kind_of "${line%%==*}")" in
    sdist) sdists+=("$line") ;;
    build-against-torch) supplied+=("$line") ;;
    *) binary+=("$line") ;;
  esac
done <"$lock/constraints.txt"

start=$SECONDS
log "$image: ${#binary[@]} wheels, ${#sdists[@]} sdists to build, into ${dest#"$ROOT"/}"
req="$(mktemp)"
trap 'rm -f "$req"' EXIT
printf '%s\n' "${binary[@]}" >"$req"
"${pip_env[@]}" "${PIP[@]}" download --quiet --no-deps --dest "$dest" "${platform_args[@]}" -r "$req"

for s in "${sdists[@]}"; do
  name="${s%%==*}" ver="${s#*==}"
  if ls "$dest"/"$(echo "$name" | tr '-' '_')"-"$ver"-*.whl >/dev/null 2>&1; then continue; fi
  log "building a wheel from the sdist of $s"
  "${pip_env[@]}" "${PIP[@]}" wheel --quiet --no-deps --wheel-dir "$dest" "$s"
done
rm -f "$dest"/*.tar.gz "$dest"/*.zip

missing=0
for s in "${supplied[@]}"; do
  name="${s%%==*}" ver="${s#*==}"
  if ls "$dest"/"$(echo "$name" | tr '-' '_')"-"$ver"[+-]*.whl >/dev/null 2>&1; then continue; fi
  log "MISSING: $s is built against torch; put its prebuilt cp311 linux_x86_64 wheel into ${dest#"$ROOT"/}/"
  missing=1
done

# The torch build must match the image: +cpu for cpu, never +cpu for a GPU image.
torch_whl="$(ls "$dest"/torch-*.whl 2>/dev/null | head -n 1 || true)"
if [ -n "$torch_whl" ]; then
  case "$(basename "$torch_whl")" in
    *+cpu*) [ "$cpu_torch" -eq 1 ] || die "$(basename "$torch_whl") is a CPU build, but $image needs CUDA" ;;
    *) [ "$cpu_torch" -eq 0 ] || die "$(basename "$torch_whl") is not the +cpu build the $image image needs" ;;
  esac
  log "torch: $(basename "$torch_whl")"
fi

count=$(ls "$dest"/*.whl | wc -l)
log "$image: $count wheels, $(du -sh "$dest" | cut -f1), $((SECONDS - start))s"
exit "$missing"
