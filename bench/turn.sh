#!/usr/bin/env bash
# Voice-turn benchmark: end of speech → transcript → first text → first audio through
# `brazen serve` with its default local engines (Silero, Whisper, the local LLM, Piper).
#   bench/turn.sh [--rounds N] [--agent]   (--agent: the built-in retail agent's tools, with and
#   without its interim line)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-server -p brazen-bench --bin brazen --bin turn
uptime
"$CARGO_TARGET_DIR/release/turn" --brazen "$CARGO_TARGET_DIR/release/brazen" "$@"
uptime
