#!/usr/bin/env bash
# The browser app's first reply (issue 6): first audio of a first conversation with the app's
# default session, whose prompt the server computes at start-up, against unseen instructions.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
[[ -d tests/conformance/js/node_modules/ws ]] || (cd tests/conformance/js && npm ci --no-audit --no-fund)
cargo build --release --locked -p brazen-server
uptime
BRAZEN_BIN="$CARGO_TARGET_DIR/release/brazen" BRAZEN_CONF_LOGS="${BRAZEN_CONF_LOGS:-/tmp/brazen-bench-logs}" node bench/first-reply.mjs "$@"
uptime
