#!/usr/bin/env bash
# brazen against Pipecat 1.14 on the same models (Silero, Smart Turn v3.2, Whisper tiny.en,
# Qwen2.5-Coder 1.5B GGUF, Piper joe), one server at a time, one client: voice-to-voice cold/warm
# p50/p95 and their ratio, end of turn, cut-offs of mid-sentence pauses, transcription errors,
# CPU-seconds per turn and peak RSS; `concurrent` runs N conversations at once; `soak` (brazen
# only) runs them with the avatar for `--minutes`, with latency, memory, files and threads over time.
#   bench/vs-pipecat.sh [--modes compare,concurrent,soak] [--conversations 3] [--only brazen|pipecat]
#     [--minutes 30] [--avatar-size 512x512]
# Installs Pipecat (bench/pipecat/requirements.lock, the exact set; requirements.txt has the
# top-level pins) into ~/.cache/brazen/pipecat-venv (unless `--only brazen`) and llama-cpp-python's
# server (as the tests do) on first run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
need_espeak
need_llama_server
venv="${BRAZEN_CACHE:-$HOME/.cache/brazen}/pipecat-venv"
want="$(sha256sum bench/pipecat/requirements.lock | cut -d' ' -f1)"
only=""
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
  [[ ${args[i]} == --only ]] && only="${args[i + 1]}"
done
if [[ $only != brazen && ( ! -f $venv/.brazen-stamp || "$(cat "$venv/.brazen-stamp")" != "$want" ) ]]; then
  say "installing Pipecat 1.14 and its local engines into $venv (PyPI)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --progress-bar on -q -r bench/pipecat/requirements.lock
  echo "$want" > "$venv/.brazen-stamp"
fi
cargo build --release --locked -p brazen-server -p brazen-bench --bin brazen --bin vs_pipecat
models="${BRAZEN_MODELS_DIR:-$HOME/.cache/brazen/models}"
"$CARGO_TARGET_DIR/release/brazen" models install --only qwen2.5-coder-1.5b
uptime
"$CARGO_TARGET_DIR/release/vs_pipecat" --brazen "$CARGO_TARGET_DIR/release/brazen" \
  --pipecat-python "$venv/bin/python" --bot bench/pipecat/bot.py \
  --llama-python "$BRAZEN_TEST_LLAMA_PYTHON" --gguf "$models/qwen2.5-coder-1.5b/model.gguf" "$@"
uptime
