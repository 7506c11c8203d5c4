#!/usr/bin/env bash
# Input processing cost: the share of one core noise suppression and echo cancellation take per
# conversation.
#   bench/input.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-bench --bin input
uptime
"$CARGO_TARGET_DIR/release/input"
uptime
