#!/usr/bin/env bash
# Avatar rendering benchmark (issue 5): ms per frame, one thread, 512×512 and 1280×720.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-bench --bin avatar
uptime
"$CARGO_TARGET_DIR/release/avatar" "$@"
uptime
