//! Client secrets (`POST /v1/realtime/client_secrets`), kept where every node sees them: a
//! secret minted on one node starts its one session on any other. Only a hash of each is kept.

use crate::{Store, StoreError};
use sqlx::Row;

/// A minted secret: the session it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecret {
    /// The id its session will have.
    pub session_id: String,
    /// The session's configuration as the request gave it (JSON), if any.
    pub session: Option<String>,
    /// A hash of the API key it was minted with (each key has its own cap on waiting secrets),
    /// if any.
    pub key_hash: Option<String>,
}

impl Store {
    /// Keeps the secret whose hash is `hash` until `expires_at` (unix ms).
    pub async fn put_client_secret(
        &self,
        hash: &str,
        expires_at: i64,
        secret: &ClientSecret,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO client_secrets (hash, expires_at, session_id, session, key_hash) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash)
        .bind(expires_at)
        .bind(&secret.session_id)
        .bind(secret.session.clone())
        .bind(secret.key_hash.clone())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Uses up the secret whose hash is `hash`: what it starts, or `None` when it is unknown,
    /// used already or past `now` (unix ms). Of two nodes taking it at once, one gets it.
    pub async fn take_client_secret(&self, hash: &str, now: i64) -> Result<Option<ClientSecret>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM client_secrets WHERE hash = $1 RETURNING expires_at, session_id, session, key_hash",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        if row.try_get::<i64, _>("expires_at")? <= now {
            return Ok(None);
        }
        Ok(Some(ClientSecret {
            session_id: row.try_get("session_id")?,
            session: row.try_get("session")?,
            key_hash: row.try_get("key_hash")?,
        }))
    }

    /// The secret whose hash is `hash`, without using it up: `None` when it is unknown, used
    /// already or past `now` (unix ms).
    pub async fn peek_client_secret(&self, hash: &str, now: i64) -> Result<Option<ClientSecret>, StoreError> {
        let row =
            sqlx::query("SELECT session_id, session, key_hash FROM client_secrets WHERE hash = $1 AND expires_at > $2")
                .bind(hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ClientSecret {
            session_id: row.try_get("session_id")?,
            session: row.try_get("session")?,
            key_hash: row.try_get("key_hash")?,
        }))
    }

    /// Forgets the secrets that expired before `now` (unix ms); how many.
    pub async fn forget_expired_client_secrets(&self, now: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM client_secrets WHERE expires_at <= $1").bind(now).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// How many secrets minted with the key hashed `key_hash` (or with none) wait to be used
    /// (expired ones included until forgotten).
    pub async fn client_secrets_waiting(&self, key_hash: Option<&str>) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM client_secrets WHERE COALESCE(key_hash, '') = $1")
            .bind(key_hash.unwrap_or_default())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}
