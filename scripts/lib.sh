# Shared helpers for scripts/serve and scripts/test (sourced, not run).

# Build output is shared between runs and clones, so repeated runs are incremental.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/brazen/target}"

say() { printf '\n==> %s\n' "$*"; }

# apt_install PKG...: installs Debian packages that are missing (as root, or through sudo).
apt_install() {
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  say "installing $* (apt)"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# need_cargo: a Rust toolchain new enough for edition 2024 (rustup's stable).
need_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "brazen: cargo is not installed. Install Rust 1.90 or newer with rustup (https://rustup.rs), then run this again." >&2
    exit 1
  fi
}

# need_build_tools: cmake and a C++ compiler, which build whisper.cpp (vendored by whisper-rs),
# libopus (bundled by opusic-sys, the avatar's WebRTC audio) and OpenH264 (vendored by
# openh264-sys2); nasm, with which OpenH264 gets its SIMD code (≈ 2× faster).
need_build_tools() {
  local missing=()
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  command -v c++ >/dev/null 2>&1 || missing+=(g++)
  command -v nasm >/dev/null 2>&1 || missing+=(nasm)
  if [[ ${#missing[@]} -gt 0 ]]; then apt_install "${missing[@]}"; fi
}

# need_espeak: the phonemizer of the Piper and Kokoro voices (a separate process; GPL, not linked).
need_espeak() {
  if ! command -v espeak-ng >/dev/null 2>&1; then apt_install espeak-ng; fi
}

# build_web: the browser app (web/) into web/dist, which the brazen binary embeds. `npm ci` runs
# when package-lock.json or Node changed; the build always (Vite takes about a second).
build_web() {
  if ! command -v npm >/dev/null 2>&1; then apt_install nodejs npm; fi
  # Vite 8 needs Node 20.19 or newer (Debian 12's own nodejs is 18).
  if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    echo "brazen: building the browser app needs Node 20.19 or newer; this is Node $(node --version). Install Node 20 or 22 (e.g. the NodeSource packages for Debian), then run this again." >&2
    return 1
  fi
  local want
  want="$( (cat web/package-lock.json; node --version) | sha256sum | cut -d' ' -f1)"
  if [[ ! -f web/node_modules/.brazen-stamp || "$(cat web/node_modules/.brazen-stamp)" != "$want" ]]; then
    say "installing the browser app's packages (npm ci)"
    (cd web && npm ci --no-audit --no-fund --loglevel=error) || return 1
    echo "$want" > web/node_modules/.brazen-stamp
  fi
  say "building the browser app (web/)"
  (cd web && npm run --silent build)
}
