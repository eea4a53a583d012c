//! Values that may be used once: an OIDC login's state, a logout token's jti.

use sqlx::AnyPool;

use super::is_unique_violation;

/// Records `key` as used until `expires_at`. Returns false when it was already used
/// (the primary key decides, so two instances racing on one replay let one through).
pub async fn claim(db: &AnyPool, key: &str, expires_at: i64, now: i64) -> sqlx::Result<bool> {
    sqlx::query("DELETE FROM used_once WHERE expires_at < $1")
        .bind(now)
        .execute(db)
        .await?;
    let res = sqlx::query("INSERT INTO used_once (key, expires_at) VALUES ($1, $2)")
        .bind(key)
        .bind(expires_at)
        .execute(db)
        .await;
    match res {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}
