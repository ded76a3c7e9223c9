#!/usr/bin/env bash
# Builds the benchmark's peer servers into bench/bin/:
#   tokio-echo, ceiling, fastwebsockets-echo, ws-rs-echo, hyper-http
#                          (Rust, the bench/ cargo workspace, release profile)
#   gorilla-echo, go-http  (Go, GOPATH mode against Debian's gorilla/websocket)
# and installs node-ws's one dependency (ws, the exact version in peers/node-ws/package.json) with
# npm into peers/node-ws/node_modules (node-ws runs from there: `node peers/node-ws/server.js`).
# Installs golang-go and golang-github-gorilla-websocket-dev, and nodejs and npm, with apt-get
# when they are missing.
# Idempotent; prints nothing on success; on failure says what failed and exits non-zero.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$BENCH/bin"
# Debian installs Go library sources under /usr/share/gocode/src (GOPATH layout).
GOPATH_DEBIAN=/usr/share/gocode
GORILLA_SRC="$GOPATH_DEBIAN/src/github.com/gorilla/websocket"
APT_PACKAGES=(golang-go golang-github-gorilla-websocket-dev)

die() { echo "bench/peers/build.sh: $*" >&2; exit 1; }

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# Runs a command with its output kept in $log, printed only if it fails.
quiet() {
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        die "failed: $*"
    fi
}

# apt-get install "$@", with an apt-get update first if that fails.
apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install $*"
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! "${sudo[@]}" apt-get install -y -q "$@" >"$log" 2>&1; then
        quiet "${sudo[@]}" apt-get update -q
        quiet "${sudo[@]}" apt-get install -y -q "$@"
    fi
}

if ! command -v go >/dev/null 2>&1 || [ ! -f "$GORILLA_SRC/conn.go" ]; then
    apt_install "${APT_PACKAGES[@]}"
    command -v go >/dev/null 2>&1 || die "go is still missing after installing golang-go"
    [ -f "$GORILLA_SRC/conn.go" ] || die "gorilla/websocket sources not found in $GORILLA_SRC"
fi

mkdir -p "$BIN"

# GOPATH mode (no go.mod, nothing fetched): the import "github.com/gorilla/websocket" resolves to
# Debian's copy. The build cache goes under bench/target (ignored by git) unless GOCACHE is set.
for peer in gorilla-echo go-http; do
    (
        cd "$BENCH/peers/go/$peer"
        quiet env GO111MODULE=off GOPATH="$GOPATH_DEBIAN" GOFLAGS='' \
            GOCACHE="${GOCACHE:-$BENCH/target/go-build}" \
            go build -o "$BIN/$peer.new" .
    )
    mv -f "$BIN/$peer.new" "$BIN/$peer"
done

RUST_PEERS=(tokio-echo ceiling fastwebsockets-echo ws-rs-echo hyper-http)
[ -f "$BENCH/Cargo.toml" ] || die "$BENCH/Cargo.toml is missing"
packages=()
for peer in "${RUST_PEERS[@]}"; do
    grep -q "\"peers/$peer\"" "$BENCH/Cargo.toml" \
        || die "$BENCH/Cargo.toml must be a workspace listing peers/$peer"
    packages+=(-p "$peer")
done
(cd "$BENCH" && quiet cargo build --release "${packages[@]}")
target="${CARGO_TARGET_DIR:-$BENCH/target}"
case "$target" in /*) ;; *) target="$BENCH/$target" ;; esac
for peer in "${RUST_PEERS[@]}"; do
    [ -x "$target/release/$peer" ] || die "$target/release/$peer was not built"
    cp -f "$target/release/$peer" "$BIN/$peer.new"
    mv -f "$BIN/$peer.new" "$BIN/$peer"
done

# node-ws: Node.js and npm from Debian if missing, then ws (exact version from package.json) when
# node_modules does not have that version. package-lock.json and node_modules are git-ignored.
NODE_WS="$BENCH/peers/node-ws"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
    command -v node >/dev/null 2>&1 || die "node is still missing after installing nodejs"
fi
want="$(node -p 'require(process.argv[1]).dependencies.ws' "$NODE_WS/package.json")"
have="$(node -p 'require(process.argv[1]).version' "$NODE_WS/node_modules/ws/package.json" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
    (cd "$NODE_WS" && quiet npm install --no-audit --no-fund --omit=dev)
fi
node -e 'require(process.argv[1] + "/node_modules/ws")' "$NODE_WS" 2>/dev/null \
    || die "node-ws: ws is not installed in $NODE_WS/node_modules"
