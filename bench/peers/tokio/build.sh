#!/bin/sh
# Build the Tokio peer offline: build.sh <outdir> makes <outdir>/tokio_core
# and <outdir>/tokio_echo (cargo --release) from Debian's crate registry
# (packages.txt). All cargo state (CARGO_HOME, a copy of the sources, the
# target dir) lives under <outdir>; the source tree is not written to.
# Environment: CARGO / RUSTC (default: Debian's /usr/bin/cargo and
# /usr/bin/rustc when present, so a rustup toolchain on PATH is not used),
# JOBS (cargo -j, default 2), CARGO_REGISTRY_DIR (default
# /usr/share/cargo/registry).
set -eu
if [ $# -ne 1 ]; then
    echo "usage: build.sh <outdir>" >&2
    exit 2
fi
SRC=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
REGISTRY=${CARGO_REGISTRY_DIR:-/usr/share/cargo/registry}
if [ -z "${CARGO:-}" ] && [ -x /usr/bin/cargo ]; then CARGO=/usr/bin/cargo; fi
if [ -z "${RUSTC:-}" ] && [ -x /usr/bin/rustc ]; then RUSTC=/usr/bin/rustc; fi
CARGO=${CARGO:-cargo}
RUSTC=${RUSTC:-rustc}
fail() {
    echo "tokio build.sh: $*" >&2
    exit 1
}
command -v "$CARGO" >/dev/null 2>&1 || fail "cargo not found (Debian packages: see $SRC/packages.txt)"
[ -d "$REGISTRY/tokio-1.24.2" ] || ls -d "$REGISTRY"/tokio-1.* >/dev/null 2>&1 ||
    fail "no tokio crate in $REGISTRY (Debian package librust-tokio-dev)"

export CARGO_HOME="$OUT/cargo-home"
export CARGO_TARGET_DIR="$OUT/target"
export RUSTC
mkdir -p "$CARGO_HOME" "$OUT/src/src/bin"
cat > "$CARGO_HOME/config.toml" <<CONF
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "$REGISTRY"

[net]
offline = true
CONF
# cp -p keeps mtimes: an unchanged source does not make cargo rebuild.
cp -p "$SRC/Cargo.toml" "$OUT/src/"
[ -f "$SRC/Cargo.lock" ] && cp -p "$SRC/Cargo.lock" "$OUT/src/"
cp -p "$SRC"/src/bin/*.rs "$OUT/src/src/bin/"

log="$OUT/build.log"
if [ ! -f "$OUT/src/Cargo.lock" ] &&
    ! "$CARGO" generate-lockfile --offline --manifest-path "$OUT/src/Cargo.toml" >"$log" 2>&1; then
    cat "$log" >&2
    fail "cargo generate-lockfile failed (log: $log)"
fi
# The version tokio_core prints in its JSON lines.
TOKIO_VERSION=$(awk '/^name = "tokio"$/ { getline; gsub(/[^0-9.]/, ""); print }' "$OUT/src/Cargo.lock")
export TOKIO_VERSION
if ! "$CARGO" build --offline --release -j "${JOBS:-2}" --manifest-path "$OUT/src/Cargo.toml" >"$log" 2>&1; then
    cat "$log" >&2
    fail "cargo build failed (log: $log)"
fi
cp "$CARGO_TARGET_DIR/release/tokio_core" "$CARGO_TARGET_DIR/release/tokio_echo" "$OUT/"
