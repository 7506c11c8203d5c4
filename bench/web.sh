#!/usr/bin/env bash
# The browser app's speed (issue 6): page load → ready, Connect → first avatar frame (WebRTC and
# WebSocket video), bundle size gzipped. Builds the app and brazen (release) first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
command -v chromium >/dev/null 2>&1 || apt_install chromium
[[ -d tests/conformance/js/node_modules/playwright-core ]] || (cd tests/conformance/js && npm ci --no-audit --no-fund)
build_web
cargo build --release --locked -p brazen-server
uptime
BRAZEN_BIN="$CARGO_TARGET_DIR/release/brazen" BRAZEN_CONF_LOGS="${BRAZEN_CONF_LOGS:-/tmp/brazen-bench-logs}" node bench/web.mjs "$@"
uptime
