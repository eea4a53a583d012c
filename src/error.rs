//! One error type for handlers. Its responder logs internal causes and hands only the
//! status to the themed catchers, so nothing internal reaches a page.

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::Request;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    /// The database refused a value the request carried (PostgreSQL's data exceptions).
    /// Input is checked before it reaches SQL; this is the net under those checks.
    #[error("value refused by the database: {0}")]
    BadInput(sqlx::Error),
    /// The database could not be reached (down, or every connection busy).
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// The database's disk is full (SQLITE_FULL, PostgreSQL's disk_full): the write was
    /// rolled back whole; reads still work, and writes do again once space is freed.
    #[error("database storage full: {0}")]
    StorageFull(sqlx::Error),
    #[error("database: {0}")]
    Database(sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn status(&self) -> Status {
        match self {
            Error::NotFound => Status::NotFound,
            Error::Forbidden => Status::Forbidden,
            Error::BadInput(_) => Status::BadRequest,
            Error::Unavailable(_) => Status::ServiceUnavailable,
            Error::StorageFull(_) => Status::InsufficientStorage,
            Error::Database(_) | Error::Internal(_) => Status::InternalServerError,
        }
    }

    pub fn internal(what: impl std::fmt::Display) -> Error {
        Error::Internal(what.to_string())
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Error::Unavailable(e),
            sqlx::Error::Database(ref db) if is_busy(db.as_ref()) => Error::Unavailable(e),
            sqlx::Error::Database(ref db) if is_full(db.as_ref()) => Error::StorageFull(e),
            sqlx::Error::Database(ref db) if db.code().is_some_and(|c| c.starts_with("22")) => {
                Error::BadInput(e)
            }
            e => Error::Database(e),
        }
    }
}

/// SQLite's "database is locked" and PostgreSQL's connection-loss and shutdown codes
/// are passing conditions, not defects.
fn is_busy(e: &dyn sqlx::error::DatabaseError) -> bool {
    matches!(
        e.code().as_deref(),
        Some("5" | "6" | "57P01" | "57P02" | "57P03" | "08000" | "08003" | "08006")
    )
}

/// SQLite's SQLITE_FULL (13, also what it reports when a write meets ENOSPC) and
/// PostgreSQL's disk_full (53100).
pub fn is_full(e: &dyn sqlx::error::DatabaseError) -> bool {
    matches!(e.code().as_deref(), Some("13" | "53100"))
}

impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        if status.code >= 500 {
            log::error!("{} {}: {self}", req.method(), req.uri());
        } else if let Error::BadInput(_) = self {
            log::warn!("{} {}: {self}", req.method(), req.uri());
        }
        Err(status)
    }
}

/// An error and its causes on one line ("outer: cause: root cause"), for logs and for
/// operators' messages: the outermost message alone often hides what actually failed.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("template base.html")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause() {
        let e = Outer(std::io::Error::other("unexpected tag"));
        assert_eq!(super::chain(&e), "template base.html: unexpected tag");
    }
}
