//! The PostgreSQL server the tests run on, and the databases they create on it.
//!
//! The server is `TEST_DATABASE_SERVER` (default `postgres://postgres:postgres@127.0.0.1:5432`).

use std::sync::OnceLock;
use uuid::Uuid;

const DEFAULT_SERVER: &str = "postgres://postgres:postgres@127.0.0.1:5432";

/// Prefix of every database a test creates; a leftover one is easy to find and drop.
pub const PREFIX: &str = "wallet_test_";

/// URL of the server (without a database name) the tests create their databases on.
pub fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let configured =
            std::env::var("TEST_DATABASE_SERVER").unwrap_or_else(|_| DEFAULT_SERVER.to_owned());
        configured
    })
}

/// A database of one test (or of the servers one test runs), named `wallet_test_<uuid>`.
/// Nothing creates it here: the service does, as it does in production.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
}

impl TestDatabase {
    pub fn fresh() -> Self {
        Self {
            name: format!("{PREFIX}{}", Uuid::new_v4().simple()),
        }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }
}
