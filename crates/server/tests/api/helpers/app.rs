//! The service in this process, on a free port and a fresh database, and the client that
//! every test talks to a server through.

use super::database::TestDatabase;
use super::reply::Reply;
use super::{BATCHES, IDEMPOTENCY_KEY, eventually, ledger, operation_body};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
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

    /// `POST /api/v1/transfers` with a JSON body.
    pub async fn transfer(&self, body: &Value) -> Response {
        self.client
            .post(self.url("/api/v1/transfers"))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// `POST /api/v1/batches` with a JSON body, read whole.
    pub async fn batch(&self, body: &Value) -> Reply {
        self.post(BATCHES, Some(body)).await
    }

    /// `POST path` with a JSON body and an `Idempotency-Key` header, read whole.
    pub async fn post_with_key(
        &self,
        path: &str,
        key: impl Into<HeaderValue>,
        body: &Value,
    ) -> Reply {
        let response = self
            .client
            .post(self.url(path))
            .header(IDEMPOTENCY_KEY, key.into())
            .json(body)
            .send()
            .await
            .expect("request sent");
        Reply::of(response).await
    }

    /// `POST path` with `body` sent as it is, labelled JSON: for bodies `json!` cannot build.
    pub async fn post_raw(&self, path: &str, body: impl Into<String>) -> Response {
        self.client
            .post(self.url(path))
            .header(CONTENT_TYPE, "application/json")
            .body(body.into())
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

    /// `POST /api/v1/wallets`, with a JSON body or none.
    pub async fn create_wallet(&self, body: Option<Value>) -> Response {
        let request = self.client.post(self.url("/api/v1/wallets"));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        request.send().await.expect("request sent")
    }

    /// A wallet holding `balance`.
    pub async fn funded_wallet(&self, balance: u64) -> Uuid {
        let wallet = Uuid::new_v4();
        let response = self
            .create_wallet(Some(json!({ "walletId": wallet })))
            .await;
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

    /// A wallet's `(balance, held, available)`, as `GET /api/v1/wallets/{walletId}` shows them.
    pub async fn funds(&self, wallet: Uuid) -> (u64, u64, u64) {
        let response = self.get(&format!("/api/v1/wallets/{wallet}")).await;
        let (status, body) = (response.status(), Reply::of(response).await.json());
        assert_eq!(status, StatusCode::OK, "{body}");
        let amount = |field: &str| {
            body[field]
                .as_u64()
                .unwrap_or_else(|| panic!("{field} is an integer in {body}"))
        };
        (amount("balance"), amount("held"), amount("available"))
    }

    /// `POST path`, with a JSON body or none, read whole.
    pub async fn post(&self, path: &str, body: Option<&Value>) -> Reply {
        let request = self.client.post(self.url(path));
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        Reply::of(request.send().await.expect("request sent")).await
    }

    /// `GET /api/v1/holds/{hold}`, read whole.
    pub async fn hold(&self, hold: Uuid) -> Reply {
        Reply::of(self.get(&format!("/api/v1/holds/{hold}")).await).await
    }

    /// `POST /api/v1/holds/{hold}/confirm`, with a JSON body (`{"amount": ...}`) or none.
    pub async fn confirm_hold(&self, hold: Uuid, body: Option<&Value>) -> Reply {
        self.post(&format!("/api/v1/holds/{hold}/confirm"), body)
            .await
    }

    /// `POST /api/v1/holds/{hold}/void` without a body.
    pub async fn void_hold(&self, hold: Uuid) -> Reply {
        self.post(&format!("/api/v1/holds/{hold}/void"), None).await
    }

    /// Polls `GET /api/v1/holds/{hold}` until its status is `status` and returns the record;
    /// panics after `limit`, a bound on a hang (expiry is due within about a second).
    pub async fn wait_for_hold_status(&self, hold: Uuid, status: &str, limit: Duration) -> Value {
        eventually(&format!("hold {hold} {status}"), limit, async || {
            let answer = self.hold(hold).await;
            let record = answer.json();
            (answer.status == StatusCode::OK && record["status"] == status).then_some(record)
        })
        .await
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

    /// Checks that `wallet`'s history, read through the API, adds up to its balance: read
    /// oldest first, each item's balance is the one before it plus what the item applied
    /// (applied deposits and incoming transfers add, applied withdrawals and outgoing
    /// transfers take; rejected, pending, voided and expired items change nothing), and the
    /// newest is the wallet's balance. Returns the balance.
    pub async fn assert_history_adds_up(&self, wallet: Uuid) -> u64 {
        let history = self.history(wallet).await;
        let mut net = 0_i64;
        for item in history.iter().rev() {
            if item["status"] == "APPLIED" {
                let amount = item["amount"].as_i64().expect("amount is an integer");
                net += match item["operationType"].as_str() {
                    Some("DEPOSIT" | "TRANSFER_IN") => amount,
                    _ => -amount,
                };
            }
            assert_eq!(
                item["balance"].as_i64(),
                Some(net),
                "wallet {wallet}: the balance after {item}, read oldest first"
            );
        }
        let balance = self.balance(wallet).await;
        assert_eq!(
            i64::try_from(balance),
            Ok(net),
            "wallet {wallet}: balance vs applied history"
        );
        balance
    }

    /// A direct connection to this test's database, for checks behind the API.
    pub async fn db(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.database_url)
            .await
            .unwrap()
    }

    /// Checks the stored ledger's invariants (see [`ledger`](super::ledger)): balances and
    /// available amounts equal their history, held amounts their pending holds, money is
    /// conserved, every transfer has its legs and every hold that is no longer pending exactly
    /// one resolution.
    pub async fn assert_ledger_consistent(&self) {
        let mut db = PgConnection::connect(&self.database_url).await.unwrap();
        let violations = ledger::violations(&mut db).await;
        let _ = db.close().await;
        assert!(violations.is_empty(), "ledger invariants: {violations:#?}");
    }
}
