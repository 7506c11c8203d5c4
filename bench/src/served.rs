//! A `brazen serve` started by a benchmark (shared by the benchmark binaries).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The command line of a benchmark that compares modes: `--brazen PATH` (required) and
/// `--modes a,b` (else `defaults`).
#[allow(dead_code)] // not every benchmark compares modes
pub fn brazen_and_modes(defaults: &[&str]) -> (String, Vec<String>) {
    let args: Vec<String> = std::env::args().collect();
    let after = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let brazen = after("--brazen").expect("--brazen PATH");
    let modes = after("--modes").map_or_else(
        || defaults.iter().map(|m| (*m).to_owned()).collect(),
        |m| m.split(',').map(str::to_owned).collect(),
    );
    (brazen, modes)
}

/// A `brazen serve` on a free loopback port, killed when dropped.
pub struct Served {
    child: Child,
    /// Its address, `127.0.0.1:PORT`.
    pub addr: String,
}

impl Served {
    /// Starts `brazen serve --port 0` with `args` and the environment `env`; its log goes to
    /// stderr when `log` is true. Waits for the line naming its address.
    pub fn start(brazen: &str, args: &[&str], env: &[(&str, &str)], log: bool) -> Served {
        let mut child = Command::new(brazen)
            .args(["serve", "--port", "0"])
            .args(args)
            .env_remove("BRAZEN_API_KEYS")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if log { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .expect("brazen starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("brazen listening on http://") {
                        break a.to_owned();
                    }
                }
                _ => panic!("brazen did not start"),
            }
        };
        Served { child, addr }
    }

    /// Its process id.
    #[allow(dead_code)] // not every benchmark reads it
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's resident memory (`VmRSS`), KiB; 0 once it is gone.
#[allow(dead_code)] // not every benchmark reads memory
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A memory figure of a process's `/proc/PID/status` (`field` with its colon, e.g. `VmHWM:`),
/// KiB; 0 once it is gone.
#[allow(dead_code)] // not every benchmark reads memory
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors and threads of process `pid`.
#[allow(dead_code)] // not every benchmark reads them
pub fn fds_and_threads(pid: u32) -> (usize, usize) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let threads = status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|t| t.trim().parse().ok());
    (fds, threads.unwrap_or(0))
}
