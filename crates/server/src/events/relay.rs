//! The relay: publishes the outbox to the broker and deletes what the broker confirmed.
//!
//! One relay is active per database, however many service instances run: each instance's
//! relay waits for a session advisory lock, and the one holding it publishes. When that
//! instance dies, its connection closes, the lock goes with it, and another instance's relay
//! takes over within a second.
//!
//! Order: the relay takes the oldest rows first, publishes them in `seq` order on one
//! channel, and deletes them in the transaction that read them only after every one is
//! confirmed. It never skips a row for having a smaller `seq` than one already published
//! (a row can commit after rows numbered later); since one wallet's rows are numbered under
//! its lock, in commit order, a row is never visible before an earlier one of its wallet,
//! and one wallet's events reach the broker in commit order. Anything that fails before the
//! delete commits leaves the rows for the next attempt: at least once, never lost.

use crate::telemetry::metric;
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::future::{join_all, maybe_done};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// The exchange every event goes to; its routing key is the event type.
pub const EXCHANGE: &str = "wallet.events";

/// Names the advisory lock that makes one relay active per database.
const RELAY_LOCK: i64 = 0x7761_6c6c_6574_0001;
/// Most events one round publishes; when it finds that many, the next round starts at once.
const PAGE: i64 = 1000;
/// How long an idle relay waits before looking at the outbox again.
const POLL: Duration = Duration::from_millis(20);
/// How often a waiting relay tries for the lock, and the active one counts its backlog.
const TICK: Duration = Duration::from_secs(1);
/// Longest a round waits for the broker to take its events and confirm them before starting
/// over.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the relay waits for the broker to open a connection and a channel: a broker still
/// starting may accept the connection and answer nothing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where the relay reads and publishes.
pub struct Relay {
    pub database: PgConnectOptions,
    pub broker: SecretString,
}

/// Why a relay stopped publishing for now.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker refused an event")]
    Refused,
    #[error("the broker did not take and confirm a page within {CONFIRM_TIMEOUT:?}")]
    Unconfirmed,
    #[error("the broker did not open a channel within {CONNECT_TIMEOUT:?}")]
    Unanswered,
}

