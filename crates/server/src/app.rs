//! Wiring: from a [`Config`] to a listening server.

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::events::ShowRecord;
use crate::events::relay::Relay;
use crate::http::{self, ConnectionLimits, Shared};
use crate::ledger::{Ledger, LedgerConfig, expiry};
use crate::reader::BalanceReader;
use crate::store::citus::ShardMap;
use crate::{store, telemetry};
use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// A service bound to its ports, with its database migrated and its writers started.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    admin_listener: TcpListener,
    admin_router: axum::Router,
    prometheus: PrometheusHandle,
    /// The writers and the balance reader: shutdown waits for what they hold.
    tasks: JoinSet<()>,
    /// What the hold expiry sweep needs; it runs while the service serves.
    expiry: Expiry,
    /// The event relay, when events are on; it runs while the service serves.
    relay: Option<Relay>,
    shutdown_timeout: Duration,
    limits: ConnectionLimits,
}

impl Application {
    /// Creates the database if needed, applies migrations, starts the writers and binds the
    /// listeners. Fails with a readable message when any of that is impossible.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let prometheus = telemetry::prometheus()?;
        let db = &config.database;
        let options = store::connect_options(db.url.expose_secret(), db.statement_timeout())?;
        // Where, never how: the URL's password stays out of the logs.
        tracing::info!(
            host = options.get_host(),
            port = options.get_port(),
            database = options.get_database(),
            max_batch = config.ledger.max_batch,
            "starting"
        );
        let open = |options: &PgConnectOptions| {
            store::open(
                db.url.expose_secret(),
                options.clone().application_name("wallet-server"),
                db.pool_size,
                db.acquire_timeout(),
                db.startup_timeout,
            )
        };
        let mut pool = open(&options).await?;
        store::migrate(&pool).await?;
        let (options, citus) = store::citus::distribute(options).await?;
        if citus.is_some() {
            // From here on every connection, the pool's too, has the settings Citus needs.
            pool.close().await;
            pool = open(&options).await?;
        }

        let broker = config.events.broker()?;
        let relay = broker.map(|broker| Relay {
            database: options.clone().application_name("wallet-events"),
            broker,
        });
        let (router, ledger, tasks) = api(config, pool.clone(), options, citus)?;
        let backlog = config.http.listen_backlog;
        let listener = bind(&config.http.http_addr, backlog).await?;
        let admin_listener = bind(&config.telemetry.admin_addr, backlog).await?;
        if config.http.api_tokens.expose_secret().trim().is_empty()
            && !listener.local_addr()?.ip().is_loopback()
        {
            tracing::warn!(
                addr = %listener.local_addr()?,
                "the API listens beyond loopback WITHOUT authentication: anyone who can reach \
                 it can move money; set WALLET_API_TOKENS"
            );
        }
        let expiry = Expiry {
            ledger: ledger.clone(),
            pool: pool.clone(),
            interval: config.ledger.hold_expiry_interval,
        };
        let admin_router = admin::router(AdminState {
            prometheus: prometheus.clone(),
            pool,
            ledger,
        });
        Ok(Self {
            listener,
            router,
            admin_listener,
            admin_router,
            prometheus,
            tasks,
            expiry,
            relay,
            shutdown_timeout: config.http.shutdown_timeout(),
            limits: config.http.connection_limits(),
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
            mut tasks,
            expiry,
            relay,
            shutdown_timeout,
            limits,
        } = self;

        // The sweep stops sending expiries when shutdown begins; shutdown then waits for the
        // ones it sent, like any batch in flight.
        let (stop_expiry, expiry_stopped) = oneshot::channel::<()>();
        tasks.spawn(expiry::run(
            expiry.ledger,
            expiry.pool,
            expiry.interval,
            async move {
                let _ = expiry_stopped.await;
            },
        ));
        // The relay stops when shutdown begins, like the sweep; what the batches still in
        // flight commit waits in the outbox for the next relay.
        let (stop_relay, relay_stopped) = oneshot::channel::<()>();
        if let Some(relay) = relay {
            tasks.spawn(relay.run(async move {
                let _ = relay_stopped.await;
            }));
        }
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
            let _ = stop_expiry.send(());
            let _ = stop_relay.send(());
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
            while tasks.join_next().await.is_some() {}
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

/// The hold expiry sweep's handles.
struct Expiry {
    ledger: Ledger,
    pool: PgPool,
    interval: Duration,
}

/// The API router on handles that connect lazily: nothing reaches PostgreSQL until a request
/// needs it. Tests of the HTTP layer (routing, headers, limits, authentication, the OpenAPI
/// description) run on it in process, without a database or a socket.
pub fn lazy_router(config: &Config) -> anyhow::Result<axum::Router> {
    let db = &config.database;
    let options = store::connect_options(db.url.expose_secret(), db.statement_timeout())?;
    let pool = PgPoolOptions::new()
        .max_connections(db.pool_size)
        .acquire_timeout(db.acquire_timeout())
        .connect_lazy_with(options.clone());
    let (router, _ledger, mut tasks) = api(config, pool, options, None)?;
    tasks.detach_all();
    Ok(router)
}

/// The API router, and the write path and the reader behind it with their tasks.
fn api(
    config: &Config,
    pool: PgPool,
    options: PgConnectOptions,
    citus: Option<ShardMap>,
) -> anyhow::Result<(axum::Router, Ledger, JoinSet<()>)> {
    let policy = config.http_policy().map_err(anyhow::Error::msg)?;
    let events = config
        .events
        .broker()?
        .map(|_| http::record_data as ShowRecord);
    let db = &config.database;
    // A URL sqlx takes but tokio-postgres does not (a parameter only sqlx knows) costs the
    // pipelining, not the start.
    let pipeline = match store::pipeline_config(db.url.expose_secret(), db.statement_timeout()) {
        Ok(mut pipeline) => {
            pipeline.application_name("wallet-writer");
            Some(pipeline)
        }
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "writers run without pipelining"
            );
            None
        }
    };
    let (ledger, mut tasks) = Ledger::start(
        &LedgerConfig::from(&config.ledger),
        options.application_name("wallet-writer"),
        pipeline,
        events,
        citus,
    );
    let (reader, reads) = BalanceReader::start(pool.clone(), config.ledger.queue_capacity as usize);
    // Shutdown waits for the reads queued before it, as for the writers' batches.
    tasks.spawn(async move {
        if let Err(error) = reads.await {
            tracing::error!(%error, "the balance reader crashed");
        }
    });
    let router = http::router(
        Arc::new(Shared {
            pool,
            ledger: ledger.clone(),
            reader,
            max_page_size: config.http.max_page_size,
            max_batch_items: config.http.max_batch_items as usize,
        }),
        policy,
    );
    Ok((router, ledger, tasks))
}

/// Listens on `addr` with a backlog of `backlog` pending connections (std's default of 128
/// makes a burst of connects wait for SYN retries).
async fn bind(addr: &str, backlog: u32) -> anyhow::Result<TcpListener> {
    let cannot = || format!("cannot listen on {addr}");
    let resolved = tokio::net::lookup_host(addr)
        .await
        .with_context(cannot)?
        .next()
        .with_context(|| format!("{addr} resolves to no address"))?;
    let socket = if resolved.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .with_context(cannot)?;
    // As std does: a restarted service can bind while old connections are in TIME_WAIT.
    socket.set_reuseaddr(true).with_context(cannot)?;
    socket.bind(resolved).with_context(cannot)?;
    socket.listen(backlog).with_context(cannot)
}
