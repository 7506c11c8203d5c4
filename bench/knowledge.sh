#!/usr/bin/env bash
# Knowledge base benchmark (issue 17): index build (cold and cached) and search latency over the
# retail agent's documents. The bench is an example of brazen-knowledge, so it builds without the
# speech, LLM and avatar crates.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-knowledge --example knowledge-bench
uptime
# The spin limit `serve` sets for candle's thread pool (its default, 25,000, collapses under
# contention).
CANDLE_BARRIER_POOL_SPIN_LIMIT="${CANDLE_BARRIER_POOL_SPIN_LIMIT:-1000}" \
  "$CARGO_TARGET_DIR/release/examples/knowledge-bench" "$@"
uptime
