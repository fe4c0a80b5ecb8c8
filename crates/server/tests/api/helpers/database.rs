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
        if let Some(nodes) = citus_nodes()
            && let Err(error) = run_aside(nodes.create(&database.name))
        {
            panic!(
                "cannot create {} on the Citus nodes: {error:#}",
                database.name
            );
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

/// On each Citus node, a database with the extension (and on the coordinator, the workers)
/// that each test database is copied from: creating the extension takes seconds, a copy a
/// fraction of one. Nothing may connect to it (a copy needs a source without sessions, and
/// Citus's maintenance daemon would keep one), and it is made under another name and renamed
/// when complete, so a run that died halfway leaves nothing that looks usable.
const TEMPLATE: &str = "wallet_test_citus_template";

impl CitusNodes {
    /// A new database on every node, a copy of the template.
    fn create(&self, name: &str) -> Vec<Vec<Statements>> {
        self.template();
        let copies = self
            .nodes
            .iter()
            .map(|(host, port)| {
                let sql = format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}");
                vec![(host.clone(), *port, "postgres".to_owned(), sql)]
            })
            .collect();
        let (host, port) = &self.nodes[0];
        // Fewer shards than the 32 of a default cluster make a test database quicker to set
        // up; eight still spread each table over both workers and each writer over several
        // shards.
        let sql = format!("ALTER DATABASE {name} SET citus.shard_count = 8");
        let shards = vec![(host.clone(), *port, "postgres".to_owned(), sql)];
        vec![copies, vec![shards]]
    }

    /// Makes the template on every node that lacks it, once per test process.
    fn template(&self) {
        static MADE: OnceLock<()> = OnceLock::new();
        MADE.get_or_init(|| {
            let building = format!("{PREFIX}template_{}", Uuid::new_v4().simple());
            let exists =
                format!("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{TEMPLATE}')");
            let (host, port) = &self.nodes[0];
            let on_new = |sql: String| (host.clone(), *port, building.clone(), sql);
            let mut coordinator = vec![on_new(format!(
                "SELECT citus_set_coordinator_host('{host}', {port})"
            ))];
            for (worker, worker_port) in &self.nodes[1..] {
                coordinator.push(on_new(format!(
                    "SELECT citus_add_node('{worker}', {worker_port})"
                )));
            }
            let on_each_node = |sql: &dyn Fn() -> Vec<String>| -> Vec<Statements> {
                self.nodes
                    .iter()
                    .map(|(host, port)| {
                        sql()
                            .into_iter()
                            .map(|sql| (host.clone(), *port, "postgres".to_owned(), sql))
                            .collect()
                    })
                    .collect()
            };
            let missing = on_each_node(&|| vec![exists.clone()]);
            if !run_aside_query(missing.into_iter().flatten().collect()).contains(&false) {
                return;
            }
            let mut create = on_each_node(&|| vec![format!("CREATE DATABASE {building}")]);
            for (statements, (host, port)) in create.iter_mut().zip(&self.nodes) {
                let sql = "CREATE EXTENSION citus".to_owned();
                statements.push((host.clone(), *port, building.clone(), sql));
            }
            let seal = on_each_node(&|| {
                vec![
                    format!("DROP DATABASE IF EXISTS {TEMPLATE}"),
                    format!("ALTER DATABASE {building} ALLOW_CONNECTIONS false"),
                    format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = '{building}'"
                    ),
                    format!("ALTER DATABASE {building} RENAME TO {TEMPLATE}"),
                ]
            });
            if let Err(error) = run_aside(vec![create, vec![coordinator], seal]) {
                panic!("cannot make the Citus template database: {error:#}");
            }
        });
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
/// after the other, within [`DROP_LIMIT`].
fn run_aside(steps: Vec<Vec<Statements>>) -> anyhow::Result<()> {
    block_aside(move |server| async move {
        for step in steps {
            let run = |statements: Statements| async {
                for statement in statements {
                    execute(&server, statement).await?;
                }
                anyhow::Ok(())
            };
            futures_util::future::try_join_all(step.into_iter().map(run)).await?;
        }
        Ok(())
    })
}

/// The one boolean each statement answers, in order.
fn run_aside_query(statements: Statements) -> Vec<bool> {
    let mut answers = Vec::new();
    let answered = block_aside(|server| async move {
        for (host, port, database, sql) in statements {
            let options = server.clone().host(&host).port(port).database(&database);
            let mut conn = PgConnection::connect_with(&options).await?;
            answers.push(sqlx::query_scalar(&sql).fetch_one(&mut conn).await?);
            conn.close().await?;
        }
        anyhow::Ok(answers)
    });
    answered.unwrap_or_else(|error| panic!("cannot ask the Citus nodes: {error:#}"))
}

async fn execute(
    server: &PgConnectOptions,
    (host, port, database, sql): (String, u16, String, String),
) -> anyhow::Result<()> {
    let options = server.clone().host(&host).port(port).database(&database);
    let mut conn = PgConnection::connect_with(&options).await?;
    sqlx::query(&sql).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Runs `work` (given the test server's connection options) on a thread of its own with a
/// small runtime: the caller may be inside a test's runtime, where no other runtime can
/// block. Gives up after [`DROP_LIMIT`].
fn block_aside<T, F>(work: impl FnOnce(PgConnectOptions) -> F + Send + 'static) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    let server = PgConnectOptions::from_str(server_url())?;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async { tokio::time::timeout(DROP_LIMIT, work(server)).await? })
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
