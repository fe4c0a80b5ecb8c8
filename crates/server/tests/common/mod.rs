//! Test harness: every test gets a real server on a free port and its own fresh database.
#![allow(dead_code)] // each test binary uses a different part of the harness

use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;
use wallet_server::{Application, Config};

/// Server (without database name) the tests create their databases on.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_SERVER")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432".to_owned())
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The admin listener: metrics and profiles.
    pub admin_addr: SocketAddr,
    pub database_url: String,
    pub client: Client,
}

/// A server on a new database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A server on a new database, with extra command-line flags.
pub async fn spawn_app_with(flags: &[&str]) -> TestApp {
    let database_url = format!("{}/wallet_test_{}", server_url(), Uuid::new_v4().simple());
    spawn_app_on(&database_url, flags).await
}

/// A server on an existing (or new) database, e.g. a second instance beside another one.
pub async fn spawn_app_on(database_url: &str, flags: &[&str]) -> TestApp {
    let mut args = vec![
        "wallet-server",
        "--database-url",
        database_url,
        "--http-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
        "--db-pool-size",
        "4",
        "--shards",
        "2",
    ];
    args.extend_from_slice(flags);
    let config =
        Config::load(args.into_iter().map(Into::into).collect()).expect("valid test flags");
    let app = Application::build(&config).await.expect("the app starts");
    let addr = app.local_addr();
    let admin_addr = app.admin_addr();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        addr,
        admin_addr,
        database_url: database_url.to_owned(),
        client: Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap(),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin_addr, path)
    }

    /// `POST /api/v1/wallet` with a JSON body.
    pub async fn operation(&self, body: &Value) -> Response {
        self.client
            .post(self.url("/api/v1/wallet"))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn deposit(&self, wallet: Uuid, amount: u64) -> Response {
        self.operation(&json!({"walletId": wallet, "operationType": "DEPOSIT", "amount": amount}))
            .await
    }

    pub async fn withdraw(&self, wallet: Uuid, amount: u64) -> Response {
        self.operation(&json!({"walletId": wallet, "operationType": "WITHDRAW", "amount": amount}))
            .await
    }

    /// A wallet holding `balance`.
    pub async fn funded_wallet(&self, balance: u64) -> Uuid {
        let wallet = Uuid::new_v4();
        let response = self
            .client
            .post(self.url("/api/v1/wallets"))
            .json(&json!({ "walletId": wallet }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        if balance > 0 {
            assert_eq!(self.deposit(wallet, balance).await.status(), StatusCode::OK);
        }
        wallet
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn balance(&self, wallet: Uuid) -> u64 {
        let response = self.get(&format!("/api/v1/wallets/{wallet}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["balance"].as_u64().expect("balance is an integer")
    }

    /// Every operation of `wallet`, newest first, following the cursor to the end.
    pub async fn history(&self, wallet: Uuid) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/wallets/{wallet}/operations?limit=500");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let response = self.get(&path).await;
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.unwrap();
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
    }

    /// A direct connection to this test's database, for checks behind the API.
    pub async fn db(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.database_url)
            .await
            .unwrap()
    }

    /// Checks the ledger invariant for every wallet in the database: the balance equals the
    /// applied deposits minus the applied withdrawals, and the newest applied operation's
    /// `balance_after`.
    pub async fn assert_ledger_consistent(&self) {
        let rows: Vec<(Uuid, i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT w.id, w.balance,
                    COALESCE((SELECT SUM(CASE kind WHEN 'DEPOSIT' THEN amount ELSE -amount END)
                              FROM operations o WHERE o.wallet_id = w.id AND status = 'APPLIED'), 0)::int8,
                    (SELECT balance_after FROM operations o
                     WHERE o.wallet_id = w.id AND status = 'APPLIED' ORDER BY seq DESC LIMIT 1)
             FROM wallets w",
        )
        .fetch_all(&self.db().await)
        .await
        .unwrap();
        for (wallet, balance, sum, newest) in rows {
            assert_eq!(
                balance, sum,
                "wallet {wallet}: balance vs applied operations"
            );
            assert_eq!(
                newest.unwrap_or(0),
                balance,
                "wallet {wallet}: newest balance_after"
            );
        }
    }
}

/// Checks that `response` is an RFC 9457 problem with `status` and `code`, and returns its
/// body.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    assert_problem_in("", response, status, code).await
}

/// [`assert_problem`] for one case of a table, named in any failure.
pub async fn assert_problem_in(
    case: &str,
    response: Response,
    status: StatusCode,
    code: &str,
) -> Value {
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let (actual, body) = status_and_body(response).await;
    assert_eq!(actual, status, "{case}: status of {body}");
    assert_eq!(
        content_type.as_deref(),
        Some("application/problem+json"),
        "{case}: content type of {body}"
    );
    assert_eq!(body["code"], code, "{case}: code of {body}");
    assert_eq!(
        body["status"],
        status.as_u16(),
        "{case}: status field of {body}"
    );
    for field in ["type", "title", "detail"] {
        assert!(
            body[field].is_string(),
            "{case}: {field} is a string in {body}"
        );
    }
    body
}

/// The body of `POST /api/v1/wallet` for a deposit or withdrawal carrying its `operationId`.
pub fn operation_body(wallet: Uuid, deposit: bool, amount: u64, id: Uuid) -> Value {
    json!({
        "walletId": wallet,
        "operationType": if deposit { "DEPOSIT" } else { "WITHDRAW" },
        "amount": amount,
        "operationId": id,
    })
}

/// Status and JSON body of a response.
pub async fn status_and_body(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// A scrape of the admin listener's `/metrics`, parsed.
pub struct Metrics(Vec<(String, BTreeMap<String, String>, f64)>);

impl Metrics {
    /// The sum over every series named `name` whose labels include `labels`; 0 when none.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
            })
            .map(|(_, _, value)| value)
            .sum()
    }

    /// Whether any series is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _, _)| n == name)
    }
}

