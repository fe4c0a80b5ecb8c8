//! PostgreSQL: connecting, migrating, and every SQL statement the service runs.

pub mod batch;
pub mod citus;
mod error;
pub mod reads;
mod rows;
pub mod statement;
pub mod wallets;

pub use error::{StoreError, StoreResult};

use anyhow::Context;
use sqlx::Postgres;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// Creates the database if needed and opens the pool. A PostgreSQL that does not answer
/// yet (starting, restarting, not reachable) is waited for with backoff, one log line per
/// attempt, for at most `patience`; anything else (a wrong password, say) fails at once.
pub async fn open(
    url: &str,
    options: PgConnectOptions,
    pool_size: u32,
    acquire_timeout: Duration,
    patience: Duration,
) -> anyhow::Result<PgPool> {
    let give_up = tokio::time::Instant::now() + patience;
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 0_u32;
    loop {
        attempt += 1;
        let opened = async {
            ensure_database(url).await?;
            connect_pool(options.clone(), pool_size, acquire_timeout).await
        };
        let error = match opened.await {
            Ok(pool) => return Ok(pool),
            Err(error) => error,
        };
        let now = tokio::time::Instant::now();
        if !error.is_transient() || now >= give_up {
            return Err(error).context("cannot connect to the database");
        }
        let wait = backoff.min(give_up - now);
        tracing::warn!(
            attempt,
            %error,
            retry_in_ms = wait.as_millis() as u64,
            "database not reachable yet"
        );
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Creates the database named by `url` if it does not exist yet.
async fn ensure_database(url: &str) -> StoreResult<()> {
    if Postgres::database_exists(url).await? {
        return Ok(());
    }
    match Postgres::create_database(url).await {
        // Another instance starting at the same moment may have won the race.
        Err(error) if !Postgres::database_exists(url).await? => Err(error.into()),
        _ => Ok(()),
    }
}

/// Connection settings for every connection of the service, from the database URL.
pub fn connect_options(url: &str, statement_timeout: Duration) -> anyhow::Result<PgConnectOptions> {
    let options =
        PgConnectOptions::from_str(url).context("DATABASE_URL is not a valid PostgreSQL URL")?;
    Ok(options.options(settings(statement_timeout)))
}

/// The same for the writers' pipelined connections, which tokio-postgres opens (see
/// `ledger/writer.rs`).
pub fn pipeline_config(
    url: &str,
    statement_timeout: Duration,
) -> anyhow::Result<tokio_postgres::Config> {
    let mut config = tokio_postgres::Config::from_str(url)
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    let options: Vec<String> = settings(statement_timeout)
        .iter()
        .map(|(name, value)| format!("-c {name}={value}"))
        .collect();
    config.options(options.join(" "));
    Ok(config)
}

/// The settings of every connection of the service.
fn settings(statement_timeout: Duration) -> [(&'static str, String); 4] {
    let statement_timeout = format!("{}ms", statement_timeout.as_millis());
    [
        // Every statement of the service reads or writes rows by key. While a table is small
        // (a few thousand wallets) the planner prices a sequential scan below a hundred index
        // lookups, and a batch's balance update then read every wallet: measured on 10,000
        // wallets, 2.4 ms instead of 0.9 ms for 128 rows. Worse, a plan cached while a table
        // was empty went on scanning it after it had grown. Without sequential scans, the
        // plans PostgreSQL caches for a connection's prepared statements are the index plans,
        // and a batch's statements are no longer planned afresh on every execution (that
        // planning was a sixth of a hot merchant's batch in PostgreSQL).
        ("enable_seqscan", "off".to_owned()),
        // A prepared statement is planned once per connection, not on every execution:
        // left to itself, PostgreSQL kept planning a batch's write statement afresh (a custom
        // plan for each set of arrays); without that, its CPU per hot-wallet deposit fell by
        // two fifths. Every statement here has one good plan whatever its parameters.
        ("plan_cache_mode", "force_generic_plan".to_owned()),
        // A statement stuck behind a lock held elsewhere fails instead of holding its
        // connection, and its request gets a 503.
        ("statement_timeout", statement_timeout),
        // A connection the service gave up on (a batch past its deadline) is noticed within a
        // second even while it waits for a lock, so its transaction ends and its locks go.
        ("client_connection_check_interval", "1s".to_owned()),
    ]
}

/// Pool for reads and wallet creation; writes go through the ledger's own connections.
async fn connect_pool(
    options: PgConnectOptions,
    size: u32,
    acquire_timeout: Duration,
) -> StoreResult<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(acquire_timeout)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// The migrations embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Applies the migrations embedded in the binary.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("cannot apply database migrations")
}

/// Whether every migration embedded in the binary is applied: the readiness check. False
/// when the database was replaced or restored from before this version since start-up.
pub async fn migrations_applied(pool: &PgPool) -> StoreResult<bool> {
    let versions: Vec<i64> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .collect();
    let applied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM _sqlx_migrations WHERE success AND version = ANY($1)",
    )
    .bind(&versions)
    .fetch_one(&mut *connection(pool).await?)
    .await?;
    Ok(usize::try_from(applied).is_ok_and(|n| n == versions.len()))
}

/// A connection from the pool. Whatever keeps the pool from handing one out (the database
/// down, refusing connections, or every connection busy past the acquire timeout) is the
/// database being unavailable, not a bug, whatever SQLSTATE it came with.
async fn connection(pool: &PgPool) -> StoreResult<PoolConnection<Postgres>> {
    pool.acquire().await.map_err(StoreError::Unavailable)
}

/// Ids as the `uuid[]` parameter of an `= ANY($1)` or `UNNEST($1)`.
fn uuids<T: Copy + Into<uuid::Uuid>>(ids: &[T]) -> Vec<uuid::Uuid> {
    ids.iter().map(|&id| id.into()).collect()
}
