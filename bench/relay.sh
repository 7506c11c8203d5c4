#!/usr/bin/env bash
# Relay benchmark (issue 18): the time `brazen serve --relay` adds to each relayed event, against
# a direct connection to the same stand-in upstream, in one run.
#   bench/relay.sh [--events 5000] [--bytes 6400]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-server -p brazen-bench
uptime
"$CARGO_TARGET_DIR/release/relay" --brazen "$CARGO_TARGET_DIR/release/brazen" "$@"
uptime
