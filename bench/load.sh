#!/usr/bin/env bash
# Load benchmark (issue 2): 1,000 concurrent sessions, a 100 ms chunk every 100 ms each.
#   bench/load.sh [--sessions N] [--seconds S] [--responses] [--sample-every S]
# A soak (issue 20): bench/load.sh --sessions 500 --seconds 600 --responses --sample-every 60
# The load generator shares the two cores with the server; BRAZEN_BENCH_NICE=10 lowers its
# priority, as remote clients would not compete with the server for the CPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-server -p brazen-bench
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
out=$(mktemp)
BRAZEN_MAX_SESSIONS=100000 BRAZEN_CONNECTIONS_PER_MINUTE=0 BRAZEN_LOG=warn "$CARGO_TARGET_DIR/release/brazen" serve --port 0 --vad "${BRAZEN_BENCH_VAD:-energy}" --asr "${BRAZEN_BENCH_ASR:-echo}" --llm "${BRAZEN_BENCH_LLM:-echo}" --tts "${BRAZEN_BENCH_TTS:-tone}" >"$out" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q listening "$out" && break; sleep 0.1; done
addr=$(sed -n 's|brazen listening on http://||p' "$out")
uptime
nice -n "${BRAZEN_BENCH_NICE:-0}" "$CARGO_TARGET_DIR/release/load" --addr "$addr" --pid "$pid" "$@"
uptime
