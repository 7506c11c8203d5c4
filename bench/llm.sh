#!/usr/bin/env bash
# Local LLM benchmark (issue 4): turn latency with a cached conversation, decode speed, memory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-bench --bin llm
uptime
"$CARGO_TARGET_DIR/release/llm" "$@"
uptime
