//! A private PostgreSQL cluster for the tests that break or share one: started with initdb and
//! pg_ctl from `BRAZEN_TEST_PG_BIN` (scripts/test sets it) or `/usr/lib/postgresql/*/bin`, on a
//! free loopback port, as `postgres` when the tests run as root; crashed and removed when dropped.

use std::path::PathBuf;
use std::process::{Command, Stdio};

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// PostgreSQL's programs, if installed.
pub fn pg_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BRAZEN_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("pg_ctl").is_file() && bin.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop()
}

/// A private PostgreSQL cluster, stopped and removed when dropped.
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    user: String,
}

impl Postgres {
    /// Starts a cluster with the programs in `bin`.
    pub fn start(bin: PathBuf) -> Postgres {
        let dir = std::env::temp_dir().join(format!(
            "brazen-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let root = is_root();
        let user = if root { "postgres".to_owned() } else { whoami() };
        if root {
            Command::new("chown").args(["postgres:", dir.to_str().unwrap()]).status().unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = Postgres { bin, dir, port, user };
        let data = pg.dir.join("data");
        let ok = pg
            .run("initdb", &["-D", data.to_str().unwrap(), "-U", &pg.user, "--auth=trust", "--no-sync"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "initdb failed");
        pg.ctl_start();
        pg
    }

    /// A command of PostgreSQL's, as its owner.
    fn run(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        c.args(args).stdout(Stdio::null()).stderr(Stdio::null());
        c
    }

    /// Starts it (again).
    pub fn ctl_start(&self) {
        let data = self.dir.join("data");
        let options = format!("-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off", self.port, self.dir.display());
        let log = self.dir.join("server.log");
        let ok = self
            .run("pg_ctl", &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "-o", &options, "start"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "pg_ctl start failed: {}", std::fs::read_to_string(&log).unwrap_or_default());
    }

    /// Stops it as a crash would (no clean shutdown).
    pub fn crash(&self) {
        let data = self.dir.join("data");
        self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]).status().unwrap();
    }

    /// Its URL, for `--database-url`.
    pub fn url(&self) -> String {
        format!("postgres://{}@127.0.0.1:{}/postgres", self.user, self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the tests run as root (PostgreSQL then runs as `postgres`).
fn is_root() -> bool {
    String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap().trim() == "0"
}

fn whoami() -> String {
    String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_owned()
}
