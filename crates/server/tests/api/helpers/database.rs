//! The PostgreSQL server the tests run on, and the databases they create on it.
//!
//! The server is `TEST_DATABASE_SERVER` (default `postgres://postgres:postgres@127.0.0.1:5432`).

use sqlx::{Connection, PgConnection};
use std::sync::OnceLock;
use std::time::Duration;
use uuid::Uuid;

const DEFAULT_SERVER: &str = "postgres://postgres:postgres@127.0.0.1:5432";

/// Prefix of every database a test creates; a leftover one is easy to find and drop.
pub const PREFIX: &str = "wallet_test_";

/// Longest the drop of a test's database may take before the test goes on without it.
const DROP_LIMIT: Duration = Duration::from_secs(30);

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
/// Nothing creates it here: the service does, as it does in production. It is dropped when
/// the guard is, also when the test fails.
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

impl Drop for TestDatabase {
    /// `DROP DATABASE ... WITH (FORCE)`, which first ends every session on it: the service's
    /// pool and writers, a real server's, a check's. A drop may run inside the test's
    /// runtime, where no other runtime can block, so it runs on a thread of its own with a
    /// small runtime, and the test waits for it.
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let admin_url = format!("{}/postgres", server_url());
        let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let attempt = async {
                    let mut admin = PgConnection::connect(&admin_url).await?;
                    sqlx::query(&statement).execute(&mut admin).await?;
                    admin.close().await?;
                    anyhow::Ok(())
                };
                tokio::time::timeout(DROP_LIMIT, attempt).await?
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("test database {} not dropped: {error:#}", self.name),
            Err(_) => eprintln!(
                "test database {} not dropped: the dropper panicked",
                self.name
            ),
        }
    }
}
