#!/usr/bin/env bash
# End-of-turn benchmark: how soon a finished sentence ends the turn and how often a mid-sentence
# pause cuts the caller off, per turn-detection mode (Silero, Whisper tiny.en, Smart Turn v3.2;
# five voices).
#   bench/endpoint.sh [--modes semantic_vad,server_vad,server_vad_300,semantic_vad_high]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-server -p brazen-bench --bin brazen --bin endpoint
uptime
"$CARGO_TARGET_DIR/release/endpoint" --brazen "$CARGO_TARGET_DIR/release/brazen" "$@"
uptime
