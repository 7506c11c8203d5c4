#!/usr/bin/env bash
# Lip-sync benchmark (issue 5): mouth edges against sound edges as a WebRTC viewer receives them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-bench --bin lipsync
uptime
"$CARGO_TARGET_DIR/release/lipsync" "$@"
uptime
