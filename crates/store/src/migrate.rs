//! The embedded schema migrations and the small runner that applies them in order, each in its
//! own transaction, recording them in `brazen_migrations`.

use crate::{Backend, Store, StoreError, now_ms};
use sqlx::Row;

/// The migrations, oldest first: (version, name, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "client secrets", include_str!("../migrations/0002_client_secrets.sql")),
];

/// Applies every migration the database has not seen yet.
pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS brazen_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         applied_at BIGINT NOT NULL)",
    )
    .execute(&store.pool)
    .await?;
    for &(version, name, sql) in MIGRATIONS {
        let mut tx = store.pool.begin().await?;
        if store.backend() == Backend::Postgres {
            // Two processes opening a fresh database at once: the second waits for the first.
            sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(72110417)) AS l")
                .execute(&mut *tx)
                .await?;
        }
        let applied = sqlx::query("SELECT version FROM brazen_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
        if applied.is_some() {
            tx.rollback().await?;
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO brazen_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(version)
            .bind(name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied database migration");
    }
    // A database written by a newer brazen: refuse rather than misread it.
    let newest: i64 = sqlx::query("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v FROM brazen_migrations")
        .fetch_one(&store.pool)
        .await?
        .try_get("v")?;
    let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if newest > known {
        return Err(StoreError::Migrate(format!(
            "The database has schema version {newest}, newer than this brazen knows ({known}); upgrade brazen or \
             use another database."
        )));
    }
    Ok(())
}
