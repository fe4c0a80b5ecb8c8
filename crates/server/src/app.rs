//! Wiring: from a [`Config`] to a listening server.

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::http::{self, ApiTokens, AppState, ConnectionLimits, HttpPolicy};
use crate::ledger::Ledger;
use crate::reader::BalanceReader;
use crate::{store, telemetry};
use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// How much longer than the ledger's deadline a request may take in all, so that the
/// ledger's own 503 always comes first.
const REQUEST_TIME_MARGIN: Duration = Duration::from_secs(1);

/// A service bound to its ports, with its database migrated and its writers started.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    admin_listener: TcpListener,
    admin_router: axum::Router,
    prometheus: PrometheusHandle,
    writers: JoinSet<()>,
    shutdown_timeout: Duration,
    limits: ConnectionLimits,
}

impl Application {
    /// Creates the database if needed, applies migrations, starts the writers and binds the
    /// listeners. Fails with a readable message when any of that is impossible.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let prometheus = telemetry::prometheus()?;
        let options = store::connect_options(&config.database_url, config.db_statement_timeout())?;
        // Where, never how: the URL's password stays out of the logs.
        tracing::info!(
            host = options.get_host(),
            port = options.get_port(),
            database = options.get_database(),
            shards = config.shards,
            max_batch = config.max_batch,
            "starting"
        );
        store::ensure_database(&config.database_url).await?;
        let pool = store::connect_pool(
            options.clone().application_name("wallet-server"),
            config.db_pool_size,
            config.db_acquire_timeout(),
        )
        .await?;
        store::migrate(&pool).await?;

        let (router, ledger, writers) = api(config, pool.clone(), options)?;
        let listener = bind(&config.http_addr).await?;
        let admin_listener = bind(&config.admin_addr).await?;
        if config.api_tokens.trim().is_empty() && !listener.local_addr()?.ip().is_loopback() {
            tracing::warn!(
                addr = %listener.local_addr()?,
                "the API listens beyond loopback WITHOUT authentication: anyone who can reach \
                 it can move money; set WALLET_API_TOKENS"
            );
        }
        let admin_router = admin::router(AdminState {
            prometheus: prometheus.clone(),
            pool,
            ledger,
        });
        let limits = ConnectionLimits {
            max_connections: config.max_connections as usize,
            header_read_timeout: config.header_read_timeout(),
        };
        Ok(Self {
            listener,
            router,
            admin_listener,
            admin_router,
            prometheus,
            writers,
            shutdown_timeout: config.shutdown_timeout(),
            limits,
        })
    }

    /// The API's bound address; tells tests which port `:0` picked.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The admin listener's bound address (metrics, profiles).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then stops accepting, lets requests in flight
    /// finish and waits for the writers to commit what they hold. Fails if that takes longer
    /// than the shutdown timeout.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(http = %self.local_addr(), admin = %self.admin_addr(), "listening");
        let Self {
            listener,
            router,
            admin_listener,
            admin_router,
            prometheus,
            mut writers,
            shutdown_timeout,
            limits,
        } = self;

        let (draining, drain_started) = oneshot::channel();
        let (api_stopped, stop_admin) = oneshot::channel::<()>();
        let admin = tokio::spawn(admin::serve(
            admin_listener,
            admin_router,
            prometheus,
            async move {
                let _ = stop_admin.await;
            },
        ));
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests and batches in flight");
            let _ = draining.send(());
        };
        let drain = async move {
            http::serve(listener, router, limits, signal).await;
            // The API's ledger handles are gone; the admin listener holds the last one.
            let _ = api_stopped.send(());
            admin
                .await
                .context("admin listener crashed")?
                .context("admin listener failed")?;
            // Every ledger handle is gone: the writers commit what they hold and stop.
            while writers.join_next().await.is_some() {}
            tracing::info!("shut down");
            anyhow::Ok(())
        };
        let deadline = async move {
            match drain_started.await {
                Ok(()) => tokio::time::sleep(shutdown_timeout).await,
                // The server stopped without a shutdown signal: `drain` reports why.
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            result = drain => result,
            () = deadline => Err(anyhow::anyhow!(
                "shutdown timed out after {shutdown_timeout:?} with requests or batches in flight"
            )),
        }
    }
}

/// The API router on handles that connect lazily: nothing reaches PostgreSQL until a request
/// needs it. Tests of the HTTP layer (routing, headers, limits, authentication, the OpenAPI
/// description) run on it in process, without a database or a socket.
pub fn lazy_router(config: &Config) -> anyhow::Result<axum::Router> {
    let options = store::connect_options(&config.database_url, config.db_statement_timeout())?;
    let pool = PgPoolOptions::new()
        .max_connections(config.db_pool_size)
        .acquire_timeout(config.db_acquire_timeout())
        .connect_lazy_with(options.clone());
    let (router, _ledger, mut writers) = api(config, pool, options)?;
    writers.detach_all();
    Ok(router)
}

/// The API router and the write path behind it.
fn api(
    config: &Config,
    pool: PgPool,
    options: PgConnectOptions,
) -> anyhow::Result<(axum::Router, Ledger, JoinSet<()>)> {
    let (ledger, mut writers) =
        Ledger::start(&config.ledger(), options.application_name("wallet-writer"));
    let (reader, reads) = BalanceReader::start(pool.clone(), config.queue_capacity as usize);
    // Shutdown waits for the reads queued before it, like for the writers' batches.
    writers.spawn(async move {
        if let Err(error) = reads.await {
            tracing::error!(%error, "the balance reader crashed");
        }
    });
    let tokens = ApiTokens::parse(&config.api_tokens)
        .map_err(|why| anyhow::anyhow!("WALLET_API_TOKENS: {why}"))?;
    let policy = HttpPolicy {
        max_body_bytes: config.max_body_bytes as usize,
        request_time_limit: config.request_timeout() + REQUEST_TIME_MARGIN,
        tokens,
    };
    let router = http::router(
        AppState {
            pool,
            ledger: ledger.clone(),
            reader,
            max_page_size: config.max_page_size,
        },
        policy,
    );
    Ok((router, ledger, writers))
}

async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}
