//! A consumer of the service's event stream: a private queue bound to every event on the
//! real RabbitMQ, read in the background. Tests share the broker, so each looks only at the
//! events of its own wallets.
//!
//! Also what the event tests check with it: [`assert_each_wallets_order`], and a
//! [`BrokerProxy`] that cuts the service off the broker without touching the broker the
//! other tests share.

use lapin::message::DeliveryResult;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;
use wallet_server::events::relay::{EXCHANGE, declare_exchange};

/// The broker the tests publish through: `WALLET_TEST_AMQP_URL`, or the local RabbitMQ.
pub fn broker_url() -> String {
    std::env::var("WALLET_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// One message as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub routing_key: String,
    pub message_id: Option<String>,
    pub delivery_mode: Option<u8>,
    pub content_type: Option<String>,
    pub body: Value,
}

impl Received {
    pub fn event_id(&self) -> &str {
        self.body["eventId"].as_str().unwrap_or_default()
    }

    pub fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The id of the change it tells: the `operationId`, `transferId` or `holdId` of its
    /// record, the id the client named its request with.
    pub fn subject(&self) -> Option<Uuid> {
        let field = match self.kind().split_once('.')?.0 {
            "operation" => "operationId",
            "transfer" => "transferId",
            "hold" => "holdId",
            _ => return None,
        };
        self.data()[field].as_str()?.parse().ok()
    }

    /// The wallets the event is about.
    pub fn wallets(&self) -> Vec<Uuid> {
        ["walletId", "fromWalletId", "toWalletId"]
            .iter()
            .filter_map(|field| self.data()[*field].as_str()?.parse().ok())
            .collect()
    }
}

/// Tests share the broker; the one that stops it waits until no other test reads events and
/// keeps them waiting while it runs (the tests are one binary, so one lock serves).
static BROKER: RwLock<()> = RwLock::const_new(());

/// The broker to oneself: every other test that reads events waits until this is dropped.
pub async fn broker_to_oneself() -> RwLockWriteGuard<'static, ()> {
    BROKER.write().await
}

/// Reads every event published to `wallet.events` from the moment it starts.
pub struct EventConsumer {
    received: Arc<Mutex<Vec<Received>>>,
    /// Keeps the connection (and so the queue) alive, reconnecting in the durable kind.
    reader: JoinHandle<()>,
    /// The durable kind's queue, deleted by [`EventConsumer::delete_queue`].
    queue: Option<String>,
    _sharing: Option<RwLockReadGuard<'static, ()>>,
}

impl Drop for EventConsumer {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl EventConsumer {
    /// A private queue, gone with the connection, on the broker the tests share.
    pub async fn start() -> Self {
        let sharing = BROKER.read().await;
        let received = Arc::new(Mutex::new(Vec::new()));
        let connection = consume(None, Arc::clone(&received))
            .await
            .expect("RabbitMQ is reachable");
        Self {
            received,
            reader: tokio::spawn(async move {
                let _connection = connection;
                std::future::pending::<()>().await;
            }),
            queue: None,
            _sharing: Some(sharing),
        }
    }

    /// A durable queue of its own that outlives a broker restart, read again after each
    /// reconnection; for a test that holds [`broker_to_oneself`].
    pub async fn start_durable() -> Self {
        let queue = format!("wallet-test-{}", Uuid::new_v4());
        let received = Arc::new(Mutex::new(Vec::new()));
        let first = consume(Some(&queue), Arc::clone(&received))
            .await
            .expect("RabbitMQ is reachable");
        let (name, sink) = (queue.clone(), Arc::clone(&received));
        let reader = tokio::spawn(async move {
            let mut connection = first;
            loop {
                while connection.status().connected() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                connection = loop {
                    // Unacknowledged deliveries of the lost connection come again: duplicates.
                    // A broker still starting may accept the connection and answer nothing.
                    let consumed = consume(Some(&name), Arc::clone(&sink));
                    match tokio::time::timeout(Duration::from_secs(5), consumed).await {
                        Ok(Ok(connection)) => break connection,
                        Ok(Err(_)) | Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                    }
                };
            }
        });
        Self {
            received,
            reader,
            queue: Some(queue),
            _sharing: None,
        }
    }

    /// Deletes the durable kind's queue.
    pub async fn delete_queue(self) {
        let Some(queue) = &self.queue else { return };
        let connection = Connection::connect(&broker_url(), ConnectionProperties::default())
            .await
            .expect("RabbitMQ is reachable");
        let channel = connection.create_channel().await.expect("a channel");
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .expect("the queue is deleted");
        let _ = connection.close(200, "done".into()).await;
    }

