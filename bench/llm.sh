#!/usr/bin/env bash
# Local LLM benchmark (issue 4): turn latency with a cached conversation, decode speed, memory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-bench --bin llm
uptime
# The spin limit `serve` uses (candle's default, 25,000, collapses under contention).
CANDLE_BARRIER_POOL_SPIN_LIMIT="${CANDLE_BARRIER_POOL_SPIN_LIMIT:-1000}" "$CARGO_TARGET_DIR/release/llm" "$@"
uptime
