#!/usr/bin/env bash
# Backchannel benchmark: how often "mm-hmm", "yeah", "okay" said over the assistant interrupt it, and
# how often and how soon a real question does (Silero, Whisper tiny.en, Smart Turn v3.2; five voices).
#   bench/backchannel.sh [--modes ignore_fillers,plain]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-server -p brazen-bench --bin brazen --bin backchannel
uptime
"$CARGO_TARGET_DIR/release/backchannel" --brazen "$CARGO_TARGET_DIR/release/brazen" "$@"
uptime
