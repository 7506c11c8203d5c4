//! brazen's database: the retail agent's products, orders and shipments, and every session's
//! conversation with its call analysis, on SQLite (one file, the default) or PostgreSQL.
//!
//! [`Store::open`] takes a URL (`sqlite://PATH` or `postgres://…`), connects and applies the
//! embedded migrations (one portable SQL set for both backends: text ids made in Rust, money in
//! integer cents, times as BIGINT unix milliseconds). Every function is async and typed; the
//! writes that must be atomic ([`Store::place_order`], [`Store::create_shipment`]) run in one
//! transaction, and a transaction dropped before its commit (its future dropped: the caller went
//! away) rolls back. Errors are values with messages that say what to do; nothing here panics on
//! input.
//!
//! Queries go through sqlx's `Any` driver, so the same statements (with `$1` placeholders, which
//! SQLite reads too) serve both backends.

mod catalog;
mod conversations;
mod migrate;
mod secrets;
mod shipping;
pub mod testing;

pub use catalog::{MAX_ORDER_QUANTITY, NewProduct, Order, OrderError, Product, ProductFilter};
pub use conversations::{
    AnalysisRecord, AnalysisStatus, CallAnalysis, Conversation, ConversationDetail, ConversationSummary, Entry,
    EntryKind, EntryRole, MAX_ANALYSIS_ATTEMPTS,
};
pub use secrets::ClientSecret;
pub use shipping::{Shipment, ShipmentError, normalize_destination};

use serde::Serialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection, Executor};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The longest page a list function returns.
pub const MAX_PAGE: i64 = 500;

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not one the store understands.
    #[error("{0}")]
    BadUrl(String),
    /// The database could not be opened or reached.
    #[error("{0}")]
    Open(String),
    /// The schema could not be brought up to date.
    #[error("{0}")]
    Migrate(String),
    /// A query failed.
    #[error("database error: {0}")]
    Database(String),
    /// The database could not be reached or could not take the write now (connection lost,
    /// restarting, pool exhausted, disk full, locked): worth trying again.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A row referred to something that does not exist (a conversation id, …).
    #[error("{0}")]
    NotFound(String),
    /// An argument was out of range.
    #[error("{0}")]
    Invalid(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if transient(&e) { StoreError::Unavailable(e.to_string()) } else { StoreError::Database(e.to_string()) }
    }
}

/// Whether an error is the database being away or full for now rather than the query being
/// wrong: connection and pool failures; PostgreSQL's connection exceptions (SQLSTATE class 08),
/// insufficient resources (53: disk full, out of memory, too many connections) and operator
/// interventions (57P: shutting down, cannot connect now); SQLite's busy, locked, I/O error,
/// full and cannot-open.
fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite's codes are numbers (extended codes keep the primary one in the low byte).
            match code.parse::<u32>() {
                Ok(n) => matches!(n & 0xff, 5 | 6 | 10 | 13 | 14),
                Err(_) => code.starts_with("08") || code.starts_with("53") || code.starts_with("57P"),
            }
        }
        _ => false,
    }
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// One SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// One page of a list, with the number of rows in the whole list.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// How many rows the whole list has.
    pub total: i64,
    /// The page size used (clamped to 1..=[`MAX_PAGE`]).
    pub limit: i64,
    /// Rows skipped before this page.
    pub offset: i64,
}

/// Clamps a requested page to what the store serves.
pub(crate) fn page_bounds(limit: i64, offset: i64) -> (i64, i64) {
    (limit.clamp(1, MAX_PAGE), offset.max(0))
}

/// The database: a connection pool and the backend it is on. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
}

/// The current time as unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A URL with any password replaced by `***`, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let hidden = if userinfo.contains(':') { format!("{user}:***") } else { user.to_owned() };
            format!("{scheme}://{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// The file path of a `sqlite:` URL (`sqlite://PATH`, `sqlite:PATH`), without its `?options`.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

impl Store {
    /// The default database in a data directory: `sqlite://{data_dir}/brazen.db`.
    pub fn default_url(data_dir: &Path) -> String {
        format!("sqlite://{}/brazen.db", data_dir.display())
    }

    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    ///
    /// `sqlite://PATH` creates the file and its parent directories when missing and runs in WAL
    /// mode with foreign keys on and a 10 s busy timeout; `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`
    /// (or `postgresql://`) connects without TLS. Re-opening an up-to-date database changes
    /// nothing.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = url.trim();
        let shown = redact(url);
        let (backend, connect_url) = if url.starts_with("sqlite:") {
            let Some(path) = sqlite_path(url) else {
                return Err(StoreError::BadUrl(format!(
                    "The database URL '{shown}' names no file; write sqlite://PATH (e.g. sqlite://data/brazen.db)."
                )));
            };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Open(format!(
                        "Cannot create the database directory {}: {e}. Choose a writable data directory or database URL.",
                        dir.display()
                    ))
                })?;
            }
            if path.is_dir() {
                return Err(StoreError::Open(format!(
                    "The database path {} is a directory; name a file, e.g. sqlite://{}/brazen.db.",
                    path.display(),
                    path.display()
                )));
            }
            (Backend::Sqlite, format!("sqlite://{}?mode=rwc", path.display()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::BadUrl(format!(
                "Unsupported database URL '{shown}': use sqlite://PATH (a file, created if missing) or \
                 postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE."
            )));
        };
        let options = AnyConnectOptions::from_str(&connect_url)
            .map_err(|e| StoreError::BadUrl(format!("The database URL '{shown}' is not valid: {e}.")))?;
        let max_connections = match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 10,
        };
        let open_error = |e: sqlx::Error| match backend {
            Backend::Sqlite => StoreError::Open(format!(
                "Cannot open the SQLite database {}: {e}. Check that the path is writable, or choose another \
                 data directory or database URL.",
                sqlite_path(url).map(|p| p.display().to_string()).unwrap_or_default()
            )),
            Backend::Postgres => StoreError::Open(format!(
                "Cannot connect to PostgreSQL at {shown}: {e}. Check that the server is running and accepts \
                 connections there, and that the user, password and database in the URL are right."
            )),
        };
        // One direct connection first: the pool would retry a refused one until its timeout.
        let probe = sqlx::AnyConnection::connect_with(&options).await.map_err(open_error)?;
        probe.close().await.map_err(open_error)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(open_error)?;
        let store = Store { pool, backend };
        migrate::run(&store).await.map_err(|e| match e {
            StoreError::Database(m) => StoreError::Migrate(format!(
                "Cannot bring the database schema up to date: {m}. Is the database writable (SQLite: a read-only \
                 file or directory?) and does the user own the schema?"
            )),
            other => other,
        })?;
        Ok(store)
    }

    /// Which backend this store is on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The newest schema migration applied to this database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        use sqlx::Row;
        let row = sqlx::query("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v FROM brazen_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("v")?)
    }

    /// How many schema migrations are recorded (one row each, however often the database was
    /// opened).
    pub async fn migrations_applied(&self) -> Result<i64, StoreError> {
        use sqlx::Row;
        let row = sqlx::query("SELECT COUNT(*) AS n FROM brazen_migrations").fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }

    /// Closes every connection (waits for those in use). Later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_path("sqlite:///a/b.db?mode=ro"), Some(PathBuf::from("/a/b.db")));
        assert_eq!(sqlite_path("sqlite://rel/b.db"), Some(PathBuf::from("rel/b.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(Store::default_url(Path::new("/data")), "sqlite:///data/brazen.db");
    }
}
