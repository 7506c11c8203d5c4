#!/usr/bin/env bash
# Hostile-client figures (issue 15): a wall of unpunctuated text spoken by Piper (first audio,
# memory), and another session's turn while one session floods the LLM with 1,000 items.
#   bench/hostile.sh [--brazen PATH] [--sizes 2000,4000,8000,100000] [--only long-text|stall]
# (--brazen: measure another build, e.g. one from before the fixes; default: this tree's release.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-server -p brazen-bench --bin brazen --bin hostile
brazen="$CARGO_TARGET_DIR/release/brazen"
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --brazen) brazen="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
uptime
"$CARGO_TARGET_DIR/release/hostile" --brazen "$brazen" "${args[@]}"
uptime
