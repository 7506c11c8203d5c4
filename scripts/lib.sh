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

# need_tmux: a terminal multiplexer, in which the tests drive `brazen chat` as a person would.
need_tmux() {
  if ! command -v tmux >/dev/null 2>&1; then apt_install tmux; fi
}

# need_pulseaudio: a sound server and its clients, with which the tests hear `brazen chat` play
# answers through the default audio device (a private server with a null sink).
need_pulseaudio() {
  if ! command -v pulseaudio >/dev/null 2>&1 || ! command -v parec >/dev/null 2>&1; then
    apt_install pulseaudio pulseaudio-utils
  fi
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

# pg_bindir: the directory holding PostgreSQL's initdb and pg_ctl (on PATH, else Debian's
# /usr/lib/postgresql/N/bin, the newest N); fails when there is none.
pg_bindir() {
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return 0
  fi
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [[ -n $d && -x $d/pg_ctl && -x $d/initdb ]] && echo "$d"
}

# start_test_postgres: a private, throw-away PostgreSQL cluster for the store tests: initdb into a
# temp directory, trust auth, listening on 127.0.0.1 only on a free port (its Unix socket in the
# same directory), fsync off. Installs Debian's postgresql when initdb/pg_ctl are missing.
# PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user (created
# if missing). Exports BRAZEN_TEST_POSTGRES_URL=postgres://USER@127.0.0.1:PORT/postgres (the tests
# create and drop a database each); stop_test_postgres stops it and removes the directory.
start_test_postgres() {
  local bin port dir user
  local run=()
  if ! bin="$(pg_bindir)"; then
    apt_install postgresql || return 1
    bin="$(pg_bindir)" || { echo "brazen: PostgreSQL's initdb/pg_ctl are missing after installing postgresql." >&2; return 1; }
  fi
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')" || return 1
  dir="$(mktemp -d "${TMPDIR:-/tmp}/brazen-pg.XXXXXX")" || return 1
  user="$(id -un)"
  if [[ $(id -u) -eq 0 ]]; then
    user=postgres
    if ! id -u postgres >/dev/null 2>&1; then
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres || return 1
    fi
    chown postgres: "$dir"
    run=(runuser -u postgres --)
  fi
  if ! "${run[@]}" "$bin/initdb" -D "$dir/data" -U "$user" --auth=trust --encoding=UTF8 --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    return 1
  fi
  if ! "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=300" start >/dev/null; then
    cat "$dir/server.log" >&2
    rm -rf "$dir"
    return 1
  fi
  BRAZEN_PG_DIR="$dir"
  BRAZEN_PG_CTL="$bin/pg_ctl"
  BRAZEN_PG_RUN=("${run[@]}")
  export BRAZEN_TEST_POSTGRES_URL="postgres://$user@127.0.0.1:$port/postgres"
  # Tests that start (and restart) a cluster of their own find PostgreSQL's programs here.
  export BRAZEN_TEST_PG_BIN="$bin"
  say "PostgreSQL for the tests at $BRAZEN_TEST_POSTGRES_URL"
}

# stop_test_postgres: stops the cluster start_test_postgres started (fast shutdown) and removes
# its directory; does nothing when none runs.
stop_test_postgres() {
  [[ -n ${BRAZEN_PG_DIR:-} ]] || return 0
  "${BRAZEN_PG_RUN[@]}" "$BRAZEN_PG_CTL" -D "$BRAZEN_PG_DIR/data" -m fast -w stop >/dev/null 2>&1
  rm -rf "$BRAZEN_PG_DIR"
  BRAZEN_PG_DIR=""
  unset BRAZEN_TEST_POSTGRES_URL
}

# need_llama_server: llama-cpp-python's OpenAI-compatible server (PyPI, pinned in
# tests/llama-server/requirements.txt), the real server the `openai` LLM engine is tested
# against, in a venv under ~/.cache/brazen (rebuilt when the requirements change). PyPI has only
# its source: pip compiles the vendored llama.cpp once (about 10 minutes on 2 cores, longer when
# busy), for plain AVX2 (no AVX-512 or AMX, whose kernels crashed here) and without pip's wheel
# cache (a wheel built elsewhere for another CPU would be reused). Exports
# BRAZEN_TEST_LLAMA_PYTHON, the venv's Python.
need_llama_server() {
  local venv="${BRAZEN_CACHE:-$HOME/.cache/brazen}/llama-server-venv"
  local want
  want="$(sha256sum tests/llama-server/requirements.txt | cut -d' ' -f1)"
  if [[ ! -f $venv/.brazen-stamp || "$(cat "$venv/.brazen-stamp")" != "$want" ]]; then
    say "installing llama-cpp-python's server (PyPI; compiles llama.cpp once, about 10 minutes)"
    rm -rf "$venv"
    python3 -m venv "$venv" || return 1
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
      "$venv/bin/pip" install --no-cache-dir --progress-bar on -q -r tests/llama-server/requirements.txt || return 1
    echo "$want" > "$venv/.brazen-stamp"
  fi
  export BRAZEN_TEST_LLAMA_PYTHON="$venv/bin/python"
}
