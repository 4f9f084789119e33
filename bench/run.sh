#!/usr/bin/env bash
# Vestibule's benchmark against nginx and HAProxy, on 127.0.0.1 only.
#
#   bench/run.sh [--quick] [--only STEP]... [--workers N] [--seconds S] [--repeats R]
#                [--rev REV] [--keep]
#
# STEP is one of: small 16k 1m https tls-new tls-resumed h2c h2-tls observe scale criterion.
# Installs what is missing (Debian packages), builds `vestibule` in release mode and the small
# TLS client in bench/tools, runs the steps and writes bench/results/latest.md, then prints it.
# --rev REV benchmarks that commit (built from `git archive` in ~/.cache/vestibule-bench) instead
# of the working tree. --keep keeps the scratch directory (configurations, logs).
set -euo pipefail

bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")
keep=false
rev=
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --keep) keep=true ;;
    --rev) rev=$2; shift ;;
    -h|--help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) args+=("$1") ;;
  esac
  shift
done

log() { echo "run.sh: $*" >&2; }

install_missing() {
  local missing=()
  command -v nginx >/dev/null || missing+=(nginx-light)
  command -v haproxy >/dev/null || missing+=(haproxy)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v h2load >/dev/null || missing+=(nghttp2-client)
  command -v taskset >/dev/null || missing+=(util-linux)
  command -v pgrep >/dev/null || missing+=(procps)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v python3 >/dev/null || missing+=(python3)
  command -v cc >/dev/null || missing+=(gcc libc6-dev)
  [ -e /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

install_missing

scratch=$(mktemp -d /tmp/vestibule-bench.XXXXXX)
cleanup() {
  # bench.py stops what it started; this catches anything left should it have been killed.
  if [ -f "$scratch/pids" ]; then
    while read -r pid; do kill -KILL -- "-$pid" 2>/dev/null || true; done <"$scratch/pids"
  fi
  if $keep; then log "scratch directory kept: $scratch"; else rm -rf "$scratch"; fi
}
trap cleanup EXIT

if [ -n "$rev" ]; then
  commit=$(git -C "$root" rev-parse --short "$rev^{commit}")
  cache=${VESTIBULE_BENCH_CACHE:-$HOME/.cache/vestibule-bench}
  src=$cache/src-$commit
  if [ ! -d "$src" ]; then
    mkdir -p "$src.tmp"
    git -C "$root" archive "$commit" | tar -x -C "$src.tmp"
    mv "$src.tmp" "$src"
  fi
  log "building vestibule $commit (release) in $src"
  (cd "$src" && CARGO_TARGET_DIR=$cache/target cargo build --release --quiet --bin vestibule)
  vestibule=$cache/target/release/vestibule
  described="$commit"
else
  log "building vestibule (release) from the working tree"
  (cd "$root" && cargo build --release --quiet --bin vestibule)
  vestibule=${CARGO_TARGET_DIR:-$root/target}/release/vestibule
  described="$(git -C "$root" rev-parse --short HEAD)"
  [ -z "$(git -C "$root" status --porcelain -- crates Cargo.toml Cargo.lock)" ] ||
    described="$described + uncommitted changes under crates/"
fi
cc -O2 -pthread -o "$scratch/tlsconns" "$bench/tools/tlsconns.c" -lssl -lcrypto

python3 "$bench/bench.py" --dir "$scratch" --vestibule "$vestibule" --commit "$described" \
  --tlsconns "$scratch/tlsconns" ${args[@]+"${args[@]}"}