    /// The events about any of `wallets` received so far, in arrival order.
    pub fn about(&self, wallets: &[Uuid]) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|event| event.wallets().iter().any(|w| wallets.contains(w)))
            .cloned()
            .collect()
    }

    /// Waits until the events about `wallets` include `count` distinct ones, and returns
    /// them (first arrival of each, in arrival order); panics after `limit`.
    pub async fn wait_for(&self, wallets: &[Uuid], count: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let distinct = distinct(self.about(wallets));
            if distinct.len() >= count {
                return distinct;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} events arrived within {limit:?}: {distinct:#?}",
                distinct.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Connects, binds `queue` (durable) or a private queue (gone with the connection) to every
/// event, and records each delivery into `sink` in the order it arrives.
async fn consume(
    queue: Option<&str>,
    sink: Arc<Mutex<Vec<Received>>>,
) -> lapin::Result<Connection> {
    let connection = Connection::connect(&broker_url(), ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    declare_exchange(&channel).await?;
    let options = match queue {
        Some(_) => QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        None => QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        },
    };
    let queue = channel
        .queue_declare(queue.unwrap_or("").into(), options, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            EXCHANGE.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let consumer = channel
        .basic_consume(
            queue.name().clone(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    // lapin calls the delegate in delivery order but runs the futures it returns as tasks of
    // their own, which a multi-threaded runtime may run in any order: each message is
    // recorded in the call, only the ack waits for its task.
    consumer.set_delegate(move |delivery: DeliveryResult| {
        let delivery = match delivery {
            Ok(Some(delivery)) => {
                let properties = &delivery.properties;
                let message = Received {
                    routing_key: delivery.routing_key.to_string(),
                    message_id: properties.message_id().as_ref().map(ToString::to_string),
                    delivery_mode: *properties.delivery_mode(),
                    content_type: properties.content_type().as_ref().map(ToString::to_string),
                    body: serde_json::from_slice(&delivery.data).unwrap_or(Value::Null),
                };
                sink.lock().unwrap().push(message);
                Some(delivery)
            }
            _ => None,
        };
        async move {
            if let Some(delivery) = delivery {
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
        }
    });
    Ok(connection)
}

/// The first arrival of each event, in arrival order.
pub fn distinct(events: Vec<Received>) -> Vec<Received> {
    let mut seen = HashSet::new();
    events
        .into_iter()
        .filter(|event| seen.insert(event.event_id().to_owned()))
        .collect()
}

/// A wallet's funds as its events tell them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Funds {
    pub balance: u64,
    /// The balance minus what pending holds reserve.
    pub available: u64,
}

/// Checks that `events` (each once, in arrival order) reached the broker in each of
/// `wallets`' commit order, and returns each wallet's funds after the last of them.
///
/// Each wallet's balance and available amount are replayed from zero, step by step: an
/// operation or transfer must show the figures the events before it add up to, or it arrived
/// out of order. Hold events carry no figures, but move them (a pending hold reserves its
/// amount, its confirmation moves the amount confirmed and releases the rest, a void or
/// expiry releases it all), so the next operation's figures show whether they came in
/// order; a hold must be pending before it is resolved, and resolved once. `events` must
/// hold every event of `wallets` from their first.
pub fn assert_each_wallets_order(events: &[Received], wallets: &[Uuid]) -> HashMap<Uuid, Funds> {
    let mut funds: HashMap<Uuid, Funds> = wallets.iter().map(|w| (*w, Funds::default())).collect();
    let mut pending_holds = HashSet::new();
    for event in events {
        let data = event.data();
        let amount = |field: &str| -> i64 {
            let value = data[field].as_u64();
            let value = value.unwrap_or_else(|| panic!("{field} in {data}"));
            i64::try_from(value).unwrap()
        };
        let wallet = |field: &str| -> Uuid {
            let id = data[field].as_str().and_then(|id| id.parse().ok());
            id.unwrap_or_else(|| panic!("{field} in {data}"))
        };
        let mut step = |wallet: Uuid, moved: i64, freed: i64, shown: Option<(&str, &str)>| {
            move_funds(&mut funds, event, wallet, (moved, freed), shown);
        };
        let hold = || (wallet("walletId"), event.subject().expect("a holdId"));
        let tracked = |wallet: Uuid| wallets.contains(&wallet);
        match event.kind() {
            kind @ ("operation.applied" | "operation.rejected") => {
                let applied = kind == "operation.applied";
                let sign = if data["operationType"] == "DEPOSIT" {
                    1
                } else {
                    -1
                };
                let moved = if applied { sign * amount("amount") } else { 0 };
                let shown = Some(("balance", "available"));
                step(wallet("walletId"), moved, moved, shown);
            }
            kind @ ("transfer.applied" | "transfer.rejected") => {
                let moved = if kind == "transfer.applied" {
                    amount("amount")
                } else {
                    0
                };
                let shown = Some(("fromBalance", "fromAvailable"));
                step(wallet("fromWalletId"), -moved, -moved, shown);
                let shown = Some(("toBalance", "toAvailable"));
                step(wallet("toWalletId"), moved, moved, shown);
            }
            "hold.pending" => {
                let (from, id) = hold();
                if tracked(from) {
                    assert!(pending_holds.insert(id), "hold {id} placed twice: {data}");
                }
                step(from, 0, -amount("amount"), None);
            }
            kind @ ("hold.confirmed" | "hold.voided" | "hold.expired") => {
                let (from, id) = hold();
                if tracked(from) {
                    assert!(
                        pending_holds.remove(&id),
                        "hold {id} {kind} before it was pending, or again: {data}"
                    );
                }
                let confirmed = match kind {
                    "hold.confirmed" => amount("confirmedAmount"),
                    _ => 0,
                };
                step(from, -confirmed, amount("amount") - confirmed, None);
                if let Some(to) = data["toWalletId"].as_str() {
                    step(to.parse().unwrap(), confirmed, confirmed, None);
                }
            }
            other => panic!("unexpected event {other}: {}", event.body),
        }
    }
    funds
}

/// Moves `wallet`'s funds (when it is one of those replayed) by `moved` (balance) and
/// `freed` (available); where `event` shows the wallet's funds under the fields `shown`, they
/// must be the result.
fn move_funds(
    funds: &mut HashMap<Uuid, Funds>,
    event: &Received,
    wallet: Uuid,
    (moved, freed): (i64, i64),
    shown: Option<(&str, &str)>,
) {
    let Some(before) = funds.get_mut(&wallet) else {
        return;
    };
    let after = |figure: u64, by: i64| {
        let after = i64::try_from(figure).unwrap() + by;
        u64::try_from(after).unwrap_or_else(|_| {
            panic!("wallet {wallet} below zero: out of order at {}", event.body)
        })
    };
    let expected = Funds {
        balance: after(before.balance, moved),
        available: after(before.available, freed),
    };
    if let Some((balance, available)) = shown {
        let data = event.data();
        let shown = Funds {
            balance: data[balance].as_u64().unwrap_or(u64::MAX),
            available: data[available].as_u64().unwrap_or(u64::MAX),
        };
        assert_eq!(
            shown, expected,
            "wallet {wallet}: out of order at {}",
            event.body
        );
    }
    *before = expected;
}

/// A TCP proxy in front of the broker, for the service to publish through, that the test can
/// cut: [`Self::cut`] closes every connection it carries and refuses new ones (accepting and
/// closing them at once) until [`Self::restore`]. Consumers connect to the broker itself.
pub struct BrokerProxy {
    url: String,
    up: watch::Sender<bool>,
    accepted: Arc<AtomicU64>,
    listener: JoinHandle<()>,
}

impl BrokerProxy {
    /// Listens on a free port of 127.0.0.1, forwarding to the broker of [`broker_url`].
    pub async fn start() -> Self {
        let mut uri: AMQPUri = broker_url().parse().expect("an AMQP URL");
        let upstream = format!("{}:{}", uri.authority.host, uri.authority.port);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        uri.authority.host = addr.ip().to_string();
        uri.authority.port = addr.port();
        let (up, _) = watch::channel(true);
        let accepted = Arc::new(AtomicU64::new(0));
        let listener = tokio::spawn(accept(listener, upstream, up.clone(), accepted.clone()));
        Self {
            url: uri.to_string(),
            up,
            accepted,
            listener,
        }
    }

    /// The broker's URL through the proxy.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connections forwarded so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// The outage: every connection closed, new ones closed as soon as they are accepted.
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    /// The broker is reachable again.
    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for BrokerProxy {
    fn drop(&mut self) {
        self.listener.abort();
        self.up.send_replace(false);
    }
}

async fn accept(
    listener: TcpListener,
    upstream: String,
    up: watch::Sender<bool>,
    accepted: Arc<AtomicU64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if !*up.borrow() {
            drop(client);
            continue;
        }
        accepted.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(forward(client, upstream.clone(), up.subscribe()));
    }
}

/// Carries one connection until either side closes it or the proxy is cut.
async fn forward(mut client: TcpStream, upstream: String, mut up: watch::Receiver<bool>) {
    let Ok(mut broker) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut broker) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}
