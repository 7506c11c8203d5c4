"""Start and stop one `brazen serve` process for a test module (shared by every Python suite).

The server is launched as ``$BRAZEN_BIN serve --host 127.0.0.1 --port 0 --asr echo --llm echo --tts tone --api-key KEY``; its bound
address is read from the stdout line ``brazen listening on http://127.0.0.1:PORT``. stdout/stderr
are drained into a log file (``$BRAZEN_CONF_LOGS``) whose tail is printed when a test fails.
"""
from __future__ import annotations

import os
import re
import signal
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

LISTEN_RE = re.compile(r"brazen listening on (http://127\.0\.0\.1:(\d+))")
API_KEY = "conformance-test-key"
SECOND_KEY = "conformance-second-key"
HARNESS_VARS = {"BRAZEN_BIN", "BRAZEN_CACHE"}


class BrazenServer:
    def __init__(self, name: str, keys=(API_KEY, SECOND_KEY), extra_args=(), env=None):
        self.bin = os.environ.get("BRAZEN_BIN")
        if not self.bin:
            raise RuntimeError("BRAZEN_BIN is not set (path to the built `brazen` binary)")
        self.keys = list(keys)
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.name = name
        log_dir = Path(os.environ.get("BRAZEN_CONF_LOGS", "/tmp/brazen-conformance-logs"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"server-{name}.log"
        self.proc: subprocess.Popen | None = None
        self.base_url = ""
        self.port = 0

    def start(self, timeout: float = 30.0) -> "BrazenServer":
        # The tone voice: the scenarios check reply audio by its length (40 ms per character).
        cmd = [self.bin, "serve", "--host", "127.0.0.1", "--port", "0", "--asr", "echo", "--llm", "echo", "--tts", "tone"]
        for k in self.keys:
            cmd += ["--api-key", k]
        cmd += self.extra_args
        log = open(self.log_path, "w", buffering=1)
        log.write("$ " + " ".join(cmd) + "\n")
        # The harness's own variables are not server configuration; keep them out of its environment.
        env = {k: v for k, v in os.environ.items() if k not in HARNESS_VARS and not k.startswith("BRAZEN_CONF_")}
        # Each server keeps its data (the database, the agent's documents) in a folder of its own.
        self.data_dir = tempfile.mkdtemp(prefix=f"brazen-data-{self.name}-")
        env["BRAZEN_DATA_DIR"] = self.data_dir
        env.update(self.extra_env)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env)
        found = threading.Event()

        def drain():
            assert self.proc and self.proc.stdout
            for line in self.proc.stdout:
                log.write(line)
                if not found.is_set():
                    m = LISTEN_RE.search(line)
                    if m:
                        self.base_url, self.port = m.group(1), int(m.group(2))
                        found.set()
            log.close()

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.time() + timeout
        while not found.is_set():
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError(f"brazen exited with {self.proc.returncode} before listening:\n{self.log_tail()}")
            if time.time() > deadline:
                self.stop()
                raise RuntimeError(f"brazen did not print its listening line within {timeout}s:\n{self.log_tail()}")
            found.wait(0.1)
        # /health must answer 200 with JSON
        with urllib.request.urlopen(self.base_url + "/health", timeout=5) as r:
            assert r.status == 200, r.status
        return self

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 60) -> str:
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
        shutil.rmtree(getattr(self, "data_dir", ""), ignore_errors=True)