/// Scrapes the Prometheus text format from `admin`.
pub async fn scrape(admin: SocketAddr) -> Metrics {
    let response = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    Metrics(
        text.lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(parse_sample)
            .collect(),
    )
}

/// `name{k="v",...} value` (label values here hold no quotes or escapes).
fn parse_sample(line: &str) -> (String, BTreeMap<String, String>, f64) {
    let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
    let value = value.parse().expect("a sample's value is a number");
    let Some((name, labels)) = series.split_once('{') else {
        return (series.to_owned(), BTreeMap::new(), value);
    };
    let mut parsed = BTreeMap::new();
    let mut rest = labels.strip_suffix('}').expect("labels end with }");
    while let Some((key, after)) = rest.split_once("=\"") {
        let (value, after) = after.split_once('"').expect("a label value is quoted");
        parsed.insert(key.to_owned(), value.to_owned());
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    (name.to_owned(), parsed, value)
}

/// The real `wallet-server` binary, logging JSON. Killed when dropped, in case a test fails
/// before it exits.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub database_url: String,
    /// Every line the process wrote, stdout and stderr.
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

/// A running binary on a new database, with the addresses it listens on.
pub struct RunningServer {
    pub process: ServerProcess,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
}

/// Starts the binary on a new database with extra `flags` and waits until it listens.
pub async fn start_server(flags: &[&str]) -> RunningServer {
    let database_url = format!("{}/wallet_test_{}", server_url(), Uuid::new_v4().simple());
    let mut process = ServerProcess::spawn(&database_url, flags);
    let (addr, admin_addr) = process.listening().await;
    RunningServer {
        process,
        addr,
        admin_addr,
    }
}

impl ServerProcess {
    /// Runs the binary on `database_url`, on free ports, with JSON logs; `flags` override
    /// any of that. Nothing comes from the test's environment or a `config.env`.
    pub fn spawn(database_url: &str, flags: &[&str]) -> Self {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wallet-server"))
            .env_clear()
            .envs([
                ("DATABASE_URL", database_url),
                ("WALLET_HTTP_ADDR", "127.0.0.1:0"),
                ("WALLET_ADMIN_ADDR", "127.0.0.1:0"),
                ("WALLET_LOG_FORMAT", "json"),
                ("RUST_LOG", "info"),
            ])
            .args(["--config", "/dev/null"])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the server binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect_lines(child.stdout.take().unwrap(), lines.clone()),
            collect_lines(child.stderr.take().unwrap(), lines.clone()),
        ];
        Self {
            child,
            database_url: database_url.to_owned(),
            lines,
            readers,
        }
    }

    /// Waits for the `listening` log line and returns the API's and the admin's address.
    pub async fn listening(&mut self) -> (SocketAddr, SocketAddr) {
        loop {
            let output = self.output();
            let addrs = output.iter().find_map(|line| {
                let addr = |field| listening_field(line, field)?.parse().ok();
                Some((addr("http")?, addr("admin")?))
            });
            if let Some(addrs) = addrs {
                return addrs;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the server exited ({status}): {:#?}", self.output());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Sends `signal` (`TERM`, `INT`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the process is running");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Waits for the process to exit and for all its output.
    pub async fn exit_status(&mut self) -> std::process::ExitStatus {
        // A guard against a hang, not a timing assertion: shutdown takes well under this.
        let status = tokio::time::timeout(std::time::Duration::from_secs(120), self.child.wait())
            .await
            .expect("the server exits")
            .unwrap();
        for reader in self.readers.drain(..) {
            reader.await.unwrap();
        }
        status
    }

    pub fn output(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// A field of the `listening` log line, in either log format.
fn listening_field(line: &str, field: &str) -> Option<String> {
    if let Ok(event) = serde_json::from_str::<Value>(line) {
        return (event["message"] == "listening")
            .then(|| event[field].as_str().map(str::to_owned))
            .flatten();
    }
    let prefix = format!("{field}=");
    line.contains(" listening ")
        .then(|| {
            line.split_whitespace()
                .find_map(|token| token.strip_prefix(&prefix).map(str::to_owned))
        })
        .flatten()
}

fn collect_lines(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            lines.lock().unwrap().push(line);
        }
    })
}
