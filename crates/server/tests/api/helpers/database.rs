//! The PostgreSQL server the tests run on, and the databases they create on it.
//!
//! The server is `TEST_DATABASE_SERVER` (default `postgres://postgres:postgres@127.0.0.1:5432`).
//! When nothing answers there, this process starts a cluster of its own once, on a free port,
//! and every test uses it; it goes away when the process exits (see
//! [`PgCluster::start_for_process`]). So `cargo test` needs PostgreSQL installed, not running.
//!
//! When that server is a Citus coordinator (its `postgres` database has the `citus`
//! extension and workers), every test runs on Citus: each test database is created on every
//! node, made a Citus database there and given the same workers, as an operator would, and
//! the service distributes its tables when it migrates.

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
        let database = Self {
            name: format!("{PREFIX}{}", Uuid::new_v4().simple()),
        };
        if let Some(nodes) = citus_nodes() {
            let statements = nodes.create(&database.name);
            if let Err(error) = run_aside(statements) {
                panic!(
                    "cannot create {} on the Citus nodes: {error:#}",
                    database.name
                );
            }
        }
        database
    }

    pub fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }
}

/// Whether the tests run on Citus.
pub fn on_citus() -> bool {
    citus_nodes().is_some()
}

/// The nodes of the Citus cluster the tests run on: the coordinator first.
#[derive(Debug)]
struct CitusNodes {
    nodes: Vec<(String, u16)>,
}

/// Statements to run, in order, each on the server (`host`, `port`) and database given.
type Statements = Vec<(String, u16, String, String)>;

impl CitusNodes {
    /// A new database on every node, each made a Citus database (concurrently: the
    /// extension takes a while to create), then given the workers on the coordinator.
    fn create(&self, name: &str) -> Vec<Vec<Statements>> {
        let on_each_node = self.nodes.iter().map(|(host, port)| {
            let at = |database: &str, sql: String| (host.clone(), *port, database.to_owned(), sql);
            vec![
                at("postgres", format!("CREATE DATABASE {name}")),
                at(name, "CREATE EXTENSION citus".to_owned()),
            ]
        });
        let (host, port) = &self.nodes[0];
        let on_coordinator = |sql: String| (host.clone(), *port, name.to_owned(), sql);
        let mut workers = vec![
            on_coordinator(format!(
                "SELECT citus_set_coordinator_host('{host}', {port})"
            )),
            // Fewer shards than the 32 of a default cluster make a test database quicker to
            // set up; eight still spread each table over both workers and each writer over
            // several shards.
            on_coordinator(format!("ALTER DATABASE {name} SET citus.shard_count = 8")),
        ];
        for (worker, worker_port) in &self.nodes[1..] {
            workers.push(on_coordinator(format!(
                "SELECT citus_add_node('{worker}', {worker_port})"
            )));
        }
        vec![on_each_node.collect(), vec![workers]]
    }

    /// The workers' copies; the coordinator's is dropped like any test database.
    fn drop_on_workers(&self, name: &str) -> Statements {
        self.nodes[1..]
            .iter()
            .map(|(host, port)| {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                (host.clone(), *port, "postgres".to_owned(), sql)
            })
            .collect()
    }
}

/// The Citus nodes when the test server is a coordinator with workers.
fn citus_nodes() -> Option<&'static CitusNodes> {
    static NODES: OnceLock<Option<CitusNodes>> = OnceLock::new();
    NODES
        .get_or_init(|| {
            let url = format!("{}/postgres", server_url());
            let found = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    let mut conn = PgConnection::connect(&url).await?;
                    let citus: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')",
                    )
                    .fetch_one(&mut conn)
                    .await?;
                    if !citus {
                        return anyhow::Ok(Vec::new());
                    }
                    let nodes: Vec<(String, i32)> = sqlx::query_as(
                        "SELECT nodename, nodeport FROM pg_dist_node \
                         WHERE noderole = 'primary' ORDER BY groupid <> 0, nodeport",
                    )
                    .fetch_all(&mut conn)
                    .await?;
                    Ok(nodes)
                })
            })
            .join()
            .expect("the Citus probe panicked")
            .expect("cannot ask the test server whether it is a Citus coordinator");
            let nodes: Vec<(String, u16)> = found
                .into_iter()
                .map(|(host, port)| (host, u16::try_from(port).expect("a port")))
                .collect();
            (nodes.len() > 1).then_some(CitusNodes { nodes })
        })
        .as_ref()
}

/// Runs each step's sequences of statements concurrently, each sequence in order, one step
/// after the other, on a thread of its own with a small runtime (the caller may be inside a
/// test's runtime, where no other runtime can block), within [`DROP_LIMIT`].
fn run_aside(steps: Vec<Vec<Statements>>) -> anyhow::Result<()> {
    let server = PgConnectOptions::from_str(server_url())?;
    std::thread::spawn(move || -> anyhow::Result<()> {
        let run = |statements: Statements| {
            let server = &server;
            async move {
                for (host, port, database, sql) in statements {
                    let options = server.clone().host(&host).port(port).database(&database);
                    let mut conn = PgConnection::connect_with(&options).await?;
                    sqlx::query(&sql).execute(&mut conn).await?;
                    conn.close().await?;
                }
                anyhow::Ok(())
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let attempt = async {
                for step in steps {
                    futures_util::future::try_join_all(step.into_iter().map(run)).await?;
                }
                anyhow::Ok(())
            };
            tokio::time::timeout(DROP_LIMIT, attempt).await?
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the statements' thread panicked"))?
}

impl Drop for TestDatabase {
    /// `DROP DATABASE ... WITH (FORCE)`, which first ends every session on it: the service's
    /// pool and writers, a real server's, a check's; on Citus, on every node.
    fn drop(&mut self) {
        let (host, port) = {
            let server = PgConnectOptions::from_str(server_url()).expect("a PostgreSQL URL");
            (server.get_host().to_owned(), server.get_port())
        };
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let mut statements = vec![(host, port, "postgres".to_owned(), sql)];
        if let Some(nodes) = citus_nodes() {
            statements.extend(nodes.drop_on_workers(&self.name));
        }
        if let Err(error) = run_aside(vec![vec![statements]]) {
            eprintln!("test database {} not dropped: {error:#}", self.name);
        }
    }
}