impl Relay {
    /// Runs until `stop` completes. A round cut short by `stop` is not committed: its events
    /// stay in the outbox and are published again.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::select! {
            () = stop => {}
            () = self.serve() => {}
        }
        stand_by();
    }

    async fn serve(&self) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let error = match self.lead().await {
                Ok(never) => match never {},
                Err(error) => error,
            };
            stand_by();
            tracing::warn!(%error, "event relay cannot reach the database, retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Waits for the lock, then publishes for as long as the database connection lasts;
    /// the broker failing only makes it reconnect to the broker.
    async fn lead(&self) -> Result<std::convert::Infallible, sqlx::Error> {
        let mut db = PgConnection::connect_with(&self.database).await?;
        while !try_lock(&mut db).await? {
            tokio::time::sleep(TICK).await;
        }
        tracing::info!("this instance's event relay is the active one");
        metrics::gauge!(metric::EVENTS_RELAY_ACTIVE).set(1.0);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let failure = match self.publish(&mut db).await {
                Ok(never) => match never {},
                Err(failure) => failure,
            };
            match failure {
                Failure::Database(error) => return Err(error),
                failure => tracing::warn!(%failure, "event relay cannot publish, retrying"),
            }
            // While the broker is away the outbox grows: keep telling by how much.
            count_backlog(&mut db).await?;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Connects to the broker and publishes until something fails.
    async fn publish(&self, db: &mut PgConnection) -> Result<std::convert::Infallible, Failure> {
        let channel = tokio::time::timeout(CONNECT_TIMEOUT, self.channel())
            .await
            .map_err(|_| Failure::Unanswered)??;
        let mut counted = Instant::now();
        count_backlog(db).await?;
        loop {
            let published = round(db, &channel).await?;
            if counted.elapsed() >= TICK {
                count_backlog(db).await?;
                counted = Instant::now();
            }
            if published < PAGE as usize {
                tokio::time::sleep(POLL).await;
            }
        }
    }

    /// A channel in confirm mode, the exchange declared.
    async fn channel(&self) -> Result<Channel, lapin::Error> {
        let connection =
            Connection::connect(self.broker.expose_secret(), ConnectionProperties::default())
                .await?;
        let channel = connection.create_channel().await?;
        declare_exchange(&channel).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        tracing::info!(exchange = EXCHANGE, "event relay connected to the broker");
        Ok(channel)
    }
}

/// Declares [`EXCHANGE`]: a durable topic exchange, as every publisher and consumer of it
/// must declare it.
pub async fn declare_exchange(channel: &Channel) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// This relay no longer publishes: it reports neither activity nor a backlog, so that the
/// metrics summed over every instance show the active relay's.
fn stand_by() {
    metrics::gauge!(metric::EVENTS_RELAY_ACTIVE).set(0.0);
    metrics::gauge!(metric::EVENTS_OUTBOX_BACKLOG).set(0.0);
}

async fn try_lock(db: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(RELAY_LOCK)
        .fetch_one(db)
        .await
}

/// Reports the backlog: the span of the waiting events' numbers, read from the ends of the
/// key's index however large the outbox has grown (a number is skipped only by a batch
/// rolled back, so this is the count or a little more).
async fn count_backlog(db: &mut PgConnection) -> Result<(), sqlx::Error> {
    let backlog: i64 =
        sqlx::query_scalar("SELECT coalesce(max(seq) - min(seq) + 1, 0) FROM outbox")
            .fetch_one(db)
            .await?;
    metrics::gauge!(metric::EVENTS_OUTBOX_BACKLOG).set(backlog as f64);
    Ok(())
}

/// Publishes the oldest page of the outbox and deletes it once the broker has confirmed
/// every event of it; returns how many it published.
async fn round(db: &mut PgConnection, channel: &Channel) -> Result<usize, Failure> {
    let mut tx = db.begin().await?;
    // Losing this commit in a crash only publishes its events again.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let mut rows: Vec<(i64, Uuid, String, String, DateTime<Utc>)> = sqlx::query_as(
        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT $1) \
         RETURNING seq, event_id, type, body, occurred_at",
    )
    .bind(PAGE)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    rows.sort_unstable_by_key(|&(seq, ..)| seq);
    let mut publishes = Vec::with_capacity(rows.len());
    for (_, id, kind, body, _) in &rows {
        let properties = BasicProperties::default()
            .with_message_id(id.to_string().into())
            .with_content_type("application/json".into())
            // Persistent: a durable queue keeps it across a broker restart.
            .with_delivery_mode(2);
        let mut publish = maybe_done(Box::pin(channel.basic_publish(
            EXCHANGE.into(),
            kind.as_str().into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            properties,
        )));
        // Its first poll queues the message for the connection's I/O thread, so the whole
        // page is queued in `seq` order before that thread writes it, rather than one
        // message per hand-over.
        let _ = (&mut publish).now_or_never();
        publishes.push(publish);
    }
    // Bounded as a whole: a connection the broker dropped mid-page may leave a publish, not
    // only a confirm, waiting for good, with this page's rows locked.
    let confirmed = async {
        join_all(publishes.iter_mut()).await;
        let mut confirms = Vec::with_capacity(publishes.len());
        for publish in &mut publishes {
            let queued = Pin::new(publish).take_output();
            confirms.push(queued.expect("every publish has completed")?);
        }
        for confirm in confirms {
            match confirm.await? {
                Confirmation::Ack(_) => {}
                Confirmation::Nack(_) | Confirmation::NotRequested => return Err(Failure::Refused),
            }
        }
        Ok(())
    };
    tokio::time::timeout(CONFIRM_TIMEOUT, confirmed)
        .await
        .map_err(|_| Failure::Unconfirmed)??;
    tx.commit().await?;
    let now = Utc::now();
    for &(.., occurred) in &rows {
        let lag = (now - occurred).to_std().unwrap_or_default();
        metrics::histogram!(metric::EVENTS_PUBLISH_LAG).record(lag);
    }
    metrics::counter!(metric::EVENTS_PUBLISHED).increment(rows.len() as u64);
    Ok(rows.len())
}
