//! Handles: the name in an author's address (`/authors/<handle>`). Every account has one,
//! unique regardless of case (stored lowercase). One given up stays in `handle_history`
//! for `HOLD_DAYS`: nobody else may take it meanwhile, its owner may take it back, and
//! its old address points to the owner's new one.

use std::collections::HashSet;
use std::fmt;

use sqlx::AnyPool;

use super::{is_unique_violation, now};
use crate::domain::UserId;

/// How long a handle given up stays its former owner's.
pub const HOLD_DAYS: i64 = 30;
pub const MIN_LEN: usize = 3;
pub const MAX_LEN: usize = 30;

/// A valid handle: `MIN_LEN` to `MAX_LEN` characters of a-z, 0-9 and '-', not all digits.
/// Never an email: '@' and '.' are not in the alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle(String);

impl Handle {
    /// A handle as typed: trimmed and lowercased, then checked. The error says what to
    /// change.
    pub fn parse(typed: &str) -> Result<Handle, String> {
        let h = typed.trim().to_lowercase();
        let len = h.chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(format!(
                "A handle is {MIN_LEN} to {MAX_LEN} characters long."
            ));
        }
        if !h
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("Use only letters a to z, digits and '-'.".into());
        }
        if h.bytes().all(|b| b.is_ascii_digit()) {
            return Err("A handle needs at least one letter or '-', not only digits.".into());
        }
        Ok(Handle(h))
    }

    /// Whether `s` could be a handle at all (in any case); anything else names no author
    /// and is not worth a query.
    pub fn could_be(s: &str) -> bool {
        Handle::parse(s).is_ok_and(|h| h.0.len() == s.len())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The handle a name suggests: slugified ("Zoë Smith" -> "zoe-smith") and cut to leave
/// room for a number; None when that gives no valid handle (too short, only digits) or
/// when the name holds an '@', since handles never show an email.
pub fn base_from_name(name: &str) -> Option<String> {
    if name.contains('@') {
        return None;
    }
    let mut base = slug::slugify(name);
    // Room for "-999" within MAX_LEN.
    let room = MAX_LEN - 4;
    if base.len() > room {
        base.truncate(room);
        while base.ends_with('-') {
            base.pop();
        }
    }
    Handle::parse(&base).ok().map(|h| h.0)
}

/// The first of `base`, `base-2`, `base-3`, ... not in `taken`.
fn first_free(base: &str, taken: &HashSet<String>) -> String {
    if !taken.contains(base) {
        return base.to_string();
    }
    let n = (2..).find(|n| !taken.contains(&format!("{base}-{n}")));
    format!("{base}-{}", n.unwrap_or(2))
}

/// Gives an account without a handle one derived from `name` (or `user-<id>`), numbered
/// past those taken or held for someone else. Returns the handle the account has
/// afterwards (it may have got one meanwhile).
pub async fn assign(db: &AnyPool, id: UserId, name: &str) -> sqlx::Result<String> {
    let base = base_from_name(name).unwrap_or_else(|| format!("user-{id}"));
    let cutoff = now() - HOLD_DAYS * 86_400;
    for _ in 0..5 {
        // Slug characters hold no LIKE wildcard but '-', which is literal there.
        let taken: Vec<(String,)> = sqlx::query_as(
            "SELECT handle FROM users WHERE (handle = $1 OR handle LIKE $2) AND id <> $3 \
             UNION SELECT handle FROM handle_history WHERE (handle = $1 OR handle LIKE $2) \
             AND user_id <> $3 AND released_at > $4",
        )
        .bind(&base)
        .bind(format!("{base}-%"))
        .bind(id.0)
        .bind(cutoff)
        .fetch_all(db)
        .await?;
        let taken: HashSet<String> = taken.into_iter().map(|(h,)| h).collect();
        let handle = first_free(&base, &taken);
        let res = sqlx::query("UPDATE users SET handle = $1 WHERE id = $2 AND handle = ''")
            .bind(&handle)
            .bind(id.0)
            .execute(db)
            .await;
        match res {
            Ok(_) => return Ok(of_user(db, id).await?.unwrap_or_default()),
            // Another account took it between the look and the write: look again.
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(sqlx::Error::Protocol(format!(
        "no free handle for {base:?} after 5 tries"
    )))
}

/// The account's handle; "" while it has none yet, None when there is no such account.
pub async fn of_user(db: &AnyPool, id: UserId) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT handle FROM users WHERE id = $1")
        .bind(id.0)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|(h,)| h))
}

/// The account's handle, giving it one first if it has none (accounts made before
/// handles existed, or whose assignment failed at signup).
pub async fn ensure(db: &AnyPool, id: UserId, name: &str) -> sqlx::Result<String> {
    match of_user(db, id).await? {
        Some(h) if !h.is_empty() => Ok(h),
        _ => assign(db, id, name).await,
    }
}

/// Gives every account without a handle one; run after migrating, so accounts from
/// before handles existed have theirs before the first page links them.
pub async fn backfill(db: &AnyPool) -> sqlx::Result<()> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, name FROM users WHERE handle = '' ORDER BY id")
            .fetch_all(db)
            .await?;
    for (id, name) in rows {
        assign(db, UserId(id), &name).await?;
    }
    Ok(())
}

/// Who an author address names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The account whose handle it is now.
    Current(UserId),
    /// A handle the account gave up within the hold; its handle now is the `String`.
    Former(UserId, String),
}

