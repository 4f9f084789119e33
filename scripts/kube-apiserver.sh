#!/usr/bin/env bash
# Prints the paths of a kube-apiserver and an etcd binary for the Kubernetes tests, building
# the API server once per machine when needed:
#   KUBE_APISERVER_BIN=... ETCD_BIN=...   use these binaries as they are;
#   otherwise etcd comes from Debian's etcd-server package, and kube-apiserver is built from
#   Debian's kubernetes source package (1.20.2) with Go 1.15 into a cache outside the
#   repository ($VESTIBULE_CACHE, default ~/.cache/vestibule), reused by later runs.
# Output: two lines, "KUBE_APISERVER_BIN=<path>" and "ETCD_BIN=<path>". Progress goes to stderr.
set -euo pipefail

cache=${VESTIBULE_CACHE:-$HOME/.cache/vestibule}
apiserver=${KUBE_APISERVER_BIN:-$cache/kube-apiserver-1.20.2}
etcd=${ETCD_BIN:-}

log() { echo "kube-apiserver.sh: $*" >&2; }

apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

if [ -z "$etcd" ]; then
  apt_install etcd-server
  etcd=$(command -v etcd)
fi
apt_install openssl

if [ ! -x "$apiserver" ]; then
  [ -z "${KUBE_APISERVER_BIN:-}" ] || { log "KUBE_APISERVER_BIN=$apiserver is not executable"; exit 1; }
  log "building kube-apiserver 1.20.2 from Debian's source package (once per machine)"
  apt_install rsync dpkg-dev make

  go=/usr/lib/go-1.15/bin/go
  if [ ! -x "$go" ]; then
    # Go 1.15 exists only in bullseye; its source line is added for this one install.
    bullseye=/etc/apt/sources.list.d/vestibule-bullseye.list
    echo "deb http://deb.debian.org/debian bullseye main" > "$bullseye"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -t bullseye golang-1.15-go golang-1.15-src >&2
    rm -f "$bullseye"
    apt-get update -qq >&2
  fi

  sources=/etc/apt/sources.list.d/vestibule-bookworm-src.sources
  if [ ! -f "$sources" ]; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$sources"
    apt-get update -qq >&2
  fi

  work=$(mktemp -d "${TMPDIR:-/tmp}/vestibule-kube-build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get source -qq kubernetes >&2)
  tree=$(find "$work" -maxdepth 1 -mindepth 1 -type d -name 'kubernetes-*' | head -n 1)
  [ -n "$tree" ] || { log "apt-get source kubernetes produced no source tree"; exit 1; }
  (
    cd "$tree"
    export PATH=/usr/lib/go-1.15/bin:$PATH CGO_ENABLED=0 GOPROXY=off GOFLAGS=-mod=vendor
    export GOCACHE=$work/gocache GOPATH=$work/gopath
    make WHAT=cmd/kube-apiserver >&2
  )
  built=$(find "$tree/_output" -type f -name kube-apiserver -perm -u+x | head -n 1)
  [ -n "$built" ] || { log "the build produced no kube-apiserver binary"; exit 1; }
  mkdir -p "$(dirname "$apiserver")"
  cp "$built" "$apiserver.partial"
  mv "$apiserver.partial" "$apiserver"
  log "built $apiserver"
fi

echo "KUBE_APISERVER_BIN=$apiserver"
echo "ETCD_BIN=$etcd"
