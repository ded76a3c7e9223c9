#!/usr/bin/env bash
# Counts the files of src/ that one WebSocket message runs through, from a run: builds
# examples/path_count.rs with coverage instrumentation, runs it (a warm-up, then the counters are
# reset, one text message is echoed, the counters are written), and lists every file of src/
# with code that ran in that window, with how many of its lines ran.
#
#   scripts/path_count.sh [--inline] [--tls]
#
# Needs rustup's llvm-tools component (`rustup component add llvm-tools`, done here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
tools="$sysroot/lib/rustlib/$host/bin"
if [ ! -x "$tools/llvm-profdata" ]; then
    rustup component add llvm-tools >/dev/null
fi

features=()
for arg in "$@"; do
    [ "$arg" = --tls ] && features=(--features tls)
done
target=target/path-count
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RUSTFLAGS="-C instrument-coverage --cfg wsreactor_path_count"
# Build scripts are instrumented too: their profiles go to the scratch directory.
LLVM_PROFILE_FILE="$work/build-%p.profraw" \
    cargo build --quiet --release --example path_count --target-dir "$target" "${features[@]}"
LLVM_PROFILE_FILE="$work/exit.profraw" PATH_COUNT_PROFILE="$work/message.profraw" \
    "$target/release/examples/path_count" "$@"
"$tools/llvm-profdata" merge -sparse "$work/message.profraw" -o "$work/message.profdata"
"$tools/llvm-cov" export -format=lcov -instr-profile "$work/message.profdata" \
    "$target/release/examples/path_count" >"$work/lcov.info"

# Per file of src/: lines with a non-zero count.
awk -v root="$PWD/" '
    /^SF:/ { file = substr($0, 4); sub(root, "", file); next }
    /^DA:/ { split(substr($0, 4), da, ","); if (da[2] > 0 && file ~ /^src\//) hit[file]++ }
    END { for (name in hit) printf "%5d  %s\n", hit[name], name }
' "$work/lcov.info" | sort -k2 >"$work/files"
cat "$work/files"
echo "$(wc -l <"$work/files") files of src/ ran for one message ($*)"
