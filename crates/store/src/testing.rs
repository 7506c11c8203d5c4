//! Throw-away databases for tests (this crate's and its users'): a fresh SQLite file in a temp
//! directory, or a fresh PostgreSQL database `t_<random>` on the server named by
//! `BRAZEN_TEST_POSTGRES_URL` (an admin URL, e.g. `postgres://postgres@127.0.0.1:5433/postgres`),
//! dropped again by [`TestDb::finish`]. Not for production use.

use crate::catalog::random_id;
use crate::{Store, StoreError};
use sqlx::Connection;
use std::path::PathBuf;

/// The environment variable naming the PostgreSQL server tests may create databases on.
pub const POSTGRES_URL_VAR: &str = "BRAZEN_TEST_POSTGRES_URL";

/// Where a test database lives.
#[derive(Debug)]
enum Place {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

/// A fresh database for one test.
#[derive(Debug)]
pub struct TestDb {
    /// The URL to open it with (several stores or processes may).
    pub url: String,
    place: Place,
}

/// The URL of `admin_url`'s server with the database `name` in place of the admin database.
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{base}/{name}{query}")
}

impl TestDb {
    /// A new SQLite file in a fresh temp directory.
    pub fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("brazen-store-test-{}", random_id("", 12).to_lowercase()));
        let path = dir.join("test.db");
        TestDb { url: format!("sqlite://{}", path.display()), place: Place::Sqlite(dir) }
    }

    /// A new PostgreSQL database, or `None` (with a note on stderr) when `BRAZEN_TEST_POSTGRES_URL`
    /// is unset.
    pub async fn postgres(test: &str) -> Result<Option<TestDb>, StoreError> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
            eprintln!(
                "SKIPPED (PostgreSQL): {test} needs {POSTGRES_URL_VAR} (scripts/test sets it after starting a \
                 private PostgreSQL cluster)."
            );
            return Ok(None);
        };
        sqlx::any::install_default_drivers();
        let name = format!("t_{}", random_id("", 12).to_lowercase());
        let mut admin = sqlx::AnyConnection::connect(&admin_url)
            .await
            .map_err(|e| StoreError::Open(format!("Cannot connect to {POSTGRES_URL_VAR}: {e}.")))?;
        sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
        admin.close().await?;
        Ok(Some(TestDb { url: with_database(&admin_url, &name), place: Place::Postgres { admin_url, name } }))
    }

    /// Opens a store on it.
    pub async fn open(&self) -> Result<Store, StoreError> {
        Store::open(&self.url).await
    }

    /// Removes the database (close its stores first).
    pub async fn finish(self) -> Result<(), StoreError> {
        match &self.place {
            Place::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Place::Postgres { admin_url, name } => {
                let mut admin = sqlx::AnyConnection::connect(admin_url).await?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await?;
                admin.close().await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_urls() {
        assert_eq!(with_database("postgres://u@h:5/postgres", "t_x"), "postgres://u@h:5/t_x");
        assert_eq!(with_database("postgres://u@h:5", "t_x"), "postgres://u@h:5/t_x");
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "t_x"),
            "postgres://u@h/t_x?sslmode=disable"
        );
    }
}
