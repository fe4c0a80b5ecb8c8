//! The service in this process, on a free port and a fresh database, and the client that
//! every test talks to a server through.

use super::database::TestDatabase;
use super::operation_body;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::net::SocketAddr;
use std::sync::Arc;
use uuid::Uuid;
use wallet_server::{Application, Config};

/// A server's addresses and database, and an HTTP client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The admin listener: metrics and profiles.
    pub admin_addr: SocketAddr,
    pub database_url: String,
    pub client: Client,
    /// The database is dropped when the last app (or server process) on it is.
    database: Option<Arc<TestDatabase>>,
}

/// A server on a new database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A server on a new database, with extra command-line flags.
pub async fn spawn_app_with(flags: &[&str]) -> TestApp {
    let database = Arc::new(TestDatabase::fresh());
    serve(database.url(), Some(database), flags).await
}

/// The service in this process on `database_url`, listening on free ports.
async fn serve(
    database_url: String,
    database: Option<Arc<TestDatabase>>,
    flags: &[&str],
) -> TestApp {
    let mut args = vec![
        "wallet-server",
        "--database-url",
        &database_url,
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
    let (addr, admin_addr) = (app.local_addr(), app.admin_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp::new(addr, admin_addr, &database_url, database)
}

impl TestApp {
    pub(super) fn new(
        addr: SocketAddr,
        admin_addr: SocketAddr,
        database_url: &str,
        database: Option<Arc<TestDatabase>>,
    ) -> Self {
        Self {
            addr,
            admin_addr,
            database_url: database_url.to_owned(),
            client: Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
            database,
        }
    }

    /// A second instance of the service on this app's database.
    pub async fn spawn_beside(&self, flags: &[&str]) -> TestApp {
        serve(self.database_url.clone(), self.database.clone(), flags).await
    }

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
        self.operation(&operation_body(wallet, "DEPOSIT", amount, None))
            .await
    }

    pub async fn withdraw(&self, wallet: Uuid, amount: u64) -> Response {
        self.operation(&operation_body(wallet, "WITHDRAW", amount, None))
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
