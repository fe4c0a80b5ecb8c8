//! Database failures, classified once, where they are raised: a failure another attempt may
//! not meet (the database is unreachable, restarting, or gave up on a statement) or a bug.
//! Every layer above decides on the class, never on SQLSTATEs.

use sqlx::postgres::PgDatabaseError;

/// A failed statement or connection.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connection lost or refused, the server shutting down or starting up, a serialization
    /// failure, a deadlock, a statement timeout, resources exhausted: retry later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else (a violated constraint, a statement PostgreSQL refuses, a row that does
    /// not decode): retrying cannot help; the details belong in the log.
    #[error("database error: {0}")]
    Bug(#[source] sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Whether the operation may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if is_transient(&error) {
            Self::Unavailable(error)
        } else {
            Self::Bug(error)
        }
    }
}

fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|code| transient_sqlstate(&code))
                || db
                    .try_downcast_ref::<PgDatabaseError>()
                    .is_some_and(lost_citus_node)
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// SQLSTATEs that say "not now" rather than "never": class 08 (connection exception), class
/// 53 (insufficient resources: too many connections, disk or memory full), serialization
/// failure and deadlock (40001, 40P01), a cancelled statement (57014: `statement_timeout`),
/// and the server shutting down or starting up (57P01-57P03).
fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "40001" | "40P01" | "57014" | "57P01" | "57P02" | "57P03"
        )
}

/// On Citus, a worker lost in the middle of a statement or a commit is reported by the
/// coordinator as an internal error (XX000) raised where it talks to the other nodes ("failure
/// on connection marked as essential", "SSL SYSCALL error: EOF detected"), not with a
/// connection SQLSTATE as when it cannot connect at all.
fn lost_citus_node(error: &PgDatabaseError) -> bool {
    error.code() == "XX000"
        && error.file().is_some_and(|file| {
            matches!(
                file,
                "remote_commands.c" | "remote_transaction.c" | "connection_management.c"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_sorted_into_retry_and_bug() {
        for code in [
            "08006", "08001", "40001", "40P01", "57014", "57P01", "57P03", "53300",
        ] {
            assert!(transient_sqlstate(code), "{code}");
        }
        // Unique and check violations, bad input, syntax, missing column or table.
        for code in ["23505", "23514", "22P02", "42601", "42703", "42P01"] {
            assert!(!transient_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn losing_the_connection_is_transient_and_a_decode_failure_a_bug() {
        let lost = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(StoreError::from(sqlx::Error::Io(lost)).is_transient());
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!StoreError::from(sqlx::Error::Decode("bad".into())).is_transient());
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_transient());
    }
}
