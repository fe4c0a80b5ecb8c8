//! Wiring: from a [`Config`] to a listening server.

use crate::config::Config;
use crate::http::{self, AppState};
use crate::ledger::Ledger;
use crate::store;
use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// A service bound to its port, with its database migrated and its writers started.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    writers: JoinSet<()>,
}

impl Application {
    /// Creates the database if needed, applies migrations, starts the writers and binds the
    /// listener. Fails with a readable message when any of that is impossible.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(&config.database_url)
            .context("DATABASE_URL is not a valid PostgreSQL URL")?;
        store::ensure_database(&config.database_url).await?;
        let pool = store::connect_pool(
            options.clone().application_name("wallet-server"),
            config.db_pool_size,
            config.request_timeout(),
        )
        .await?;
        store::migrate(&pool).await?;

        let (ledger, writers) =
            Ledger::start(&config.ledger(), options.application_name("wallet-writer"));
        let listener = TcpListener::bind(&config.http_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.http_addr))?;
        let router = http::router(AppState { pool, ledger });
        Ok(Self {
            listener,
            router,
            writers,
        })
    }

    /// The bound address; tells tests which port `:0` picked.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests in flight
    /// finish and waits for the writers to commit what they hold.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            mut writers,
        } = self;
        tracing::info!(addr = %listener.local_addr()?, "listening");
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("server error")?;
        // The router (and with it the last ledger handle) is gone: writers drain and stop.
        while writers.join_next().await.is_some() {}
        Ok(())
    }
}
