//! The database failing under a conversation: PostgreSQL stopped and started again mid-call,
//! and a SQLite database on a disk that fills up. The sessions go on, the writes wait and are
//! retried, and every entry, the call's end and its analysis record are there afterwards.
//!
//! Each test starts what it breaks: its own PostgreSQL cluster (initdb and pg_ctl from
//! `BRAZEN_TEST_PG_BIN`, which `scripts/test` sets, or `/usr/lib/postgresql/*/bin`) and its own
//! tmpfs (which needs the right to mount, as root has; without it the tmpfs test says so and
//! passes over its part).

mod common;

use common::postgres::{Postgres, pg_bin};
use common::{Server, Ws, connect, send, until, user_lines};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Says `text` as the user and waits for the answer.
async fn exchange(ws: &mut Ws, text: &str) {
    send(
        ws,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": text}]}}),
    )
    .await;
    send(ws, json!({"type": "response.create", "response": {"modalities": ["text"]}})).await;
    let done = until(ws, "response.done").await.pop().unwrap();
    assert_eq!(done["response"]["status"], "completed", "{done}");
}

/// The stored conversation `id` once `ready` holds (polls for 60 s).
fn stored_when(server: &Server, id: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = server.get(&format!("/api/conversations/{id}"));
        if status == 200 {
            let c: Value = serde_json::from_str(&body).unwrap();
            if ready(&c) {
                return c;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "never complete: {c}");
        } else {
            assert!(started.elapsed() < Duration::from_secs(60), "{status} {body}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn postgres_restarted_mid_call_loses_nothing() {
    let Some(bin) = pg_bin() else {
        assert!(std::env::var_os("BRAZEN_TEST_STRICT").is_none(), "PostgreSQL is not installed");
        eprintln!("skipped: PostgreSQL is not installed (scripts/test installs it)");
        return;
    };
    let pg = Postgres::start(bin);
    let server = Server::start(&["--database-url", &pg.url()]);
    let (mut ws, _) = connect(server.port, "/v1/realtime", &[]).await.unwrap();
    let created = until(&mut ws, "session.created").await.pop().unwrap();
    let id = created["session"]["id"].as_str().unwrap().to_owned();
    exchange(&mut ws, "First, before anything breaks.").await;
    stored_when(&server, &id, |c| user_lines(c).len() == 1);

    // The database goes away: the conversation goes on, and so does the server; the call even
    // ends while it is away (the session writes its whole conversation again as it closes, so
    // only writes kept until the database is back hold it).
    pg.crash();
    exchange(&mut ws, "Second, while the database is down.").await;
    exchange(&mut ws, "Third, still down.").await;
    assert_eq!(server.get("/health").0, 200);
    exchange(&mut ws, "Fourth, and goodbye.").await;
    drop(ws);
    std::thread::sleep(Duration::from_secs(2));
    pg.ctl_start();

    // Everything said is stored, in order, the call ended and its analysis was kept (the echo
    // model cannot write one, so it is recorded as failed, to be retried).
    let c = stored_when(&server, &id, |c| !c["ended_at"].is_null() && c["analysis"]["attempts"].as_i64() >= Some(1));
    assert_eq!(
        user_lines(&c),
        [
            "First, before anything breaks.",
            "Second, while the database is down.",
            "Third, still down.",
            "Fourth, and goodbye."
        ]
    );
    let assistant = c["entries"].as_array().unwrap().iter().filter(|e| e["role"] == "assistant").count();
    assert_eq!(assistant, 4, "{c}");
}

/// Mounts a tmpfs of `kib` KiB at `dir`; false when this process may not mount.
fn mount_tmpfs(dir: &Path, kib: u32) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs", dir.to_str().unwrap()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn a_full_disk_holds_the_writes_until_there_is_room() {
    let dir = std::env::temp_dir().join(format!("brazen-full-{}", std::process::id()));
    if !mount_tmpfs(&dir, 4096) {
        eprintln!("skipped: this process may not mount a tmpfs (run as root to test a full disk)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _unmount = Unmount(dir.clone());
    let db = dir.join("brazen.db");
    let server = Server::start(&["--database-url", &format!("sqlite://{}", db.display())]);
    let (mut ws, _) = connect(server.port, "/v1/realtime", &[]).await.unwrap();
    let created = until(&mut ws, "session.created").await.pop().unwrap();
    let id = created["session"]["id"].as_str().unwrap().to_owned();
    exchange(&mut ws, "Before the disk fills.").await;
    stored_when(&server, &id, |c| user_lines(c).len() == 1);

    // Fill the disk to the last byte: the writes fail, the session goes on.
    let filler = dir.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", &format!("of={}", filler.display()), "bs=64k"])
        .stderr(Stdio::null())
        .status();
    let long = "A line long enough to need new pages of the database file. ".repeat(200);
    for n in 0..3 {
        exchange(&mut ws, &format!("Said on a full disk, number {n}. {long}")).await;
    }
    assert_eq!(server.get("/health").0, 200);
    // The call ends on the full disk; then there is room again, and what waited is written.
    drop(ws);
    std::thread::sleep(Duration::from_secs(2));
    let (status, body) = server.get(&format!("/api/conversations/{id}"));
    let before: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert!(status != 200 || user_lines(&before).len() < 4, "the disk was not full: {before}");
    std::fs::remove_file(&filler).unwrap();
    let c = stored_when(&server, &id, |c| !c["ended_at"].is_null() && user_lines(c).len() == 4);
    let said = user_lines(&c);
    assert!(said[1].starts_with("Said on a full disk, number 0."), "{said:?}");
}
