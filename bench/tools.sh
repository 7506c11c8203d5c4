#!/usr/bin/env bash
# Tool round trip benchmark (issue 17): the retail agent's database tools through the Tools
# trait, on SQLite (and PostgreSQL when BRAZEN_BENCH_POSTGRES_URL is set). An example of
# brazen-retail, so it builds without the speech, LLM and avatar crates.
#   bench/tools.sh [--n 1000]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
cargo build --release --locked -p brazen-retail --example retail-bench
uptime
"$CARGO_TARGET_DIR/release/examples/retail-bench" "$@"
uptime
