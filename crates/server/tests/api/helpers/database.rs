//! The PostgreSQL server the tests run on, and the databases they create on it.
//!
//! The server is `TEST_DATABASE_SERVER` (default `postgres://postgres:postgres@127.0.0.1:5432`).
//! When nothing answers there, this process starts a cluster of its own once, on a free port,
//! and every test uses it; it goes away when the process exits (see
//! [`PgCluster::start_for_process`]). So `cargo test` needs PostgreSQL installed, not running.

use super::pg_cluster::PgCluster;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::net::{TcpStream, ToSocketAddrs};
use std::str::FromStr;
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
        if answers(&configured) {
            return configured;
        }
        eprintln!("nothing answers at {configured}: the tests start a PostgreSQL of their own");
        // Never dropped: the cluster lives as long as the process.
        static OWN: OnceLock<PgCluster> = OnceLock::new();
        OWN.get_or_init(PgCluster::start_for_process).server_url()
    })
}

/// Whether something accepts connections at the host and port of `url`. What it is, and
/// whether it lets us in, the first test to connect finds out.
fn answers(url: &str) -> bool {
    let Ok(options) = PgConnectOptions::from_str(url) else {
        panic!("TEST_DATABASE_SERVER is not a PostgreSQL URL: {url}");
    };
    let addrs = (options.get_host(), options.get_port()).to_socket_addrs();
    addrs
        .into_iter()
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok())
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
