#!/usr/bin/env bash
# Builds one of etcd 3.4's own Go tools offline, from Debian's etcd source package, against the
# Go packages Debian ships in /usr/share/gocode (golang-etcd-server-dev). No Go module proxy, no
# network except Debian's archive (for the source package and golang-go).
#   benchmark  etcd's load generator (tools/benchmark)
#   e2e        etcd's end-to-end test suite (tests/e2e) as one test binary, with the certificates
#              it expects (integration/fixtures) beside it
#
#   scripts/build-etcd-tool.sh [benchmark|e2e]   # prints the path of the binary on its last line
#   ETCD_TOOL_CACHE=/some/dir scripts/build-etcd-tool.sh
#
# The binary is cached outside the repository (default ~/.cache/kvd/etcd-<tool>); a second run
# only prints its path. Neither Go code nor the binary is ever written into the repository.
set -euo pipefail

tool=${1:-benchmark}
case $tool in
benchmark) package=tools/benchmark ;;
e2e) package=tests/e2e ;;
*) echo "usage: $0 [benchmark|e2e]" >&2; exit 2 ;;
esac
cache="${ETCD_TOOL_CACHE:-${ETCD_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvd/etcd-$tool}}"
bin="$cache/$tool"
if [[ -x "$bin" && ($tool != e2e || -f "$cache/etcd.conf.yml.sample") ]]; then
    echo "$bin"
    exit 0
fi
mkdir -p "$cache"

log() { echo "build-etcd-tool: $*" >&2; }
sudo_() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
export DEBIAN_FRONTEND=noninteractive

# 1. Tools: Debian's Go, dpkg-source, and the Go packages etcd's tools import.
need=()
command -v go >/dev/null 2>&1 || need+=(golang-go)
command -v dpkg-source >/dev/null 2>&1 || need+=(dpkg-dev)
[[ -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]] || need+=(golang-etcd-server-dev)
if ((${#need[@]})); then
    log "installing ${need[*]}"
    sudo_ apt-get update -qq
    sudo_ apt-get install -y -qq "${need[@]}" >&2
fi

# 2. A deb-src line for Debian's main archive, derived from the binary sources already configured.
if ! apt-get source --print-uris etcd >/dev/null 2>&1; then
    srcfile=/etc/apt/sources.list.d/kvd-deb-src.sources
    log "adding deb-src entries in $srcfile"
    uris=$(grep -h '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 | awk '{print $2}')
    uris=${uris:-http://deb.debian.org/debian}
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    sudo_ tee "$srcfile" >/dev/null <<SRC
Types: deb-src
URIs: $uris
Suites: $codename
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    sudo_ apt-get update -qq
fi

# 3. The source package (etcd 3.4.23), unpacked in a scratch directory.
work=$(mktemp -d /tmp/etcd-tool-src.XXXXXX)
trap 'rm -rf "$work"' EXIT
log "fetching Debian's etcd source package into $work"
(cd "$work" && apt-get source -qq etcd >&2)
srcdir=$(find "$work" -maxdepth 1 -mindepth 1 -type d -name 'etcd-*' | head -1)
[[ -d "$srcdir/$package" ]] || { log "$package not found in $srcdir"; exit 1; }

# 4. Build in GOPATH mode: the tool from the source package, everything it imports
#    (go.etcd.io/etcd/clientv3, cobra, grpc, ...) from /usr/share/gocode.
gopath="$work/gopath"
mkdir -p "$gopath/src/go.etcd.io/etcd/$(dirname "$package")"
cp -r "$srcdir/$package" "$gopath/src/go.etcd.io/etcd/$package"
export GOPATH="$gopath:/usr/share/gocode" GO111MODULE=off GOPROXY=off GOFLAGS= CGO_ENABLED=0
export GOCACHE="$work/gocache"
cd "$gopath/src/go.etcd.io/etcd/$package"
if [[ $tool == e2e ]]; then
    log "go test -c go.etcd.io/etcd/$package ($(go version))"
    go test -c -o "$bin.tmp" .
    rm -rf "$cache/fixtures"
    cp -r "$srcdir/integration/fixtures" "$cache/fixtures"
    cp "$srcdir/etcd.conf.yml.sample" "$cache/"  # TestEtcdExampleConfig reads ../../etcd.conf.yml.sample
else
    log "go build go.etcd.io/etcd/$package ($(go version))"
    go build -o "$bin.tmp" .
fi
mv "$bin.tmp" "$bin"
echo "$bin"