/// The account a handle names now, or the one that gave it up within the hold; None
/// for a handle nobody has (or a hold that ran out).
pub async fn owner(db: &AnyPool, handle: &Handle) -> sqlx::Result<Option<Owner>> {
    let current: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE handle = $1")
        .bind(handle.as_str())
        .fetch_optional(db)
        .await?;
    if let Some((id,)) = current {
        return Ok(Some(Owner::Current(UserId(id))));
    }
    let former: Option<(i64, String)> = sqlx::query_as(
        "SELECT u.id, u.handle FROM handle_history h JOIN users u ON u.id = h.user_id \
         WHERE h.handle = $1 AND h.released_at > $2 AND u.handle <> ''",
    )
    .bind(handle.as_str())
    .bind(now() - HOLD_DAYS * 86_400)
    .fetch_optional(db)
    .await?;
    Ok(former.map(|(id, h)| Owner::Former(UserId(id), h)))
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// Another account has it, or gave it up less than `HOLD_DAYS` ago.
    #[error("that handle is taken")]
    Taken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Changes the account's handle, keeping the old one in the history (held for this
/// account) and taking back a held one of its own. Returns the handle given up ("" for
/// an account that had none), None when `new` already was the account's handle.
pub async fn change(db: &AnyPool, id: UserId, new: &Handle) -> Result<Option<String>, ChangeError> {
    for _ in 0..3 {
        let old = of_user(db, id).await?.unwrap_or_default();
        if old == new.as_str() {
            return Ok(None);
        }
        if try_change(db, id, &old, new).await? {
            return Ok(Some(old));
        }
    }
    Err(sqlx::Error::Protocol("the handle kept changing meanwhile".into()).into())
}

/// `change` from `old`; false when the account's handle was no longer `old`.
async fn try_change(
    db: &AnyPool,
    id: UserId,
    old: &str,
    new: &Handle,
) -> Result<bool, ChangeError> {
    let at = now();
    let mut tx = db.begin().await?;
    // The write comes first: it waits for (and then sees) any other change under way,
    // so the hold check below reads what that change committed, and SQLite takes its
    // write lock before reading anything.
    let res = sqlx::query("UPDATE users SET handle = $1 WHERE id = $2 AND handle = $3")
        .bind(new.as_str())
        .bind(id.0)
        .bind(old)
        .execute(&mut *tx)
        .await;
    match res {
        Ok(done) if done.rows_affected() == 0 => return Ok(false),
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(ChangeError::Taken),
        Err(e) => return Err(e.into()),
    }
    let held: Option<(i64,)> = sqlx::query_as(
        "SELECT user_id FROM handle_history WHERE handle = $1 AND user_id <> $2 \
         AND released_at > $3",
    )
    .bind(new.as_str())
    .bind(id.0)
    .bind(at - HOLD_DAYS * 86_400)
    .fetch_optional(&mut *tx)
    .await?;
    if held.is_some() {
        return Err(ChangeError::Taken);
    }
    // Taken back, or taken after the hold ran out: no longer anyone's former handle.
    sqlx::query("DELETE FROM handle_history WHERE handle = $1")
        .bind(new.as_str())
        .execute(&mut *tx)
        .await?;
    if !old.is_empty() {
        sqlx::query(
            "INSERT INTO handle_history (handle, user_id, released_at) VALUES ($1, $2, $3) \
             ON CONFLICT (handle) DO UPDATE SET user_id = excluded.user_id, \
             released_at = excluded.released_at",
        )
        .bind(old)
        .bind(id.0)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_3_to_30_of_a_z_digits_and_hyphens_not_all_digits() {
        for good in [
            "abc",
            "zoe-smith",
            "a-1",
            "x".repeat(30).as_str(),
            "---",
            "007-bond",
        ] {
            assert_eq!(Handle::parse(good).map(|h| h.0), Ok(good.to_string()));
        }
        assert_eq!(Handle::parse("  Zoe-Smith ").unwrap().as_str(), "zoe-smith");
        for bad in [
            "ab",
            "",
            "x".repeat(31).as_str(),
            "12345",
            "zoé",
            "a_b",
            "a.b",
            "me@x.io",
        ] {
            assert!(Handle::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Handle::parse("12345").unwrap_err().contains("digits"));
        assert!(Handle::parse("a b c").unwrap_err().contains("only letters"));
    }

    #[test]
    fn only_exact_handles_could_name_an_author() {
        assert!(Handle::could_be("zoe") && Handle::could_be("Zoe"));
        assert!(!Handle::could_be(" zoe") && !Handle::could_be("zoe\0") && !Handle::could_be("zo"));
    }

    #[test]
    fn names_suggest_slugified_handles_with_room_for_a_number() {
        assert_eq!(base_from_name("Zoë Smith").as_deref(), Some("zoe-smith"));
        assert_eq!(
            base_from_name("  Ada   LOVELACE!! ").as_deref(),
            Some("ada-lovelace")
        );
        let long = base_from_name(&"word ".repeat(20)).unwrap();
        assert!(long.len() <= MAX_LEN - 4 && !long.ends_with('-'), "{long}");
        for none in ["Al", "!!!", "", "1984", "ada@example.com"] {
            assert_eq!(base_from_name(none), None, "{none:?}");
        }
    }

    #[test]
    fn numbers_go_past_the_taken_handles() {
        let taken: HashSet<String> = ["ada", "ada-2", "ada-4"].map(String::from).into();
        assert_eq!(first_free("ada", &taken), "ada-3");
        assert_eq!(first_free("bob", &taken), "bob");
    }
}
