#!/usr/bin/env bash
# Speech-engine benchmark (issue 3): Silero VAD, Whisper, Piper and Kokoro, release build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-bench --bin speech
uptime
"$CARGO_TARGET_DIR/release/speech" "$@"
uptime
