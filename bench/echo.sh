#!/usr/bin/env bash
# Echo benchmark: a client that plays every reply into its own microphone; how many of 20 replies
# interrupt themselves, with and without server echo cancellation, and whether questions still do.
#   bench/echo.sh [--modes aec,plain]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-server -p brazen-bench --bin brazen --bin echo
uptime
"$CARGO_TARGET_DIR/release/echo" --brazen "$CARGO_TARGET_DIR/release/brazen" "$@"
uptime
