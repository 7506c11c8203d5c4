//! A llama-cpp-python server (PyPI; scripts/test builds it into a venv and names its Python in
//! `BRAZEN_TEST_LLAMA_PYTHON`) serving the GGUF brazen installs: the real OpenAI-compatible
//! server the `openai` engine's tests talk to.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A llama-cpp-python server on a free loopback port, stopped by PID when dropped.
pub struct LlamaServer {
    child: Child,
    port: u16,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl LlamaServer {
    /// Starts the server on the default local model's GGUF, or `None` when there is no
    /// llama-cpp-python to run (and the run is not strict).
    pub fn start() -> Option<LlamaServer> {
        let Some(python) = std::env::var_os("BRAZEN_TEST_LLAMA_PYTHON").filter(|p| !p.is_empty()) else {
            assert!(
                std::env::var_os("BRAZEN_TEST_STRICT").is_none(),
                "BRAZEN_TEST_LLAMA_PYTHON is not set: scripts/test builds llama-cpp-python and sets it"
            );
            eprintln!("skipped: BRAZEN_TEST_LLAMA_PYTHON is not set (scripts/test sets it)");
            return None;
        };
        let gguf = brazen_runtime::engines::default_llm_path(None).expect("the default GGUF");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(python)
            .args(["-m", "llama_cpp.server", "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--model", gguf.to_str().unwrap(), "--model_alias", "qwen2.5-coder-1.5b"])
            .args(["--n_ctx", "8192", "--n_threads", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("llama-cpp-python starts");
        let mut server = LlamaServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the llama-cpp-python server exited: {status}");
            }
            if http_get(port, "/v1/models").is_some_and(|b| b.contains("qwen2.5-coder-1.5b")) {
                return Some(server);
            }
            assert!(Instant::now() < deadline, "the llama-cpp-python server did not start within 3 minutes");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Its API's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

/// The body of a GET on loopback, when it answers 200.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.1 200").then_some(out)
}
